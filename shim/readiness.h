/* readiness.h - poll/select/epoll bookkeeping (SPEC §4).
 *
 * Two jobs. First, tell fdstate when the program waited for an fd and was
 * told it is ready: that ends an until=poll run and a spin. Second, keep
 * edge-triggered epoll honest: an injected EAGAIN on an fd registered with
 * EPOLLET while the kernel still holds data would leave the program waiting
 * for an edge that never comes, so the fd is owed an event, delivered by the
 * next wait on that instance if the fd is still really ready.
 *
 * To map epoll events back to fds, epoll_ctl registrations are stored per fd
 * (the program's epoll_data and events) and the kernel is given a key naming
 * the fd instead; epoll_wait translates the keys back before returning.
 */
#ifndef WB_READINESS_H
#define WB_READINESS_H

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>

/* After poll/ppoll returned ret; a hang-up held back (readiness_short) is
 * taken out of the fds' revents. */
void readiness_after_poll(struct pollfd *fds, nfds_t n, int ret);

/* select/pselect: the sets as the program passed them are copied before the
 * call (the kernel overwrites them); after it, which of those were ready. */
struct wb_select_sets {
        int nfds;
        fd_set in[3];
        bool has[3];
};
void readiness_before_select(struct wb_select_sets *s, int nfds, const fd_set *r, const fd_set *w,
                             const fd_set *e);
void readiness_after_select(const struct wb_select_sets *s, const fd_set *r, const fd_set *w,
                            const fd_set *e, int ret);

/* epoll_ctl: ev is the program's event; *out receives what the kernel should
 * get (its data possibly replaced by a key). Call readiness_epoll_ctl_done
 * with the real call's result. */
void readiness_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev,
                         struct epoll_event *out);
void readiness_epoll_ctl_done(int epfd, int op, int fd, int ret);

/* epoll_wait & co. Before the real call: how many events are owed on epfd
 * (if any, the real call must not block: pass timeout 0). After it: turn keys
 * back into the program's data, append owed events that are still true,
 * note the waits; returns the new count. */
bool readiness_epoll_owed(int epfd);
int readiness_epoll_done(int epfd, struct epoll_event *events, int maxevents, int ret);

/* An EAGAIN was injected on fd for call (input, output or accept). */
void readiness_injected_slow(int fd, bool output);
/* The highest fd ever registered with an epoll instance (-1: none). Inline,
 * exposed: a program that never used epoll, or calls on an fd above every
 * registered one, owe no edge, and that is most injected calls. */
extern _Atomic int wb_epoll_max_fd;
static inline __attribute__((always_inline)) void readiness_injected(int fd, bool output)
{
        if (fd >= 0 && fd <= atomic_load_explicit(&wb_epoll_max_fd, memory_order_relaxed))
                readiness_injected_slow(fd, output);
}

/* A short transfer was injected on fd. owed: an edge-triggered waiter is
 * owed the event, as after an EAGAIN. A short read also holds back the fd's
 * hang-up (POLLHUP/POLLRDHUP, EPOLLHUP/EPOLLRDHUP) from poll and epoll
 * while bytes it left behind remain: on Linux a short read means the fd was
 * drained, and libuv takes "short read, then hang-up" for the end. */
void readiness_short(int fd, bool output, bool owed);

/* After an input call on fd: once the bytes a short read left are gone, a
 * hang-up that was held back is owed to an edge-triggered waiter, whose
 * edge came while it was held. Inline, the common case: no short read has
 * left bytes anywhere (the count is on the .data page every wrapper reads,
 * boot.h; an armed read touches no page of this module). */
extern _Atomic int wb_short_left_count __attribute__((visibility("hidden")));
void readiness_after_read_slow(int fd);
static inline void readiness_after_read(int fd)
{
        if (__builtin_expect(atomic_load_explicit(&wb_short_left_count, memory_order_relaxed) > 0,
                             0))
                readiness_after_read_slow(fd);
}

#endif
