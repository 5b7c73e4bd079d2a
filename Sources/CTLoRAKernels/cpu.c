#include "tlora_kernels.h"
#include <stdlib.h>
#include <string.h>

// What the CPU (and the OS, which must save the wider registers) supports, independent of the
// environment. __builtin_cpu_supports checks XCR0 too, so "avx512f" means usable zmm state.
static int cpu_level(void) {
    int level = TLORA_SIMD_PORTABLE;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        level = TLORA_SIMD_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            level = TLORA_SIMD_AVX512;
    }
#endif
    return level;
}

// Cached levels: -1 unknown. A benign race: every thread that computes one computes the same value.
static volatile int tlora_cpu_cache = -1;
static volatile int tlora_level_cache = -1;

int tlora_simd_supported(int level) {
    int cpu = tlora_cpu_cache;
    if (cpu < 0) tlora_cpu_cache = cpu = cpu_level();
    return level >= TLORA_SIMD_PORTABLE && level <= cpu;
}

int tlora_simd_level(void) {
    int level = tlora_level_cache;
    if (level >= 0) return level;
    level = TLORA_SIMD_AVX512;
    while (!tlora_simd_supported(level)) level--;
    // A request can only lower the level: asking for more than the CPU has must not crash it.
    const char *want = getenv("TLORA_SIMD");
    if (want) {
        int asked = -1;
        if (strcmp(want, "portable") == 0) asked = TLORA_SIMD_PORTABLE;
        else if (strcmp(want, "avx2") == 0) asked = TLORA_SIMD_AVX2;
        else if (strcmp(want, "avx512") == 0) asked = TLORA_SIMD_AVX512;
        if (asked >= 0 && asked < level) level = asked;
    }
    const char *off = getenv("TLORA_DISABLE_SIMD");
    if (off && off[0] && off[0] != '0') level = TLORA_SIMD_PORTABLE;
    tlora_level_cache = level;
    return level;
}
