// The persistent worker team (tlora_team.h). A job is published under `lock` (function, context,
// thread count, a new generation) and announced with a broadcast; workers that are still spinning
// after their last job see the new generation at once, sleeping ones on the broadcast. The caller
// takes thread 0's share and then waits for `pending` to reach zero.
#include "tlora_team.h"
#include "tlora_system.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define TEAM_PAUSE() _mm_pause()
#else
#define TEAM_PAUSE() ((void)0)
#endif

// A worker spins this long (pause instructions, ~10 µs) after a job before it sleeps: kernels
// often call the team again at once (a GEMM per Jacobi sweep, per panel of a QR), and a condition
// wake-up costs tens of µs. Not longer: on a busy machine the spin takes a core from someone.
#define TEAM_SPINS 500

static struct {
    pthread_mutex_t owner;  // held from acquire to release by the caller that has the team
    pthread_mutex_t lock;   // guards the job's fields and the sleeps
    pthread_cond_t wake;    // a new generation
    pthread_cond_t done;    // pending reached zero
    int workers;            // started so far; worker i has thread index i (1-based)
    int threads;            // of the current job, caller included
    tlora_team_fn fn;
    void *context;
    atomic_uint generation;
    atomic_int pending;     // workers of the current job still running
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

typedef struct { int index; unsigned generation; } worker_start;

static void *team_worker(void *arg) {
    worker_start start = *(worker_start *)arg;
    free(arg);
    unsigned seen = start.generation;
    tlora_worker_enter();  // for good: everything on a team thread runs as a worker
    for (;;) {
        for (int i = 0; i < TEAM_SPINS && atomic_load_explicit(&team.generation, memory_order_acquire) == seen; i++) TEAM_PAUSE();
        pthread_mutex_lock(&team.lock);
        while (atomic_load_explicit(&team.generation, memory_order_acquire) == seen) pthread_cond_wait(&team.wake, &team.lock);
        seen = atomic_load_explicit(&team.generation, memory_order_relaxed);
        int threads = team.threads;
        tlora_team_fn fn = team.fn;
        void *context = team.context;
        pthread_mutex_unlock(&team.lock);
        if (start.index >= threads) continue;  // not needed this time
        fn(context, start.index, threads);
        if (atomic_fetch_sub_explicit(&team.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&team.lock);
            pthread_cond_signal(&team.done);
            pthread_mutex_unlock(&team.lock);
        }
    }
    return NULL;
}

int tlora_team_acquire(int threads) {
    if (threads <= 1 || tlora_worker_depth() > 0) return 1;
    if (threads > TLORA_TEAM_MAX) threads = TLORA_TEAM_MAX;
    if (pthread_mutex_trylock(&team.owner) != 0) return 1;  // someone else's job is running
    while (team.workers < threads - 1) {
        worker_start *start = malloc(sizeof *start);
        if (!start) break;
        // The generation cannot move while we own the team, so the worker waits for the next one.
        *start = (worker_start){team.workers + 1, atomic_load_explicit(&team.generation, memory_order_relaxed)};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        int failed = pthread_create(&thread, &attr, team_worker, start);
        pthread_attr_destroy(&attr);
        if (failed) { free(start); break; }  // fewer threads, same result
        team.workers++;
    }
    int granted = team.workers + 1 < threads ? team.workers + 1 : threads;
    if (granted <= 1) pthread_mutex_unlock(&team.owner);
    return granted;
}

void tlora_team_run(int threads, tlora_team_fn fn, void *context) {
    tlora_worker_enter();
    if (threads > 1) {
        pthread_mutex_lock(&team.lock);
        team.threads = threads;
        team.fn = fn;
        team.context = context;
        atomic_store_explicit(&team.pending, threads - 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&team.generation, 1, memory_order_release);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.lock);
    }
    fn(context, 0, threads > 1 ? threads : 1);
    if (threads > 1) {
        for (int i = 0; i < TEAM_SPINS && atomic_load_explicit(&team.pending, memory_order_acquire) > 0; i++) TEAM_PAUSE();
        if (atomic_load_explicit(&team.pending, memory_order_acquire) > 0) {
            pthread_mutex_lock(&team.lock);
            while (atomic_load_explicit(&team.pending, memory_order_acquire) > 0) pthread_cond_wait(&team.done, &team.lock);
            pthread_mutex_unlock(&team.lock);
        }
    }
    tlora_worker_leave();
}

void tlora_team_release(int threads) {
    if (threads > 1) pthread_mutex_unlock(&team.owner);
}
