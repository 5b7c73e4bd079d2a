// A small pool of GEMM packing buffers, reused across calls and threads.
#include "gemm_internal.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define TLORA_POOL 8
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool_ptr[TLORA_POOL];
static size_t pool_size[TLORA_POOL];

// 64-byte aligned (the micro-kernels use aligned vector loads on packed panels), or NULL.
void *tlora_gemm_buffer_acquire(size_t bytes) {
    pthread_mutex_lock(&pool_lock);
    int best = -1;
    for (int i = 0; i < TLORA_POOL; i++)
        if (pool_ptr[i] && pool_size[i] >= bytes && (best < 0 || pool_size[i] < pool_size[best])) best = i;
    if (best >= 0) {
        void *p = pool_ptr[best];
        pool_ptr[best] = NULL;
        pthread_mutex_unlock(&pool_lock);
        return p;
    }
    pthread_mutex_unlock(&pool_lock);
    if (bytes > SIZE_MAX - 63) return NULL;
    size_t size = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, size);
    if (p) tlora_advise_huge_pages(p, size);
    return p;
}

// Keeps `p` (of at least `bytes` bytes) for a later call, evicting the smallest pooled buffer.
void tlora_gemm_buffer_release(void *p, size_t bytes) {
    if (!p) return;
    pthread_mutex_lock(&pool_lock);
    int slot = -1;
    for (int i = 0; i < TLORA_POOL; i++) {
        if (!pool_ptr[i]) { slot = i; break; }
        if (slot < 0 || pool_size[i] < pool_size[slot]) slot = i;
    }
    void *evicted = pool_ptr[slot];
    size_t evictedSize = pool_size[slot];
    if (evicted && evictedSize >= bytes) {
        pthread_mutex_unlock(&pool_lock);
        free(p);
        return;
    }
    pool_ptr[slot] = p;
    pool_size[slot] = bytes;
    pthread_mutex_unlock(&pool_lock);
    free(evicted);
}

// Under KVM a page fault costs a few µs: a 64 MiB result first touched in 4 KiB pages spends
// ~60 ms faulting, in 2 MiB pages well under 1 ms (numpy advises the same for arrays from 4 MiB).
void tlora_advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!p || bytes < ((size_t)4 << 20)) return;
    uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, end = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}
