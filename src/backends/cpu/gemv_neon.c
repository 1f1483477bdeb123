/* gemv_neon.c — baseline ARMv8-A NEON decode GEMV kernels: y[r] = dot(W row r, a).
 *
 * Float formats (F32, F16, BF16): both operands are widened to f32 (exactly: an fp16 or bf16
 * value, and the product of two of them, is representable in f32) and summed with FMA in f32;
 * these functions also serve the dotprod table (gemv_arm.h).
 *
 * Integer formats: the block decoding is in gemv_arm_body.inc; here the int8 products are
 * summed without SDOT: SMULL/SMLAL into int16 lanes, then SADALP (pairwise add-accumulate into
 * int32). An int16 lane holds as many products as cannot overflow it: a product of two
 * arbitrary int8 values can be 128*128 = 16384, so two could reach 32768 and dot16 (Q8_0)
 * widens after each multiply; every other format has |w| <= 63, so four products stay within
 * 4*63*128 = 32256 and dot32s widens once per 32 products.
 */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "backends/cpu/gemv_arm.h"
#include "core/fp16.h"

/* ------------------------------------------------------------------------------------------ */
/* Float formats                                                                                */

enum { FK_F32, FK_F16, FK_BF16 };

/* 16 consecutive elements of kind `kind` at p (any alignment) as four f32 vectors. */
AN_INLINE void fload16(const int kind, const uint8_t *p, float32x4_t x[4]) {
    if (kind == FK_F32) {
        for (int j = 0; j < 4; j++) x[j] = vreinterpretq_f32_u8(vld1q_u8(p + 16 * j));
    } else if (kind == FK_F16) {
        const float16x8_t h0 = vreinterpretq_f16_u8(vld1q_u8(p)), h1 = vreinterpretq_f16_u8(vld1q_u8(p + 16));
        x[0] = vcvt_f32_f16(vget_low_f16(h0));
        x[1] = vcvt_high_f32_f16(h0);
        x[2] = vcvt_f32_f16(vget_low_f16(h1));
        x[3] = vcvt_high_f32_f16(h1);
    } else { /* bf16 is the top half of an f32: widen with a 16-bit left shift */
        const uint16x8_t h0 = vreinterpretq_u16_u8(vld1q_u8(p)), h1 = vreinterpretq_u16_u8(vld1q_u8(p + 16));
        x[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16));
        x[1] = vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16));
        x[2] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16));
        x[3] = vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16));
    }
}

/* 4 elements at p as one f32 vector. */
AN_INLINE float32x4_t fload4(const int kind, const uint8_t *p) {
    if (kind == FK_F32) return vreinterpretq_f32_u8(vld1q_u8(p));
    if (kind == FK_F16) return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
    return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16));
}

/* Element k at p (scalar tail). */
AN_INLINE float fload1(const int kind, const uint8_t *p, int64_t k) {
    if (kind == FK_F32) {
        float f;
        memcpy(&f, p + 4 * k, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * k, 2);
    return kind == FK_F16 ? an_f16_to_f32(h) : an_bf16_to_f32(h);
}

/* F32 / F16 / BF16 weights x an activation of the same type.
 * Shape: w = R rows of K elements of `es` bytes (rows rb bytes apart), a = K elements;
 * y[r] = sum_k w[r][k] * a[k].
 * 16 columns per step in 4 accumulators per row: 4*R independent FMA chains cover the FMA
 * latency (4 cycles on Apple and Cortex-X cores, up to 4 pipes); the activation is widened once
 * per step for all R rows. Then 4 columns per step, then a scalar tail for K % 4. */
AN_INLINE void float_rows(const int kind, const uint8_t *w, uint64_t rb, int64_t K, const uint8_t *a, float *y,
                          const int R) {
    const int64_t es = kind == FK_F32 ? 4 : 2;
    float32x4_t acc[4][4];
    AN_UNROLL
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = vdupq_n_f32(0.f);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        float32x4_t x[4];
        fload16(kind, a + k * es, x);
        AN_UNROLL
        for (int r = 0; r < R; r++) {
            float32x4_t v[4];
            fload16(kind, w + (uint64_t)r * rb + (uint64_t)(k * es), v);
            AN_UNROLL
            for (int j = 0; j < 4; j++) acc[r][j] = vfmaq_f32(acc[r][j], v[j], x[j]);
        }
    }
    for (; k + 4 <= K; k += 4) {
        const float32x4_t x = fload4(kind, a + k * es);
        AN_UNROLL
        for (int r = 0; r < R; r++)
            acc[r][0] = vfmaq_f32(acc[r][0], fload4(kind, w + (uint64_t)r * rb + (uint64_t)(k * es)), x);
    }
    AN_UNROLL
    for (int r = 0; r < R; r++) {
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[r][0], acc[r][1]), vaddq_f32(acc[r][2], acc[r][3])));
        const uint8_t *row = w + (uint64_t)r * rb;
        for (int64_t j = k; j < K; j++) s += fload1(kind, row, j) * fload1(kind, a, j);
        y[r] = s;
    }
}

/* Passes of 4 rows, then 2, then 1 (each pass size an inlined copy with its own registers). */
#define FLOAT_ENTRY(NAME, KIND)                                                                     \
    void NAME(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {      \
        const uint8_t *pw = w;                                                                      \
        int64_t r = 0;                                                                              \
        for (; r + 4 <= nrows; r += 4) float_rows(KIND, pw + (uint64_t)r * rb, rb, K, a, y + r, 4); \
        if (r + 2 <= nrows) {                                                                       \
            float_rows(KIND, pw + (uint64_t)r * rb, rb, K, a, y + r, 2);                            \
            r += 2;                                                                                 \
        }                                                                                           \
        if (r < nrows) float_rows(KIND, pw + (uint64_t)r * rb, rb, K, a, y + r, 1);                 \
    }

FLOAT_ENTRY(an_gemv_neon_f32, FK_F32)
FLOAT_ENTRY(an_gemv_neon_f16, FK_F16)
FLOAT_ENTRY(an_gemv_neon_bf16, FK_BF16)

/* ------------------------------------------------------------------------------------------ */
/* Integer formats: int8 dot products without SDOT                                              */

/* acc + the 16 products w[i]*a[i], any int8 values: each int16 product widened at once. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    return vpadalq_s16(acc, vmull_high_s8(w, a));
}

/* |w| <= 63: two products per int16 lane (<= 2*63*128), one widening. */
static inline int32x4_t dot16s(int32x4_t acc, int8x16_t w, int8x16_t a) {
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
}

/* |w0|, |w1| <= 63: four products per int16 lane (<= 4*63*128 = 32256), one widening. */
static inline int32x4_t dot32s(int32x4_t acc, int8x16_t w0, int8x16_t a0, int8x16_t w1, int8x16_t a1) {
    int16x8_t p = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));
    p = vmlal_high_s8(p, w0, a0);
    p = vmlal_s8(p, vget_low_s8(w1), vget_low_s8(a1));
    p = vmlal_high_s8(p, w1, a1);
    return vpadalq_s16(acc, p);
}

#define AN_GEMV_ARM_NAME(x) gemv_neon_##x
#define AN_GEMV_ARM_TABLE an_gemv_table_neon
#include "backends/cpu/gemv_arm_body.inc"
