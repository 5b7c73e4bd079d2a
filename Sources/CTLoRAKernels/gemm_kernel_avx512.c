// AVX-512 GEMM micro-kernels: f32 12×32 and f64 12×16 tiles, i.e. 12 rows × two zmm vectors, held
// in 24 of the 32 zmm registers. Per step of k they load two vectors of B and broadcast 12 values
// of A for 24 FMAs, so loads stay well below the FMA rate (on Zen 4 a zmm FMA issues on both
// 256-bit pipes, so the FMA rate equals AVX2's; the gain is the bigger tile, which halves the
// loads per FMA and lets the driver keep a 12-row panel of A in L1). Edges use masked loads and
// stores, which never touch memory outside the mask.
// C = alpha·AB + beta·C is rounded as fma(alpha, AB, beta·C) (beta·C exact when beta is 1).
#include "gemm_internal.h"
#if TLORA_X86
#include <immintrin.h>

// How far ahead (in steps of k) B is prefetched: B's micro-panels stream from L2.
#define TLORA_B_AHEAD 8
// How many steps of k before the end the C tile is fetched into L1.
#define TLORA_C_AHEAD 24

#define ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

// Column masks of a tile with `cols` valid columns, `lanes` per vector.
#define EDGE_MASKS(lanes)                                                                             \
    unsigned m0 = cols >= (lanes) ? (1u << (lanes)) - 1 : (1u << cols) - 1;                           \
    unsigned m1 = cols <= (lanes) ? 0 : cols >= 2 * (lanes) ? (1u << (lanes)) - 1 : (1u << (cols - (lanes))) - 1;

TLORA_AVX512 void tlora_skernel_avx512(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                                       size_t rows, size_t cols, float alpha, float beta) {
#define DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
    ROWS12(DECL)
#undef DECL
    // The C tile is needed only at the end: ask for it into L2 now (into L1 it would be evicted
    // by the stream of A and B long before) and into L1 a few steps before the end.
    for (size_t r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T1);
    }
#define FMA(r)                                                                                        \
    {                                                                                                 \
        __m512 a = _mm512_set1_ps(ap[r]);                                                             \
        c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);                                                    \
        c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);                                                    \
    }
#define STEP                                                                                          \
    {                                                                                                 \
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);                                 \
        _mm_prefetch((const char *)(bp + 32 * TLORA_B_AHEAD), _MM_HINT_T0);                           \
        _mm_prefetch((const char *)(bp + 32 * TLORA_B_AHEAD + 16), _MM_HINT_T0);                      \
        ROWS12(FMA)                                                                                   \
        ap += 12;                                                                                     \
        bp += 32;                                                                                     \
    }
    size_t k = 0, tail = kc > TLORA_C_AHEAD ? kc - TLORA_C_AHEAD : 0;
    for (; k < tail; k++) STEP
    for (size_t r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }
    for (; k < kc; k++) STEP
#undef STEP
#undef FMA
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    EDGE_MASKS(16)
    // One formula for full and edge tiles, so an element's rounding does not depend on where it is.
#define STORE(r)                                                                                      \
    if ((r) < rows) {                                                                                 \
        float *cr = c + (r) * ldc;                                                                    \
        __m512 x0, x1;                                                                                \
        if (beta == 0) {                                                                              \
            x0 = _mm512_mul_ps(va, c##r##0);                                                          \
            x1 = _mm512_mul_ps(va, c##r##1);                                                          \
        } else {                                                                                      \
            __m512 y0 = _mm512_maskz_loadu_ps((__mmask16)m0, cr);                                     \
            __m512 y1 = _mm512_maskz_loadu_ps((__mmask16)m1, cr + 16);                                \
            if (beta != 1) { y0 = _mm512_mul_ps(vb, y0); y1 = _mm512_mul_ps(vb, y1); }                \
            x0 = _mm512_fmadd_ps(va, c##r##0, y0);                                                    \
            x1 = _mm512_fmadd_ps(va, c##r##1, y1);                                                    \
        }                                                                                             \
        _mm512_mask_storeu_ps(cr, (__mmask16)m0, x0);                                                 \
        _mm512_mask_storeu_ps(cr + 16, (__mmask16)m1, x1);                                            \
    }
    ROWS12(STORE)
#undef STORE
}

TLORA_AVX512 void tlora_dkernel_avx512(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                       size_t rows, size_t cols, double alpha, double beta) {
#define DECL(r) __m512d c##r##0 = _mm512_setzero_pd(), c##r##1 = _mm512_setzero_pd();
    ROWS12(DECL)
#undef DECL
    for (size_t r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }
#define FMA(r)                                                                                        \
    {                                                                                                 \
        __m512d a = _mm512_set1_pd(ap[r]);                                                            \
        c##r##0 = _mm512_fmadd_pd(a, b0, c##r##0);                                                    \
        c##r##1 = _mm512_fmadd_pd(a, b1, c##r##1);                                                    \
    }
    for (size_t k = 0; k < kc; k++) {
        __m512d b0 = _mm512_load_pd(bp), b1 = _mm512_load_pd(bp + 8);
        _mm_prefetch((const char *)(bp + 16 * TLORA_B_AHEAD), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + 16 * TLORA_B_AHEAD + 8), _MM_HINT_T0);
        ROWS12(FMA)
        ap += 12;
        bp += 16;
    }
#undef FMA
    __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
    EDGE_MASKS(8)
#define STORE(r)                                                                                      \
    if ((r) < rows) {                                                                                 \
        double *cr = c + (r) * ldc;                                                                   \
        __m512d x0, x1;                                                                               \
        if (beta == 0) {                                                                              \
            x0 = _mm512_mul_pd(va, c##r##0);                                                          \
            x1 = _mm512_mul_pd(va, c##r##1);                                                          \
        } else {                                                                                      \
            __m512d y0 = _mm512_maskz_loadu_pd((__mmask8)m0, cr);                                     \
            __m512d y1 = _mm512_maskz_loadu_pd((__mmask8)m1, cr + 8);                                 \
            if (beta != 1) { y0 = _mm512_mul_pd(vb, y0); y1 = _mm512_mul_pd(vb, y1); }                \
            x0 = _mm512_fmadd_pd(va, c##r##0, y0);                                                    \
            x1 = _mm512_fmadd_pd(va, c##r##1, y1);                                                    \
        }                                                                                             \
        _mm512_mask_storeu_pd(cr, (__mmask8)m0, x0);                                                  \
        _mm512_mask_storeu_pd(cr + 8, (__mmask8)m1, x1);                                              \
    }
    ROWS12(STORE)
#undef STORE
}
#endif
