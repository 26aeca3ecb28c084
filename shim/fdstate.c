/* fdstate.c - per-fd facts in one atomic word per fd (see fdstate.h). */
#include "fdstate.h"

#include "boot.h"

#include "real.h"
#include "rules.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

/* word layout: WB_F_* in fdstate.h */
#define F_PORT_SHIFT WB_F_PORT_SHIFT
#define F_TYPE_SHIFT WB_F_TYPE_SHIFT
#define F_FAMILY_SHIFT WB_F_FAMILY_SHIFT
#define F_SOTYPE_SHIFT WB_F_SOTYPE_SHIFT
#define F_VALID WB_F_VALID
#define F_GEN_SHIFT WB_F_GEN_SHIFT
#define F_FACTS_MASK ((1ull << 28) - 1)

struct wb_fd_cell wb_fd[WB_FD_MAX];                                            /* fdstate.h */
struct wb_fd_cell wb_fd_near[WB_FD_NEAR] __attribute__((aligned(64))) WB_BOOT; /* fdstate.h */
static _Atomic uint32_t fd_ready_epoch[WB_FD_MAX];
_Atomic uint32_t wb_fd_spin[WB_FD_MAX]; /* fdstate.h: beyond the status's near ones */
/* O_NONBLOCK as last read: generation << 40 | flags epoch << 8 | NB_* bits.
 * The flag belongs to the open file description, which dup'd fds share, so
 * any F_SETFL or FIONBIO anywhere moves the epoch on and every cached bit
 * is read again once; so does a child started (the fd may stop being
 * private, NB_PRIVATE). */
_Atomic uint32_t wb_flags_epoch WB_BOOT; /* on the .data page the wrappers read */
#define flags_epoch wb_flags_epoch
/* Where an fd came from: generation << 40 | fork epoch << 8 | ORIGIN_HERE.
 * An fd this process opened itself, with no child started since, shares its
 * open file description with no other process, so nobody else can flip its
 * O_NONBLOCK behind our back. */
static _Atomic uint64_t fd_origin[WB_FD_MAX];
static _Atomic uint32_t fork_epoch;
/* generation + 1 of the fd at its first connect, 0 if none */
static _Atomic uint32_t fd_connect_gen[WB_FD_MAX];
#define ORIGIN_HERE 1u
#define NB_SET WB_NB_SET
#define NB_KNOWN WB_NB_KNOWN
#define NB_PRIVATE WB_NB_PRIVATE

static bool tracked(int fd)
{
        return fd >= 0 && fd < WB_FD_MAX;
}

static unsigned family_bit(int family)
{
        switch (family) {
        case AF_UNIX:
                return WB_FAMILY_UNIX;
        case AF_INET:
                return WB_FAMILY_INET;
        case AF_INET6:
                return WB_FAMILY_INET6;
        default:
                return 0;
        }
}

unsigned fd_state_addr_port(const struct sockaddr *sa, socklen_t len)
{
        if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
                return ntohs(((const struct sockaddr_in *)sa)->sin_port);
        if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
                return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        return 0;
}

/* Ask the kernel what fd is. Returns the facts bits, or 0 when fd is not
 * open (nothing to cache). errno is the caller's business to keep. */
static uint64_t probe(int fd)
{
        struct stat st;
        unsigned type, family = 0, port = 0;
        int sotype = 0;

        if (fstat(fd, &st) != 0)
                return 0;
        if (S_ISSOCK(st.st_mode)) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof ss;
                socklen_t optlen = sizeof sotype;

                type = WB_TYPE_SOCKET;
                if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
                        family = family_bit(ss.ss_family);
                if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &sotype, &optlen) != 0)
                        sotype = 0;
                len = sizeof ss;
                if ((family & (WB_FAMILY_INET | WB_FAMILY_INET6)) &&
                    getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
                        port = fd_state_addr_port((struct sockaddr *)&ss, len);
        } else if (S_ISFIFO(st.st_mode)) {
                type = WB_TYPE_PIPE;
        } else if (S_ISREG(st.st_mode)) {
                type = WB_TYPE_FILE;
        } else if (S_ISCHR(st.st_mode)) {
                struct termios t;
                type = wb_sys_ioctl(fd, TCGETS, &t) == 0 ? WB_TYPE_TTY : WB_TYPE_OTHER;
        } else {
                type = WB_TYPE_OTHER;
        }
        return F_VALID | (uint64_t)port << F_PORT_SHIFT | (uint64_t)type << F_TYPE_SHIFT |
               (uint64_t)family << F_FAMILY_SHIFT | (uint64_t)(sotype & 15) << F_SOTYPE_SHIFT;
}

static void unpack(uint64_t w, struct wb_fdfacts *out)
{
        out->port = (w >> F_PORT_SHIFT) & 0xffff;
        out->type = (w >> F_TYPE_SHIFT) & 0x1f;
        out->family = (w >> F_FAMILY_SHIFT) & 0x7;
        out->sotype = (w >> F_SOTYPE_SHIFT) & 0xf;
        out->gen = (uint32_t)(w >> F_GEN_SHIFT) & WB_GEN_MASK;
}

void fd_state_get_slow(int fd, struct wb_fdfacts *out)
{
        int saved;
        uint64_t w, facts;

        if (!tracked(fd)) {
                saved = errno;
                unpack(probe(fd), out);
                out->tracked = false;
                errno = saved;
                return;
        }
        out->tracked = true;
        w = atomic_load_explicit(&fd_state_cell((unsigned)fd)->facts, memory_order_acquire);
        if (w & F_VALID) {
                unpack(w, out);
                return;
        }
        saved = errno;
        facts = probe(fd);
        errno = saved;
        /* Publish unless the number was closed meanwhile (the generation moved
         * on); either way answer with what was probed for this call. */
        if (facts) {
                uint64_t nw = (w & ~(F_FACTS_MASK | F_VALID)) | facts;
                atomic_compare_exchange_strong_explicit(&fd_state_cell((unsigned)fd)->facts, &w, nw,
                                                        memory_order_acq_rel, memory_order_acquire);
                unpack(nw, out);
                return;
        }
        unpack(w, out);
        out->type = WB_TYPE_OTHER;
}

uint32_t fd_state_gen(int fd)
{
        if (!tracked(fd))
                return 0;
        return (uint32_t)(atomic_load_explicit(&fd_state_cell((unsigned)fd)->facts,
                                               memory_order_acquire) >>
                          F_GEN_SHIFT) &
               WB_GEN_MASK;
}

bool fd_state_nonblocking_slow(int fd, uint32_t gen)
{
        uint32_t epoch = atomic_load_explicit(&flags_epoch, memory_order_acquire);
        int saved;
        long fl;

        /* the cached flag is used (fdstate.h) only where no other process
         * can have changed it: NB_PRIVATE */
        saved = errno;
        fl = wb_sys_fcntl(fd, F_GETFL, 0);
        errno = saved;
        if (fl < 0)
                return false;
        /* tagged with the epoch read before asking: a change meanwhile makes
         * this entry stale at once */
        if (tracked(fd))
                atomic_store_explicit(&fd_state_cell((unsigned)fd)->nonblock,
                                      (uint64_t)gen << F_GEN_SHIFT | (uint64_t)epoch << 8 |
                                          NB_KNOWN | ((fl & O_NONBLOCK) ? NB_SET : 0) |
                                          (fd_state_private(fd, gen) ? NB_PRIVATE : 0),
                                      memory_order_relaxed);
        return fl & O_NONBLOCK;
}

void fd_state_flags_changed(void)
{
        atomic_fetch_add_explicit(&flags_epoch, 1, memory_order_release);
}

static uint32_t forget(int fd)
{
        uint64_t w, nw;

        w = atomic_load_explicit(&fd_state_cell((unsigned)fd)->facts, memory_order_relaxed);
        do {
                uint64_t gen = ((w >> F_GEN_SHIFT) + 1) & WB_GEN_MASK;
                nw = gen << F_GEN_SHIFT;
        } while (!atomic_compare_exchange_weak_explicit(&fd_state_cell((unsigned)fd)->facts, &w, nw,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed));
        atomic_store_explicit(fd_state_spin_word(wb_status, fd), 0, memory_order_relaxed);
        return (uint32_t)(nw >> F_GEN_SHIFT);
}

void fd_state_forget(int fd)
{
        if (tracked(fd))
                forget(fd);
}

void fd_state_created(int fd)
{
        uint32_t gen;

        if (!tracked(fd))
                return;
        gen = forget(fd);
        atomic_store_explicit(&fd_origin[fd],
                              (uint64_t)gen << F_GEN_SHIFT |
                                  (uint64_t)atomic_load_explicit(&fork_epoch, memory_order_acquire)
                                      << 8 |
                                  ORIGIN_HERE,
                              memory_order_release);
}

bool fd_state_private(int fd, uint32_t gen)
{
        uint64_t w;

        if (!tracked(fd))
                return false;
        w = atomic_load_explicit(&fd_origin[fd], memory_order_acquire);
        return (w & ORIGIN_HERE) && (uint32_t)(w >> F_GEN_SHIFT) == gen &&
               (uint32_t)(w >> 8) == atomic_load_explicit(&fork_epoch, memory_order_acquire);
}

void fd_state_child_started(void)
{
        atomic_fetch_add_explicit(&fork_epoch, 1, memory_order_acq_rel);
        fd_state_flags_changed(); /* cached flags were private: ask again */
}

void fd_state_forget_range(unsigned lo, unsigned hi)
{
        for (unsigned fd = lo; fd <= hi && fd < WB_FD_MAX; fd++)
                forget((int)fd);
}

void fd_state_set_port(int fd, unsigned port)
{
        uint64_t w, nw;

        if (!tracked(fd))
                return;
        w = atomic_load_explicit(&fd_state_cell((unsigned)fd)->facts, memory_order_relaxed);
        do {
                if (!(w & F_VALID))
                        return; /* probed on next use, with its peer */
                nw = (w & ~(0xffffull << F_PORT_SHIFT)) | (uint64_t)(port & 0xffff) << F_PORT_SHIFT;
        } while (!atomic_compare_exchange_weak_explicit(&fd_state_cell((unsigned)fd)->facts, &w, nw,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed));
}

bool fd_state_first_connect(int fd)
{
        if (!tracked(fd))
                return true;
        uint32_t mark = fd_state_gen(fd) + 1;
        return atomic_exchange_explicit(&fd_connect_gen[fd], mark, memory_order_relaxed) != mark;
}

long fd_state_in_flight(int fd, unsigned type)
{
        int saved = errno, n = -1;
        long r = -1;

        if (type == WB_TYPE_PIPE)
                r = wb_sys_ioctl(fd, FIONREAD, &n);
        else if (type == WB_TYPE_SOCKET)
                r = wb_sys_ioctl(fd, SIOCOUTQ, &n);
        errno = saved;
        return r == 0 ? n : -1;
}

uint32_t fd_state_ready_epoch(int fd)
{
        return tracked(fd) ? atomic_load_explicit(&fd_ready_epoch[fd], memory_order_acquire) : 0;
}

void fd_state_note_wait(int fd, bool ready)
{
        if (!tracked(fd))
                return;
        atomic_store_explicit(fd_state_spin_word(wb_status, (unsigned)fd), 0, memory_order_relaxed);
        if (ready)
                atomic_fetch_add_explicit(&fd_ready_epoch[fd], 1, memory_order_release);
}

void fd_state_reset_spin(void)
{
        for (unsigned fd = 0; fd < WB_FD_MAX; fd++) {
                _Atomic uint32_t *word = fd_state_spin_word(wb_status, fd);
                if (atomic_load_explicit(word, memory_order_relaxed))
                        atomic_store_explicit(word, 0, memory_order_relaxed);
        }
}
