// Out-of-place transposes, dst[j][i] = src[i][j], in cache tiles of 32×32. The AVX2 path moves
// 4×4 blocks of doubles through registers (4 loads, 8 shuffles, 4 stores), so both the reads and
// the writes are full vectors instead of one side being a strided scalar stream.
#include "dispatch.h"
#include "tlora_decomp.h"
#if TLORA_X86
#include <immintrin.h>
#endif

#define TILE 32

static void dtranspose_tile_base(size_t r0, size_t r1, size_t c0, size_t c1, const double *src, size_t lds, double *dst, size_t ldd) {
    for (size_t i = r0; i < r1; i++)
        for (size_t j = c0; j < c1; j++) dst[j * ldd + i] = src[i * lds + j];
}

static void stranspose_tile_base(size_t r0, size_t r1, size_t c0, size_t c1, const float *src, size_t lds, float *dst, size_t ldd) {
    for (size_t i = r0; i < r1; i++)
        for (size_t j = c0; j < c1; j++) dst[j * ldd + i] = src[i * lds + j];
}

#if TLORA_X86
TLORA_AVX2 static void dtranspose_tile_avx2(size_t r0, size_t r1, size_t c0, size_t c1, const double *src, size_t lds, double *dst, size_t ldd) {
    size_t i = r0;
    for (; i + 4 <= r1; i += 4) {
        size_t j = c0;
        for (; j + 4 <= c1; j += 4) {
            __m256d a = _mm256_loadu_pd(src + i * lds + j), b = _mm256_loadu_pd(src + (i + 1) * lds + j);
            __m256d c = _mm256_loadu_pd(src + (i + 2) * lds + j), d = _mm256_loadu_pd(src + (i + 3) * lds + j);
            __m256d ab0 = _mm256_unpacklo_pd(a, b), ab1 = _mm256_unpackhi_pd(a, b);  // a0 b0 a2 b2 | a1 b1 a3 b3
            __m256d cd0 = _mm256_unpacklo_pd(c, d), cd1 = _mm256_unpackhi_pd(c, d);
            _mm256_storeu_pd(dst + j * ldd + i, _mm256_permute2f128_pd(ab0, cd0, 0x20));
            _mm256_storeu_pd(dst + (j + 1) * ldd + i, _mm256_permute2f128_pd(ab1, cd1, 0x20));
            _mm256_storeu_pd(dst + (j + 2) * ldd + i, _mm256_permute2f128_pd(ab0, cd0, 0x31));
            _mm256_storeu_pd(dst + (j + 3) * ldd + i, _mm256_permute2f128_pd(ab1, cd1, 0x31));
        }
        if (j < c1) dtranspose_tile_base(i, i + 4, j, c1, src, lds, dst, ldd);
    }
    if (i < r1) dtranspose_tile_base(i, r1, c0, c1, src, lds, dst, ldd);
}
#endif

void tlora_dtranspose(size_t rows, size_t cols, const double *src, size_t lds, double *dst, size_t ldd) {
#if TLORA_X86
    int simd = tlora_simd_level();
#endif
    for (size_t r0 = 0; r0 < rows; r0 += TILE) {
        size_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (size_t c0 = 0; c0 < cols; c0 += TILE) {
            size_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
#if TLORA_X86
            if (simd) { dtranspose_tile_avx2(r0, r1, c0, c1, src, lds, dst, ldd); continue; }
#endif
            dtranspose_tile_base(r0, r1, c0, c1, src, lds, dst, ldd);
        }
    }
}

void tlora_stranspose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd) {
    for (size_t r0 = 0; r0 < rows; r0 += TILE) {
        size_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (size_t c0 = 0; c0 < cols; c0 += TILE) {
            size_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
            stranspose_tile_base(r0, r1, c0, c1, src, lds, dst, ldd);
        }
    }
}
