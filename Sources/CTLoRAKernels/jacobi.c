// One-sided Jacobi on the rows of a square matrix, parallel over rows with a tournament ordering:
// in each round the rows form n/2 disjoint pairs, which threads rotate concurrently; a spinning
// barrier separates rounds. Rows are re-ordered by decreasing norm at the start of every sweep
// (de Rijk's idea in tournament form), which speeds convergence.
#include "tlora_kernels.h"
#include "tlora_team.h"
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

typedef struct {
    double *z, *p;
    size_t n;
    size_t players;      // n rounded up to even; index n is a "bye"
    size_t *order;       // tournament seating for this sweep
    double *norms;       // squared row norms
    double tol;
    int threads;
    atomic_int arrived;
    atomic_int generation;
    atomic_int rotated;  // any rotation in this sweep
    int sweeps;          // at most
} jacobi_job;

static void spin_barrier(jacobi_job *j) {
    if (j->threads <= 1) return;
    int gen = atomic_load_explicit(&j->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&j->arrived, 1, memory_order_acq_rel) == j->threads - 1) {
        atomic_store_explicit(&j->arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&j->generation, 1, memory_order_release);
    } else {
        // Spin briefly, then yield: a peer descheduled by an oversubscribed machine must get the CPU.
        for (int spins = 0; atomic_load_explicit(&j->generation, memory_order_acquire) == gen; spins++) {
            if (spins > 2000) sched_yield();
        }
    }
}

static void rotate_pair(jacobi_job *j, size_t a, size_t b) {
    size_t n = j->n;
    double *za = j->z + a * n, *zb = j->z + b * n;
    double alpha = j->norms[a], beta = j->norms[b];
    if (alpha == 0 || beta == 0) return;
    double gamma = tlora_ddot(za, zb, n);
    if (fabs(gamma) <= j->tol * sqrt(alpha * beta)) return;
    double zeta = (beta - alpha) / (2 * gamma);
    double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
    double c = 1 / sqrt(1 + t * t), s = c * t;
    tlora_drot(za, zb, n, c, s);
    if (j->p) tlora_drot(j->p + a * n, j->p + b * n, n, c, s);
    j->norms[a] = alpha - t * gamma;
    j->norms[b] = beta + t * gamma;
    atomic_store_explicit(&j->rotated, 1, memory_order_relaxed);
}

// Round r of the circle method: seat 0 stays, the others rotate; pair k is (seat k, seat P-1-k).
static void run_round(jacobi_job *j, size_t round, int tid) {
    size_t P = j->players, half = P / 2;
    for (size_t k = (size_t)tid; k < half; k += (size_t)j->threads) {
        size_t s1 = k == 0 ? 0 : 1 + (k - 1 + round) % (P - 1);
        size_t s2 = 1 + (P - 2 - k + round) % (P - 1);
        size_t a = j->order[s1], b = j->order[s2];
        if (a >= j->n || b >= j->n) continue;  // a bye
        // Keep the larger-norm row first so the rotation formula's cancellation is benign.
        if (a > b) { size_t t = a; a = b; b = t; }
        rotate_pair(j, a, b);
    }
}

static int compare_desc(const void *x, const void *y, void *ctx) {
    const double *norms = ctx;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return norms[a] < norms[b] ? 1 : norms[a] > norms[b] ? -1 : (a > b) - (a < b);
}

static void sort_order(jacobi_job *j) {
    // Insertion sort by norm, descending (n ≤ a few thousand; once per sweep).
    for (size_t i = 1; i < j->n; i++) {
        size_t v = j->order[i];
        size_t k = i;
        while (k > 0 && compare_desc(&j->order[k - 1], &v, j->norms) > 0) { j->order[k] = j->order[k - 1]; k--; }
        j->order[k] = v;
    }
}

// A team thread's share (tlora_team.h): thread 0 prepares each sweep, all rotate.
static void worker(void *context, int tid, int threads) {
    (void)threads;
    jacobi_job *j = context;
    for (int sweep = 0; sweep < j->sweeps; sweep++) {
        // Thread 0 prepares the sweep; everyone waits for it.
        if (tid == 0) {
            for (size_t i = 0; i < j->n; i++) j->norms[i] = tlora_ddot(j->z + i * j->n, j->z + i * j->n, j->n);
            sort_order(j);
            atomic_store_explicit(&j->rotated, 0, memory_order_relaxed);
        }
        spin_barrier(j);
        for (size_t round = 0; round + 1 < j->players; round++) {
            run_round(j, round, tid);
            spin_barrier(j);
        }
        int any = atomic_load_explicit(&j->rotated, memory_order_relaxed);
        spin_barrier(j);  // everyone has read `rotated` before thread 0 resets it
        if (!any) {
            if (tid == 0 && getenv("TLORA_DEBUG_JACOBI")) fprintf(stderr, "jacobi n=%zu sweeps=%d threads=%d\n", j->n, sweep + 1, j->threads);
            break;
        }
    }
}

// Cyclic by rows with de Rijk's pivoting (largest remaining row first): fewer sweeps than the
// tournament and cache-friendly (row i stays hot), used on one thread.
static void swap_rows(double *m, size_t n, size_t a, size_t b) {
    if (!m) return;
    for (size_t c = 0; c < n; c++) { double t = m[a * n + c]; m[a * n + c] = m[b * n + c]; m[b * n + c] = t; }
}

static int jacobi_cyclic(double *z, double *p, size_t n, double tol, int max_sweeps) {
    double *norms = malloc(sizeof(double) * n);
    if (!norms) return -1;
    jacobi_job j;
    memset(&j, 0, sizeof(j));
    j.z = z; j.p = p; j.n = n; j.tol = tol; j.norms = norms; j.threads = 1;
    atomic_init(&j.rotated, 0);
    for (int sweep = 0; sweep < max_sweeps; sweep++) {
        for (size_t i = 0; i < n; i++) norms[i] = tlora_ddot(z + i * n, z + i * n, n);
        atomic_store_explicit(&j.rotated, 0, memory_order_relaxed);
        for (size_t i = 0; i + 1 < n; i++) {
            size_t best = i;
            for (size_t c = i + 1; c < n; c++) if (norms[c] > norms[best]) best = c;
            if (best != i) {
                swap_rows(z, n, i, best);
                swap_rows(p, n, i, best);
                double t = norms[i]; norms[i] = norms[best]; norms[best] = t;
            }
            for (size_t c = i + 1; c < n; c++) rotate_pair(&j, i, c);
        }
        if (!atomic_load_explicit(&j.rotated, memory_order_relaxed)) {
            if (getenv("TLORA_DEBUG_JACOBI")) fprintf(stderr, "jacobi n=%zu sweeps=%d cyclic\n", n, sweep + 1);
            break;
        }
    }
    free(norms);
    return 0;
}

int tlora_jacobi_rows(double *z, double *p, size_t n, double tol, int max_sweeps, int threads) {
    if (n < 2) return 0;
    // Below ~400 rows a round is too short to share between threads, and the cyclic order converges
    // in fewer sweeps.
    if (threads <= 1 || n < 400) return jacobi_cyclic(z, p, n, tol, max_sweeps);
    size_t players = n + (n & 1);
    if ((size_t)threads > players / 2) threads = (int)(players / 2);
    // The team may grant fewer threads; alone, the cyclic order is the better one.
    threads = tlora_team_acquire(threads);
    if (threads <= 1) return jacobi_cyclic(z, p, n, tol, max_sweeps);
    jacobi_job job;
    job.z = z;
    job.p = p;
    job.n = n;
    job.players = players;
    job.tol = tol;
    job.order = malloc(sizeof(size_t) * job.players);
    job.norms = malloc(sizeof(double) * n);
    if (!job.order || !job.norms) {
        free(job.order);
        free(job.norms);
        tlora_team_release(threads);
        return -1;
    }
    for (size_t i = 0; i < job.players; i++) job.order[i] = i;
    job.sweeps = max_sweeps;
    job.threads = threads;
    atomic_init(&job.arrived, 0);
    atomic_init(&job.generation, 0);
    atomic_init(&job.rotated, 0);
    tlora_team_run(threads, worker, &job);
    tlora_team_release(threads);
    free(job.order);
    free(job.norms);
    return 0;
}
