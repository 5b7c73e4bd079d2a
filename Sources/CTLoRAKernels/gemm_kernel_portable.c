// Portable GEMM micro-kernels (f32 6×16, f64 6×8): baseline C for CPUs without AVX2, or with
// TLORA_SIMD=portable. Compiled without any target attribute, so they never execute an AVX
// instruction; the compiler vectorizes the inner loops with SSE2. Products and sums are rounded
// separately (baseline x86-64 has no FMA), which the k·u error bound covers just the same.
#include "gemm_internal.h"
#include <string.h>

#define DEFINE_PORTABLE_KERNEL(T, NAME, MR, NR)                                                       \
    void NAME(size_t kc, const T *ap, const T *bp, T *c, size_t ldc, size_t rows, size_t cols, T alpha, \
              T beta) {                                                                               \
        T acc[MR][NR];                                                                                \
        memset(acc, 0, sizeof(acc));                                                                  \
        for (size_t k = 0; k < kc; k++) {                                                             \
            for (size_t r = 0; r < MR; r++) {                                                         \
                T a = ap[k * MR + r];                                                                 \
                for (size_t j = 0; j < NR; j++) acc[r][j] += a * bp[k * NR + j];                      \
            }                                                                                         \
        }                                                                                             \
        for (size_t r = 0; r < rows; r++)                                                             \
            for (size_t j = 0; j < cols; j++) {                                                       \
                T y = beta == 0 ? 0 : beta == 1 ? c[r * ldc + j] : beta * c[r * ldc + j];             \
                c[r * ldc + j] = alpha * acc[r][j] + y;                                               \
            }                                                                                         \
    }

DEFINE_PORTABLE_KERNEL(float, tlora_skernel_portable, 6, 16)
DEFINE_PORTABLE_KERNEL(double, tlora_dkernel_portable, 6, 8)
