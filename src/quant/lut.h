/* lut.h — palettized weights (AN_TYPE_LUT4 / LUT6 / LUT8, core/types.h): the index stream and
 * the scalar reference arithmetic every fast kernel (backends/cpu/lut_gemv*.c) is tested
 * against. Favours clarity over speed.
 *
 * Format (an_mat in backends/cpu/cpu.h holds the pointers):
 *   - A row of `cols` elements is a stream of b-bit indices (b = 4, 6 or 8), LSB-first: element
 *     i occupies bits [b*i, b*i + b) of the row, bit j of the stream being bit (j % 8) of byte
 *     j / 8. For b = 6 an index may straddle two bytes (elements 1 and 2 of every 4 do). A row
 *     is cols * b / 8 bytes; cols is a multiple of the type's block (2, 4, 1 elements), so rows
 *     start on byte boundaries.
 *   - Row r uses table g = r / lut_group: lut[g * 2^b .. g * 2^b + 2^b) fp16. The last group
 *     may be short (rows not a multiple of lut_group); there are ceil(rows / lut_group) tables.
 *   - row_scale, when not NULL, is fp16[rows]: w[r][i] = lut[g][idx] * row_scale[r].
 * There is no rounding of activations to match (llama.cpp has no such type), so the reference
 * dots fp32 activations, accumulating in double. */
#ifndef AN_QUANT_LUT_H
#define AN_QUANT_LUT_H

#include <stdbool.h>
#include <stdint.h>

#include "anelm.h"
#include "backends/cpu/cpu.h"
#include "core/types.h"

/* Bits per index of a LUT type (4, 6, 8); 0 for every other type id. */
static inline int an_lut_bits(uint32_t t) {
    switch (t) {
    case AN_TYPE_LUT4: return 4;
    case AN_TYPE_LUT6: return 6;
    case AN_TYPE_LUT8: return 8;
    default: return 0;
    }
}
static inline bool an_lut_is_type(uint32_t t) { return an_lut_bits(t) != 0; }

/* Bytes of a packed row of n b-bit indices (n * b / 8 rounded up). */
static inline uint64_t an_lut_row_bytes(int bits, int64_t n) { return ((uint64_t)n * (uint64_t)bits + 7) / 8; }

/* Index of element i of a packed row (bits [b*i, b*i+b)). Reads only the one or two bytes that
 * hold those bits, so it never reads past the row's last byte. bits is 4, 6 or 8. */
static inline uint32_t an_lut_index(const uint8_t *row, int64_t i, int bits) {
    const uint64_t bit = (uint64_t)i * (uint64_t)bits;
    const uint8_t *p = row + bit / 8;
    const unsigned sh = (unsigned)(bit % 8);
    uint32_t v = (uint32_t)p[0] >> sh;
    if (sh + (unsigned)bits > 8) v |= (uint32_t)p[1] << (8 - sh);
    return v & ((1u << bits) - 1u);
}

/* idx[0..n) -> packed row of an_lut_row_bytes(bits, n) bytes. Index bits above `bits` are
 * dropped; the unused high bits of a partial last byte are zero. */
void an_lut_pack_row(const uint8_t *idx, int64_t n, int bits, uint8_t *row);

/* Packed row -> idx[0..n). */
void an_lut_unpack_row(const uint8_t *row, int64_t n, int bits, uint8_t *idx);

/* Checks that w is a usable palettized matrix: a LUT type, rows and cols > 0, cols a multiple
 * of the type's block, row_bytes = cols * b / 8, data and lut set, lut_group >= 1. The kernels
 * assume this; callers building an_mats from files check once, here. */
an_status an_lut_check(const an_mat *w, an_err *err);

/* The table of row r (2^b fp16 values). */
static inline const uint16_t *an_lut_table(const an_mat *w, int64_t r) {
    return w->lut + (uint64_t)(r / w->lut_group) * ((uint64_t)1 << an_lut_bits(w->type));
}

/* The multiplier of row r: row_scale[r] as f32, or 1. */
float an_lut_row_scale(const an_mat *w, int64_t r);

/* y[0..cols) = row r of w, dequantized: fp16 table entry (exact in f32) times the row scale,
 * one f32 multiplication. */
void an_lut_dequant_row(const an_mat *w, int64_t r, float *y);

/* y[0..n) = elements [k0, k0 + n) of row r of w, dequantized as an_lut_dequant_row does (the
 * batch matmul dequantizes rows in K blocks). */
void an_lut_dequant_seg(const an_mat *w, int64_t r, int64_t k0, int64_t n, float *y);

/* Reference dot of row r with x[0..cols): row_scale * sum_i lut[idx_i] * x[i], the sum in
 * double (so the fast kernels' error is the only error measured). */
float an_lut_dot_ref(const an_mat *w, int64_t r, const float *x);

#endif
