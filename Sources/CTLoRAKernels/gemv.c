// Matrix–vector products for the Householder reductions. They are memory-bound (each element of A
// is used once), so the AVX2 paths stream four rows at a time to keep several loads in flight and
// reuse each x or y load four times.
#include "dispatch.h"
#include "tlora_decomp.h"
#if TLORA_X86
#include <immintrin.h>
#endif

static void gemv_t_base(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
    for (size_t c = 0; c < n; c++) y[c] = 0;
    for (size_t r = 0; r < m; r++) {
        const double *row = a + r * lda;
        double xr = x[r];
        if (xr == 0) continue;
        for (size_t c = 0; c < n; c++) y[c] += xr * row[c];
    }
}

static void gemv_n_base(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
    for (size_t r = 0; r < m; r++) {
        const double *row = a + r * lda;
        double s = 0;
        for (size_t c = 0; c < n; c++) s += row[c] * x[c];
        y[r] = s;
    }
}

static void gemv_tn_base(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y,
                         const double *v, double *w) {
    gemv_t_base(m, n, a, lda, x, y);
    gemv_n_base(m, n, a, lda, v, w);
}

static void symv_lower_base(size_t n, const double *a, size_t lda, const double *x, double *y) {
    for (size_t r = 0; r < n; r++) y[r] = 0;
    for (size_t r = 0; r < n; r++) {
        const double *row = a + r * lda;
        double s = 0, xr = x[r];
        for (size_t c = 0; c < r; c++) { s += row[c] * x[c]; y[c] += xr * row[c]; }
        y[r] += s + row[r] * xr;
    }
}

#if TLORA_X86
TLORA_AVX2 static inline double hsum4(__m256d v) {
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(lo) + _mm_cvtsd_f64(_mm_unpackhi_pd(lo, lo));
}

TLORA_AVX2 static void gemv_t_avx2(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
    for (size_t c = 0; c < n; c++) y[c] = 0;
    size_t r = 0;
    for (; r + 4 <= m; r += 4) {
        const double *r0 = a + r * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        __m256d x0 = _mm256_set1_pd(x[r]), x1 = _mm256_set1_pd(x[r + 1]);
        __m256d x2 = _mm256_set1_pd(x[r + 2]), x3 = _mm256_set1_pd(x[r + 3]);
        size_t c = 0;
        for (; c + 4 <= n; c += 4) {
            __m256d acc = _mm256_loadu_pd(y + c);
            acc = _mm256_fmadd_pd(x0, _mm256_loadu_pd(r0 + c), acc);
            acc = _mm256_fmadd_pd(x1, _mm256_loadu_pd(r1 + c), acc);
            acc = _mm256_fmadd_pd(x2, _mm256_loadu_pd(r2 + c), acc);
            acc = _mm256_fmadd_pd(x3, _mm256_loadu_pd(r3 + c), acc);
            _mm256_storeu_pd(y + c, acc);
        }
        for (; c < n; c++) y[c] += x[r] * r0[c] + x[r + 1] * r1[c] + x[r + 2] * r2[c] + x[r + 3] * r3[c];
    }
    for (; r < m; r++) {
        const double *row = a + r * lda;
        __m256d xr = _mm256_set1_pd(x[r]);
        size_t c = 0;
        for (; c + 4 <= n; c += 4) _mm256_storeu_pd(y + c, _mm256_fmadd_pd(xr, _mm256_loadu_pd(row + c), _mm256_loadu_pd(y + c)));
        for (; c < n; c++) y[c] += x[r] * row[c];
    }
}

TLORA_AVX2 static void gemv_n_avx2(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
    size_t r = 0;
    for (; r + 4 <= m; r += 4) {
        const double *r0 = a + r * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
        size_t c = 0;
        for (; c + 4 <= n; c += 4) {
            __m256d xv = _mm256_loadu_pd(x + c);
            s0 = _mm256_fmadd_pd(_mm256_loadu_pd(r0 + c), xv, s0);
            s1 = _mm256_fmadd_pd(_mm256_loadu_pd(r1 + c), xv, s1);
            s2 = _mm256_fmadd_pd(_mm256_loadu_pd(r2 + c), xv, s2);
            s3 = _mm256_fmadd_pd(_mm256_loadu_pd(r3 + c), xv, s3);
        }
        double t0 = hsum4(s0), t1 = hsum4(s1), t2 = hsum4(s2), t3 = hsum4(s3);
        for (; c < n; c++) { t0 += r0[c] * x[c]; t1 += r1[c] * x[c]; t2 += r2[c] * x[c]; t3 += r3[c] * x[c]; }
        y[r] = t0; y[r + 1] = t1; y[r + 2] = t2; y[r + 3] = t3;
    }
    for (; r < m; r++) {
        const double *row = a + r * lda;
        __m256d s = _mm256_setzero_pd();
        size_t c = 0;
        for (; c + 4 <= n; c += 4) s = _mm256_fmadd_pd(_mm256_loadu_pd(row + c), _mm256_loadu_pd(x + c), s);
        double t = hsum4(s);
        for (; c < n; c++) t += row[c] * x[c];
        y[r] = t;
    }
}

// One pass over A for both y = Aᵀx and w = Av: each row is loaded once and used twice, which halves
// the memory traffic of the bidiagonal reduction's two products.
TLORA_AVX2 static void gemv_tn_avx2(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y,
                                    const double *v, double *w) {
    for (size_t c = 0; c < n; c++) y[c] = 0;
    size_t r = 0;
    for (; r + 2 <= m; r += 2) {
        const double *r0 = a + r * lda, *r1 = r0 + lda;
        __m256d x0 = _mm256_set1_pd(x[r]), x1 = _mm256_set1_pd(x[r + 1]);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        size_t c = 0;
        for (; c + 4 <= n; c += 4) {
            __m256d a0 = _mm256_loadu_pd(r0 + c), a1 = _mm256_loadu_pd(r1 + c), vv = _mm256_loadu_pd(v + c);
            __m256d acc = _mm256_loadu_pd(y + c);
            acc = _mm256_fmadd_pd(x0, a0, acc);
            acc = _mm256_fmadd_pd(x1, a1, acc);
            _mm256_storeu_pd(y + c, acc);
            s0 = _mm256_fmadd_pd(a0, vv, s0);
            s1 = _mm256_fmadd_pd(a1, vv, s1);
        }
        double t0 = hsum4(s0), t1 = hsum4(s1);
        for (; c < n; c++) { y[c] += x[r] * r0[c] + x[r + 1] * r1[c]; t0 += r0[c] * v[c]; t1 += r1[c] * v[c]; }
        w[r] = t0; w[r + 1] = t1;
    }
    for (; r < m; r++) {
        const double *row = a + r * lda;
        double t = 0;
        for (size_t c = 0; c < n; c++) { y[c] += x[r] * row[c]; t += row[c] * v[c]; }
        w[r] = t;
    }
}

TLORA_AVX2 static void symv_lower_avx2(size_t n, const double *a, size_t lda, const double *x, double *y) {
    for (size_t r = 0; r < n; r++) y[r] = 0;
    for (size_t r = 0; r < n; r++) {
        const double *row = a + r * lda;
        __m256d xr = _mm256_set1_pd(x[r]), s = _mm256_setzero_pd();
        size_t c = 0;
        for (; c + 4 <= r; c += 4) {
            __m256d av = _mm256_loadu_pd(row + c);
            s = _mm256_fmadd_pd(av, _mm256_loadu_pd(x + c), s);
            _mm256_storeu_pd(y + c, _mm256_fmadd_pd(xr, av, _mm256_loadu_pd(y + c)));
        }
        double t = hsum4(s);
        for (; c < r; c++) { t += row[c] * x[c]; y[c] += x[r] * row[c]; }
        y[r] += t + row[r] * x[r];
    }
}
#endif

void tlora_dgemv_t(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
#if TLORA_X86
    if (tlora_simd_level()) { gemv_t_avx2(m, n, a, lda, x, y); return; }
#endif
    gemv_t_base(m, n, a, lda, x, y);
}

void tlora_dgemv_n(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y) {
#if TLORA_X86
    if (tlora_simd_level()) { gemv_n_avx2(m, n, a, lda, x, y); return; }
#endif
    gemv_n_base(m, n, a, lda, x, y);
}

void tlora_dgemv_tn(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y,
                    const double *v, double *w) {
#if TLORA_X86
    if (tlora_simd_level()) { gemv_tn_avx2(m, n, a, lda, x, y, v, w); return; }
#endif
    gemv_tn_base(m, n, a, lda, x, y, v, w);
}

void tlora_dsymv_lower(size_t n, const double *a, size_t lda, const double *x, double *y) {
#if TLORA_X86
    if (tlora_simd_level()) { symv_lower_avx2(n, a, lda, x, y); return; }
#endif
    symv_lower_base(n, a, lda, x, y);
}
