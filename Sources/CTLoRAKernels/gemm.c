// Cache-blocked GEMM with packed panels and register-tiled micro-kernels (the BLIS scheme):
// C (M×N) = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions.
// Micro-tiles: f32 6×16, f64 6×8 (twelve ymm accumulators under AVX2+FMA). A portable tile of the
// same shape serves CPUs without AVX2; both paths compute each C element as one dot product over K
// in the same order of blocks, so they agree to rounding.
#include "dispatch.h"
#include <stdlib.h>
#include <string.h>
#if TLORA_X86
#include <immintrin.h>
#endif

#define SMR 6
#define SNR 16
#define SKC 256
#define SMC 144
#define SNC 3072

#define DMR 6
#define DNR 8
#define DKC 256
#define DMC 72
#define DNC 2048

// ---------------------------------------------------------------- packing

// A block (mc × kc) of op(A) into panels of MR rows: panel p holds, for each k, MR values.
#define DEFINE_PACK_A(T, NAME, MR)                                                                     \
    static void NAME(const T *a, size_t lda, int trans, size_t i0, size_t k0, size_t mc, size_t kc,     \
                     T *dst) {                                                                         \
        for (size_t ip = 0; ip < mc; ip += MR) {                                                       \
            size_t rows = mc - ip < MR ? mc - ip : MR;                                                 \
            for (size_t k = 0; k < kc; k++) {                                                          \
                for (size_t r = 0; r < MR; r++) {                                                      \
                    T v = 0;                                                                           \
                    if (r < rows) {                                                                    \
                        size_t i = i0 + ip + r, kk = k0 + k;                                           \
                        v = trans ? a[kk * lda + i] : a[i * lda + kk];                                 \
                    }                                                                                  \
                    *dst++ = v;                                                                        \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }

// B block (kc × nc) of op(B) into panels of NR columns: panel p holds, for each k, NR values.
#define DEFINE_PACK_B(T, NAME, NR)                                                                     \
    static void NAME(const T *b, size_t ldb, int trans, size_t k0, size_t j0, size_t kc, size_t nc,     \
                     T *dst) {                                                                         \
        for (size_t jp = 0; jp < nc; jp += NR) {                                                       \
            size_t cols = nc - jp < NR ? nc - jp : NR;                                                 \
            for (size_t k = 0; k < kc; k++) {                                                          \
                size_t kk = k0 + k;                                                                    \
                if (!trans && cols == NR) {                                                            \
                    memcpy(dst, b + kk * ldb + j0 + jp, NR * sizeof(T));                               \
                    dst += NR;                                                                         \
                    continue;                                                                          \
                }                                                                                      \
                for (size_t c = 0; c < NR; c++) {                                                      \
                    T v = 0;                                                                           \
                    if (c < cols) {                                                                    \
                        size_t j = j0 + jp + c;                                                        \
                        v = trans ? b[j * ldb + kk] : b[kk * ldb + j];                                 \
                    }                                                                                  \
                    *dst++ = v;                                                                        \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }

DEFINE_PACK_A(float, pack_a_f32, SMR)
DEFINE_PACK_B(float, pack_b_f32, SNR)
DEFINE_PACK_A(double, pack_a_f64, DMR)
DEFINE_PACK_B(double, pack_b_f64, DNR)

// ---------------------------------------------------------------- micro-kernels
// Each computes the MR×NR tile AB = Ap · Bp over kc, then C = alpha·AB + beta·C on the valid
// rows × cols (beta == 0 means C is not read, so it may hold garbage or NaN).

#define DEFINE_PORTABLE_KERNEL(T, NAME, MR, NR)                                                        \
    static void NAME(size_t kc, const T *ap, const T *bp, T *c, size_t ldc, size_t rows, size_t cols, \
                     T alpha, T beta) {                                                                \
        T acc[MR][NR];                                                                                 \
        memset(acc, 0, sizeof(acc));                                                                   \
        for (size_t k = 0; k < kc; k++) {                                                              \
            for (size_t r = 0; r < MR; r++) {                                                          \
                T a = ap[k * MR + r];                                                                  \
                for (size_t j = 0; j < NR; j++) acc[r][j] += a * bp[k * NR + j];                       \
            }                                                                                          \
        }                                                                                              \
        for (size_t r = 0; r < rows; r++)                                                              \
            for (size_t j = 0; j < cols; j++)                                                          \
                c[r * ldc + j] = alpha * acc[r][j] + (beta == 0 ? 0 : beta * c[r * ldc + j]);          \
    }

DEFINE_PORTABLE_KERNEL(float, kernel_f32_base, SMR, SNR)
DEFINE_PORTABLE_KERNEL(double, kernel_f64_base, DMR, DNR)

#if TLORA_X86
TLORA_AVX2 static void kernel_f32_avx2(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                                       size_t rows, size_t cols, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    // The C tile is needed only at the end; ask for it now so the stores do not wait.
    for (size_t r = 0; r < rows; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
#define TLORA_S_STEP(off_a, off_b)                                                                   \
    {                                                                                              \
        __m256 b0 = _mm256_load_ps(bp + (off_b)), b1 = _mm256_load_ps(bp + (off_b) + 8);           \
        __m256 a;                                                                                  \
        a = _mm256_broadcast_ss(ap + (off_a) + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01); \
        a = _mm256_broadcast_ss(ap + (off_a) + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11); \
        a = _mm256_broadcast_ss(ap + (off_a) + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21); \
        a = _mm256_broadcast_ss(ap + (off_a) + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31); \
        a = _mm256_broadcast_ss(ap + (off_a) + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41); \
        a = _mm256_broadcast_ss(ap + (off_a) + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51); \
    }
    size_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        _mm_prefetch((const char *)(ap + 4 * SMR * 4), _MM_HINT_T0);
        TLORA_S_STEP(0, 0)
        TLORA_S_STEP(SMR, SNR)
        TLORA_S_STEP(2 * SMR, 2 * SNR)
        TLORA_S_STEP(3 * SMR, 3 * SNR)
        ap += 4 * SMR;
        bp += 4 * SNR;
    }
    for (; k < kc; k++) {
        TLORA_S_STEP(0, 0)
        ap += SMR;
        bp += SNR;
    }
#undef TLORA_S_STEP
    __m256 acc[SMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (rows == SMR && cols == SNR) {
        for (size_t r = 0; r < SMR; r++) {
            float *cr = c + r * ldc;
            __m256 x0 = _mm256_mul_ps(va, acc[r][0]), x1 = _mm256_mul_ps(va, acc[r][1]);
            if (beta != 0) {
                x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
                x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
            }
            _mm256_storeu_ps(cr, x0);
            _mm256_storeu_ps(cr + 8, x1);
        }
        return;
    }
    float tile[SMR][SNR] __attribute__((aligned(32)));
    for (size_t r = 0; r < SMR; r++) {
        _mm256_store_ps(tile[r], acc[r][0]);
        _mm256_store_ps(tile[r] + 8, acc[r][1]);
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++)
            c[r * ldc + j] = alpha * tile[r][j] + (beta == 0 ? 0 : beta * c[r * ldc + j]);
}

TLORA_AVX2 static void kernel_f64_avx2(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                       size_t rows, size_t cols, double alpha, double beta) {
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    for (size_t k = 0; k < kc; k++) {
        __m256d b0 = _mm256_load_pd(bp), b1 = _mm256_load_pd(bp + 4);
        __m256d a;
        a = _mm256_broadcast_sd(ap + 0); c00 = _mm256_fmadd_pd(a, b0, c00); c01 = _mm256_fmadd_pd(a, b1, c01);
        a = _mm256_broadcast_sd(ap + 1); c10 = _mm256_fmadd_pd(a, b0, c10); c11 = _mm256_fmadd_pd(a, b1, c11);
        a = _mm256_broadcast_sd(ap + 2); c20 = _mm256_fmadd_pd(a, b0, c20); c21 = _mm256_fmadd_pd(a, b1, c21);
        a = _mm256_broadcast_sd(ap + 3); c30 = _mm256_fmadd_pd(a, b0, c30); c31 = _mm256_fmadd_pd(a, b1, c31);
        a = _mm256_broadcast_sd(ap + 4); c40 = _mm256_fmadd_pd(a, b0, c40); c41 = _mm256_fmadd_pd(a, b1, c41);
        a = _mm256_broadcast_sd(ap + 5); c50 = _mm256_fmadd_pd(a, b0, c50); c51 = _mm256_fmadd_pd(a, b1, c51);
        ap += DMR;
        bp += DNR;
    }
    __m256d acc[DMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    if (rows == DMR && cols == DNR) {
        for (size_t r = 0; r < DMR; r++) {
            double *cr = c + r * ldc;
            __m256d x0 = _mm256_mul_pd(va, acc[r][0]), x1 = _mm256_mul_pd(va, acc[r][1]);
            if (beta != 0) {
                x0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), x0);
                x1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr + 4), x1);
            }
            _mm256_storeu_pd(cr, x0);
            _mm256_storeu_pd(cr + 4, x1);
        }
        return;
    }
    double tile[DMR][DNR] __attribute__((aligned(32)));
    for (size_t r = 0; r < DMR; r++) {
        _mm256_store_pd(tile[r], acc[r][0]);
        _mm256_store_pd(tile[r] + 4, acc[r][1]);
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++)
            c[r * ldc + j] = alpha * tile[r][j] + (beta == 0 ? 0 : beta * c[r * ldc + j]);
}
#endif

// ---------------------------------------------------------------- drivers
// Threads share each packed B block (packed cooperatively, panel by panel) and take turns over the
// row blocks of C, as BLIS parallelizes its "ic" loop; a barrier separates packing from computing.

#include <pthread.h>

// Packing buffers are kept for reuse: big allocations come from fresh mmap pages, and faulting in
// a few MB on every call costs a few percent of a 1024³ product.
#define TLORA_POOL 8
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool_ptr[TLORA_POOL];
static size_t pool_size[TLORA_POOL];

static void *buffer_acquire(size_t bytes) {
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
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static void buffer_release(void *p, size_t bytes) {
    if (!p) return;
    pthread_mutex_lock(&pool_lock);
    int slot = -1;
    for (int i = 0; i < TLORA_POOL; i++) {
        if (!pool_ptr[i]) { slot = i; break; }
        if (slot < 0 || pool_size[i] < pool_size[slot]) slot = i;  // evict the smallest
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

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count, waiting, generation;
} tlora_barrier;

static void barrier_init(tlora_barrier *b, int count) {
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->count = count;
    b->waiting = 0;
    b->generation = 0;
}

static void barrier_wait(tlora_barrier *b) {
    if (b->count <= 1) return;
    pthread_mutex_lock(&b->lock);
    int gen = b->generation;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->generation++;
        pthread_cond_broadcast(&b->cond);
    } else {
        while (gen == b->generation) pthread_cond_wait(&b->cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
}

static void barrier_destroy(tlora_barrier *b) {
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
}

#define DEFINE_GEMM(T, NAME, MR, NR, KC, MC, NC, PACKA, PACKB, KBASE, KAVX)                                   \
    typedef struct {                                                                                         \
        int trans_a, trans_b;                                                                                \
        size_t m, n, k;                                                                                      \
        T alpha, beta;                                                                                       \
        const T *a, *b;                                                                                      \
        size_t lda, ldb, ldc;                                                                                \
        T *c, *bbuf;                                                                                         \
        int threads, simd;                                                                                   \
        tlora_barrier barrier;                                                                               \
        /* Workers wait at this gate until every thread exists: 1 go, -1 give up. */                         \
        pthread_mutex_t gate_lock;                                                                           \
        pthread_cond_t gate_cond;                                                                            \
        int gate;                                                                                            \
    } NAME##_job;                                                                                            \
                                                                                                             \
    static void NAME##_work(NAME##_job *j, int tid, T *abuf) {                                               \
        for (size_t jc = 0; jc < j->n; jc += NC) {                                                           \
            size_t nc = j->n - jc < NC ? j->n - jc : NC;                                                     \
            size_t panels = (nc + NR - 1) / NR;                                                              \
            for (size_t pc = 0; pc < j->k; pc += KC) {                                                       \
                size_t kc = j->k - pc < KC ? j->k - pc : KC;                                                 \
                T betak = pc == 0 ? j->beta : (T)1;                                                          \
                /* Each thread packs its share of B's panels. */                                             \
                size_t p0 = panels * tid / j->threads, p1 = panels * (tid + 1) / j->threads;                 \
                if (p1 > p0) {                                                                               \
                    size_t c0 = p0 * NR, c1 = p1 * NR < nc ? p1 * NR : nc;                                   \
                    PACKB(j->b, j->ldb, j->trans_b, pc, jc + c0, kc, c1 - c0, j->bbuf + c0 * kc);            \
                }                                                                                            \
                barrier_wait(&j->barrier);                                                                   \
                /* Each thread takes an equal, MR-aligned range of C's rows, walked in MC blocks. */         \
                size_t tiles = (j->m + MR - 1) / MR;                                                         \
                size_t r0 = tiles * tid / j->threads * MR, r1 = tiles * (tid + 1) / j->threads * MR;         \
                if (r1 > j->m) r1 = j->m;                                                                    \
                for (size_t ic = r0; ic < r1; ic += MC) {                                                    \
                    size_t mc = r1 - ic < MC ? r1 - ic : MC;                                                 \
                    PACKA(j->a, j->lda, j->trans_a, ic, pc, mc, kc, abuf);                                   \
                    for (size_t jr = 0; jr < nc; jr += NR) {                                                 \
                        size_t cols = nc - jr < NR ? nc - jr : NR;                                           \
                        const T *bp = j->bbuf + jr * kc;                                                     \
                        for (size_t ir = 0; ir < mc; ir += MR) {                                             \
                            size_t rows = mc - ir < MR ? mc - ir : MR;                                       \
                            T *cp = j->c + (ic + ir) * j->ldc + jc + jr;                                     \
                            if (j->simd) KAVX(kc, abuf + ir * kc, bp, cp, j->ldc, rows, cols, j->alpha, betak); \
                            else KBASE(kc, abuf + ir * kc, bp, cp, j->ldc, rows, cols, j->alpha, betak);     \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
                /* B's block is reused for the next pc: wait until everyone is done with it. */              \
                barrier_wait(&j->barrier);                                                                   \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
                                                                                                             \
    typedef struct { NAME##_job *job; int tid; T *abuf; } NAME##_arg;                                        \
                                                                                                             \
    static void *NAME##_thread(void *p) {                                                                    \
        NAME##_arg *arg = p;                                                                                 \
        NAME##_job *j = arg->job;                                                                            \
        pthread_mutex_lock(&j->gate_lock);                                                                   \
        while (j->gate == 0) pthread_cond_wait(&j->gate_cond, &j->gate_lock);                                \
        int go = j->gate > 0;                                                                                \
        pthread_mutex_unlock(&j->gate_lock);                                                                 \
        if (go) NAME##_work(j, arg->tid, arg->abuf);                                                         \
        return NULL;                                                                                         \
    }                                                                                                        \
                                                                                                             \
    int NAME(int trans_a, int trans_b, size_t m, size_t n, size_t k, T alpha, const T *a, size_t lda,        \
             const T *b, size_t ldb, T beta, T *c, size_t ldc, int threads) {                                \
        if (m == 0 || n == 0) return 0;                                                                      \
        if (k == 0 || alpha == 0) {                                                                          \
            for (size_t i = 0; i < m; i++)                                                                   \
                for (size_t jj = 0; jj < n; jj++) c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];  \
            return 0;                                                                                        \
        }                                                                                                    \
        if (threads < 1) threads = 1;                                                                        \
        size_t tiles = (m + MR - 1) / MR;                                                                    \
        if ((size_t)threads > tiles) threads = (int)tiles;                                                   \
        NAME##_job job = {trans_a, trans_b, m, n, k, alpha, beta, a, b, lda, ldb, ldc, c, NULL, threads,     \
                          TLORA_X86 && tlora_simd_level()};                                                  \
        if (threads > 16) threads = job.threads = 16;                                                        \
        size_t kcap = k < KC ? k : KC, ncap = n < NC ? n : NC;                                               \
        size_t bbytes = sizeof(T) * ((kcap * (ncap + NR) + 15) / 16 * 16), abytes = sizeof(T) * MC * KC;    \
        job.bbuf = buffer_acquire(bbytes);                                                                   \
        T *abufs[16];                                                                                        \
        int ok = job.bbuf != NULL;                                                                           \
        for (int t = 0; t < threads; t++) { abufs[t] = buffer_acquire(abytes); ok = ok && abufs[t]; }        \
        if (!ok) {                                                                                           \
            buffer_release(job.bbuf, bbytes);                                                                \
            for (int t = 0; t < threads; t++) buffer_release(abufs[t], abytes);                              \
            return -1;                                                                                       \
        }                                                                                                    \
        barrier_init(&job.barrier, threads);                                                                 \
        pthread_mutex_init(&job.gate_lock, NULL);                                                            \
        pthread_cond_init(&job.gate_cond, NULL);                                                             \
        job.gate = 0;                                                                                        \
        pthread_t tids[16];                                                                                  \
        NAME##_arg args[16];                                                                                 \
        int started = 1;                                                                                     \
        for (int t = 1; t < threads; t++) {                                                                  \
            args[t] = (NAME##_arg){&job, t, abufs[t]};                                                       \
            if (pthread_create(&tids[t], NULL, NAME##_thread, &args[t]) != 0) break;                         \
            started++;                                                                                       \
        }                                                                                                    \
        /* A worker that did not start would keep the barriers shut: then nobody works and the caller */     \
        /* retries on one thread. */                                                                         \
        int status = started == threads ? 0 : -2;                                                            \
        pthread_mutex_lock(&job.gate_lock);                                                                  \
        job.gate = status == 0 ? 1 : -1;                                                                     \
        pthread_cond_broadcast(&job.gate_cond);                                                              \
        pthread_mutex_unlock(&job.gate_lock);                                                                \
        if (status == 0) NAME##_work(&job, 0, abufs[0]);                                                     \
        for (int t = 1; t < started; t++) pthread_join(tids[t], NULL);                                       \
        barrier_destroy(&job.barrier);                                                                       \
        pthread_mutex_destroy(&job.gate_lock);                                                               \
        pthread_cond_destroy(&job.gate_cond);                                                                \
        for (int t = 0; t < threads; t++) buffer_release(abufs[t], abytes);                                  \
        buffer_release(job.bbuf, bbytes);                                                                    \
        return status;                                                                                       \
    }

#if TLORA_X86
DEFINE_GEMM(float, tlora_sgemm, SMR, SNR, SKC, SMC, SNC, pack_a_f32, pack_b_f32, kernel_f32_base, kernel_f32_avx2)
DEFINE_GEMM(double, tlora_dgemm, DMR, DNR, DKC, DMC, DNC, pack_a_f64, pack_b_f64, kernel_f64_base, kernel_f64_avx2)
#else
DEFINE_GEMM(float, tlora_sgemm, SMR, SNR, SKC, SMC, SNC, pack_a_f32, pack_b_f32, kernel_f32_base, kernel_f32_base)
DEFINE_GEMM(double, tlora_dgemm, DMR, DNR, DKC, DMC, DNC, pack_a_f64, pack_b_f64, kernel_f64_base, kernel_f64_base)
#endif
