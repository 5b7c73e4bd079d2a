#ifndef TLORA_DECOMP_H
#define TLORA_DECOMP_H
// Level-2 kernels for the decompositions (bidiagonal and tridiagonal reductions, divide and
// conquer). Row-major f64 throughout; AVX2+FMA paths chosen at run time like the other kernels.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
/// y[0..n) = Σ_r x[r] · A[r, 0..n)  (y = Aᵀx for the row-major m×n A with leading dimension lda).
void tlora_dgemv_t(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y);
/// y[r] = Σ_c A[r, c] · x[c]  (y = A x), r < m.
void tlora_dgemv_n(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y);
/// Both products of one pass over A: y = Aᵀx and w = A v.
void tlora_dgemv_tn(size_t m, size_t n, const double *a, size_t lda, const double *x, double *y,
                    const double *v, double *w);
/// y = A x for a symmetric n×n A of which only the lower triangle (c ≤ r) is read.
void tlora_dsymv_lower(size_t n, const double *a, size_t lda, const double *x, double *y);
/// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (out of place).
void tlora_dtranspose(size_t rows, size_t cols, const double *src, size_t lds, double *dst, size_t ldd);
void tlora_stranspose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd);
#ifdef __cplusplus
}
#endif
#endif
