/* weight_key.c — what of a weight goes into a device's compile-cache key (backend.h). */
#include "backends/backend.h"
#include "quant/lut.h"

void an_weight_key_add(an_cache_keyer *kb, const an_mat *m) {
    an_cache_key_add(kb, m->data, m->row_bytes * (uint64_t)m->rows); /* the weight bytes */
    an_cache_key_add_u64(kb, m->type);                               /* source format */
    an_cache_key_add_u64(kb, (uint64_t)m->rows);
    an_cache_key_add_u64(kb, (uint64_t)m->cols);
    if (m->lut) { /* palettized: the tables, their grouping and the row scales are the weight too */
        an_cache_key_add(kb, m->lut, (size_t)(m->rows / m->lut_group) * ((size_t)1 << an_lut_bits(m->type)) * 2);
        an_cache_key_add_u64(kb, (uint64_t)m->lut_group);
        an_cache_key_add(kb, m->row_scale, m->row_scale ? (size_t)m->rows * 2 : 0);
    }
}
