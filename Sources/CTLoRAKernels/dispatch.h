#ifndef TLORA_DISPATCH_H
#define TLORA_DISPATCH_H
#include "tlora_kernels.h"

// Functions marked TLORA_AVX2 / TLORA_AVX512 are compiled for those instruction sets while the rest
// of the package stays baseline x86-64; they may only be called after tlora_simd_level() (or
// tlora_simd_supported) says the CPU has them.
#if defined(__x86_64__)
#define TLORA_X86 1
#define TLORA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TLORA_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#else
#define TLORA_X86 0
#define TLORA_AVX2
#define TLORA_AVX512
#endif

#endif
