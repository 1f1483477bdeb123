/* lut_gemv_neon.c — AArch64 NEON LUT decode GEMV kernels, activations in row order.
 *
 * TBL looks bytes up in tables of up to 64 bytes, so the group's fp16 table is split into its
 * low bytes and its high bytes (2^b each) once per group; a lookup is then one TBL per half
 * (LUT4: 16-byte tables, LUT6: 64-byte tables, LUT8: one TBL and three TBX over four 64-byte
 * quarters, TBX leaving lanes whose index is out of its quarter untouched), the halves are
 * zipped back into fp16 and widened to fp32 (FCVTL), and FMA'd with fp32 activations.
 *   - LUT4: 16 bytes -> low and high nibbles, zipped back into row order.
 *   - LUT6: LD3 splits 48 bytes into the first, second and third bytes of 16 3-byte groups, so
 *     each of the four indices of a group is two shifts and an OR away, for all 16 groups at
 *     once; LD4 on the activations delivers them in the same (group, position) split.
 * Tails (fewer elements than a step) run in scalar code. Tested under qemu (.ci/arm64.sh). */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/lut_gemv.h"
#include "core/fp16.h"
#include "quant/lut.h"

/* Low and high bytes of the n fp16 entries of a table. */
static void split(const uint16_t *tab, int n, uint8_t *lo, uint8_t *hi) {
    for (int v = 0; v < n; v++) {
        lo[v] = (uint8_t)(tab[v] & 0xff);
        hi[v] = (uint8_t)(tab[v] >> 8);
    }
}

/* acc[0..3] += the 16 fp16 values (low bytes L, high bytes H) widened, times xs[0..3] */
static inline void fma16(uint8x16_t L, uint8x16_t H, const float32x4_t xs[4], float32x4_t acc[4]) {
    const float16x8_t h0 = vreinterpretq_f16_u8(vzip1q_u8(L, H)), h1 = vreinterpretq_f16_u8(vzip2q_u8(L, H));
    acc[0] = vfmaq_f32(acc[0], vcvt_f32_f16(vget_low_f16(h0)), xs[0]);
    acc[1] = vfmaq_f32(acc[1], vcvt_high_f32_f16(h0), xs[1]);
    acc[2] = vfmaq_f32(acc[2], vcvt_f32_f16(vget_low_f16(h1)), xs[2]);
    acc[3] = vfmaq_f32(acc[3], vcvt_high_f32_f16(h1), xs[3]);
}

static inline float sum4(const float32x4_t acc[4]) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT4 matrix, x in row order */
static void gemv_lut4(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    uint8_t lo[16], hi[16];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        split(tab, 16, lo, hi);
        const uint8x16_t TL = vld1q_u8(lo), TH = vld1q_u8(hi), m15 = vdupq_n_u8(15);
        float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        int64_t k = 0;
        for (; k + 32 <= K; k += 32, p += 16) {
            const uint8x16_t b = vld1q_u8(p), ev = vandq_u8(b, m15), od = vshrq_n_u8(b, 4);
            const uint8x16_t i0 = vzip1q_u8(ev, od), i1 = vzip2q_u8(ev, od); /* row order */
            const float32x4_t x0[4] = {vld1q_f32(x + k), vld1q_f32(x + k + 4), vld1q_f32(x + k + 8), vld1q_f32(x + k + 12)};
            const float32x4_t x1[4] = {vld1q_f32(x + k + 16), vld1q_f32(x + k + 20), vld1q_f32(x + k + 24),
                                       vld1q_f32(x + k + 28)};
            fma16(vqtbl1q_u8(TL, i0), vqtbl1q_u8(TH, i0), x0, acc);
            fma16(vqtbl1q_u8(TL, i1), vqtbl1q_u8(TH, i1), x1, acc);
        }
        float s = sum4(acc);
        for (; k < K; k += 2, p++) s += an_f16_to_f32(tab[p[0] & 15]) * x[k] + an_f16_to_f32(tab[p[0] >> 4]) * x[k + 1];
        y[i] = s * an_lut_row_scale(w, r);
    }
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT6 matrix, x in row order */
static void gemv_lut6(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    uint8_t lo[64], hi[64];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        split(tab, 64, lo, hi);
        const uint8x16x4_t TL = vld1q_u8_x4(lo), TH = vld1q_u8_x4(hi);
        const uint8x16_t m63 = vdupq_n_u8(63), m15 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
        float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        int64_t k = 0;
        for (; k + 64 <= K; k += 64, p += 48) {
            const uint8x16x3_t b = vld3q_u8(p); /* b.val[j][g] = byte j of group g */
            uint8x16_t e[4];
            e[0] = vandq_u8(b.val[0], m63);
            e[1] = vorrq_u8(vshrq_n_u8(b.val[0], 6), vshlq_n_u8(vandq_u8(b.val[1], m15), 2));
            e[2] = vorrq_u8(vshrq_n_u8(b.val[1], 4), vshlq_n_u8(vandq_u8(b.val[2], m3), 4));
            e[3] = vshrq_n_u8(b.val[2], 2);
            /* xv[m].val[j][l] = x[k + 16m + 4l + j]: position j of group 4m + l */
            const float32x4x4_t xv[4] = {vld4q_f32(x + k), vld4q_f32(x + k + 16), vld4q_f32(x + k + 32),
                                         vld4q_f32(x + k + 48)};
            for (int j = 0; j < 4; j++) {
                const float32x4_t xs[4] = {xv[0].val[j], xv[1].val[j], xv[2].val[j], xv[3].val[j]};
                fma16(vqtbl4q_u8(TL, e[j]), vqtbl4q_u8(TH, e[j]), xs, acc);
            }
        }
        float s = sum4(acc);
        for (; k < K; k += 4, p += 3) { /* K % 4 == 0 */
            const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
            s += an_f16_to_f32(tab[v & 63]) * x[k] + an_f16_to_f32(tab[(v >> 6) & 63]) * x[k + 1] +
                 an_f16_to_f32(tab[(v >> 12) & 63]) * x[k + 2] + an_f16_to_f32(tab[v >> 18]) * x[k + 3];
        }
        y[i] = s * an_lut_row_scale(w, r);
    }
}

/* 16 byte lookups into a 256-byte table held as four 64-byte quarters */
static inline uint8x16_t tbl256(const uint8x16x4_t T[4], uint8x16_t ix) {
    const uint8x16_t q = vdupq_n_u8(64);
    uint8x16_t r = vqtbl4q_u8(T[0], ix);
    ix = vsubq_u8(ix, q); /* indices below 64 wrap to >= 192: out of range, lane kept */
    r = vqtbx4q_u8(r, T[1], ix);
    ix = vsubq_u8(ix, q);
    r = vqtbx4q_u8(r, T[2], ix);
    ix = vsubq_u8(ix, q);
    return vqtbx4q_u8(r, T[3], ix);
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT8 matrix, x in row order */
static void gemv_lut8(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    uint8_t lo[256], hi[256];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        split(tab, 256, lo, hi);
        uint8x16x4_t TL[4], TH[4];
        for (int q = 0; q < 4; q++) TL[q] = vld1q_u8_x4(lo + 64 * q), TH[q] = vld1q_u8_x4(hi + 64 * q);
        float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        int64_t k = 0;
        for (; k + 16 <= K; k += 16, p += 16) {
            const uint8x16_t b = vld1q_u8(p);
            const float32x4_t xs[4] = {vld1q_f32(x + k), vld1q_f32(x + k + 4), vld1q_f32(x + k + 8), vld1q_f32(x + k + 12)};
            fma16(tbl256(TL, b), tbl256(TH, b), xs, acc);
        }
        float s = sum4(acc);
        for (; k < K; k++, p++) s += an_f16_to_f32(tab[p[0]]) * x[k];
        y[i] = s * an_lut_row_scale(w, r);
    }
}

const an_lut_kernels an_lut_table_neon = {.k = {{NULL, gemv_lut4, true}, {NULL, gemv_lut6, true}, {NULL, gemv_lut8, true}}};
