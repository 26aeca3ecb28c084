/* preload_other.c - libwbother.so, another preload to stand before or after
 * libwouldblock.so in LD_PRELOAD.
 *
 * It wraps read() the way such libraries do (the next definition found with
 * dlsym(RTLD_NEXT)) and counts the calls that pass through it. At exit it
 * appends "other_reads=N" to the file named by WB_OTHER_OUT, so the caller
 * can tell where it stood: in front of the library it sees every read the
 * program makes; behind it, only those the library did not fail.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef ssize_t read_fn(int, void *, size_t);

static _Atomic(read_fn *) next_read;
static _Atomic unsigned long reads_seen;

__attribute__((constructor)) static void other_init(void)
{
        atomic_store(&next_read, (read_fn *)dlsym(RTLD_NEXT, "read"));
}

__attribute__((destructor)) static void other_fini(void)
{
        const char *path = getenv("WB_OTHER_OUT");
        char line[64];
        int fd, n;

        if (!path)
                return;
        n = snprintf(line, sizeof line, "other_reads=%lu\n", atomic_load(&reads_seen));
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                (void)!write(fd, line, (size_t)n);
                close(fd);
        }
}

__attribute__((visibility("default"))) ssize_t read(int fd, void *buf, size_t len)
{
        read_fn *next = atomic_load(&next_read);
        atomic_fetch_add(&reads_seen, 1);
        /* before the constructor ran (another library's start-up) */
        if (!next)
                return syscall(SYS_read, fd, buf, len);
        return next(fd, buf, len);
}
