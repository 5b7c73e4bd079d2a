#include "dispatch.h"
#include <string.h>

// One body per element width; `static inline` so the AVX2-targeted callers get vectorized copies.
#define TLORA_BYTEGROUP_BODIES(SUFFIX, ATTR)                                                          \
    ATTR static void encode4_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        uint8_t *p0 = dst, *p1 = dst + n, *p2 = dst + 2 * n, *p3 = dst + 3 * n;                     \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint32_t v;                                                                               \
            memcpy(&v, src + 4 * i, 4);                                                               \
            v = (v << 1) | (v >> 31);                                                                 \
            p0[i] = (uint8_t)(v >> 24); p1[i] = (uint8_t)(v >> 16);                                   \
            p2[i] = (uint8_t)(v >> 8);  p3[i] = (uint8_t)v;                                           \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void decode4_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        const uint8_t *p0 = src, *p1 = src + n, *p2 = src + 2 * n, *p3 = src + 3 * n;               \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint32_t v = ((uint32_t)p0[i] << 24) | ((uint32_t)p1[i] << 16) |                          \
                         ((uint32_t)p2[i] << 8) | (uint32_t)p3[i];                                    \
            v = (v >> 1) | (v << 31);                                                                 \
            memcpy(dst + 4 * i, &v, 4);                                                               \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void encode2_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        uint8_t *p0 = dst, *p1 = dst + n;                                                             \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint16_t v;                                                                               \
            memcpy(&v, src + 2 * i, 2);                                                               \
            v = (uint16_t)((v << 1) | (v >> 15));                                                     \
            p0[i] = (uint8_t)(v >> 8); p1[i] = (uint8_t)v;                                            \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void decode2_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        const uint8_t *p0 = src, *p1 = src + n;                                                       \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint16_t v = (uint16_t)(((uint16_t)p0[i] << 8) | p1[i]);                                  \
            v = (uint16_t)((v >> 1) | (v << 15));                                                     \
            memcpy(dst + 2 * i, &v, 2);                                                               \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void encode8_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint64_t v;                                                                               \
            memcpy(&v, src + 8 * i, 8);                                                               \
            v = (v << 1) | (v >> 63);                                                                 \
            for (size_t p = 0; p < 8; p++) dst[p * n + i] = (uint8_t)(v >> (8 * (7 - p)));          \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void decode8_##SUFFIX(const uint8_t *src, uint8_t *dst, size_t n) {                 \
        for (size_t i = 0; i < n; i++) {                                                              \
            uint64_t v = 0;                                                                           \
            for (size_t p = 0; p < 8; p++) v = (v << 8) | src[p * n + i];                             \
            v = (v >> 1) | (v << 63);                                                                 \
            memcpy(dst + 8 * i, &v, 8);                                                               \
        }                                                                                             \
    }

TLORA_BYTEGROUP_BODIES(base, )
#if TLORA_X86
TLORA_BYTEGROUP_BODIES(avx2, TLORA_AVX2)
#endif

// Widths other than 2, 4 and 8 have no sign bit to move: plain byte-plane transposition.
static void encode_generic(const uint8_t *src, uint8_t *dst, size_t n, size_t w) {
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < w; p++) dst[p * n + i] = src[i * w + (w - 1 - p)];
}
static void decode_generic(const uint8_t *src, uint8_t *dst, size_t n, size_t w) {
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < w; p++) dst[i * w + (w - 1 - p)] = src[p * n + i];
}

void tlora_bytegroup_encode(const uint8_t *src, uint8_t *dst, size_t count, size_t width) {
    int simd = TLORA_X86 && tlora_simd_level();
    switch (width) {
#if TLORA_X86
    case 2: simd ? encode2_avx2(src, dst, count) : encode2_base(src, dst, count); return;
    case 4: simd ? encode4_avx2(src, dst, count) : encode4_base(src, dst, count); return;
    case 8: simd ? encode8_avx2(src, dst, count) : encode8_base(src, dst, count); return;
#else
    case 2: encode2_base(src, dst, count); return;
    case 4: encode4_base(src, dst, count); return;
    case 8: encode8_base(src, dst, count); return;
#endif
    default: encode_generic(src, dst, count, width); return;
    }
    (void)simd;
}

void tlora_bytegroup_decode(const uint8_t *src, uint8_t *dst, size_t count, size_t width) {
    int simd = TLORA_X86 && tlora_simd_level();
    switch (width) {
#if TLORA_X86
    case 2: simd ? decode2_avx2(src, dst, count) : decode2_base(src, dst, count); return;
    case 4: simd ? decode4_avx2(src, dst, count) : decode4_base(src, dst, count); return;
    case 8: simd ? decode8_avx2(src, dst, count) : decode8_base(src, dst, count); return;
#else
    case 2: decode2_base(src, dst, count); return;
    case 4: decode4_base(src, dst, count); return;
    case 8: decode8_base(src, dst, count); return;
#endif
    default: decode_generic(src, dst, count, width); return;
    }
    (void)simd;
}
