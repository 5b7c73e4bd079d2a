// Shared by the GEMM driver (gemm.c), its packing routines (gemm_pack.c) and its micro-kernels
// (gemm_kernel_*.c). Not part of the public header.
#ifndef TLORA_GEMM_INTERNAL_H
#define TLORA_GEMM_INTERNAL_H
#include "dispatch.h"
#include <stddef.h>

#define TLORA_HIDDEN __attribute__((visibility("hidden")))

// A micro-kernel computes the MR×NR tile AB = Ap·Bp, where Ap holds kc steps of MR values of A and
// Bp kc steps of NR values of B (packed, zero-padded past the matrix edge), then
// C = alpha·AB + beta·C on the leading rows × cols of the tile (beta == 0: C is not read, so it may
// hold garbage or NaN). Every element of AB is one sum over k in increasing order.
typedef void (*tlora_skernel)(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, size_t rows,
                              size_t cols, float alpha, float beta);
typedef void (*tlora_dkernel)(size_t kc, const double *ap, const double *bp, double *c, size_t ldc, size_t rows,
                              size_t cols, double alpha, double beta);

// One path's micro-kernel and cache blocking (see docs/NUMERICS.md, "GEMM"):
//   mr × nr  register tile: mr values of A are broadcast, nr values of B are loaded as vectors;
//   kc       depth of every packed block: an mr×kc micro-panel of A stays in L1 while the driver
//            sweeps the kc×nr micro-panels of B past it;
//   nb       columns of the packed kc×nb block of B, which stays in L2;
//   mb       rows of the packed mb×kc panel of A, which stays in L3 (a multiple of mr).
typedef struct {
    tlora_skernel kernel;
    size_t mr, nr, kc, nb, mb;
} tlora_sgemm_config;

typedef struct {
    tlora_dkernel kernel;
    size_t mr, nr, kc, nb, mb;
} tlora_dgemm_config;

// Micro-kernels, one file per instruction set. Their tiles: portable 6×16 / 6×8, AVX2 6×16 / 6×8,
// AVX-512 12×32 / 12×16 (f32 / f64).
TLORA_HIDDEN void tlora_skernel_portable(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                                         size_t rows, size_t cols, float alpha, float beta);
TLORA_HIDDEN void tlora_dkernel_portable(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                         size_t rows, size_t cols, double alpha, double beta);
#if TLORA_X86
TLORA_HIDDEN void tlora_skernel_avx2(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, size_t rows,
                                     size_t cols, float alpha, float beta);
TLORA_HIDDEN void tlora_dkernel_avx2(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                     size_t rows, size_t cols, double alpha, double beta);
TLORA_HIDDEN void tlora_skernel_avx512(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                                       size_t rows, size_t cols, float alpha, float beta);
TLORA_HIDDEN void tlora_dkernel_avx512(size_t kc, const double *ap, const double *bp, double *c, size_t ldc,
                                       size_t rows, size_t cols, double alpha, double beta);
#endif

// Packing (gemm_pack.c, baseline code shared by every path).
// pack_a: rows i0..i0+mc of op(A), columns k0..k0+kc, into ceil(mc/mr) micro-panels; micro-panel p
//   holds, for each k, the mr values op(A)[i0+p·mr+r][k0+k] (zero past the last row).
// pack_b: rows k0..k0+kc of op(B), columns j0..j0+nc, into ceil(nc/nr) micro-panels; micro-panel p
//   holds, for each k, the nr values op(B)[k0+k][j0+p·nr+c] (zero past the last column).
// trans: the matrix is stored transposed (A as k×m, B as n×k). mr ∈ {6, 12}, nr ∈ {8, 16, 32}.
TLORA_HIDDEN void tlora_pack_a_f32(float *dst, const float *a, size_t lda, int trans, size_t i0, size_t k0,
                                   size_t mc, size_t kc, size_t mr);
TLORA_HIDDEN void tlora_pack_b_f32(float *dst, const float *b, size_t ldb, int trans, size_t k0, size_t j0,
                                   size_t kc, size_t nc, size_t nr);
TLORA_HIDDEN void tlora_pack_a_f64(double *dst, const double *a, size_t lda, int trans, size_t i0, size_t k0,
                                   size_t mc, size_t kc, size_t mr);
TLORA_HIDDEN void tlora_pack_b_f64(double *dst, const double *b, size_t ldb, int trans, size_t k0, size_t j0,
                                   size_t kc, size_t nc, size_t nr);

// Packing buffers are pooled across calls (gemm_buffers.c): big allocations come from fresh mmap
// pages, and faulting in a few MB on every call costs a few percent of a 1024³ product.
TLORA_HIDDEN void *tlora_gemm_buffer_acquire(size_t bytes);
TLORA_HIDDEN void tlora_gemm_buffer_release(void *p, size_t bytes);

#endif
