#ifndef TLORA_DISPATCH_H
#define TLORA_DISPATCH_H
#include "tlora_kernels.h"

#if defined(__x86_64__)
#define TLORA_X86 1
#define TLORA_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define TLORA_X86 0
#define TLORA_AVX2
#endif

#endif
