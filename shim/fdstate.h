/* fdstate.h - per-fd facts, lock-free.
 *
 * One 64-bit word per fd number holds what the decision engine asks of an
 * fd (type, socket family, peer port) plus a generation that changes every
 * time the number is closed or replaced, so counters keyed by (fd, gen)
 * restart when a number is reused. Facts are probed once per open file
 * (fstat, getsockname, getpeername: all async-signal-safe syscalls) and
 * published with a compare-and-swap; readers never block.
 */
#ifndef WB_FDSTATE_H
#define WB_FDSTATE_H

#include "status.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* fds at or above this are probed on every call and not counted per fd */
#define WB_FD_MAX 65536
#define WB_GEN_MASK 0xffffffu /* generations are 24 bits */

struct wb_fdfacts {
        unsigned type;   /* WB_TYPE_* (one bit) */
        unsigned family; /* WB_FAMILY_* (one bit), 0 if not a socket or another family */
        int sotype;      /* SOCK_STREAM, SOCK_DGRAM, ...; 0 if not a socket */
        unsigned port;   /* peer port, 0 if unknown / unconnected */
        uint32_t gen;    /* generation of this fd number */
        bool tracked;    /* fd < WB_FD_MAX */
};

/* Facts about fd (probed now if not known). Inline, with the words exposed:
 * every armed call asks. */
#define WB_F_PORT_SHIFT 0    /* 16 bits */
#define WB_F_TYPE_SHIFT 16   /* 5 bits */
#define WB_F_FAMILY_SHIFT 21 /* 3 bits */
#define WB_F_SOTYPE_SHIFT 24 /* 4 bits */
#define WB_F_VALID (1ull << 32)
#define WB_F_GEN_SHIFT 40 /* 24 bits */
/* Per fd number, the facts word and the cached O_NONBLOCK word (below) side
 * by side: an armed call reads both, and one page holds 256 fds' cells (each
 * page touched costs a TLB miss per call, see status.h). */
struct wb_fd_cell {
        _Atomic uint64_t facts;
        _Atomic uint64_t nonblock;
};
extern struct wb_fd_cell wb_fd[WB_FD_MAX] __attribute__((visibility("hidden")));
/* The cells of the fds most programs use, below WB_FD_NEAR, are on the
 * .data page every wrapper reads (boot.h), not in the table: an armed call
 * on one touches no page of the table. */
#define WB_FD_NEAR 64
extern struct wb_fd_cell wb_fd_near[WB_FD_NEAR] __attribute__((visibility("hidden")));
static inline struct wb_fd_cell *fd_state_cell(unsigned fd) /* fd < WB_FD_MAX */
{
        return __builtin_expect(fd < WB_FD_NEAR, 1) ? &wb_fd_near[fd] : &wb_fd[fd];
}
void fd_state_get_slow(int fd, struct wb_fdfacts *out);
static inline void fd_state_get(int fd, struct wb_fdfacts *out)
{
        uint64_t w;

        if ((unsigned)fd >= WB_FD_MAX ||
            !((w = atomic_load_explicit(&fd_state_cell((unsigned)fd)->facts,
                                        memory_order_acquire)) &
              WB_F_VALID)) {
                fd_state_get_slow(fd, out);
                return;
        }
        out->port = (w >> WB_F_PORT_SHIFT) & 0xffff;
        out->type = (w >> WB_F_TYPE_SHIFT) & 0x1f;
        out->family = (w >> WB_F_FAMILY_SHIFT) & 0x7;
        out->sotype = (w >> WB_F_SOTYPE_SHIFT) & 0xf;
        out->gen = (uint32_t)(w >> WB_F_GEN_SHIFT) & WB_GEN_MASK;
        out->tracked = true;
}

/* The current generation of an fd number (0 for untracked fds). */
uint32_t fd_state_gen(int fd);

/* Is the fd (of generation gen) in O_NONBLOCK mode? For a private fd (see
 * fd_state_private) the flag is read with F_GETFL once and cached until
 * fd_state_flags_changed; for any other, another process may switch it
 * unseen, so the kernel is asked every time. */
#define WB_NB_SET 1u
#define WB_NB_KNOWN 2u
#define WB_NB_PRIVATE 4u /* read while the fd was private: the cache may be used */
extern _Atomic uint32_t wb_flags_epoch;
bool fd_state_nonblocking_slow(int fd, uint32_t gen);
static inline bool fd_state_nonblocking(int fd, uint32_t gen)
{
        if ((unsigned)fd < WB_FD_MAX) {
                uint64_t w = atomic_load_explicit(&fd_state_cell((unsigned)fd)->nonblock,
                                                  memory_order_relaxed);
                uint64_t want = (uint64_t)gen << 32 |
                                atomic_load_explicit(&wb_flags_epoch, memory_order_acquire);
                if (__builtin_expect((w & (WB_NB_KNOWN | WB_NB_PRIVATE)) ==
                                             (WB_NB_KNOWN | WB_NB_PRIVATE) &&
                                         w >> 8 == want,
                                     1))
                        return w & WB_NB_SET;
        }
        return fd_state_nonblocking_slow(fd, gen);
}

/* Some fd's file status flags changed (F_SETFL, FIONBIO), or may have. */
void fd_state_flags_changed(void);

/* The fd number was closed or replaced: forget its facts, new generation. */
void fd_state_forget(int fd);
void fd_state_forget_range(unsigned lo, unsigned hi);

/* A new file was opened on fd by this process (socket, pipe, open, accept):
 * a new generation, and the fd is private until a child is started. */
void fd_state_created(int fd);

/* A child process was started (fork, posix_spawn): every fd open now may be
 * shared with it. */
void fd_state_child_started(void);

/* Does fd's open file belong to this process alone (opened here, no child
 * started since)? If not, another process may change its O_NONBLOCK. */
bool fd_state_private(int fd, uint32_t gen);

/* The port of an inet/inet6 address of len bytes; 0 for any other. */
unsigned fd_state_addr_port(const struct sockaddr *sa, socklen_t len);

/* The socket now has a peer on this port (after connect). */
void fd_state_set_port(int fd, unsigned port);

/* Is this the first connect on fd's socket (since its number was opened)?
 * Marks it, so a second call says no. */
bool fd_state_first_connect(int fd);

/* Bytes written to fd that its reader has not taken yet: FIONREAD on a
 * pipe, SIOCOUTQ on a unix socket. -1 when it cannot be told. */
long fd_state_in_flight(int fd, unsigned type);

/* Readiness bookkeeping, one epoch each per fd. A wait that covered the
 * fd bumps "waited"; a wait that reported it ready also bumps "ready". */
uint32_t fd_state_ready_epoch(int fd);
void fd_state_note_wait(int fd, bool ready);

/* The run of would-block results on fd since the program last waited for
 * it: one word per fd. Those of fds below WB_SPIN_NEAR are on the status's
 * first page (status.h), beside the counts a passed-through call adds to, so
 * that the call touches one page after its system call; the others here.
 * st: the status (wb_status), which a wrapper reads before the system call.
 * Inline, with the table exposed: every passed-through call comes here. */
extern _Atomic uint32_t wb_fd_spin[WB_FD_MAX] __attribute__((visibility("hidden")));
static inline _Atomic uint32_t *fd_state_spin_word(struct wb_status *st, unsigned fd)
{
        return fd < WB_SPIN_NEAR ? &st->fd_spin_near[fd] : &wb_fd_spin[fd];
}

static inline bool fd_state_spinning(const _Atomic uint32_t *word)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
        /* a relaxed load compared in one instruction (compilers do not fold
         * an atomic load into a compare) */
        bool nz;
        __asm__("cmpl $0, %1" : "=@ccnz"(nz) : "m"(*(const uint32_t *)word));
        return nz;
#else
        return atomic_load_explicit(word, memory_order_relaxed) != 0;
#endif
}

/* A call on fd did not would-block: its run ends. */
static inline void fd_state_spin_end_in(struct wb_status *st, int fd)
{
        if (__builtin_expect((unsigned)fd < WB_FD_MAX, 1)) {
                _Atomic uint32_t *word = fd_state_spin_word(st, (unsigned)fd);
                if (__builtin_expect(fd_state_spinning(word), 0))
                        atomic_store_explicit(word, 0, memory_order_relaxed);
        }
}
static inline void fd_state_spin_end(int fd)
{
        fd_state_spin_end_in(wb_status, fd);
}

/* A would-block result on fd: bumps and returns the run length (0 for an
 * untracked fd). No locked add: threads racing on one fd may lose a step of
 * a diagnostic, never a byte. */
static inline uint32_t fd_state_spin_bump(int fd)
{
        uint32_t run;

        if ((unsigned)fd >= WB_FD_MAX)
                return 0;
        _Atomic uint32_t *word = fd_state_spin_word(wb_status, (unsigned)fd);
        run = atomic_load_explicit(word, memory_order_relaxed) + 1;
        atomic_store_explicit(word, run, memory_order_relaxed);
        return run;
}

/* After fork in the child: counters of this process start again. */
void fd_state_reset_spin(void);

#endif
