// AVX2+FMA GEMM micro-kernels for CPUs without AVX-512: f32 6×16 and f64 6×8 tiles, i.e. 6 rows ×
// two ymm vectors in 12 of the 16 ymm registers, leaving room for two vectors of B and a broadcast.
// Edge tiles go through a small buffer, so nothing outside the valid rows × cols is touched.
#include "gemm_internal.h"
#if TLORA_X86
#include <immintrin.h>

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

// C = alpha·AB + beta·C is rounded as fma(alpha, AB, beta·C) like the AVX-512 kernels.
TLORA_AVX2 void tlora_skernel_avx2(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, size_t rows,
                                   size_t cols, float alpha, float beta) {
#define DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
    ROWS6(DECL)
#undef DECL
    // The C tile is needed only at the end; asking for it now hides its cache misses.
    for (size_t r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }
#define FMA(r)                                                                                        \
    {                                                                                                 \
        __m256 a = _mm256_broadcast_ss(ap + (r));                                                     \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                                    \
        c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                                                    \
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        _mm_prefetch((const char *)(bp + 16 * 8), _MM_HINT_T0);
        ROWS6(FMA)
        ap += 6;
        bp += 16;
    }
#undef FMA
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (rows == 6 && cols == 16) {
#define STORE(r)                                                                                      \
        {                                                                                             \
            float *cr = c + (r) * ldc;                                                                \
            __m256 x0, x1;                                                                            \
            if (beta == 0) {                                                                          \
                x0 = _mm256_mul_ps(va, c##r##0);                                                      \
                x1 = _mm256_mul_ps(va, c##r##1);                                                      \
            } else {                                                                                  \
                __m256 y0 = _mm256_loadu_ps(cr), y1 = _mm256_loadu_ps(cr + 8);                        \
                if (beta != 1) { y0 = _mm256_mul_ps(vb, y0); y1 = _mm256_mul_ps(vb, y1); }            \
                x0 = _mm256_fmadd_ps(va, c##r##0, y0);                                                \
                x1 = _mm256_fmadd_ps(va, c##r##1, y1);                                                \
            }                                                                                         \
            _mm256_storeu_ps(cr, x0);                                                                 \
            _mm256_storeu_ps(cr + 8, x1);                                                             \
        }
        ROWS6(STORE)
#undef STORE
        return;
    }
    float tile[6][16] __attribute__((aligned(32)));
#define SPILL(r) _mm256_store_ps(tile[r], c##r##0); _mm256_store_ps(tile[r] + 8, c##r##1);
    ROWS6(SPILL)
#undef SPILL
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            float y = beta == 0 ? 0 : beta == 1 ? c[r * ldc + j] : beta * c[r * ldc + j];
            c[r * ldc + j] = __builtin_fmaf(alpha, tile[r][j], y);
        }
}

TLORA_AVX2 void tlora_dkernel_avx2(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                   size_t rows, size_t cols, double alpha, double beta) {
#define DECL(r) __m256d c##r##0 = _mm256_setzero_pd(), c##r##1 = _mm256_setzero_pd();
    ROWS6(DECL)
#undef DECL
    for (size_t r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 7), _MM_HINT_T0);
    }
#define FMA(r)                                                                                        \
    {                                                                                                 \
        __m256d a = _mm256_broadcast_sd(ap + (r));                                                    \
        c##r##0 = _mm256_fmadd_pd(a, b0, c##r##0);                                                    \
        c##r##1 = _mm256_fmadd_pd(a, b1, c##r##1);                                                    \
    }
    for (size_t k = 0; k < kc; k++) {
        __m256d b0 = _mm256_load_pd(bp), b1 = _mm256_load_pd(bp + 4);
        _mm_prefetch((const char *)(bp + 8 * 8), _MM_HINT_T0);
        ROWS6(FMA)
        ap += 6;
        bp += 8;
    }
#undef FMA
    __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    if (rows == 6 && cols == 8) {
#define STORE(r)                                                                                      \
        {                                                                                             \
            double *cr = c + (r) * ldc;                                                               \
            __m256d x0, x1;                                                                           \
            if (beta == 0) {                                                                          \
                x0 = _mm256_mul_pd(va, c##r##0);                                                      \
                x1 = _mm256_mul_pd(va, c##r##1);                                                      \
            } else {                                                                                  \
                __m256d y0 = _mm256_loadu_pd(cr), y1 = _mm256_loadu_pd(cr + 4);                       \
                if (beta != 1) { y0 = _mm256_mul_pd(vb, y0); y1 = _mm256_mul_pd(vb, y1); }            \
                x0 = _mm256_fmadd_pd(va, c##r##0, y0);                                                \
                x1 = _mm256_fmadd_pd(va, c##r##1, y1);                                                \
            }                                                                                         \
            _mm256_storeu_pd(cr, x0);                                                                 \
            _mm256_storeu_pd(cr + 4, x1);                                                             \
        }
        ROWS6(STORE)
#undef STORE
        return;
    }
    double tile[6][8] __attribute__((aligned(32)));
#define SPILL(r) _mm256_store_pd(tile[r], c##r##0); _mm256_store_pd(tile[r] + 4, c##r##1);
    ROWS6(SPILL)
#undef SPILL
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            double y = beta == 0 ? 0 : beta == 1 ? c[r * ldc + j] : beta * c[r * ldc + j];
            c[r * ldc + j] = __builtin_fma(alpha, tile[r][j], y);
        }
}
#endif
