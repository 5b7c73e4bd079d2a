#include "dispatch.h"
#include <string.h>
#if TLORA_X86
#include <immintrin.h>
#endif

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline uint16_t f32_to_bf16_one(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// Portable IEEE binary16 conversions (no F16C): exact bit manipulation, round-to-nearest-even.
static inline float f16_to_f32_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        // Subnormal: value = man * 2^-24, exactly representable in f32.
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t f32_to_f16_one(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((absu >> 13) & 0x3ffu);  // quiet NaN
    if (absu >= 0x477ff000u) return sign | 0x7c00u;  // rounds to infinity (>= 65520)
    if (absu < 0x38800000u) {
        // Result is subnormal or zero: scale so the f16 subnormal unit is 1 and round half to even.
        if (absu < 0x33000000u) return sign;  // below half of the smallest subnormal
        uint32_t exp = absu >> 23;
        uint32_t man = (absu & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp;  // 14 - (exp - 127) + 13 - ... : shift mantissa to f16 subnormal
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q += 1;
        return sign | (uint16_t)q;
    }
    uint32_t q = absu - 0x38000000u;  // rebias exponent by (127 - 15) << 23
    uint32_t rem = q & 0x1fffu;
    q >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q += 1;  // may carry into exponent: correct
    return sign | (uint16_t)q;
}

static void f16_to_f32_base(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32_one(src[i]);
}
static void f32_to_f16_base(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_f16_one(src[i]);
}
static void bf16_to_f32_base(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bits_f32((uint32_t)src[i] << 16);
}
static void f32_to_bf16_base(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16_one(src[i]);
}

#if TLORA_X86
TLORA_AVX2 static void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = f16_to_f32_one(src[i]);
}
TLORA_AVX2 static void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        // F16C turns NaN payloads into quiet NaNs and rounds to nearest even, like the scalar path.
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = f32_to_f16_one(src[i]);
}
TLORA_AVX2 static void bf16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_si256((__m256i *)(dst + i), w);
    }
    for (; i < n; i++) dst[i] = bits_f32((uint32_t)src[i] << 16);
}
TLORA_AVX2 static void f32_to_bf16_avx2(const float *src, uint16_t *dst, size_t n) {
    // The scalar body vectorizes cleanly under the AVX2 target.
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16_one(src[i]);
}
#endif

void tlora_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) { f16_to_f32_avx2(src, dst, n); return; }
#endif
    f16_to_f32_base(src, dst, n);
}
void tlora_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) { f32_to_f16_avx2(src, dst, n); return; }
#endif
    f32_to_f16_base(src, dst, n);
}
void tlora_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) { bf16_to_f32_avx2(src, dst, n); return; }
#endif
    bf16_to_f32_base(src, dst, n);
}
void tlora_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
#if TLORA_X86
    if (tlora_simd_level()) { f32_to_bf16_avx2(src, dst, n); return; }
#endif
    f32_to_bf16_base(src, dst, n);
}
