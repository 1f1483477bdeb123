/* fp16.h — IEEE binary16 and bfloat16 <-> binary32 conversions, bit-exact, portable C.
 * f32 -> f16 rounds to nearest even (overflow to inf, NaN stays NaN) as F16C's VCVTPS2PH with
 * round-to-nearest does; f32 -> bf16 rounds to nearest even and quiets NaNs, as ggml does. */
#ifndef AN_CORE_FP16_H
#define AN_CORE_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t an_f16;
typedef uint16_t an_bf16;

static inline uint32_t an_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float an_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float an_f16_to_f32(an_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return an_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) {
        if (man == 0) return an_bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return an_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline an_f16 an_f32_to_f16(float f) {
    uint32_t x = an_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or NaN (keep NaN quiet and non-zero) */
        return (an_f16)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (an_f16)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                           /* below the smallest normal f16 */
        if (ax < 0x33000000u) return (an_f16)sign;    /* < 2^-25 rounds to zero */
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                    /* 14 + (113 - e - 1) + ... */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (an_f16)(sign | r);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15, still in f32 mantissa units */
    uint32_t rem = r & 0x1fff, h = r >> 13;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (an_f16)(sign | h);
}

static inline float an_bf16_to_f32(an_bf16 h) { return an_bits_f32((uint32_t)h << 16); }

static inline an_bf16 an_f32_to_bf16(float f) {
    uint32_t u = an_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (an_bf16)((u >> 16) | 64); /* quiet NaN */
    return (an_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* Round a float through f16 and back (what an F16 activation holds). */
static inline float an_round_f16(float f) { return an_f16_to_f32(an_f32_to_f16(f)); }

#endif
