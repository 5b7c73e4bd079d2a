#ifndef TLORA_SYSTEM_H
#define TLORA_SYSTEM_H
#include <stdint.h>
#include <sys/types.h>

// Linux calls the Swift Glibc module does not expose (they need _GNU_SOURCE). Each returns -1 with
// errno set (ENOSYS where the platform has no such call).

/// Atomically swaps two paths (renameat2 with RENAME_EXCHANGE).
int tlora_exchange_paths(const char *a, const char *b);
/// Starts asynchronous writeback of a file range (sync_file_range with SYNC_FILE_RANGE_WRITE).
int tlora_start_writeback(int fd, int64_t offset, int64_t length);
/// Copies `length` bytes from `in_fd` at `in_offset` to `out_fd` at its current position inside the
/// kernel (copy_file_range); returns bytes copied (possibly fewer) or -1.
int64_t tlora_copy_range(int in_fd, int64_t in_offset, int out_fd, int64_t length);
/// Opens an existing file for writing past the page cache (O_DIRECT); -1 with errno where the
/// filesystem (tmpfs) or the platform has no such writes.
int tlora_open_unbuffered(const char *path);
#endif

/// Nesting of parallel work on this thread: kernels run single-threaded inside a parallel region
/// (two cores are already busy; more threads would only contend).
int tlora_worker_depth(void);
void tlora_worker_enter(void);
void tlora_worker_leave(void);

/// Returns the allocator's free memory to the system (glibc keeps freed blocks of up to 32 MiB in
/// its arenas; after a phase with large temporaries that is most of the resident memory).
void tlora_release_free_memory(void);
