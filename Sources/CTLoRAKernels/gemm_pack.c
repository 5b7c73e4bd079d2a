// Packing for the GEMM driver: copies blocks of op(A) and op(B) into the micro-panel order the
// micro-kernels read sequentially (layout in gemm_internal.h). Baseline code (SSE2 on x86-64),
// shared by every path.
//
// A block of op(A) or op(B) meets one of two layouts in memory:
// - "rows": each k is a contiguous row holding the values of every micro-panel (op(A) = Aᵀ, or
//   op(B) = B). One pass over the rows scatters each into the micro-panels.
// - "columns": each micro-panel row or column is contiguous along k (op(A) = A, or op(B) = Bᵀ):
//   a transpose. Done in 4×4 (f32) or 2×2 (f64) register blocks, a cache line of k at a time, so
//   every source line is used up before it can be evicted even when the leading dimension is a
//   multiple of 4 KiB (all rows then map to the same L1 set).
#include "gemm_internal.h"
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#define TLORA_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define TLORA_PREFETCH(p) ((void)(p))
#endif

// The source usually comes from memory, in runs too short for the hardware prefetchers to get
// going: rows are requested this many rows (rows layout) or floats (columns layout) ahead.
#define TLORA_ROWS_AHEAD 6
#define TLORA_COLS_AHEAD 64

// ---------------------------------------------------------------- "rows" layout

// Micro-panels are filled a group at a time (about 512 bytes of each row): a whole block of A
// can be a hundred micro-panels, and scattering every row over all of them would keep more
// partly written lines in flight than L1 holds.
#define DEFINE_PACK_ROWS(T, NAME, W)                                                                  \
    static void NAME(T *restrict dst, const T *src, size_t ld, size_t k0, size_t x0, size_t kc, size_t nx) { \
        const size_t group = (512 / sizeof(T) + (W) - 1) / (W) * (W);                                 \
        for (size_t g = 0; g < nx; g += group) {                                                      \
            size_t gend = nx - g < group ? nx : g + group, full = g + (gend - g) / (W) * (W);         \
            for (size_t k = 0; k < kc; k++) {                                                         \
                const T *row = src + (k0 + k) * ld + x0;                                              \
                T *d = dst + g * kc + k * (W);                                                        \
                if (k + TLORA_ROWS_AHEAD < kc)                                                        \
                    for (size_t x = g; x < gend; x += 64 / sizeof(T))                                 \
                        TLORA_PREFETCH(row + TLORA_ROWS_AHEAD * ld + x);                              \
                for (size_t x = g; x < full; x += (W), d += (W) * kc) memcpy(d, row + x, (W) * sizeof(T)); \
                if (full < gend)                                                                      \
                    for (size_t c = 0; c < (W); c++) d[c] = full + c < gend ? row[full + c] : 0;      \
            }                                                                                         \
        }                                                                                             \
    }

// ---------------------------------------------------------------- "columns" layout

// Micro-panels whose W rows of the source (stride ld, contiguous along k) are all present.
#if defined(__SSE2__)
static void transpose_f32(float *restrict d, const float *s, size_t ld, size_t kc, size_t w) {
    size_t groups = w / 4 * 4;
    for (size_t kb = 0; kb < kc; kb += 16) {
        size_t kend = kc - kb < 16 ? kc : kb + 16, kv = kb + (kend - kb) / 4 * 4;
        for (size_t g = 0; g < groups; g += 4) {
            const float *s0 = s + g * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
            if (kb + TLORA_COLS_AHEAD < kc) {
                TLORA_PREFETCH(s0 + kb + TLORA_COLS_AHEAD); TLORA_PREFETCH(s1 + kb + TLORA_COLS_AHEAD);
                TLORA_PREFETCH(s2 + kb + TLORA_COLS_AHEAD); TLORA_PREFETCH(s3 + kb + TLORA_COLS_AHEAD);
            }
            size_t k = kb;
            for (; k < kv; k += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
                __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d + k * w + g, r0);
                _mm_storeu_ps(d + (k + 1) * w + g, r1);
                _mm_storeu_ps(d + (k + 2) * w + g, r2);
                _mm_storeu_ps(d + (k + 3) * w + g, r3);
            }
            for (; k < kend; k++) {
                d[k * w + g] = s0[k]; d[k * w + g + 1] = s1[k];
                d[k * w + g + 2] = s2[k]; d[k * w + g + 3] = s3[k];
            }
        }
        for (size_t r = groups; r < w; r++)
            for (size_t k = kb; k < kend; k++) d[k * w + r] = s[r * ld + k];
    }
}

static void transpose_f64(double *restrict d, const double *s, size_t ld, size_t kc, size_t w) {
    size_t pairs = w / 2 * 2;
    for (size_t kb = 0; kb < kc; kb += 8) {
        size_t kend = kc - kb < 8 ? kc : kb + 8, kv = kb + (kend - kb) / 2 * 2;
        for (size_t g = 0; g < pairs; g += 2) {
            const double *s0 = s + g * ld, *s1 = s0 + ld;
            if (kb + TLORA_COLS_AHEAD / 2 < kc) {
                TLORA_PREFETCH(s0 + kb + TLORA_COLS_AHEAD / 2); TLORA_PREFETCH(s1 + kb + TLORA_COLS_AHEAD / 2);
            }
            size_t k = kb;
            for (; k < kv; k += 2) {
                __m128d r0 = _mm_loadu_pd(s0 + k), r1 = _mm_loadu_pd(s1 + k);
                _mm_storeu_pd(d + k * w + g, _mm_unpacklo_pd(r0, r1));
                _mm_storeu_pd(d + (k + 1) * w + g, _mm_unpackhi_pd(r0, r1));
            }
            for (; k < kend; k++) { d[k * w + g] = s0[k]; d[k * w + g + 1] = s1[k]; }
        }
        for (size_t r = pairs; r < w; r++)
            for (size_t k = kb; k < kend; k++) d[k * w + r] = s[r * ld + k];
    }
}
#else
#define DEFINE_TRANSPOSE(T, NAME)                                                                     \
    static void NAME(T *restrict d, const T *s, size_t ld, size_t kc, size_t w) {                     \
        for (size_t kb = 0; kb < kc; kb += 16) {                                                      \
            size_t kend = kc - kb < 16 ? kc : kb + 16;                                                \
            for (size_t r = 0; r < w; r++)                                                            \
                for (size_t k = kb; k < kend; k++) d[k * w + r] = s[r * ld + k];                      \
        }                                                                                             \
    }
DEFINE_TRANSPOSE(float, transpose_f32)
DEFINE_TRANSPOSE(double, transpose_f64)
#endif

#define DEFINE_PACK_COLUMNS(T, NAME, W, TRANSPOSE)                                                    \
    static void NAME(T *restrict dst, const T *src, size_t ld, size_t k0, size_t x0, size_t kc, size_t nx) { \
        for (size_t x = 0; x < nx; x += (W), dst += (W) * kc) {                                       \
            size_t w = nx - x < (W) ? nx - x : (W);                                                   \
            const T *s = src + (x0 + x) * ld + k0;                                                    \
            if (w == (W)) {                                                                           \
                TRANSPOSE(dst, s, ld, kc, (W));                                                       \
            } else {                                                                                  \
                for (size_t k = 0; k < kc; k++)                                                       \
                    for (size_t r = 0; r < (W); r++) dst[k * (W) + r] = r < w ? s[r * ld + k] : 0;    \
            }                                                                                         \
        }                                                                                             \
    }

DEFINE_PACK_ROWS(float, rows_f32_6, 6)
DEFINE_PACK_ROWS(float, rows_f32_12, 12)
DEFINE_PACK_ROWS(float, rows_f32_16, 16)
DEFINE_PACK_ROWS(float, rows_f32_32, 32)
DEFINE_PACK_ROWS(double, rows_f64_6, 6)
DEFINE_PACK_ROWS(double, rows_f64_8, 8)
DEFINE_PACK_ROWS(double, rows_f64_12, 12)
DEFINE_PACK_ROWS(double, rows_f64_16, 16)
DEFINE_PACK_COLUMNS(float, cols_f32_6, 6, transpose_f32)
DEFINE_PACK_COLUMNS(float, cols_f32_12, 12, transpose_f32)
DEFINE_PACK_COLUMNS(float, cols_f32_16, 16, transpose_f32)
DEFINE_PACK_COLUMNS(float, cols_f32_32, 32, transpose_f32)
DEFINE_PACK_COLUMNS(double, cols_f64_6, 6, transpose_f64)
DEFINE_PACK_COLUMNS(double, cols_f64_8, 8, transpose_f64)
DEFINE_PACK_COLUMNS(double, cols_f64_12, 12, transpose_f64)
DEFINE_PACK_COLUMNS(double, cols_f64_16, 16, transpose_f64)

// op(A) = A (m×k, row i contiguous along k): "columns"; op(A) = Aᵀ (A is k×m): "rows".
void tlora_pack_a_f32(float *dst, const float *a, size_t lda, int trans, size_t i0, size_t k0, size_t mc, size_t kc,
                      size_t mr) {
    if (mr == 12) (trans ? rows_f32_12 : cols_f32_12)(dst, a, lda, k0, i0, kc, mc);
    else (trans ? rows_f32_6 : cols_f32_6)(dst, a, lda, k0, i0, kc, mc);
}

// op(B) = B (k×n, row k contiguous along n): "rows"; op(B) = Bᵀ (B is n×k): "columns".
void tlora_pack_b_f32(float *dst, const float *b, size_t ldb, int trans, size_t k0, size_t j0, size_t kc, size_t nc,
                      size_t nr) {
    if (nr == 32) (trans ? cols_f32_32 : rows_f32_32)(dst, b, ldb, k0, j0, kc, nc);
    else (trans ? cols_f32_16 : rows_f32_16)(dst, b, ldb, k0, j0, kc, nc);
}

void tlora_pack_a_f64(double *dst, const double *a, size_t lda, int trans, size_t i0, size_t k0, size_t mc,
                      size_t kc, size_t mr) {
    if (mr == 12) (trans ? rows_f64_12 : cols_f64_12)(dst, a, lda, k0, i0, kc, mc);
    else (trans ? rows_f64_6 : cols_f64_6)(dst, a, lda, k0, i0, kc, mc);
}

void tlora_pack_b_f64(double *dst, const double *b, size_t ldb, int trans, size_t k0, size_t j0, size_t kc,
                      size_t nc, size_t nr) {
    if (nr == 16) (trans ? cols_f64_16 : rows_f64_16)(dst, b, ldb, k0, j0, kc, nc);
    else (trans ? cols_f64_8 : rows_f64_8)(dst, b, ldb, k0, j0, kc, nc);
}
