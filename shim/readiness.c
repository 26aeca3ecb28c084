/* readiness.c - poll/select/epoll bookkeeping (see readiness.h). */
#include "readiness.h"

#include "boot.h"

#include "fdstate.h"
#include "real.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <stdatomic.h>
#include <stdint.h>

/* The kernel's epoll_data for a registration we track: this tag in the high
 * half, the fd in the low half. */
#define KEY_TAG 0x57b10c4bull
#define KEY_OF(fd) (KEY_TAG << 32 | (uint32_t)(fd))
#define REGS_PER_FD 2 /* epoll instances tracked per fd; more are left alone */

/* One registration of an fd in an epoll instance. Written under a seqlock
 * by epoll_ctl (the program's own calls on one fd are rarely concurrent),
 * read lock-free; epfd_plus1 == 0 means empty. */
struct epreg {
        _Atomic uint32_t seq;
        _Atomic uint32_t epfd_plus1;
        _Atomic uint32_t epfd_gen; /* generation of the epoll fd at registration */
        _Atomic uint32_t fd_gen;   /* generation of the fd at registration */
        _Atomic uint32_t events;
        _Atomic uint32_t owed; /* events owed to an edge-triggered waiter */
        _Atomic uint64_t data; /* the program's epoll_data */
};

static struct epreg regs[WB_FD_MAX][REGS_PER_FD];
/* fds where an injected short read left bytes behind: the fd's generation
 * + 1 at that read (HANGUP_KEPT: a wait was kept from seeing its hang-up),
 * 0 if none; how many are set, for the fast path */
#define HANGUP_KEPT 0x80000000u
static _Atomic uint32_t short_left[WB_FD_MAX];
_Atomic int wb_short_left_count WB_BOOT; /* readiness.h */
#define short_left_count wb_short_left_count
_Atomic int wb_epoll_max_fd = -1; /* readiness.h */
#define max_registered_fd wb_epoll_max_fd
static _Atomic int owed_total; /* registrations with owed events, anywhere */

struct epreg_view {
        uint32_t epfd_plus1, epfd_gen, fd_gen, events;
        uint64_t data;
};

/* Set while this thread is inside reg_write: a signal handler that
 * interrupts it and reaches a record must not wait for a write that cannot
 * finish until the handler returns. */
static __thread int reg_writing __attribute__((tls_model("initial-exec")));

/* A consistent view of r; false only inside a signal handler that
 * interrupted this thread's own write of it (the caller then does without:
 * that registration has not reached the kernel yet). */
static bool reg_read(struct epreg *r, struct epreg_view *v)
{
        uint32_t s1, s2;
        do {
                while ((s1 = atomic_load_explicit(&r->seq, memory_order_acquire)) & 1)
                        if (reg_writing)
                                return false;
                v->epfd_plus1 = atomic_load_explicit(&r->epfd_plus1, memory_order_relaxed);
                v->epfd_gen = atomic_load_explicit(&r->epfd_gen, memory_order_relaxed);
                v->fd_gen = atomic_load_explicit(&r->fd_gen, memory_order_relaxed);
                v->events = atomic_load_explicit(&r->events, memory_order_relaxed);
                v->data = atomic_load_explicit(&r->data, memory_order_relaxed);
                atomic_thread_fence(memory_order_acquire);
                s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
        } while (s1 != s2);
        return true;
}

/* False only in a signal handler that interrupted a write on this thread. */
static bool reg_write(struct epreg *r, uint32_t epfd_plus1, uint32_t epfd_gen, uint32_t fd_gen,
                      uint32_t events, uint64_t data)
{
        uint32_t s;

        /* raised before the record is claimed: a handler arriving between
         * the claim and the stores must already know not to wait */
        reg_writing++;
        s = atomic_load_explicit(&r->seq, memory_order_relaxed);
        for (;;) {
                if (!(s & 1) && atomic_compare_exchange_weak_explicit(
                                    &r->seq, &s, s + 1, memory_order_acquire, memory_order_relaxed))
                        break;
                if ((s & 1) && reg_writing > 1) {
                        reg_writing--;
                        return false;
                }
                s = atomic_load_explicit(&r->seq, memory_order_relaxed);
        }
        atomic_store_explicit(&r->epfd_plus1, epfd_plus1, memory_order_relaxed);
        atomic_store_explicit(&r->epfd_gen, epfd_gen, memory_order_relaxed);
        atomic_store_explicit(&r->fd_gen, fd_gen, memory_order_relaxed);
        atomic_store_explicit(&r->events, events, memory_order_relaxed);
        atomic_store_explicit(&r->data, data, memory_order_relaxed);
        if (atomic_exchange_explicit(&r->owed, 0, memory_order_relaxed))
                atomic_fetch_sub_explicit(&owed_total, 1, memory_order_relaxed);
        atomic_store_explicit(&r->seq, s + 2, memory_order_release);
        reg_writing--;
        return true;
}

/* Is the registration still the one the program made: same epoll instance
 * and same fd, neither closed since? */
static bool reg_live(const struct epreg_view *v, int fd)
{
        int epfd = (int)v->epfd_plus1 - 1;
        return v->epfd_plus1 && fd_state_gen(epfd) == v->epfd_gen && fd_state_gen(fd) == v->fd_gen;
}

static struct epreg *reg_find(int epfd, int fd, struct epreg_view *v)
{
        if (fd < 0 || fd >= WB_FD_MAX)
                return NULL;
        for (int i = 0; i < REGS_PER_FD; i++)
                if (reg_read(&regs[fd][i], v) && v->epfd_plus1 == (uint32_t)epfd + 1)
                        return &regs[fd][i];
        return NULL;
}

/* ---- hang-up held back after a short read ---- */

#define HANGUP_BITS (POLLHUP | POLLRDHUP) /* == EPOLLHUP | EPOLLRDHUP */

static bool unread_left(int fd)
{
        int n = -1, saved = errno;
        long r = wb_sys_ioctl(fd, FIONREAD, &n);
        errno = saved;
        return r == 0 && n > 0;
}

/* fd's mark, if this number has one (0 if not) */
static uint32_t short_mark(int fd)
{
        if (atomic_load_explicit(&short_left_count, memory_order_relaxed) <= 0 || fd < 0 ||
            fd >= WB_FD_MAX)
                return 0;
        return atomic_load_explicit(&short_left[fd], memory_order_relaxed);
}

/* Remove fd's mark (if still mark); was it this file's? */
static bool short_unmark(int fd, uint32_t mark)
{
        if (atomic_compare_exchange_strong_explicit(&short_left[fd], &mark, 0, memory_order_relaxed,
                                                    memory_order_relaxed))
                atomic_fetch_sub_explicit(&short_left_count, 1, memory_order_relaxed);
        return (mark & ~HANGUP_KEPT) == fd_state_gen(fd) + 1;
}

/* Should fd's hang-up be kept from the program now? Yes while bytes an
 * injected short read left behind are unread; the mark goes once they are. */
static bool hangup_held(int fd)
{
        uint32_t mark = short_mark(fd);

        if (!mark)
                return false;
        if ((mark & ~HANGUP_KEPT) == fd_state_gen(fd) + 1 && unread_left(fd))
                return true;
        short_unmark(fd, mark);
        return false;
}

/* The events without a held-back hang-up; never empty (what else would the
 * wait have returned for?). */
static uint32_t without_held_hangup(int fd, uint32_t events)
{
        if ((events & HANGUP_BITS) && (events & ~(uint32_t)HANGUP_BITS) && hangup_held(fd)) {
                events &= ~(uint32_t)HANGUP_BITS;
                atomic_fetch_or_explicit(&short_left[fd], HANGUP_KEPT, memory_order_relaxed);
        }
        return events;
}

void readiness_short(int fd, bool output, bool owed)
{
        uint32_t old, mark;

        if (owed)
                readiness_injected(fd, output);
        if (output || fd < 0 || fd >= WB_FD_MAX)
                return;
        mark = fd_state_gen(fd) + 1;
        old = atomic_load_explicit(&short_left[fd], memory_order_relaxed);
        /* a hang-up kept from this file stays owed */
        while (!atomic_compare_exchange_weak_explicit(
            &short_left[fd], &old, mark | ((old & ~HANGUP_KEPT) == mark ? old & HANGUP_KEPT : 0),
            memory_order_relaxed, memory_order_relaxed))
                ;
        if (!old)
                atomic_fetch_add_explicit(&short_left_count, 1, memory_order_relaxed);
}

void readiness_after_read_slow(int fd)
{
        uint32_t mark = short_mark(fd);

        /* the bytes are gone: an edge-triggered waiter never saw the
         * hang-up's edge, so it is owed (level-triggered waits see it anyway) */
        if (!(mark & HANGUP_KEPT) || unread_left(fd))
                return;
        if (short_unmark(fd, mark))
                readiness_injected(fd, false);
}

/* ---- poll and select ---- */

void readiness_after_poll(struct pollfd *fds, nfds_t n, int ret)
{
        if (ret < 0)
                return;
        for (nfds_t i = 0; i < n; i++)
                if (fds[i].fd >= 0) {
                        if (fds[i].revents & HANGUP_BITS)
                                fds[i].revents =
                                    (short)without_held_hangup(fds[i].fd, (uint16_t)fds[i].revents);
                        fd_state_note_wait(fds[i].fd, fds[i].revents != 0);
                }
}

void readiness_before_select(struct wb_select_sets *s, int nfds, const fd_set *r, const fd_set *w,
                             const fd_set *e)
{
        const fd_set *sets[3] = {r, w, e};
        s->nfds = nfds < FD_SETSIZE ? nfds : FD_SETSIZE;
        for (int i = 0; i < 3; i++) {
                s->has[i] = sets[i] != NULL;
                if (sets[i])
                        s->in[i] = *sets[i];
        }
}

void readiness_after_select(const struct wb_select_sets *s, const fd_set *r, const fd_set *w,
                            const fd_set *e, int ret)
{
        const fd_set *out[3] = {r, w, e};
        if (ret < 0)
                return;
        for (int fd = 0; fd < s->nfds; fd++) {
                bool waited = false, ready = false;
                for (int i = 0; i < 3; i++)
                        if (s->has[i] && FD_ISSET(fd, &s->in[i])) {
                                waited = true;
                                ready |= ret > 0 && FD_ISSET(fd, out[i]);
                        }
                if (waited)
                        fd_state_note_wait(fd, ready);
        }
}

/* ---- epoll ---- */

void readiness_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev,
                         struct epoll_event *out)
{
        struct epreg_view v;
        struct epreg *slot;

        if (ev)
                *out = *ev;
        if ((op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD) || !ev || fd < 0 || fd >= WB_FD_MAX ||
            epfd < 0 || epfd >= WB_FD_MAX)
                return;
        slot = reg_find(epfd, fd, &v);
        for (int i = 0; !slot && i < REGS_PER_FD; i++)
                if (reg_read(&regs[fd][i], &v) && (!v.epfd_plus1 || !reg_live(&v, fd)))
                        slot = &regs[fd][i];
        /* Written before the kernel sees the key, so a waiter in another
         * thread can always translate it back. No slot (a third instance),
         * or a handler that interrupted our own write: the program's data
         * goes to the kernel as it is, and comes back untranslated. */
        if (!slot || !reg_write(slot, (uint32_t)epfd + 1, fd_state_gen(epfd), fd_state_gen(fd),
                                ev->events, ev->data.u64))
                return;
        out->data.u64 = KEY_OF(fd);
        int m = atomic_load_explicit(&max_registered_fd, memory_order_relaxed);
        while (fd > m &&
               !atomic_compare_exchange_weak_explicit(&max_registered_fd, &m, fd,
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

void readiness_epoll_ctl_done(int epfd, int op, int fd, int ret)
{
        struct epreg_view v;
        struct epreg *slot;
        int saved = errno;

        /* a DEL that worked, or an ADD the kernel refused for another reason
         * than an existing registration (whose key is ours already) */
        if ((op == EPOLL_CTL_DEL && ret == 0) ||
            (op == EPOLL_CTL_ADD && ret != 0 && saved != EEXIST)) {
                slot = reg_find(epfd, fd, &v);
                if (slot)
                        reg_write(slot, 0, 0, 0, 0, 0);
        }
        errno = saved;
}

/* still ready for which of the registration's events? (0 if none) */
static uint32_t ready_now(int fd, uint32_t events)
{
        struct pollfd p = {fd, (short)(events & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP)), 0};
        struct timespec zero = {0, 0};
        int saved = errno;
        long r = syscall(SYS_ppoll, &p, 1, &zero, NULL, 0);
        errno = saved;
        if (r <= 0 || (p.revents & POLLNVAL))
                return 0;
        return (uint32_t)p.revents & (events | EPOLLERR | EPOLLHUP);
}

static int scan_limit(void)
{
        int m = atomic_load_explicit(&max_registered_fd, memory_order_relaxed);
        return m < WB_FD_MAX ? m : WB_FD_MAX - 1;
}

bool readiness_epoll_owed(int epfd)
{
        if (atomic_load_explicit(&owed_total, memory_order_relaxed) <= 0)
                return false;
        for (int fd = 0, last = scan_limit(); fd <= last; fd++)
                for (int i = 0; i < REGS_PER_FD; i++)
                        if (atomic_load_explicit(&regs[fd][i].owed, memory_order_relaxed) &&
                            atomic_load_explicit(&regs[fd][i].epfd_plus1, memory_order_relaxed) ==
                                (uint32_t)epfd + 1)
                                return true;
        return false;
}

static bool reported(const struct epoll_event *events, int n, uint64_t key)
{
        for (int i = 0; i < n; i++)
                if (events[i].data.u64 == key)
                        return true;
        return false;
}

int readiness_epoll_done(int epfd, struct epoll_event *events, int maxevents, int ret)
{
        int saved = errno, n = ret;

        if (ret < 0)
                return ret;
        /* owed events first, while the real ones still carry their keys */
        if (atomic_load_explicit(&owed_total, memory_order_relaxed) > 0) {
                for (int fd = 0, last = scan_limit(); fd <= last && n < maxevents; fd++) {
                        struct epreg_view v;
                        struct epreg *r = reg_find(epfd, fd, &v);
                        uint32_t owed, ready;
                        if (!r || !atomic_load_explicit(&r->owed, memory_order_relaxed))
                                continue;
                        owed = atomic_exchange_explicit(&r->owed, 0, memory_order_relaxed);
                        if (!owed)
                                continue;
                        atomic_fetch_sub_explicit(&owed_total, 1, memory_order_relaxed);
                        if (!reg_live(&v, fd) || reported(events, ret, KEY_OF(fd)))
                                continue;
                        ready = ready_now(fd, v.events);
                        if (!ready)
                                continue; /* drained for real meanwhile: nothing owed */
                        events[n].events = ready;
                        events[n].data.u64 = KEY_OF(fd);
                        n++;
                }
        }
        for (int i = 0; i < n; i++) {
                uint64_t key = events[i].data.u64;
                struct epreg_view v;
                int fd = (int)(uint32_t)key;
                struct epreg *r;
                if (key >> 32 != KEY_TAG || !(r = reg_find(epfd, fd, &v)))
                        continue; /* not ours: the program's data as it gave it */
                events[i].data.u64 = v.data;
                events[i].events = without_held_hangup(fd, events[i].events);
                if (atomic_exchange_explicit(&r->owed, 0, memory_order_relaxed))
                        atomic_fetch_sub_explicit(&owed_total, 1, memory_order_relaxed);
                fd_state_note_wait(fd, true);
        }
        errno = saved;
        return n;
}

void readiness_injected_slow(int fd, bool output)
{
        uint32_t want = output ? EPOLLOUT : EPOLLIN;

        if (fd < 0 || fd >= WB_FD_MAX || fd > scan_limit())
                return;
        for (int i = 0; i < REGS_PER_FD; i++) {
                struct epreg_view v;
                if (!reg_read(&regs[fd][i], &v) || !reg_live(&v, fd) || !(v.events & EPOLLET) ||
                    (v.events & EPOLLONESHOT) || !(v.events & want))
                        continue;
                if (!atomic_fetch_or_explicit(&regs[fd][i].owed, want, memory_order_relaxed))
                        atomic_fetch_add_explicit(&owed_total, 1, memory_order_relaxed);
        }
}
