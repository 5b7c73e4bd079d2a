// What the threads of one GEMM call share besides the job: a reusable barrier and the counters
// and ranges they take work from. The threads themselves are the persistent team's (tlora_team.h).
// Internal to gemm.c.
#ifndef TLORA_GEMM_BARRIER_H
#define TLORA_GEMM_BARRIER_H
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#define TLORA_PAUSE() _mm_pause()
#define TLORA_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#else
#define TLORA_PAUSE() ((void)0)
#define TLORA_PREFETCH_L2(p) ((void)(p))
#endif

// Barrier waits are usually short (threads arrive within a fraction of a block's work of each
// other), so a waiter spins a little before sleeping: sleeping at once would add a wake-up latency
// of tens of microseconds to every slice of K. Only a little (~10 µs): when the cores are busy
// with other processes, the thread being waited for may need the very core the waiter spins on.
#define TLORA_SPINS 500

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;                // threads that take part
    atomic_int waiting;
    atomic_uint generation;
} gemm_barrier;

static void barrier_init(gemm_barrier *t, int count) {
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->count = count;
    atomic_init(&t->waiting, 0);
    atomic_init(&t->generation, 0);
}

static void barrier_destroy(gemm_barrier *t) {
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
}

static void barrier_wait(gemm_barrier *t) {
    if (t->count <= 1) return;
    unsigned gen = atomic_load_explicit(&t->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&t->waiting, 1, memory_order_acq_rel) == t->count - 1) {
        atomic_store_explicit(&t->waiting, 0, memory_order_relaxed);
        // Under the lock, so a waiter that has checked the generation and is about to sleep
        // cannot miss the broadcast.
        pthread_mutex_lock(&t->lock);
        atomic_store_explicit(&t->generation, gen + 1, memory_order_release);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
        return;
    }
    for (int i = 0; i < TLORA_SPINS; i++) {
        if (atomic_load_explicit(&t->generation, memory_order_acquire) != gen) return;
        TLORA_PAUSE();
    }
    for (int i = 0; i < 4; i++) {
        if (atomic_load_explicit(&t->generation, memory_order_acquire) != gen) return;
        sched_yield();
    }
    pthread_mutex_lock(&t->lock);
    while (atomic_load_explicit(&t->generation, memory_order_acquire) == gen) pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

// Takes the next unit below `end` from a shared counter; returns 0 when none is left. A
// compare-and-swap rather than fetch-add, so a thread that finds the step's units gone does not
// consume one of the next step's.
static int counter_take(atomic_size_t *next, size_t end, size_t *unit) {
    size_t v = atomic_load_explicit(next, memory_order_relaxed);
    while (v < end) {
        if (atomic_compare_exchange_weak_explicit(next, &v, v + 1, memory_order_relaxed, memory_order_relaxed)) {
            *unit = v;
            return 1;
        }
    }
    return 0;
}

// One thread's share of a step's units: a range [lo, hi) that its owner takes from the front and
// the others, once their own is empty, steal from the back. One 64-bit word, changed only by
// compare-and-swap: the step's number (mod 2^24) in the top bits, lo and hi below. A word still
// carrying an earlier step is (re)initialized to this step's share by whoever meets it first, so
// no one has to reset the ranges between steps.
#define TLORA_RANGE_BITS 20
#define TLORA_RANGE_MAX ((size_t)1 << TLORA_RANGE_BITS)
typedef atomic_uint_least64_t tlora_range;

static uint64_t range_word(size_t step, size_t lo, size_t hi) {
    return ((uint64_t)step & 0xFFFFFF) << (2 * TLORA_RANGE_BITS) | (uint64_t)lo << TLORA_RANGE_BITS | (uint64_t)hi;
}

static int range_take(tlora_range *r, size_t step, size_t lo0, size_t hi0, int back, size_t *unit) {
    const uint64_t mask = TLORA_RANGE_MAX - 1;
    uint64_t v = atomic_load_explicit(r, memory_order_relaxed);
    for (;;) {
        if ((v >> (2 * TLORA_RANGE_BITS)) != ((uint64_t)step & 0xFFFFFF)) {
            uint64_t fresh = range_word(step, lo0, hi0);
            if (atomic_compare_exchange_weak_explicit(r, &v, fresh, memory_order_relaxed, memory_order_relaxed)) v = fresh;
            continue;
        }
        size_t lo = (size_t)((v >> TLORA_RANGE_BITS) & mask), hi = (size_t)(v & mask);
        if (lo >= hi) return 0;
        uint64_t next = back ? range_word(step, lo, hi - 1) : range_word(step, lo + 1, hi);
        if (atomic_compare_exchange_weak_explicit(r, &v, next, memory_order_relaxed, memory_order_relaxed)) {
            *unit = back ? hi - 1 : lo;
            return 1;
        }
    }
}
#endif
