#ifndef TLORA_KERNELS_H
#define TLORA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels, each including the ones below it.
#define TLORA_SIMD_PORTABLE 0 /* baseline x86-64 (or any other CPU): no AVX instruction is executed */
#define TLORA_SIMD_AVX2 1     /* AVX2 + FMA + F16C */
#define TLORA_SIMD_AVX512 2   /* AVX-512 F/BW/DQ/VL on top (used by the GEMM kernels) */

/// The level the kernels run at: the highest this CPU supports, lowered by the environment before
/// the first call: TLORA_SIMD=portable|avx2|avx512 (a request above the CPU's level is ignored),
/// TLORA_DISABLE_SIMD=1 (same as TLORA_SIMD=portable). Non-zero means the AVX2 paths may run, so
/// `if (tlora_simd_level())` selects them.
int tlora_simd_level(void);
/// 1 when this CPU can run `level` (regardless of the environment), 0 otherwise.
int tlora_simd_supported(int level);

// Element conversions, round-to-nearest-even, NaN stays NaN (quiet), infinities stay infinities.
void tlora_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void tlora_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void tlora_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void tlora_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/// Byte grouping for compression: each `width`-byte little-endian element is rotated left by one bit
/// (the sign moves to the lowest bit, so the top byte holds only exponent bits), then byte planes are
/// written most significant first: dst[p * count + i] = byte (width-1-p) of rotl1(element i).
void tlora_bytegroup_encode(const uint8_t *src, uint8_t *dst, size_t count, size_t width);
/// Inverse of tlora_bytegroup_encode.
void tlora_bytegroup_decode(const uint8_t *src, uint8_t *dst, size_t count, size_t width);

#ifdef __cplusplus
}
#endif

#endif

#ifdef __cplusplus
extern "C" {
#endif
/// C (m×n) = alpha · op(A) · op(B) + beta · C, row-major; op(A) is m×k (A is k×m when trans_a),
/// op(B) is k×n (B is n×k when trans_b). beta == 0 does not read C. Runs on up to `threads` threads
/// (the caller's plus new ones; if one cannot be started the caller does its share) with the
/// kernels of tlora_simd_level(). Returns 0, or -1 if the packing buffers cannot be allocated
/// (C untouched then).
int tlora_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads);
int tlora_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a, size_t lda,
                const double *b, size_t ldb, double beta, double *c, size_t ldc, int threads);
/// The same with the kernels of an explicit level (TLORA_SIMD_*), so tests can run every path in
/// one process. Returns -3 without touching C when this CPU cannot run `level`.
int tlora_sgemm_level(int level, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads);
int tlora_dgemm_level(int level, int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a,
                      size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc, int threads);
/// Asks the OS to back the whole pages of [p, p + bytes) with huge pages when they are first
/// touched (Linux MADV_HUGEPAGE; a no-op below 4 MiB or elsewhere). Only a hint: contents and
/// ownership are unaffected. For fresh, large results that are about to be written.
void tlora_advise_huge_pages(void *p, size_t bytes);
#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif
/// Σ x_i y_i.
double tlora_ddot(const double *x, const double *y, size_t n);
/// Σ x_i², Σ y_i², Σ x_i y_i in one pass.
void tlora_ddot3(const double *x, const double *y, size_t n, double *xx, double *yy, double *xy);
/// (x, y) ← (c·x − s·y, s·x + c·y).
void tlora_drot(double *x, double *y, size_t n, double c, double s);
/// y ← y + alpha·x.
void tlora_daxpy(double alpha, const double *x, double *y, size_t n);
/// One-sided Jacobi on the rows of the n×n row-major `z` until every pair of rows has
/// |z_i·z_j| ≤ tol·‖z_i‖‖z_j‖ (or `max_sweeps`), applying the same rotations to the rows of `p`
/// (which may be NULL: then rotations are not accumulated).
/// Runs on `threads` threads (tournament ordering). Returns 0, or -1 if memory ran out.
int tlora_jacobi_rows(double *z, double *p, size_t n, double tol, int max_sweeps, int threads);
#ifdef __cplusplus
}
#endif
