// Level-1 kernels for Householder reflections and Jacobi rotations, in f64, with AVX2+FMA paths.
// The SIMD paths sum with four accumulators, so their rounding differs from the sequential
// portable loops by a few units in the last place; both stay within the usual n·u bounds.
#include "dispatch.h"
#if TLORA_X86
#include <immintrin.h>
#endif

static double dot_base(const double *x, const double *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static void dot3_base(const double *x, const double *y, size_t n, double *xx, double *yy, double *xy) {
    double a = 0, b = 0, c = 0;
    for (size_t i = 0; i < n; i++) { a += x[i] * x[i]; b += y[i] * y[i]; c += x[i] * y[i]; }
    *xx = a; *yy = b; *xy = c;
}

static void rotate_base(double *x, double *y, size_t n, double c, double s) {
    for (size_t i = 0; i < n; i++) {
        double a = x[i], b = y[i];
        x[i] = c * a - s * b;
        y[i] = s * a + c * b;
    }
}

static void axpy_base(double alpha, const double *x, double *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

#if TLORA_X86
TLORA_AVX2 static double hsum(__m256d v) {
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(lo) + _mm_cvtsd_f64(_mm_unpackhi_pd(lo, lo));
}

TLORA_AVX2 static double dot_avx2(const double *x, const double *y, size_t n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i + 4), _mm256_loadu_pd(y + i + 4), s1);
        s2 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i + 8), _mm256_loadu_pd(y + i + 8), s2);
        s3 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i + 12), _mm256_loadu_pd(y + i + 12), s3);
    }
    for (; i + 4 <= n; i += 4) s0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), s0);
    double s = hsum(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

TLORA_AVX2 static void dot3_avx2(const double *x, const double *y, size_t n, double *xx, double *yy, double *xy) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    __m256d b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
    __m256d c0 = _mm256_setzero_pd(), c1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d x0 = _mm256_loadu_pd(x + i), y0 = _mm256_loadu_pd(y + i);
        __m256d x1 = _mm256_loadu_pd(x + i + 4), y1 = _mm256_loadu_pd(y + i + 4);
        a0 = _mm256_fmadd_pd(x0, x0, a0); a1 = _mm256_fmadd_pd(x1, x1, a1);
        b0 = _mm256_fmadd_pd(y0, y0, b0); b1 = _mm256_fmadd_pd(y1, y1, b1);
        c0 = _mm256_fmadd_pd(x0, y0, c0); c1 = _mm256_fmadd_pd(x1, y1, c1);
    }
    double a = hsum(_mm256_add_pd(a0, a1)), b = hsum(_mm256_add_pd(b0, b1)), c = hsum(_mm256_add_pd(c0, c1));
    for (; i < n; i++) { a += x[i] * x[i]; b += y[i] * y[i]; c += x[i] * y[i]; }
    *xx = a; *yy = b; *xy = c;
}

TLORA_AVX2 static void rotate_avx2(double *x, double *y, size_t n, double c, double s) {
    __m256d vc = _mm256_set1_pd(c), vs = _mm256_set1_pd(s);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d a = _mm256_loadu_pd(x + i), b = _mm256_loadu_pd(y + i);
        _mm256_storeu_pd(x + i, _mm256_fnmadd_pd(vs, b, _mm256_mul_pd(vc, a)));
        _mm256_storeu_pd(y + i, _mm256_fmadd_pd(vs, a, _mm256_mul_pd(vc, b)));
    }
    for (; i < n; i++) {
        double a = x[i], b = y[i];
        x[i] = c * a - s * b;
        y[i] = s * a + c * b;
    }
}

TLORA_AVX2 static void axpy_avx2(double alpha, const double *x, double *y, size_t n) {
    __m256d va = _mm256_set1_pd(alpha);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, _mm256_fmadd_pd(va, _mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i)));
    for (; i < n; i++) y[i] += alpha * x[i];
}
#endif

double tlora_ddot(const double *x, const double *y, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) return dot_avx2(x, y, n);
#endif
    return dot_base(x, y, n);
}

void tlora_ddot3(const double *x, const double *y, size_t n, double *xx, double *yy, double *xy) {
#if TLORA_X86
    if (tlora_simd_level()) { dot3_avx2(x, y, n, xx, yy, xy); return; }
#endif
    dot3_base(x, y, n, xx, yy, xy);
}

void tlora_drot(double *x, double *y, size_t n, double c, double s) {
#if TLORA_X86
    if (tlora_simd_level()) { rotate_avx2(x, y, n, c, s); return; }
#endif
    rotate_base(x, y, n, c, s);
}

void tlora_daxpy(double alpha, const double *x, double *y, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) { axpy_avx2(alpha, x, y, n); return; }
#endif
    axpy_base(alpha, x, y, n);
}
