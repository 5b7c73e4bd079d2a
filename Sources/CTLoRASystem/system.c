#define _GNU_SOURCE
#include "tlora_system.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int tlora_exchange_paths(const char *a, const char *b) {
#if defined(__linux__) && defined(RENAME_EXCHANGE)
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int tlora_start_writeback(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)length;
    errno = ENOSYS;
    return -1;
#endif
}

int64_t tlora_copy_range(int in_fd, int64_t in_offset, int out_fd, int64_t length) {
#if defined(__linux__)
    loff_t off = in_offset;
    return copy_file_range(in_fd, &off, out_fd, NULL, (size_t)length, 0);
#else
    (void)in_fd; (void)in_offset; (void)out_fd; (void)length;
    errno = ENOSYS;
    return -1;
#endif
}

int tlora_open_unbuffered(const char *path) {
#if defined(__linux__) && defined(O_DIRECT)
    return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
#else
    (void)path;
    errno = ENOSYS;
    return -1;
#endif
}

static _Thread_local int worker_depth = 0;
int tlora_worker_depth(void) { return worker_depth; }
void tlora_worker_enter(void) { worker_depth++; }
void tlora_worker_leave(void) { worker_depth--; }

#if defined(__GLIBC__)
#include <malloc.h>
#endif
void tlora_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
