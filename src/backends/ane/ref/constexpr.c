/* constexpr.c — const values: reading elements of whatever holds them (BLOBFILE bytes, an
 * inline literal, a folded result) and folding the two weight-compression ops at load, as the
 * ANE compiler does. A fold computes each element in float — exact for the formats anelm
 * writes: an integer of at most 8 bits times an fp16 scale, or an fp16 table entry times an
 * fp16 scale, needs at most 22 significant bits — and then rounds it to fp16 once (the ANE's
 * weights are fp16), or keeps the float in exact mode (an_mil_ref_const_f32). */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"
#include "core/fp16.h"

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Element i of a BLOBFILE tensor: little-endian words, or an LSB-first bit stream for the
 * sub-byte types (element i in bits [b*i, b*i + b), possibly straddling two bytes). */
static double raw_get(const ref_val *v, int64_t i) {
    const uint8_t *d = v->raw;
    switch (v->type.dt) {
    case DT_FP16: return an_f16_to_f32((uint16_t)le(d + 2 * i, 2));
    case DT_BF16: return an_bf16_to_f32((uint16_t)le(d + 2 * i, 2));
    case DT_FP32: return an_bits_f32((uint32_t)le(d + 4 * i, 4));
    case DT_INT32: return (int32_t)(uint32_t)le(d + 4 * i, 4);
    case DT_UINT32: return (uint32_t)le(d + 4 * i, 4);
    case DT_INT16: return (int16_t)(uint16_t)le(d + 2 * i, 2);
    case DT_UINT16: return (uint16_t)le(d + 2 * i, 2);
    case DT_INT8: return (int8_t)d[i];
    case DT_UINT8: return d[i];
    default: break;
    }
    const int b = ref_dt_get(v->type.dt)->bits;
    if (b <= 0 || b > 8) return 0;
    const uint64_t bit = (uint64_t)i * (uint64_t)b;
    const unsigned lo = d[bit / 8], hi = bit % 8 + (unsigned)b > 8 ? d[bit / 8 + 1] : 0u;
    const unsigned u = ((lo | hi << 8) >> (bit % 8)) & ((1u << b) - 1u);
    if (v->type.dt == DT_INT4) return (double)((int)u - (u & 8 ? 16 : 0)); /* two's complement nibble */
    return u;
}

double ref_const_get(const ref_val *v, int64_t i) {
    if (v->f) return v->f[i];
    if (v->h) return an_f16_to_f32(v->h[i]);
    if (v->num) return v->num[i];
    if (v->raw) return raw_get(v, i);
    return 0;
}

an_status ref_const_to_f16(ref_val *v, an_err *err) {
    if (v->h) return AN_OK;
    uint16_t *h = malloc((size_t)v->n * sizeof *h);
    if (!h) return an_err_set(err, AN_E_NOMEM, "MIL: out of memory for %lld fp16 values of %s", (long long)v->n,
                              v->name ? v->name : "a literal");
    if (v->raw && v->type.dt == DT_FP16) {
        for (int64_t i = 0; i < v->n; i++) h[i] = (uint16_t)le(v->raw + 2 * i, 2);
    } else {
        for (int64_t i = 0; i < v->n; i++) h[i] = an_f32_to_f16((float)ref_const_get(v, i));
    }
    v->h = h; /* only now: ref_const_get reads h first */
    return AN_OK;
}

/* Walks the elements of a tensor of type t in row-major order, keeping for each the row-major
 * index into a smaller "group" tensor whose axis d has t->dim[d] / blk[d] entries (blk[d]
 * consecutive elements along d share one group entry). */
typedef struct walk {
    int rank;
    int64_t idx[REF_MAX_TYPE_RANK], dim[REF_MAX_TYPE_RANK], blk[REF_MAX_TYPE_RANK], gstride[REF_MAX_TYPE_RANK];
    int64_t g; /* group index of the current element */
} walk;

static void walk_init(walk *w, const ref_type *t, const int64_t *gdim) {
    memset(w, 0, sizeof *w);
    w->rank = t->rank;
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        w->dim[d] = t->dim[d];
        w->blk[d] = t->dim[d] / gdim[d];
        w->gstride[d] = s;
        s *= gdim[d];
    }
}

static void walk_next(walk *w) {
    for (int d = w->rank - 1; d >= 0; d--) {
        int64_t old = w->idx[d] / w->blk[d];
        if (++w->idx[d] < w->dim[d]) {
            w->g += (w->idx[d] / w->blk[d] - old) * w->gstride[d];
            return;
        }
        w->idx[d] = 0;
        w->g -= old * w->gstride[d];
    }
}

static an_status alloc_result(ref_ctx *c, ref_val *o) {
    if (c->r->exact) o->f = malloc((size_t)o->n * sizeof *o->f);
    else o->h = malloc((size_t)o->n * sizeof *o->h);
    if (!o->f && !o->h)
        return an_err_set(c->err, AN_E_NOMEM, "MIL: out of memory folding %lld elements", (long long)o->n);
    return AN_OK;
}

static void put(ref_val *o, int64_t i, float x) {
    if (o->f) o->f[i] = x;
    else o->h[i] = an_f32_to_f16(x);
}

/* out = scale * (data - offset), scale (and offset) broadcast blockwise over data. */
an_status ref_fold_blockwise(ref_ctx *c, ref_fn *fn, int out, int data, int scale, int offset) {
    ref_val *o = &fn->v[out];
    o->kind = V_CONST;
    AN_TRY(alloc_result(c, o));
    const ref_val *d = &fn->v[data], *s = &fn->v[scale], *z = offset >= 0 ? &fn->v[offset] : NULL;
    walk w;
    walk_init(&w, &d->type, s->type.dim);
    for (int64_t i = 0; i < d->n; i++, walk_next(&w)) {
        float q = (float)ref_const_get(d, i);
        if (z) q -= (float)ref_const_get(z, w.g);
        put(o, i, (float)ref_const_get(s, w.g) * q);
    }
    return AN_OK;
}

/* out[i] = lut[group(i)][indices[i]][0]: one table per block of the leading axes. */
an_status ref_fold_lut(ref_ctx *c, ref_fn *fn, int out, int indices, int lut) {
    ref_val *o = &fn->v[out];
    o->kind = V_CONST;
    AN_TRY(alloc_result(c, o));
    const ref_val *ix = &fn->v[indices], *t = &fn->v[lut];
    const int64_t entries = t->type.dim[ix->type.rank];
    walk w;
    walk_init(&w, &ix->type, t->type.dim);
    for (int64_t i = 0; i < ix->n; i++, walk_next(&w)) {
        int64_t k = (int64_t)ref_const_get(ix, i); /* < entries: the dtype's range is 2^bits */
        put(o, i, (float)ref_const_get(t, w.g * entries + k));
    }
    return AN_OK;
}
