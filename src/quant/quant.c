/* quant.c — scalar reference code for the float and 32-element block formats (F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) and the type dispatch; the K-quants live in quant_k.c.
 *
 * Every arithmetic expression below keeps the association order of ggml's reference C code
 * (src/ggml-quants.c, src/ggml-cpu/quants.c), because the results must match it bit for bit:
 * float multiplication is commutative but not associative, so (d*sc)*q != d*(sc*q) in general.
 * Blocks are memcpy'd into locals so callers may hand us unaligned data (e.g. a mmapped file).
 *
 * Block layouts (32 elements each; e = element index within the block, all LE):
 *
 *   Q4_0  | d:f16 | qs[16] |                       18 B   x[e] = (q[e] - 8) * d
 *   Q4_1  | d:f16 | m:f16 | qs[16] |               20 B   x[e] = q[e] * d + m
 *         qs[j] = q[j] (low nibble) | q[j+16] << 4 (high nibble), j = 0..15
 *         i.e. low nibbles are elements 0..15, high nibbles elements 16..31 (not pairs).
 *
 *   Q5_0  | d:f16 | qh[4] | qs[16] |               22 B   x[e] = (q[e] - 16) * d
 *   Q5_1  | d:f16 | m:f16 | qh[4] | qs[16] |       24 B   x[e] = q[e] * d + m
 *         low 4 bits of q[e] as in Q4_0; bit 4 of q[e] = bit e of qh read as a LE u32
 *         (qh bit j <-> element j, bit j+16 <-> element j+16).
 *
 *   Q8_0  | d:f16 | qs[32]:i8 |                    34 B   x[e] = qs[e] * d
 *   Q8_1  | d:f16 | s:f16 | qs[32]:i8 |            36 B   x[e] = qs[e] * d, s = fp16(d*sum(qs))
 */
#include "quant/quant_internal.h"

#include <float.h>

_Static_assert(sizeof(an_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(an_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(an_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(an_block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(an_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(an_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(an_block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(an_block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(an_block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(an_block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(an_block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(an_block_q8_K) == 292, "q8_K size");

/* ------------------------------------------------------------------------------------------ */
/* Type classification                                                                         */

bool an_quant_is_weight_type(uint32_t t) {
    switch (t) {
    case AN_TYPE_F32: case AN_TYPE_F16: case AN_TYPE_BF16:
    case AN_TYPE_Q4_0: case AN_TYPE_Q4_1: case AN_TYPE_Q5_0: case AN_TYPE_Q5_1: case AN_TYPE_Q8_0:
    case AN_TYPE_Q2_K: case AN_TYPE_Q3_K: case AN_TYPE_Q4_K: case AN_TYPE_Q5_K: case AN_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* ggml's CPU vec_dot_type table (ggml-cpu.c type_traits_cpu), extended to the types we do not
 * compute with so callers can report what llama.cpp would do; AN_TYPE_COUNT means "no dot
 * product defined" (integer types, F64, unknown ids). */
an_type an_quant_vec_dot_type(an_type t) {
    switch (t) {
    case AN_TYPE_F32: return AN_TYPE_F32;
    case AN_TYPE_F16: return AN_TYPE_F16;
    case AN_TYPE_BF16: return AN_TYPE_BF16;
    case AN_TYPE_Q4_0: case AN_TYPE_Q5_0: case AN_TYPE_Q8_0: case AN_TYPE_IQ4_NL:
    case AN_TYPE_MXFP4: case AN_TYPE_NVFP4: case AN_TYPE_Q1_0: case AN_TYPE_Q2_0:
        return AN_TYPE_Q8_0;
    case AN_TYPE_Q4_1: case AN_TYPE_Q5_1: case AN_TYPE_Q8_1:
        return AN_TYPE_Q8_1;
    case AN_TYPE_Q2_K: case AN_TYPE_Q3_K: case AN_TYPE_Q4_K: case AN_TYPE_Q5_K: case AN_TYPE_Q6_K:
    case AN_TYPE_Q8_K: case AN_TYPE_IQ2_XXS: case AN_TYPE_IQ2_XS: case AN_TYPE_IQ3_XXS:
    case AN_TYPE_IQ1_S: case AN_TYPE_IQ3_S: case AN_TYPE_IQ2_S: case AN_TYPE_IQ4_XS:
    case AN_TYPE_IQ1_M: case AN_TYPE_TQ1_0: case AN_TYPE_TQ2_0:
        return AN_TYPE_Q8_K;
    default:
        return AN_TYPE_COUNT;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Dequantization                                                                              */

static void dequant_f16(const void *x, float *y, int64_t n) {
    const unsigned char *p = x;
    for (int64_t i = 0; i < n; i++) {
        an_f16 h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = an_f16_to_f32(h);
    }
}

static void dequant_bf16(const void *x, float *y, int64_t n) {
    const unsigned char *p = x;
    for (int64_t i = 0; i < n; i++) {
        an_bf16 h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = an_bf16_to_f32(h);
    }
}

static void dequant_q4_0(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q4_0 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b.qs[j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((b.qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q4_1 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d), m = an_q_h2f(b.m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b.qs[j] & 0x0F) * d + m;
            y[j + 16] = (float)(b.qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 5-bit value of element e (0..31) of a Q5 block: nibble from qs, bit 4 from qh bit e. */
static inline int q5_value(const uint8_t *qs, uint32_t qh, int e) {
    int lo = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    return lo | (int)((qh >> e) & 1u) << 4;
}

static void dequant_q5_0(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q5_0 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d);
        const uint32_t qh = le32(b.qh);
        for (int e = 0; e < 32; e++) y[e] = (float)(q5_value(b.qs, qh, e) - 16) * d;
    }
}

static void dequant_q5_1(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q5_1 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d), m = an_q_h2f(b.m);
        const uint32_t qh = le32(b.qh);
        for (int e = 0; e < 32; e++) y[e] = (float)q5_value(b.qs, qh, e) * d + m;
    }
}

static void dequant_q8_0(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q8_0 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d);
        for (int e = 0; e < 32; e++) y[e] = (float)b.qs[e] * d;
    }
}

static void dequant_q8_1(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        an_block_q8_1 b;
        memcpy(&b, (const unsigned char *)x + i * sizeof b, sizeof b);
        const float d = an_q_h2f(b.d);
        for (int e = 0; e < 32; e++) y[e] = (float)b.qs[e] * d;
    }
}

/* Unsupported types and partial trailing blocks: the contract says neither happens; we write
 * zeros rather than leave garbage or abort. */
void an_dequant_row(an_type t, const void *x, float *y, int64_t n) {
    if (n <= 0) return;
    const int64_t n32 = n / 32, n256 = n / 256;
    int64_t done = 0;
    switch (t) {
    case AN_TYPE_F32: memcpy(y, x, (size_t)n * sizeof(float)); done = n; break;
    case AN_TYPE_F16: dequant_f16(x, y, n); done = n; break;
    case AN_TYPE_BF16: dequant_bf16(x, y, n); done = n; break;
    case AN_TYPE_Q4_0: dequant_q4_0(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q4_1: dequant_q4_1(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q5_0: dequant_q5_0(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q5_1: dequant_q5_1(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q8_0: dequant_q8_0(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q8_1: dequant_q8_1(x, y, n32); done = n32 * 32; break;
    case AN_TYPE_Q2_K: an_dequant_q2_K(x, y, n256); done = n256 * 256; break;
    case AN_TYPE_Q3_K: an_dequant_q3_K(x, y, n256); done = n256 * 256; break;
    case AN_TYPE_Q4_K: an_dequant_q4_K(x, y, n256); done = n256 * 256; break;
    case AN_TYPE_Q5_K: an_dequant_q5_K(x, y, n256); done = n256 * 256; break;
    case AN_TYPE_Q6_K: an_dequant_q6_K(x, y, n256); done = n256 * 256; break;
    case AN_TYPE_Q8_K: an_dequant_q8_K(x, y, n256); done = n256 * 256; break;
    default: break;
    }
    if (done < n) memset(y + done, 0, (size_t)(n - done) * sizeof(float));
}

/* ------------------------------------------------------------------------------------------ */
/* Reference (weight) quantizers: ggml's quantize_row_*_ref                                    */

static void store_f16_row(const float *x, void *y, int64_t n) {
    unsigned char *p = y;
    for (int64_t i = 0; i < n; i++) {
        an_f16 h = an_f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void store_bf16_row(const float *x, void *y, int64_t n) {
    unsigned char *p = y;
    for (int64_t i = 0; i < n; i++) {
        an_bf16 h = an_f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* The element of largest magnitude in x[0..32), with its sign; the first one wins ties. */
static float signed_absmax32(const float *x) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

/* The smallest and largest of x[0..32). */
static void min_max32(const float *x, float *min, float *max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

/* Q4_0 / Q5_0: d = (the signed element of largest magnitude, first wins) / -2^(bits-1), so
 * that element maps to code 0 exactly; q = trunc(x/d + 2^(bits-1) + 0.5) capped at the top
 * code. (The element of opposite sign and equal magnitude would need code 2^bits and is
 * capped, so its error can reach |d|.) id = 1/d from the f32 d. */
static void quantize_q4_0(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float max = signed_absmax32(x);
        const float d = max / -8;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q4_0 b;
        b.d = an_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            /* ggml: MIN(15, (int8_t)(x*id + 8.5f)); the sum is in [0, 16.5] for finite data */
            int q0 = an_q_clamp_int(x[j] * id + 8.5f, 0, 15);
            int q1 = an_q_clamp_int(x[j + 16] * id + 8.5f, 0, 15);
            b.qs[j] = (uint8_t)(q0 | q1 << 4);
        }
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

static void quantize_q5_0(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float max = signed_absmax32(x);
        const float d = max / -16;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q5_0 b;
        b.d = an_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = an_q_clamp_int(x[j] * id + 16.5f, 0, 31);
            int q1 = an_q_clamp_int(x[j + 16] * id + 16.5f, 0, 31);
            b.qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) b.qh[k] = (uint8_t)(qh >> (8 * k));
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

/* Q4_1 / Q5_1: d = (max - min)/(2^bits - 1), m = min, q = trunc((x - min)/d + 0.5). ggml's
 * Q5_1 has no cap at 31 (the quotient cannot exceed 31.5 for finite data); we clamp anyway. */
static void quantize_q4_1(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min, max;
        min_max32(x, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q4_1 b;
        b.d = an_f32_to_f16(d);
        b.m = an_f32_to_f16(min);
        for (int j = 0; j < 16; j++) {
            int q0 = an_q_clamp_int((x[j] - min) * id + 0.5f, 0, 15);
            int q1 = an_q_clamp_int((x[j + 16] - min) * id + 0.5f, 0, 15);
            b.qs[j] = (uint8_t)(q0 | q1 << 4);
        }
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

static void quantize_q5_1(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min, max;
        min_max32(x, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q5_1 b;
        b.d = an_f32_to_f16(d);
        b.m = an_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = an_q_clamp_int((x[j] - min) * id + 0.5f, 0, 31);
            int q1 = an_q_clamp_int((x[j + 16] - min) * id + 0.5f, 0, 31);
            b.qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) b.qh[k] = (uint8_t)(qh >> (8 * k));
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

/* roundf (half away from zero) then the int8 store; clamped so NaN/inf cannot hit UB. */
static inline int8_t round_away_i8(float v) {
    float r = roundf(v);
    return (int8_t)an_q_clamp_int(r, -128, 127);
}

/* Q8_0 writer reference: amax/127 as d, id = 1/d from the f32 d (not 127/amax), roundf. This is
 * what produced the tinyscribe Q8_0 file from its F16 twin. */
static void quantize_q8_0_ref(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.f;
        for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q8_0 b;
        b.d = an_f32_to_f16(d);
        for (int j = 0; j < 32; j++) b.qs[j] = round_away_i8(x[j] * id);
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

static void quantize_q8_1_ref(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.f;
        for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d != 0.f ? 1.0f / d : 0.0f;
        an_block_q8_1 b;
        b.d = an_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            b.qs[j] = round_away_i8(x[j] * id);
            sum += b.qs[j];
        }
        b.s = an_f32_to_f16((float)sum * d);
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

bool an_quant_row_ref(an_type t, const float *x, void *y, int64_t n) {
    if (n < 0) return false;
    const int64_t n32 = n / 32, n256 = n / 256;
    switch (t) {
    case AN_TYPE_F32: memcpy(y, x, (size_t)n * sizeof(float)); return true;
    case AN_TYPE_F16: store_f16_row(x, y, n); return true;
    case AN_TYPE_BF16: store_bf16_row(x, y, n); return true;
    case AN_TYPE_Q4_0: quantize_q4_0(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q4_1: quantize_q4_1(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q5_0: quantize_q5_0(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q5_1: quantize_q5_1(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q8_0: quantize_q8_0_ref(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q8_1: quantize_q8_1_ref(x, y, n32); return n % 32 == 0;
    case AN_TYPE_Q2_K: an_quantize_q2_K(x, y, n256); return n % 256 == 0;
    case AN_TYPE_Q3_K: an_quantize_q3_K(x, y, n256); return n % 256 == 0;
    case AN_TYPE_Q4_K: an_quantize_q4_K(x, y, n256); return n % 256 == 0;
    case AN_TYPE_Q5_K: an_quantize_q5_K(x, y, n256); return n % 256 == 0;
    case AN_TYPE_Q6_K: an_quantize_q6_K(x, y, n256); return n % 256 == 0;
    case AN_TYPE_Q8_K: an_quantize_q8_K(x, y, n256); return n % 256 == 0;
    default: return false;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Activation quantization (llama.cpp's x86 AVX2 from_float for the vec_dot types)             */

/* Rounding of x*id in the AVX2 path: _mm256_round_ps(NEAREST) = half to even, then
 * cvtps_epi32 and saturating packs to int8. an_q_nearest_int is the same rounding for the
 * magnitudes that occur (|x*id| <= 127 + ulp), the clamp mirrors the saturation. */
static inline int8_t round_even_i8(float v) {
    int r = an_q_nearest_int(v);
    return (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
}

/* Shared by Q8_0 and Q8_1: d = amax/127 (stored fp16), id = 127/amax — NOT 1/d, which can
 * differ by an ulp — and q = round_half_even(x*id). Returns the f32 d and sum(q). */
static float act_q8_block(const float *x, int8_t *qs, int *sum_out) {
    float amax = 0.f;
    for (int j = 0; j < 32; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = round_even_i8(x[j] * id);
        sum += qs[j];
    }
    *sum_out = sum;
    return d;
}

static void act_q8_0(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        an_block_q8_0 b;
        int sum;
        float d = act_q8_block(x, b.qs, &sum);
        b.d = an_f32_to_f16(d);
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

static void act_q8_1(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        an_block_q8_1 b;
        int sum;
        float d = act_q8_block(x, b.qs, &sum);
        b.d = an_f32_to_f16(d);
        b.s = an_f32_to_f16(d * (float)sum); /* the f32 d, not the fp16-rounded one */
        memcpy((unsigned char *)y + i * sizeof b, &b, sizeof b);
    }
}

void an_quant_act_row(an_type t, const float *x, void *y, int64_t n) {
    if (n <= 0) return;
    switch (t) {
    case AN_TYPE_F32: memcpy(y, x, (size_t)n * sizeof(float)); break;
    case AN_TYPE_F16: store_f16_row(x, y, n); break;
    case AN_TYPE_BF16: store_bf16_row(x, y, n); break;
    case AN_TYPE_Q8_0: act_q8_0(x, y, n / 32); break;
    case AN_TYPE_Q8_1: act_q8_1(x, y, n / 32); break;
    case AN_TYPE_Q8_K: an_quantize_q8_K(x, y, n / 256); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Reference dot products                                                                       */

/* Float rows: each product rounded to float (as ggml's scalar vec_dot_f32/f16/bf16 does),
 * accumulated in double (ggml_float). */
static double dot_f32(const void *w, const void *a, int64_t n) {
    const unsigned char *pw = w, *pa = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        float x, y;
        memcpy(&x, pw + 4 * i, 4);
        memcpy(&y, pa + 4 * i, 4);
        s += (double)(x * y);
    }
    return s;
}

static double dot_f16(const void *w, const void *a, int64_t n, bool bf) {
    const unsigned char *pw = w, *pa = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t hx, hy;
        memcpy(&hx, pw + 2 * i, 2);
        memcpy(&hy, pa + 2 * i, 2);
        float x = bf ? an_bf16_to_f32(hx) : an_f16_to_f32(hx);
        float y = bf ? an_bf16_to_f32(hy) : an_f16_to_f32(hy);
        s += (double)(x * y);
    }
    return s;
}

/* 32-element blocks: exact integer sum per block, the block's float scaling with ggml's
 * generic association, blocks accumulated in double (ggml accumulates in float). */
static double dot_q4_0(const void *w, const void *a, int64_t nb) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) {
        an_block_q4_0 x;
        an_block_q8_0 y;
        memcpy(&x, (const unsigned char *)w + i * sizeof x, sizeof x);
        memcpy(&y, (const unsigned char *)a + i * sizeof y, sizeof y);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((x.qs[j] & 0x0F) - 8) * y.qs[j];
            sumi += ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
        }
        s += (double)((float)sumi * an_q_h2f(x.d) * an_q_h2f(y.d));
    }
    return s;
}

static double dot_q4_1(const void *w, const void *a, int64_t nb) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) {
        an_block_q4_1 x;
        an_block_q8_1 y;
        memcpy(&x, (const unsigned char *)w + i * sizeof x, sizeof x);
        memcpy(&y, (const unsigned char *)a + i * sizeof y, sizeof y);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += (x.qs[j] & 0x0F) * y.qs[j];
            sumi += (x.qs[j] >> 4) * y.qs[j + 16];
        }
        /* sum_e (q_e*dx + m)*(dy*q8_e) = dx*dy*sumi + m*(dy*sum q8) = ... + m*s */
        s += (double)((an_q_h2f(x.d) * an_q_h2f(y.d)) * (float)sumi + an_q_h2f(x.m) * an_q_h2f(y.s));
    }
    return s;
}

static double dot_q5_0(const void *w, const void *a, int64_t nb) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) {
        an_block_q5_0 x;
        an_block_q8_0 y;
        memcpy(&x, (const unsigned char *)w + i * sizeof x, sizeof x);
        memcpy(&y, (const unsigned char *)a + i * sizeof y, sizeof y);
        const uint32_t qh = le32(x.qh);
        int sumi = 0;
        for (int e = 0; e < 32; e++) sumi += (q5_value(x.qs, qh, e) - 16) * y.qs[e];
        s += (double)((an_q_h2f(x.d) * an_q_h2f(y.d)) * (float)sumi);
    }
    return s;
}

static double dot_q5_1(const void *w, const void *a, int64_t nb) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) {
        an_block_q5_1 x;
        an_block_q8_1 y;
        memcpy(&x, (const unsigned char *)w + i * sizeof x, sizeof x);
        memcpy(&y, (const unsigned char *)a + i * sizeof y, sizeof y);
        const uint32_t qh = le32(x.qh);
        int sumi = 0;
        for (int e = 0; e < 32; e++) sumi += q5_value(x.qs, qh, e) * y.qs[e];
        s += (double)((an_q_h2f(x.d) * an_q_h2f(y.d)) * (float)sumi + an_q_h2f(x.m) * an_q_h2f(y.s));
    }
    return s;
}

static double dot_q8_0(const void *w, const void *a, int64_t nb) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) {
        an_block_q8_0 x, y;
        memcpy(&x, (const unsigned char *)w + i * sizeof x, sizeof x);
        memcpy(&y, (const unsigned char *)a + i * sizeof y, sizeof y);
        int sumi = 0;
        for (int e = 0; e < 32; e++) sumi += x.qs[e] * y.qs[e];
        s += (double)((float)sumi * (an_q_h2f(x.d) * an_q_h2f(y.d)));
    }
    return s;
}

/* Unsupported weight types give NaN so a misuse cannot pass for a plausible number. */
float an_vec_dot_ref(an_type t, int64_t n, const void *w, const void *a) {
    if (n <= 0) return 0.f;
    const int64_t n32 = n / 32, n256 = n / 256;
    double s;
    switch (t) {
    case AN_TYPE_F32: s = dot_f32(w, a, n); break;
    case AN_TYPE_F16: s = dot_f16(w, a, n, false); break;
    case AN_TYPE_BF16: s = dot_f16(w, a, n, true); break;
    case AN_TYPE_Q4_0: s = dot_q4_0(w, a, n32); break;
    case AN_TYPE_Q4_1: s = dot_q4_1(w, a, n32); break;
    case AN_TYPE_Q5_0: s = dot_q5_0(w, a, n32); break;
    case AN_TYPE_Q5_1: s = dot_q5_1(w, a, n32); break;
    case AN_TYPE_Q8_0: s = dot_q8_0(w, a, n32); break;
    case AN_TYPE_Q2_K: s = an_dot_q2_K(w, a, n256); break;
    case AN_TYPE_Q3_K: s = an_dot_q3_K(w, a, n256); break;
    case AN_TYPE_Q4_K: s = an_dot_q4_K(w, a, n256); break;
    case AN_TYPE_Q5_K: s = an_dot_q5_K(w, a, n256); break;
    case AN_TYPE_Q6_K: s = an_dot_q6_K(w, a, n256); break;
    default: return NAN;
    }
    return (float)s;
}
