// Cache-blocked GEMM with packed panels and register-tiled micro-kernels (the BLIS scheme):
// C (M×N) = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions.
// This file holds the per-path configurations and the entry points; the loops and the threads
// are in gemm_driver.h (with gemm_barrier.h; the threads are the persistent team's, tlora_team.h), packing in gemm_pack.c, micro-kernels in
// gemm_kernel_*.c, the buffer pool in gemm_buffers.c.
// Every path computes each element of C as one sum over k in increasing order (in slices of kc),
// so all of them meet the same k·u error bound.
#include "gemm_internal.h"
#include "gemm_barrier.h"
#include "tlora_team.h"
#include <stdint.h>

#define TLORA_GEMM_MAX_THREADS TLORA_TEAM_MAX
// Micro-panels of A per packing task (96 rows with mr = 12).
#define TLORA_PACK_GROUP 8
// Units of work per thread and step, at least (see gemm_driver.h).
#define TLORA_UNITS 8

// Blocking per path (mr, nr, kc, nb, mb), measured on Zen 4 (32 KiB L1d, 1 MiB L2 per core,
// 32 MiB L3; docs/NUMERICS.md, "GEMM"): a kc×nb block of B that fills about all of L2 beat
// smaller ones — each micro-panel of A, fetched from L3, then serves nb/nr micro-kernel calls —
// and an mb×kc panel of A of up to 8 MiB in L3 means B is packed only once for m ≤ 4092.
static const tlora_sgemm_config sgemm_portable = {tlora_skernel_portable, 6, 16, 256, 256, 4092};
static const tlora_dgemm_config dgemm_portable = {tlora_dkernel_portable, 6, 8, 256, 256, 4092};
#if TLORA_X86
static const tlora_sgemm_config sgemm_avx2 = {tlora_skernel_avx2, 6, 16, 512, 512, 4092};
static const tlora_dgemm_config dgemm_avx2 = {tlora_dkernel_avx2, 6, 8, 384, 512, 4092};
static const tlora_sgemm_config sgemm_avx512 = {tlora_skernel_avx512, 12, 32, 512, 512, 4092};
static const tlora_dgemm_config dgemm_avx512 = {tlora_dkernel_avx512, 12, 16, 256, 512, 4092};
#endif

static const tlora_sgemm_config *sgemm_config(int level) {
#if TLORA_X86
    if (level >= TLORA_SIMD_AVX512) return &sgemm_avx512;
    if (level >= TLORA_SIMD_AVX2) return &sgemm_avx2;
#endif
    (void)level;
    return &sgemm_portable;
}

static const tlora_dgemm_config *dgemm_config(int level) {
#if TLORA_X86
    if (level >= TLORA_SIMD_AVX512) return &dgemm_avx512;
    if (level >= TLORA_SIMD_AVX2) return &dgemm_avx2;
#endif
    (void)level;
    return &dgemm_portable;
}

// The block size that splits `total` into the fewest blocks of at most `cap` (a multiple of
// `unit`) of about equal size, rounded up to `unit`.
static size_t tlora_gemm_even(size_t total, size_t cap, size_t unit) {
    if (total <= cap) return total;
    size_t blocks = (total + cap - 1) / cap;
    size_t size = (total + blocks - 1) / blocks;
    size = (size + unit - 1) / unit * unit;
    return size < cap ? size : cap;
}

#define GEMM_T float
#define GEMM_CONFIG tlora_sgemm_config
#define GEMM_PACK_A tlora_pack_a_f32
#define GEMM_PACK_B tlora_pack_b_f32
#define GEMM_FN(x) s##x
#include "gemm_driver.h"
#undef GEMM_T
#undef GEMM_CONFIG
#undef GEMM_PACK_A
#undef GEMM_PACK_B
#undef GEMM_FN

#define GEMM_T double
#define GEMM_CONFIG tlora_dgemm_config
#define GEMM_PACK_A tlora_pack_a_f64
#define GEMM_PACK_B tlora_pack_b_f64
#define GEMM_FN(x) d##x
#include "gemm_driver.h"
#undef GEMM_T
#undef GEMM_CONFIG
#undef GEMM_PACK_A
#undef GEMM_PACK_B
#undef GEMM_FN

int tlora_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads) {
    return sgemm(sgemm_config(tlora_simd_level()), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                 threads);
}

int tlora_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a, size_t lda,
                const double *b, size_t ldb, double beta, double *c, size_t ldc, int threads) {
    return dgemm(dgemm_config(tlora_simd_level()), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                 threads);
}

int tlora_sgemm_level(int level, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads) {
    if (!tlora_simd_supported(level)) return -3;
    return sgemm(sgemm_config(level), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
}

int tlora_dgemm_level(int level, int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
                      const double *a, size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc,
                      int threads) {
    if (!tlora_simd_supported(level)) return -3;
    return dgemm(dgemm_config(level), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
}
