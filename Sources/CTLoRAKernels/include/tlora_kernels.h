#ifndef TLORA_KERNELS_H
#define TLORA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU runs the AVX2+FMA(+F16C) paths, 0 when the portable fallbacks are used.
/// Setting the environment variable TLORA_DISABLE_SIMD=1 before the first call forces the fallbacks
/// (used by the tests to check that the baseline path gives the same answers).
int tlora_simd_level(void);

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
/// op(B) is k×n (B is n×k when trans_b). beta == 0 does not read C. Runs on `threads` threads
/// (the caller's plus threads-1 new ones). Returns 0; -1 if the packing buffers cannot be
/// allocated and -2 if a worker thread cannot be started (C untouched in both cases).
int tlora_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads);
int tlora_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a, size_t lda,
                const double *b, size_t ldb, double beta, double *c, size_t ldc, int threads);
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
