#include "tlora_kernels.h"
#include <stdlib.h>

// Cached dispatch level: -1 unknown, 0 baseline, 1 AVX2+FMA+F16C. A benign race: every thread that
// computes it computes the same value.
static volatile int tlora_level_cache = -1;

int tlora_simd_level(void) {
    int level = tlora_level_cache;
    if (level >= 0) return level;
    level = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) level = 1;
#endif
    const char *off = getenv("TLORA_DISABLE_SIMD");
    if (off && off[0] && off[0] != '0') level = 0;
    tlora_level_cache = level;
    return level;
}
