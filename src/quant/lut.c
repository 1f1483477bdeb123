/* lut.c — reference code for palettized weights (lut.h has the format). */
#include "quant/lut.h"

#include <string.h>

#include "core/fp16.h"
#include "core/status.h"

void an_lut_pack_row(const uint8_t *idx, int64_t n, int bits, uint8_t *row) {
    const uint32_t mask = (1u << bits) - 1u;
    memset(row, 0, (size_t)an_lut_row_bytes(bits, n));
    for (int64_t i = 0; i < n; i++) {
        const uint64_t bit = (uint64_t)i * (uint64_t)bits;
        const uint32_t v = (uint32_t)idx[i] & mask;
        const unsigned sh = (unsigned)(bit % 8);
        row[bit / 8] |= (uint8_t)(v << sh);
        if (sh + (unsigned)bits > 8) row[bit / 8 + 1] |= (uint8_t)(v >> (8 - sh)); /* spill (6-bit only) */
    }
}

void an_lut_unpack_row(const uint8_t *row, int64_t n, int bits, uint8_t *idx) {
    for (int64_t i = 0; i < n; i++) idx[i] = (uint8_t)an_lut_index(row, i, bits);
}

an_status an_lut_check(const an_mat *w, an_err *err) {
    const char *name = w->name ? w->name : "weight";
    const int bits = an_lut_bits(w->type);
    if (!bits) return an_err_set(err, AN_E_FORMAT, "%s: type %u is not a LUT type", name, w->type);
    const an_type_traits *tt = an_type_traits_get(w->type);
    if (w->rows <= 0 || w->cols <= 0 || w->cols % tt->blck)
        return an_err_set(err, AN_E_FORMAT, "%s: %s shape %lld x %lld (cols must be a positive multiple of %u)", name,
                          tt->name, (long long)w->rows, (long long)w->cols, tt->blck);
    if (w->row_bytes != an_lut_row_bytes(bits, w->cols))
        return an_err_set(err, AN_E_FORMAT, "%s: %s row_bytes %llu, expected %llu", name, tt->name,
                          (unsigned long long)w->row_bytes, (unsigned long long)an_lut_row_bytes(bits, w->cols));
    if (!w->data || !w->lut || w->lut_group < 1)
        return an_err_set(err, AN_E_FORMAT, "%s: %s without data, tables or a group size (lut_group %d)", name,
                          tt->name, (int)w->lut_group);
    return AN_OK;
}

float an_lut_row_scale(const an_mat *w, int64_t r) {
    return w->row_scale ? an_f16_to_f32(w->row_scale[r]) : 1.0f;
}

void an_lut_dequant_seg(const an_mat *w, int64_t r, int64_t k0, int64_t n, float *y) {
    const int bits = an_lut_bits(w->type);
    if (!bits) { /* not a LUT matrix: zeros rather than garbage (the library never aborts) */
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
    const uint16_t *tab = an_lut_table(w, r);
    const float s = an_lut_row_scale(w, r);
    float t[256]; /* the table in f32, converted once per call */
    for (int v = 0; v < 1 << bits; v++) t[v] = an_f16_to_f32(tab[v]);
    for (int64_t i = 0; i < n; i++) y[i] = t[an_lut_index(row, k0 + i, bits)] * s;
}

void an_lut_dequant_row(const an_mat *w, int64_t r, float *y) { an_lut_dequant_seg(w, r, 0, w->cols, y); }

float an_lut_dot_ref(const an_mat *w, int64_t r, const float *x) {
    const int bits = an_lut_bits(w->type);
    if (!bits) return 0.0f;
    const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
    const uint16_t *tab = an_lut_table(w, r);
    double acc = 0.0;
    for (int64_t i = 0; i < w->cols; i++) acc += (double)an_f16_to_f32(tab[an_lut_index(row, i, bits)]) * (double)x[i];
    return (float)(acc * (double)an_lut_row_scale(w, r));
}
