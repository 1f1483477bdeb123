/* test_quant.c — the weight formats: hand-built blocks decoded element by element from the
 * format definitions, quantizer round-trip bounds, activation quantization rules, and the
 * reference dot products against dot products of dequantized rows. */
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/quant.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static void rng_seed(uint64_t s) { g_rng = s ? s : 1; }
static uint32_t rng_u32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rng_uniform(void) { return (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); } /* [0,1) */
/* roughly gaussian (sum of 4 uniforms), mean 0, sd ~1 */
static float rng_gauss(void) {
    float s = rng_uniform() + rng_uniform() + rng_uniform() + rng_uniform();
    return (s - 2.0f) * 1.7320508f;
}

/* Random test rows of several shapes: plain gaussian, offset gaussian (exercises the min of
 * the asymmetric formats), and gaussian with a few large outliers. */
static void fill_row(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float v = rng_gauss();
        if (kind == 1) v = 0.3f * v + 0.8f;
        if (kind == 2 && rng_u32() % 97 == 0) v *= 12.0f;
        x[i] = v * 0.05f;
    }
}

static size_t row_bytes(an_type t, int64_t n) {
    const an_type_traits *tt = an_type_traits_get((uint32_t)t);
    return tt ? (size_t)an_row_bytes(tt, (uint64_t)n) : 0;
}

/* Compare y (code under test) with want exactly (bitwise, so -0 vs +0 and NaN are caught). */
static int check_exact(const char *what, const float *y, const float *want, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (memcmp(&y[i], &want[i], sizeof(float)) != 0) {
            if (bad < 5) T_FAIL("%s: element %d = %.9g, want %.9g", what, i, y[i], want[i]);
            bad++;
        }
    }
    return bad;
}

/* Non-trivial fp16 scale values, given as raw bits and as the exact value they encode (so the
 * expectations below do not depend on the fp16 code under test). */
#define H_D 0x2E66                   /* 0.0999755859375 = (1 + 614/1024) * 2^-4 */
#define F_D 0.0999755859375f
#define H_M 0x3266                   /* 0.199951171875  = (1 + 614/1024) * 2^-3 */
#define F_M 0.199951171875f
#define H_NEG1 0xBC00                /* -1.0 */

/* ------------------------------------------------------------------------------------------ */
/* fp16 / bf16 helpers                                                                         */

static void quant_fp16_helpers(void) {
    struct { float f; uint16_t h; } to16[] = {
        {1.0f, 0x3C00}, {-2.0f, 0xC000}, {65504.0f, 0x7BFF}, {65519.0f, 0x7BFF},
        {65520.0f, 0x7C00},                          /* rounds up to inf */
        {0x1p-24f, 0x0001},                           /* smallest subnormal */
        {0x1p-25f, 0x0000},                           /* half of it: tie -> even (0) */
        {0x1.8p-25f, 0x0001},                         /* 0.75 ulp -> 1 */
        {0x1.8p-24f, 0x0002},                         /* 1.5 ulp: tie -> even (2) */
        {0x1p-14f, 0x0400},                           /* smallest normal */
        {1.0f + 0x1p-11f, 0x3C00},                    /* tie between 0x3C00 and 0x3C01 -> even */
        {1.0f + 0x1.8p-10f, 0x3C02},                  /* tie between 0x3C01 and 0x3C02 -> even */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01},         /* just above the tie */
        {-0.0f, 0x8000}, {INFINITY, 0x7C00}, {-INFINITY, 0xFC00},
    };
    for (size_t i = 0; i < sizeof to16 / sizeof to16[0]; i++) {
        uint16_t h = an_f32_to_f16(to16[i].f);
        T_CHECK(h == to16[i].h, "f32 %a -> f16 %#06x, want %#06x", (double)to16[i].f, h, to16[i].h);
    }
    uint16_t hn = an_f32_to_f16(NAN);
    T_CHECK((hn & 0x7C00) == 0x7C00 && (hn & 0x03FF) != 0, "NaN -> %#06x", hn);

    struct { uint16_t h; float f; } from16[] = {
        {0x3555, 0.333251953125f}, {0x0001, 0x1p-24f}, {0x0200, 0x1p-15f}, {0x83FF, -0x1.ff8p-15f},
        {0x7BFF, 65504.0f}, {0xFC00, -INFINITY}, {0x8000, -0.0f},
    };
    for (size_t i = 0; i < sizeof from16 / sizeof from16[0]; i++) {
        float f = an_f16_to_f32(from16[i].h);
        T_CHECK(memcmp(&f, &from16[i].f, 4) == 0, "f16 %#06x -> %a, want %a", from16[i].h, (double)f,
                (double)from16[i].f);
    }
    T_CHECK(isnan(an_f16_to_f32(0x7E00)), "0x7E00 is NaN");

    /* every finite f16 survives f16 -> f32 -> f16 */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00) continue;
        if (an_f32_to_f16(an_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    T_CHECK(bad == 0, "%d finite f16 values do not round-trip", bad);

    struct { uint32_t f; uint16_t h; } tobf[] = {
        {0x3F800000u, 0x3F80}, {0x3F808000u, 0x3F80}, /* 1 + 2^-8: tie -> even */
        {0x3F818000u, 0x3F82},                         /* 1 + 3*2^-8: tie -> even (up) */
        {0x3F808001u, 0x3F81},                         /* above the tie */
        {0x3FFFFFFFu, 0x4000},                         /* carries into the exponent */
        {0xFF800000u, 0xFF80},                         /* -inf */
    };
    for (size_t i = 0; i < sizeof tobf / sizeof tobf[0]; i++) {
        uint16_t h = an_f32_to_bf16(an_bits_f32(tobf[i].f));
        T_CHECK(h == tobf[i].h, "f32 %#010x -> bf16 %#06x, want %#06x", tobf[i].f, h, tobf[i].h);
    }
    uint16_t bn = an_f32_to_bf16(an_bits_f32(0x7F800001u)); /* signalling NaN, payload in low bits */
    T_CHECK((bn & 0x7F80) == 0x7F80 && (bn & 0x7F) != 0, "NaN stays NaN in bf16: %#06x", bn);
    T_CHECK(an_bf16_to_f32(0xC049) == -3.140625f, "bf16 0xC049");
}

/* ------------------------------------------------------------------------------------------ */
/* hand-built blocks                                                                           */

static void quant_hand_float_types(void) {
    uint16_t h[8] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8400, 0x7C00, 0x3555, 0x8000};
    float want_h[8] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, -0x1p-14f, INFINITY, 0.333251953125f, -0.0f};
    float y[8];
    an_dequant_row(AN_TYPE_F16, h, y, 8);
    check_exact("F16", y, want_h, 8);

    uint16_t b[8] = {0x3F80, 0xC049, 0x0001, 0x7F80, 0x4000, 0x3E80, 0x8000, 0x4780};
    float want_b[8] = {1.0f, -3.140625f, 0x1p-133f, INFINITY, 2.0f, 0.25f, -0.0f, 65536.0f};
    an_dequant_row(AN_TYPE_BF16, b, y, 8);
    check_exact("BF16", y, want_b, 8);

    float f[8] = {1.5f, -0.0f, 3e-42f, -7.25f, 1e30f, 0.1f, -1.0f, 2.0f};
    an_dequant_row(AN_TYPE_F32, f, y, 8);
    check_exact("F32", y, f, 8);
}

/* Q4_0/Q4_1: qs[j] = j (low nibble, element j) | (15-j) << 4 (high nibble, element j+16). */
static void quant_hand_q4_0_q4_1(void) {
    an_block_q4_0 b0[2];
    an_block_q4_1 b1;
    memset(b0, 0, sizeof b0);
    b0[0].d = H_D;
    b0[1].d = 0xB800; /* -0.5: second block checks the block stride and a negative d */
    for (int j = 0; j < 16; j++) {
        b0[0].qs[j] = (uint8_t)(j | (15 - j) << 4);
        b0[1].qs[j] = (uint8_t)(((j * 3) & 15) | ((j * 5 + 1) & 15) << 4);
    }
    float y[64], want[64];
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j - 8) * F_D;
        want[j + 16] = (float)(15 - j - 8) * F_D;
        want[32 + j] = (float)(((j * 3) & 15) - 8) * -0.5f;
        want[48 + j] = (float)(((j * 5 + 1) & 15) - 8) * -0.5f;
    }
    an_dequant_row(AN_TYPE_Q4_0, b0, y, 64);
    check_exact("Q4_0", y, want, 64);

    b1.d = H_D;
    b1.m = H_NEG1;
    for (int j = 0; j < 16; j++) b1.qs[j] = (uint8_t)(j | (15 - j) << 4);
    for (int j = 0; j < 16; j++) {
        want[j] = (float)j * F_D + -1.0f;
        want[j + 16] = (float)(15 - j) * F_D + -1.0f;
    }
    an_dequant_row(AN_TYPE_Q4_1, &b1, y, 32);
    check_exact("Q4_1", y, want, 32);
}

/* Q5: 5th bit of element e = bit e of qh (LE u32). Bits set: elements 0, 3, 15, 16, 20, 31. */
static void quant_hand_q5(void) {
    static const int high[32] = {[0] = 1, [3] = 1, [15] = 1, [16] = 1, [20] = 1, [31] = 1};
    an_block_q5_0 b0;
    an_block_q5_1 b1;
    memset(&b0, 0, sizeof b0);
    memset(&b1, 0, sizeof b1);
    b0.d = b1.d = H_D;
    b1.m = H_NEG1;
    /* bits 0,3 -> byte 0 = 0x09; bit 15 -> byte 1 = 0x80; bits 16,20 -> byte 2 = 0x11;
     * bit 31 -> byte 3 = 0x80 */
    const uint8_t qh[4] = {0x09, 0x80, 0x11, 0x80};
    memcpy(b0.qh, qh, 4);
    memcpy(b1.qh, qh, 4);
    for (int j = 0; j < 16; j++) b0.qs[j] = b1.qs[j] = (uint8_t)(j | (15 - j) << 4);
    float y[32], want0[32], want1[32];
    for (int e = 0; e < 32; e++) {
        int lo = e < 16 ? e : 15 - (e - 16);
        int q = lo + 16 * high[e];
        want0[e] = (float)(q - 16) * F_D;
        want1[e] = (float)q * F_D + -1.0f;
    }
    an_dequant_row(AN_TYPE_Q5_0, &b0, y, 32);
    check_exact("Q5_0", y, want0, 32);
    an_dequant_row(AN_TYPE_Q5_1, &b1, y, 32);
    check_exact("Q5_1", y, want1, 32);
}

static void quant_hand_q8_0(void) {
    an_block_q8_0 b;
    b.d = H_D;
    for (int e = 0; e < 32; e++) b.qs[e] = (int8_t)(e * 8 - 128);
    b.qs[31] = 127;
    float y[32], want[32];
    for (int e = 0; e < 32; e++) want[e] = (float)(e == 31 ? 127 : e * 8 - 128) * F_D;
    an_dequant_row(AN_TYPE_Q8_0, &b, y, 32);
    check_exact("Q8_0", y, want, 32);

    an_block_q8_1 b1;
    b1.d = H_D;
    b1.s = 0x7C00; /* s does not take part in dequantization */
    memcpy(b1.qs, b.qs, 32);
    an_dequant_row(AN_TYPE_Q8_1, &b1, y, 32);
    check_exact("Q8_1", y, want, 32);
}

/* Q2_K: element e = 128h + 32j + l sits in bits 2j..2j+1 of qs[32h + l]; sub-block e/16 has
 * scales[e/16] = sc | m << 4. Codes chosen per element, packed here from the definition. */
/* The code patterns below differ between elements e and e+32, e+64, e+96 (which share a byte),
 * so a decoder reading the wrong shift or nibble cannot pass by accident. */
static int q2_code(int e) { return (e * 7 + e / 32 + e / 13) & 3; }
static void quant_hand_q2_K(void) {
    an_block_q2_K b;
    memset(&b, 0, sizeof b);
    b.d = H_D;
    b.dmin = H_M;
    int sc[16], m[16];
    for (int s = 0; s < 16; s++) {
        sc[s] = s;            /* 0..15 (includes the 0 and 15 extremes) */
        m[s] = (s * 7) % 16;  /* a permutation of 0..15 */
        b.scales[s] = (uint8_t)(sc[s] | m[s] << 4);
    }
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, l = e % 32;
        b.qs[32 * h + l] |= (uint8_t)(q2_code(e) << (2 * j));
    }
    float y[256], want[256];
    for (int e = 0; e < 256; e++)
        want[e] = (F_D * (float)sc[e / 16]) * (float)q2_code(e) - F_M * (float)m[e / 16];
    an_dequant_row(AN_TYPE_Q2_K, &b, y, 256);
    check_exact("Q2_K", y, want, 256);
}

/* Q3_K: q = (2 low bits) - 4*(hmask bit clear); 6-bit biased scales with the split packing. */
static int q3_code(int e) { return ((e * 5 + 3 + e / 32 * 3) % 8) - 4; } /* -4..3 */
static void quant_hand_q3_K(void) {
    an_block_q3_K b;
    memset(&b, 0, sizeof b);
    b.d = H_D;
    int sc[16];
    for (int j = 0; j < 16; j++) sc[j] = j * 4 - 30; /* -30..30 */
    sc[0] = -32;                                      /* extremes of the 6-bit range */
    sc[15] = 31;
    sc[7] = 0;
    for (int j = 0; j < 16; j++) {
        int u = sc[j] + 32; /* stored biased, 0..63 */
        if (j < 8) b.scales[j] |= (uint8_t)(u & 15);
        else b.scales[j - 8] |= (uint8_t)((u & 15) << 4);
        b.scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
    }
    for (int e = 0; e < 256; e++) {
        int c = q3_code(e) + 4; /* 0..7: bit 2 -> hmask (set means "no -4"), bits 0-1 -> qs */
        int h = e / 128, j = (e % 128) / 32, l = e % 32;
        b.qs[32 * h + l] |= (uint8_t)((c & 3) << (2 * j));
        if (c & 4) b.hmask[l] |= (uint8_t)(1 << (e / 32));
    }
    float y[256], want[256];
    for (int e = 0; e < 256; e++) want[e] = (F_D * (float)sc[e / 16]) * (float)q3_code(e);
    an_dequant_row(AN_TYPE_Q3_K, &b, y, 256);
    check_exact("Q3_K", y, want, 256);
}

/* Q4_K / Q5_K: 8 (sc, m) 6-bit pairs, several with bits 4-5 set in sub-blocks 4..7 (stored in
 * the top 2 bits of bytes 0..7). */
static const int k4_sc[8] = {1, 63, 17, 48, 33, 62, 5, 40};
static const int k4_m[8] = {0, 7, 63, 31, 16, 47, 60, 2};
static void pack_k4(uint8_t s[12]) {
    memset(s, 0, 12);
    for (int k = 0; k < 4; k++) {
        s[k] = (uint8_t)(k4_sc[k] | (k4_sc[k + 4] >> 4) << 6);
        s[k + 4] = (uint8_t)(k4_m[k] | (k4_m[k + 4] >> 4) << 6);
        s[k + 8] = (uint8_t)((k4_sc[k + 4] & 15) | (k4_m[k + 4] & 15) << 4);
    }
}
static int k4_nib(int e) { return (e * 11 + 5 + e / 32 * 7) & 15; }
static int k5_high(int e) { return e % 7 == 0 || e == 255 || (e >= 96 && e < 100); }
static void quant_hand_q4_K_q5_K(void) {
    an_block_q4_K b4;
    an_block_q5_K b5;
    memset(&b4, 0, sizeof b4);
    memset(&b5, 0, sizeof b5);
    b4.d = b5.d = H_D;
    b4.dmin = b5.dmin = H_M;
    pack_k4(b4.scales);
    pack_k4(b5.scales);
    for (int e = 0; e < 256; e++) {
        int c = e / 64, k = (e % 64) / 32, l = e % 32; /* k = 0: low nibble, 1: high nibble */
        b4.qs[32 * c + l] |= (uint8_t)(k4_nib(e) << (4 * k));
        b5.qs[32 * c + l] |= (uint8_t)(k4_nib(e) << (4 * k));
        if (k5_high(e)) b5.qh[l] |= (uint8_t)(1 << (2 * c + k));
    }
    float y[256], want4[256], want5[256];
    for (int e = 0; e < 256; e++) {
        int s = e / 32;
        want4[e] = (F_D * (float)k4_sc[s]) * (float)k4_nib(e) - F_M * (float)k4_m[s];
        want5[e] = (F_D * (float)k4_sc[s]) * (float)(k4_nib(e) + 16 * k5_high(e)) - F_M * (float)k4_m[s];
    }
    an_dequant_row(AN_TYPE_Q4_K, &b4, y, 256);
    check_exact("Q4_K", y, want4, 256);
    an_dequant_row(AN_TYPE_Q5_K, &b5, y, 256);
    check_exact("Q5_K", y, want5, 256);
}

/* Q6_K: signed int8 scales (including -128 and 127), 6-bit codes - 32. */
static int q6_code(int e) { return ((e * 13 + 7 + e / 32 * 5) % 64) - 32; } /* -32..31 */
static void quant_hand_q6_K(void) {
    static const int sc[16] = {-128, 127, -1, 1, -64, 63, 0, 5, -7, 100, -100, 33, -33, 2, -2, 77};
    an_block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = H_D;
    for (int s = 0; s < 16; s++) b.scales[s] = (int8_t)sc[s];
    for (int e = 0; e < 256; e++) {
        int c = q6_code(e) + 32; /* 0..63 */
        int h = e / 128, t = (e % 128) / 32, l = e % 32;
        b.ql[64 * h + 32 * (t % 2) + l] |= (uint8_t)((c & 15) << (t >= 2 ? 4 : 0));
        b.qh[32 * h + l] |= (uint8_t)((c >> 4) << (2 * t));
    }
    float y[256], want[256];
    for (int e = 0; e < 256; e++) want[e] = (F_D * (float)sc[e / 16]) * (float)q6_code(e);
    an_dequant_row(AN_TYPE_Q6_K, &b, y, 256);
    check_exact("Q6_K", y, want, 256);
}

static void quant_hand_q8_K(void) {
    an_block_q8_K b;
    memset(&b, 0, sizeof b);
    b.d = -0.0123f;
    for (int e = 0; e < 256; e++) b.qs[e] = (int8_t)(e - 128);
    float y[256], want[256];
    for (int e = 0; e < 256; e++) want[e] = -0.0123f * (float)(e - 128);
    an_dequant_row(AN_TYPE_Q8_K, &b, y, 256);
    check_exact("Q8_K", y, want, 256);
}

/* ------------------------------------------------------------------------------------------ */
/* quantizers: exact results on constructed inputs                                             */

static void quant_ref_quantizers_exact(void) {
    float x[32];
    /* Q4_0: x[j] = ((j%16) - 8)/2: signed max -4 (first) -> d = -4/-8 = 0.5, code = j%16 */
    for (int j = 0; j < 32; j++) x[j] = (float)((j % 16) - 8) * 0.5f;
    an_block_q4_0 b40;
    T_CHECK(an_quant_row_ref(AN_TYPE_Q4_0, x, &b40, 32), "Q4_0 supported");
    T_CHECK(b40.d == 0x3800, "Q4_0 d = %#06x", b40.d);
    for (int j = 0; j < 16; j++) T_CHECK(b40.qs[j] == (uint8_t)(j | j << 4), "Q4_0 qs[%d] = %#x", j, b40.qs[j]);

    /* Q4_0 with the max positive: x[0] = 4 -> d = -0.5; x = -4 needs code 16 -> capped to 15 */
    for (int j = 0; j < 32; j++) x[j] = 0;
    x[0] = 4.0f;
    x[1] = -4.0f;
    x[2] = 1.0f;
    an_quant_row_ref(AN_TYPE_Q4_0, x, &b40, 32);
    T_CHECK(b40.d == 0xB800, "Q4_0 d = %#06x (want -0.5)", b40.d);
    T_CHECK((b40.qs[0] & 15) == 0 && (b40.qs[1] & 15) == 15 && (b40.qs[2] & 15) == 6,
            "Q4_0 codes %d %d %d", b40.qs[0] & 15, b40.qs[1] & 15, b40.qs[2] & 15);

    /* Q4_1: x[j] = -1 + (j%16)/8 -> min -1, d = (0.875 + 1)/15 = 0.125, code j%16 */
    for (int j = 0; j < 32; j++) x[j] = -1.0f + (float)(j % 16) * 0.125f;
    an_block_q4_1 b41;
    an_quant_row_ref(AN_TYPE_Q4_1, x, &b41, 32);
    T_CHECK(b41.d == 0x3000 && b41.m == 0xBC00, "Q4_1 d %#06x m %#06x", b41.d, b41.m);
    for (int j = 0; j < 16; j++) T_CHECK(b41.qs[j] == (uint8_t)(j | j << 4), "Q4_1 qs[%d] = %#x", j, b41.qs[j]);

    /* Q5_0: x[j] = (j-16)/4 -> signed max -4 -> d = 0.25, code j (bit 4 set for j >= 16) */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.25f;
    an_block_q5_0 b50;
    an_quant_row_ref(AN_TYPE_Q5_0, x, &b50, 32);
    T_CHECK(b50.d == 0x3400, "Q5_0 d = %#06x", b50.d);
    for (int j = 0; j < 16; j++) T_CHECK(b50.qs[j] == (uint8_t)(j | j << 4), "Q5_0 qs[%d] = %#x", j, b50.qs[j]);
    T_CHECK(b50.qh[0] == 0 && b50.qh[1] == 0 && b50.qh[2] == 0xFF && b50.qh[3] == 0xFF, "Q5_0 qh %02x%02x%02x%02x",
            b50.qh[0], b50.qh[1], b50.qh[2], b50.qh[3]);

    /* Q5_1: x[j] = j/16 - 0.5 -> min -0.5, d = (31/16)/31 = 1/16, code j */
    for (int j = 0; j < 32; j++) x[j] = (float)j * 0.0625f - 0.5f;
    an_block_q5_1 b51;
    an_quant_row_ref(AN_TYPE_Q5_1, x, &b51, 32);
    T_CHECK(b51.d == 0x2C00 && b51.m == 0xB800, "Q5_1 d %#06x m %#06x", b51.d, b51.m);
    for (int j = 0; j < 16; j++) T_CHECK(b51.qs[j] == (uint8_t)(j | j << 4), "Q5_1 qs[%d] = %#x", j, b51.qs[j]);
    T_CHECK(b51.qh[0] == 0 && b51.qh[1] == 0 && b51.qh[2] == 0xFF && b51.qh[3] == 0xFF, "Q5_1 qh");

    /* Q8_0 writer reference: amax 127 -> d = 1, id = 1; roundf = half AWAY from zero */
    static const float xs[9] = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -0.5f, 126.5f};
    static const int want_ref[9] = {127, 3, 4, -3, -4, 1, 2, -1, 127};
    for (int j = 0; j < 32; j++) x[j] = j < 9 ? xs[j] : 0.0f;
    an_block_q8_0 b80;
    an_quant_row_ref(AN_TYPE_Q8_0, x, &b80, 32);
    T_CHECK(b80.d == 0x3C00, "Q8_0 ref d = %#06x", b80.d);
    for (int j = 0; j < 9; j++) T_CHECK(b80.qs[j] == want_ref[j], "Q8_0 ref q(%g) = %d, want %d", (double)xs[j], b80.qs[j], want_ref[j]);

    /* all-zero input: every format gives d = 0 and dequantizes to exact zeros */
    static const an_type types[] = {AN_TYPE_Q4_0, AN_TYPE_Q4_1, AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q8_0,
                                    AN_TYPE_Q2_K, AN_TYPE_Q3_K, AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    float z[256] = {0}, y[256];
    unsigned char buf[512];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        an_quant_row_ref(types[k], z, buf, 256);
        an_dequant_row(types[k], buf, y, 256);
        int nz = 0;
        for (int e = 0; e < 256; e++) nz += y[e] != 0.0f;
        T_CHECK(nz == 0, "%s of zeros dequantizes to %d non-zeros", an_type_name(types[k]), nz);
    }

    /* types without a quantizer are refused */
    T_CHECK(!an_quant_row_ref(AN_TYPE_IQ2_XXS, z, buf, 256), "IQ2_XXS has no quantizer");
    T_CHECK(!an_quant_row_ref(AN_TYPE_I32, z, buf, 256), "I32 has no quantizer");
}

/* The reference quantizers' exact output on fixed rows, pinned as FNV-1a hashes. The values
 * come from this implementation, which was checked operation by operation against ggml's
 * quantize_row_*_ref source (and, for Q8_0, reproduces the tinyscribe Q8_0 file byte for byte
 * from its F16 twin), but the K-quant hashes were NOT produced by running ggml. A mismatch
 * means the bytes we write changed: re-verify against ggml before updating a hash. */
static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}
static void quant_ref_quantizers_pinned(void) {
    static const struct { an_type t; uint64_t hash; } cases[] = {
        {AN_TYPE_Q4_0, 0x9b4d7f3e7e91b5fdull}, {AN_TYPE_Q4_1, 0x90eceb29416b80e2ull},
        {AN_TYPE_Q5_0, 0x346cab2fd41556dbull}, {AN_TYPE_Q5_1, 0x62c21b584f10b14full},
        {AN_TYPE_Q8_0, 0xb3f1166c7862ce1aull}, {AN_TYPE_Q2_K, 0x9870c90a71494130ull},
        {AN_TYPE_Q3_K, 0x51978e7e8d7604ccull}, {AN_TYPE_Q4_K, 0x942e9d3727d1fdcaull},
        {AN_TYPE_Q5_K, 0x8002ec69111ee364ull}, {AN_TYPE_Q6_K, 0x07955258ec50f23cull},
    };
    enum { N = 4096 };
    static float x[N];
    static unsigned char q[N * 2];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint64_t h = 0xCBF29CE484222325ull;
        for (int kind = 0; kind < 3; kind++) {
            rng_seed(300 + (uint64_t)kind);
            fill_row(x, N, kind);
            an_quant_row_ref(cases[k].t, x, q, N);
            h = fnv1a(q, row_bytes(cases[k].t, N), h);
        }
        T_CHECK(h == cases[k].hash, "%s quantizer output hash %#018llx, pinned %#018llx", an_type_name(cases[k].t),
                (unsigned long long)h, (unsigned long long)cases[k].hash);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* round trips                                                                                 */

/* Float formats: F32 exact, F16 within half an ulp (2^-11 relative, normal range), BF16 within
 * 2^-8 relative. */
static void quant_roundtrip_float(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static uint16_t h[N];
    rng_seed(11);
    fill_row(x, N, 2);
    an_quant_row_ref(AN_TYPE_F32, x, y, N);
    T_CHECK(memcmp(x, y, sizeof x) == 0, "F32 copy");
    an_quant_row_ref(AN_TYPE_F16, x, h, N);
    an_dequant_row(AN_TYPE_F16, h, y, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(x[i]) >= 0x1p-14f && fabsf(x[i] - y[i]) > fabsf(x[i]) * 0x1p-11f;
    T_CHECK(bad == 0, "F16: %d elements off by more than half an ulp", bad);
    an_quant_row_ref(AN_TYPE_BF16, x, h, N);
    an_dequant_row(AN_TYPE_BF16, h, y, N);
    bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(x[i] - y[i]) > fabsf(x[i]) * 0x1p-8f;
    T_CHECK(bad == 0, "BF16: %d elements off by more than half an ulp", bad);
}

/* 32-element formats, per element, with d the f32 step the quantizer computed (recomputed here
 * from the data) and D the fp16 step stored:
 *   Q8_0:        |x - x'| <= d/2 + 127|d - D|                      (+ 1e-6 relative slack)
 *   Q4_0 / Q5_0: |x - x'| <= |d|/2 + K|d - D|  (K = 8 / 16), except the element(s) of sign
 *                opposite to the signed max with |x| > (K - 0.5)|d|, whose code is capped:
 *                those within |d| + K|d - D|
 *   Q4_1 / Q5_1: |x - x'| <= d/2 + K|d - D| + |min - M|  (K = 15 / 31, M = stored fp16 min) */
static void quant_roundtrip_32(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static unsigned char buf[N * 2];
    static const an_type types[] = {AN_TYPE_Q8_0, AN_TYPE_Q4_0, AN_TYPE_Q5_0, AN_TYPE_Q4_1, AN_TYPE_Q5_1};
    for (int kind = 0; kind < 3; kind++) {
        rng_seed(100 + (uint64_t)kind);
        fill_row(x, N, kind);
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            an_type t = types[k];
            T_CHECK(an_quant_row_ref(t, x, buf, N), "%s", an_type_name(t));
            an_dequant_row(t, buf, y, N);
            int bad = 0;
            double worst = 0;
            for (int ib = 0; ib < N / 32; ib++) {
                const float *xb = x + 32 * ib, *yb = y + 32 * ib;
                float amax = 0, smax = 0, mn = xb[0], mx = xb[0];
                for (int j = 0; j < 32; j++) {
                    if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); smax = xb[j]; }
                    mn = fminf(mn, xb[j]);
                    mx = fmaxf(mx, xb[j]);
                }
                float d, D, M = 0, bound_min = 0;
                int K;
                const unsigned char *blk = buf + row_bytes(t, 32) * (size_t)ib;
                an_f16 hd, hm;
                memcpy(&hd, blk, 2);
                memcpy(&hm, blk + 2, 2);
                D = an_f16_to_f32(hd);
                switch (t) {
                case AN_TYPE_Q8_0: d = amax / 127; K = 127; break;
                case AN_TYPE_Q4_0: d = fabsf(smax / 8); K = 8; D = fabsf(D); break;
                case AN_TYPE_Q5_0: d = fabsf(smax / 16); K = 16; D = fabsf(D); break;
                case AN_TYPE_Q4_1: d = (mx - mn) / 15; K = 15; M = an_f16_to_f32(hm); bound_min = fabsf(mn - M); break;
                default: d = (mx - mn) / 31; K = 31; M = an_f16_to_f32(hm); bound_min = fabsf(mn - M); break;
                }
                float slack = 1e-6f * fmaxf(amax, 1e-30f);
                float half = 0.5f * d + (float)K * fabsf(d - D) + bound_min + slack;
                float full = d + (float)K * fabsf(d - D) + slack;
                for (int j = 0; j < 32; j++) {
                    float err = fabsf(xb[j] - yb[j]);
                    if (err > worst * d) worst = d > 0 ? err / d : 0;
                    bool capped = (t == AN_TYPE_Q4_0 || t == AN_TYPE_Q5_0) && xb[j] * smax < 0 &&
                                  fabsf(xb[j]) > ((float)K - 0.5f) * d;
                    if (err > (capped ? full : half)) {
                        if (bad < 3)
                            T_FAIL("%s kind %d block %d el %d: x %.7g -> %.7g, err %.3g > bound %.3g", an_type_name(t),
                                   kind, ib, j, (double)xb[j], (double)yb[j], (double)err,
                                   (double)(capped ? full : half));
                        bad++;
                    }
                }
            }
            if (kind == 0) t_note("%s: worst |err|/step = %.3f", an_type_name(t), worst);
        }
    }
}

/* K-quants: bound on RMSE(x - x') / SD(x) per data kind: about 1.25x what the reference
 * quantizers reach on these deterministic rows (gaussian: Q2_K 0.29, Q3_K 0.14, Q4_K 0.068,
 * Q5_K 0.035, Q6_K 0.017; each extra bit halves it). The offset rows (kind 1) are hard for
 * the symmetric Q3_K / Q6_K, which spend their range on the offset. A broken packing or
 * scale search lands far past these bounds. */
static void quant_roundtrip_k(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static unsigned char buf[N];
    static const struct { an_type t; double rel[3]; } cases[] = {
        {AN_TYPE_Q2_K, {0.36, 0.45, 0.37}}, {AN_TYPE_Q3_K, {0.18, 0.37, 0.23}},
        {AN_TYPE_Q4_K, {0.086, 0.10, 0.12}}, {AN_TYPE_Q5_K, {0.043, 0.05, 0.061}},
        {AN_TYPE_Q6_K, {0.022, 0.044, 0.037}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int kind = 0; kind < 3; kind++) {
            rng_seed(200 + (uint64_t)kind);
            fill_row(x, N, kind);
            T_CHECK(an_quant_row_ref(cases[k].t, x, buf, N), "%s", an_type_name(cases[k].t));
            an_dequant_row(cases[k].t, buf, y, N);
            double se = 0, sx = 0, mean = 0;
            for (int i = 0; i < N; i++) mean += x[i];
            mean /= N;
            for (int i = 0; i < N; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                sx += ((double)x[i] - mean) * ((double)x[i] - mean); /* spread, not offset */
            }
            double rel = sqrt(se / sx);
            t_note("%s kind %d: rmse/sd = %.4f (bound %.3f)", an_type_name(cases[k].t), kind, rel, cases[k].rel[kind]);
            T_CHECK(rel <= cases[k].rel[kind], "%s kind %d: rmse/sd %.4f > %.3f", an_type_name(cases[k].t), kind, rel,
                    cases[k].rel[kind]);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* activation quantization                                                                     */

static void quant_act_q8_0_rules(void) {
    /* amax = 127 gives d = 1 and id = 127/127 = 1 exactly, so x*id = x and the tie rule shows:
     * round half to EVEN (unlike the Q8_0 writer reference, which rounds half away). */
    static const float xs[10] = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -0.5f, 126.5f, -127.0f};
    static const int want[10] = {127, 2, 4, -2, -4, 0, 2, 0, 126, -127};
    float x[32] = {0};
    memcpy(x, xs, sizeof xs);
    an_block_q8_0 b;
    an_quant_act_row(AN_TYPE_Q8_0, x, &b, 32);
    T_CHECK(b.d == 0x3C00, "act Q8_0 d = %#06x", b.d);
    for (int j = 0; j < 10; j++) T_CHECK(b.qs[j] == want[j], "act q(%g) = %d, want %d", (double)xs[j], b.qs[j], want[j]);

    an_block_q8_1 b1;
    an_quant_act_row(AN_TYPE_Q8_1, x, &b1, 32);
    int sum = 0;
    for (int j = 0; j < 10; j++) sum += want[j];
    T_CHECK(b1.d == 0x3C00 && memcmp(b1.qs, b.qs, 32) == 0, "act Q8_1 matches Q8_0");
    T_CHECK(b1.s == an_f32_to_f16((float)sum), "act Q8_1 s = %#06x, want fp16(%d)", b1.s, sum);

    /* Random rows: d = fp16(amax/127), q = rint(x * (127/amax)) (rint rounds half to even in
     * the default mode), s = fp16(d * sum q) with the f32 d. */
    enum { N = 1024 };
    static float xr[N];
    static an_block_q8_0 q0[N / 32];
    static an_block_q8_1 q1[N / 32];
    rng_seed(7);
    fill_row(xr, N, 2);
    an_quant_act_row(AN_TYPE_Q8_0, xr, q0, N);
    an_quant_act_row(AN_TYPE_Q8_1, xr, q1, N);
    int bad = 0;
    for (int ib = 0; ib < N / 32; ib++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xr[32 * ib + j]));
        float d = amax / 127.f, id = 127.f / amax;
        int s = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)rintf(xr[32 * ib + j] * id);
            s += q;
            bad += q0[ib].qs[j] != q || q1[ib].qs[j] != q;
        }
        bad += q0[ib].d != an_f32_to_f16(d) || q1[ib].d != an_f32_to_f16(d);
        bad += q1[ib].s != an_f32_to_f16(d * (float)s);
    }
    T_CHECK(bad == 0, "%d mismatches against d = amax/127, id = 127/amax, round-half-even", bad);

    /* id = 127/amax and 1/(amax/127) differ by an ulp for some amax; find one where that
     * changes a code and check the activation path uses 127/amax. */
    int found = 0;
    for (uint32_t k = 0; k < 200000 && !found; k++) {
        float amax = 1.0f + (float)k * 0x1p-20f;
        float id_avx = 127.f / amax, id_ref = 1.0f / (amax / 127.f);
        if (id_avx == id_ref) continue;
        for (int c = 0; c < 127 && !found; c++) {
            float v = amax * ((float)c + 0.5f) / 127.f;
            for (int u = -3; u <= 3 && !found; u++) {
                float vv = nextafterf(v, u < 0 ? 0.f : 1000.f);
                for (int r = 0; r < (u < 0 ? -u : u); r++) vv = nextafterf(vv, u < 0 ? 0.f : 1000.f);
                if (rintf(vv * id_avx) == rintf(vv * id_ref)) continue;
                float xb[32] = {0};
                xb[0] = amax;
                xb[1] = vv;
                an_block_q8_0 bb;
                an_quant_act_row(AN_TYPE_Q8_0, xb, &bb, 32);
                T_CHECK(bb.qs[1] == (int)rintf(vv * id_avx), "id = 127/amax: q = %d, want %d (1/d gives %d)", bb.qs[1],
                        (int)rintf(vv * id_avx), (int)rintf(vv * id_ref));
                found = 1;
            }
        }
    }
    if (!found) t_note("no amax found where 127/amax and 1/(amax/127) change a code");
}

static void quant_act_q8_K_rules(void) {
    float x[256] = {0};
    an_block_q8_K b;
    /* max element -127 (negative): iscale = -127/-127 = 1, d = 1; ties go to even */
    x[0] = -127.0f;
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -0.5f;
    x[17] = 100.0f;
    an_quant_act_row(AN_TYPE_Q8_K, x, &b, 256);
    T_CHECK(b.d == 1.0f, "q8_K d = %g", (double)b.d);
    T_CHECK(b.qs[0] == -127 && b.qs[1] == 2 && b.qs[2] == 4 && b.qs[3] == 0 && b.qs[17] == 100, "q8_K codes %d %d %d %d %d",
            b.qs[0], b.qs[1], b.qs[2], b.qs[3], b.qs[17]);
    T_CHECK(b.bsums[0] == -127 + 2 + 4 && b.bsums[1] == 100 && b.bsums[2] == 0, "q8_K bsums %d %d %d", b.bsums[0],
            b.bsums[1], b.bsums[2]);

    /* max element +127: iscale = -1, d = -1 (NEGATIVE), every code has the opposite sign */
    x[0] = 127.0f;
    an_quant_act_row(AN_TYPE_Q8_K, x, &b, 256);
    T_CHECK(b.d == -1.0f, "q8_K d = %g, want -1", (double)b.d);
    T_CHECK(b.qs[0] == -127 && b.qs[1] == -2 && b.qs[2] == -4 && b.qs[17] == -100, "q8_K codes %d %d %d %d", b.qs[0],
            b.qs[1], b.qs[2], b.qs[17]);

    /* random: d = 1/iscale, q = min(127, rint(iscale*x)), bsums are sums of 16 */
    enum { N = 1024 };
    static float xr[N];
    static an_block_q8_K qk[N / 256];
    rng_seed(8);
    fill_row(xr, N, 1);
    an_quant_act_row(AN_TYPE_Q8_K, xr, qk, N);
    int bad = 0;
    for (int ib = 0; ib < N / 256; ib++) {
        const float *xb = xr + 256 * ib;
        float amax = 0, max = 0;
        for (int e = 0; e < 256; e++)
            if (fabsf(xb[e]) > amax) { amax = fabsf(xb[e]); max = xb[e]; }
        float iscale = -127.f / max;
        bad += memcmp(&qk[ib].d, &(float){1 / iscale}, 4) != 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                int q = (int)fminf(127.f, rintf(iscale * xb[16 * g + l]));
                bad += qk[ib].qs[16 * g + l] != q;
                s += q;
            }
            bad += qk[ib].bsums[g] != s;
        }
    }
    T_CHECK(bad == 0, "%d q8_K mismatches", bad);

    /* all zero: d = 0, codes and bsums 0 */
    memset(x, 0, sizeof x);
    memset(&b, 0x55, sizeof b);
    an_quant_act_row(AN_TYPE_Q8_K, x, &b, 256);
    int nz = 0;
    for (int e = 0; e < 256; e++) nz += b.qs[e] != 0;
    for (int g = 0; g < 16; g++) nz += b.bsums[g] != 0;
    T_CHECK(b.d == 0.0f && nz == 0, "q8_K of zeros: d %g, %d non-zero fields", (double)b.d, nz);

    /* F16 / BF16 activations are round-to-nearest-even conversions */
    float xf[4] = {1.0f + 0x1p-11f, 1.0f + 0x1.8p-10f, -3.0f, 0.1f};
    uint16_t h[4];
    an_quant_act_row(AN_TYPE_F16, xf, h, 4);
    T_CHECK(h[0] == 0x3C00 && h[1] == 0x3C02 && h[2] == 0xC200 && h[3] == 0x2E66, "F16 act %04x %04x %04x %04x", h[0],
            h[1], h[2], h[3]);
    an_quant_act_row(AN_TYPE_BF16, xf, h, 4);
    T_CHECK(h[2] == 0xC040 && h[3] == 0x3DCD, "BF16 act %04x %04x", h[2], h[3]);
}

/* Q8_K round trip: |x - d q| <= |d|/2 (+ slack). */
static void quant_roundtrip_q8_K(void) {
    enum { N = 2048 };
    static float x[N], y[N];
    static an_block_q8_K b[N / 256];
    rng_seed(9);
    fill_row(x, N, 2);
    an_quant_act_row(AN_TYPE_Q8_K, x, b, N);
    an_dequant_row(AN_TYPE_Q8_K, b, y, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float d = fabsf(b[i / 256].d);
        if (fabsf(x[i] - y[i]) > 0.5f * d * (1 + 1e-5f)) bad++;
    }
    T_CHECK(bad == 0, "%d Q8_K elements off by more than half a step", bad);
}

/* ------------------------------------------------------------------------------------------ */
/* dot products                                                                                */

/* For every weight type and n in {256, 512, 4096}: weights quantized with the reference
 * quantizer, activations with an_quant_act_row(vec_dot_type); expected = sum over i of
 * dequant(w)_i * dequant(a)_i in double. The reference dot product uses exact integer sums,
 * so the only differences are float roundings of the per-element dequantization and of the
 * per-block scales: bound |got - expected| <= 1e-5 * sum |w_i a_i| (plus, for Q4_1/Q5_1, the
 * fp16 rounding of Q8_1's s, see below). */
static void quant_vec_dot_vs_dequant(void) {
    static const an_type types[] = {AN_TYPE_F32, AN_TYPE_F16, AN_TYPE_BF16, AN_TYPE_Q4_0, AN_TYPE_Q4_1,
                                    AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q8_0, AN_TYPE_Q2_K, AN_TYPE_Q3_K,
                                    AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    static const int64_t ns[] = {256, 512, 4096};
    enum { NMAX = 4096 };
    static float w[NMAX], a[NMAX], wd[NMAX], ad[NMAX];
    static unsigned char wq[NMAX * 4], aq[NMAX * 4];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        an_type t = types[k], vt = an_quant_vec_dot_type(t);
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
            int64_t n = ns[in];
            rng_seed(1000 + 17 * k + in);
            fill_row(w, n, (int)(in % 3));
            fill_row(a, n, (int)((in + 1) % 3));
            T_CHECK(an_quant_row_ref(t, w, wq, n), "%s quantizes", an_type_name(t));
            an_quant_act_row(vt, a, aq, n);
            an_dequant_row(t, wq, wd, n);
            an_dequant_row(vt, aq, ad, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                want += (double)wd[i] * (double)ad[i];
                mag += fabs((double)wd[i] * (double)ad[i]);
            }
            /* Q8_1's s = fp16(d * sum q) with the f32 d, while the dequantized activation
             * sums to D * sum q with the fp16 D: the m*s term differs by |m| * |s - D sum q|
             * per block, an inherent difference added to the bound. */
            double extra = 0;
            if (vt == AN_TYPE_Q8_1) {
                for (int64_t ib = 0; ib < n / 32; ib++) {
                    an_block_q8_1 ab;
                    an_f16 m16;
                    memcpy(&ab, aq + (size_t)ib * sizeof ab, sizeof ab);
                    memcpy(&m16, wq + (size_t)ib * row_bytes(t, 32) + 2, 2); /* m follows d */
                    int sq = 0;
                    for (int j = 0; j < 32; j++) sq += ab.qs[j];
                    extra += fabs((double)an_f16_to_f32(m16)) *
                             fabs((double)an_f16_to_f32(ab.s) - (double)an_f16_to_f32(ab.d) * sq);
                }
            }
            float got = an_vec_dot_ref(t, n, wq, aq);
            double err = fabs((double)got - want);
            T_CHECK(err <= 1e-5 * mag + extra, "%s n=%lld: got %.9g want %.9g (err %.3g, scale %.3g)", an_type_name(t),
                    (long long)n, (double)got, want, err, mag);
            /* and the whole pipeline approximates the float dot product */
            double exact = 0, emag = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)w[i] * a[i];
                emag += fabs((double)w[i] * a[i]);
            }
            T_CHECK(fabs((double)got - exact) <= 0.5 * emag, "%s n=%lld: %.6g vs float dot %.6g", an_type_name(t),
                    (long long)n, (double)got, exact);
        }
    }
}

/* Dot product checked against a value worked out by hand: Q4_1 x Q8_1 uses the m*s term. */
static void quant_vec_dot_hand(void) {
    an_block_q4_1 w;
    an_block_q8_1 a;
    w.d = 0x3C00;  /* 1 */
    w.m = 0xC000;  /* -2 */
    a.d = 0x3800;  /* 0.5 */
    memset(w.qs, 0, sizeof w.qs);
    for (int e = 0; e < 32; e++) a.qs[e] = 0;
    w.qs[0] = 0x3 | 0x5 << 4; /* element 0 -> 3, element 16 -> 5 */
    a.qs[0] = 4;
    a.qs[16] = -2;
    a.qs[5] = 10;
    a.s = an_f32_to_f16(0.5f * (4 - 2 + 10)); /* d * sum(qs) = 6 */
    /* sum_e (q_e*1 - 2) * (0.5*a_e) = 0.5*(3*4 + 5*(-2) + 0*10) - 2*6 = 1 - 12 = -11 */
    float got = an_vec_dot_ref(AN_TYPE_Q4_1, 32, &w, &a);
    T_CHECK(got == -11.0f, "Q4_1.Q8_1 = %g, want -11", (double)got);

    an_block_q8_0 x0, y0;
    x0.d = 0x4000; /* 2 */
    y0.d = 0x3400; /* 0.25 */
    for (int e = 0; e < 32; e++) {
        x0.qs[e] = (int8_t)(e - 16);
        y0.qs[e] = (int8_t)(e % 3 - 1);
    }
    int s = 0;
    for (int e = 0; e < 32; e++) s += (e - 16) * (e % 3 - 1);
    got = an_vec_dot_ref(AN_TYPE_Q8_0, 32, &x0, &y0);
    T_CHECK(got == (float)s * 0.5f, "Q8_0.Q8_0 = %g, want %g", (double)got, (double)s * 0.5);
    T_CHECK(isnan(an_vec_dot_ref(AN_TYPE_IQ2_XXS, 256, &x0, &y0)), "unsupported type gives NaN");
}

/* ------------------------------------------------------------------------------------------ */
/* misc                                                                                        */

static void quant_type_tables(void) {
    static const uint32_t weight[] = {0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 30};
    int nweight = 0;
    for (uint32_t t = 0; t < 64; t++) nweight += an_quant_is_weight_type(t);
    T_CHECK(nweight == 13, "%d weight types, want 13", nweight);
    for (size_t i = 0; i < sizeof weight / sizeof weight[0]; i++)
        T_CHECK(an_quant_is_weight_type(weight[i]), "type %u is a weight type", weight[i]);
    T_CHECK(!an_quant_is_weight_type(AN_TYPE_Q8_K) && !an_quant_is_weight_type(AN_TYPE_Q8_1) &&
                !an_quant_is_weight_type(1000),
            "activation-only and unknown types are not weight types");
    struct { an_type t, v; } vd[] = {
        {AN_TYPE_F32, AN_TYPE_F32}, {AN_TYPE_F16, AN_TYPE_F16}, {AN_TYPE_BF16, AN_TYPE_BF16},
        {AN_TYPE_Q4_0, AN_TYPE_Q8_0}, {AN_TYPE_Q5_0, AN_TYPE_Q8_0}, {AN_TYPE_Q8_0, AN_TYPE_Q8_0},
        {AN_TYPE_Q4_1, AN_TYPE_Q8_1}, {AN_TYPE_Q5_1, AN_TYPE_Q8_1}, {AN_TYPE_Q2_K, AN_TYPE_Q8_K},
        {AN_TYPE_Q3_K, AN_TYPE_Q8_K}, {AN_TYPE_Q4_K, AN_TYPE_Q8_K}, {AN_TYPE_Q5_K, AN_TYPE_Q8_K},
        {AN_TYPE_Q6_K, AN_TYPE_Q8_K},
    };
    for (size_t i = 0; i < sizeof vd / sizeof vd[0]; i++)
        T_CHECK(an_quant_vec_dot_type(vd[i].t) == vd[i].v, "vec_dot_type(%s) = %d", an_type_name(vd[i].t),
                an_quant_vec_dot_type(vd[i].t));
    /* the block structs agree with the type table */
    struct { an_type t; size_t size; } sz[] = {
        {AN_TYPE_Q4_0, sizeof(an_block_q4_0)}, {AN_TYPE_Q4_1, sizeof(an_block_q4_1)},
        {AN_TYPE_Q5_0, sizeof(an_block_q5_0)}, {AN_TYPE_Q5_1, sizeof(an_block_q5_1)},
        {AN_TYPE_Q8_0, sizeof(an_block_q8_0)}, {AN_TYPE_Q8_1, sizeof(an_block_q8_1)},
        {AN_TYPE_Q2_K, sizeof(an_block_q2_K)}, {AN_TYPE_Q3_K, sizeof(an_block_q3_K)},
        {AN_TYPE_Q4_K, sizeof(an_block_q4_K)}, {AN_TYPE_Q5_K, sizeof(an_block_q5_K)},
        {AN_TYPE_Q6_K, sizeof(an_block_q6_K)}, {AN_TYPE_Q8_K, sizeof(an_block_q8_K)},
    };
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        const an_type_traits *tt = an_type_traits_get(sz[i].t);
        T_CHECK(tt && tt->size == sz[i].size, "%s block size", an_type_name(sz[i].t));
    }
}

/* Data straight from a mapped file need not be aligned: decode from an odd address too. */
static void quant_unaligned(void) {
    static const an_type types[] = {AN_TYPE_F16, AN_TYPE_Q4_0, AN_TYPE_Q5_1, AN_TYPE_Q8_0, AN_TYPE_Q2_K,
                                    AN_TYPE_Q3_K, AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    enum { N = 512 };
    static float x[N], y0[N], y1[N], a[N];
    static unsigned char q[N * 4], qa[N * 4 + 1], act[N * 4], acta[N * 4 + 1];
    rng_seed(5);
    fill_row(x, N, 0);
    fill_row(a, N, 1);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        an_type t = types[k], vt = an_quant_vec_dot_type(t);
        size_t nb = row_bytes(t, N), na = row_bytes(vt, N);
        an_quant_row_ref(t, x, q, N);
        memcpy(qa + 1, q, nb);
        an_dequant_row(t, q, y0, N);
        an_dequant_row(t, qa + 1, y1, N);
        T_CHECK(memcmp(y0, y1, sizeof y0) == 0, "%s unaligned dequant", an_type_name(t));
        an_quant_act_row(vt, a, act, N);
        memcpy(acta + 1, act, na);
        float d0 = an_vec_dot_ref(t, N, q, act), d1 = an_vec_dot_ref(t, N, qa + 1, acta + 1);
        T_CHECK(memcmp(&d0, &d1, 4) == 0, "%s unaligned dot", an_type_name(t));
    }
}

/* Dequantizing a 4096 x 4096 Q4_K matrix must take well under a second (scalar). */
static void quant_dequant_speed(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static unsigned char q[N];
    rng_seed(3);
    fill_row(x, N, 0);
    an_quant_row_ref(AN_TYPE_Q4_K, x, q, N);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double acc = 0;
    for (int r = 0; r < N; r++) {
        an_dequant_row(AN_TYPE_Q4_K, q, y, N);
        acc += y[r];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    t_note("4096x4096 Q4_K dequant: %.3f s (checksum %.3g)", s, acc);
    T_CHECK(s < 5.0, "dequant took %.2f s", s); /* generous: sanitizer builds are slower */
}

const t_case t_suite_quant[] = {
    {"fp16_helpers", quant_fp16_helpers},
    {"type_tables", quant_type_tables},
    {"hand_float_types", quant_hand_float_types},
    {"hand_q4_0_q4_1", quant_hand_q4_0_q4_1},
    {"hand_q5_0_q5_1", quant_hand_q5},
    {"hand_q8_0_q8_1", quant_hand_q8_0},
    {"hand_q2_K", quant_hand_q2_K},
    {"hand_q3_K", quant_hand_q3_K},
    {"hand_q4_K_q5_K", quant_hand_q4_K_q5_K},
    {"hand_q6_K", quant_hand_q6_K},
    {"hand_q8_K", quant_hand_q8_K},
    {"ref_quantizers_exact", quant_ref_quantizers_exact},
    {"ref_quantizers_pinned", quant_ref_quantizers_pinned},
    {"roundtrip_float", quant_roundtrip_float},
    {"roundtrip_32", quant_roundtrip_32},
    {"roundtrip_k", quant_roundtrip_k},
    {"roundtrip_q8_K", quant_roundtrip_q8_K},
    {"act_q8_0_q8_1_rules", quant_act_q8_0_rules},
    {"act_q8_K_f16_rules", quant_act_q8_K_rules},
    {"vec_dot_vs_dequant", quant_vec_dot_vs_dequant},
    {"vec_dot_hand", quant_vec_dot_hand},
    {"unaligned", quant_unaligned},
    {"dequant_speed", quant_dequant_speed},
    {0, 0},
};
