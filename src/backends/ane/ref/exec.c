/* exec.c — loading (parse, check, fold), the public queries, and running a function: each
 * op's fp16 result goes to a buffer of its own, allocated at the first run from sizes fixed at
 * load (programs are small graphs; reusing buffers by liveness would save little). */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"

int ref_fn_add_val(ref_fn *fn, an_err *err) {
    if (fn->nv == fn->capv) {
        int nc = fn->capv ? fn->capv * 2 : 32;
        ref_val *nv = realloc(fn->v, (size_t)nc * sizeof *nv);
        if (!nv) {
            an_err_set(err, AN_E_NOMEM, "MIL: out of memory");
            return -1;
        }
        fn->v = nv;
        fn->capv = nc;
    }
    memset(&fn->v[fn->nv], 0, sizeof fn->v[fn->nv]);
    return fn->nv++;
}

void an_mil_ref_free(an_mil_ref *r) {
    if (!r) return;
    for (int i = 0; i < r->n_fns; i++) {
        ref_fn *fn = &r->fn[i];
        for (int k = 0; k < fn->nv; k++) {
            ref_val *v = &fn->v[k];
            free(v->name);
            free(v->num);
            free(v->str);
            free(v->f);
            free(v->h);
        }
        free(fn->v);
        free(fn->ops);
        free(fn->in);
        free(fn->out);
        free(fn->in_t);
        free(fn->out_t);
        free(fn->name);
    }
    free(r->fn);
    free(r->xf);
    free(r->yf);
    free(r->ws);
    free(r);
}

/* After parsing: outputs that are consts get their fp16 values; values nothing reads at run
 * time drop their load-time data (quantized bytes were only borrowed; the fp16 results of a
 * LUT feeding a blockwise scale are not needed once the scale is applied); no pointer into
 * the caller's blob survives. keep: leave everything (exact-mode queries). */
static an_status finish(ref_ctx *c, bool keep) {
    an_mil_ref *r = c->r;
    size_t bytes = 0;
    for (int i = 0; i < r->n_fns; i++) {
        ref_fn *fn = &r->fn[i];
        bool *used = calloc((size_t)fn->nv + 1, 1);
        if (!used) return an_err_set(c->err, AN_E_NOMEM, "MIL: out of memory");
        for (int k = 0; k < fn->nops; k++) {
            const ref_op *op = &fn->ops[k];
            for (int j = 0; j < 2; j++)
                if (op->in[j] >= 0) used[op->in[j]] = true;
            if (op->bias >= 0) used[op->bias] = true;
        }
        an_status st = AN_OK;
        for (int k = 0; k < fn->n_out && !st; k++) {
            used[fn->out[k]] = true;
            if (fn->v[fn->out[k]].kind == V_CONST) st = ref_const_to_f16(&fn->v[fn->out[k]], c->err);
        }
        for (int k = 0; k < fn->nv && !keep; k++) {
            ref_val *v = &fn->v[k];
            v->raw = NULL;
            if (v->kind == V_CONST && !used[k]) {
                free(v->h);
                free(v->f);
                v->h = NULL;
                v->f = NULL;
            }
        }
        for (int k = 0; k < fn->nv; k++)
            if (fn->v[k].kind == V_OP) bytes += (size_t)fn->v[k].n * 2;
        free(used);
        if (st) return st;
    }
    r->work_bytes = bytes + (size_t)(r->conv_xf + r->conv_yf) * sizeof(float);
    return AN_OK;
}

static an_status load(an_mil_ref **out, const char *text, size_t text_len, const uint8_t *blob, size_t blob_len,
                      bool exact, an_err *err) {
    *out = NULL;
    if (!text && text_len) return an_err_set(err, AN_E_USAGE, "MIL: no text");
    an_mil_ref *r = calloc(1, sizeof *r);
    if (!r) return an_err_set(err, AN_E_NOMEM, "MIL: out of memory");
    r->exact = exact;
    ref_ctx c = {r, blob, blob ? blob_len : 0, {0, NULL}, false, err};
    an_status st = ref_parse(&c, text ? text : "", text_len);
    if (!st) st = finish(&c, exact);
    an_blob_file_free(&c.bf);
    if (st) {
        an_mil_ref_free(r);
        return st;
    }
    *out = r;
    return AN_OK;
}

an_status an_mil_ref_load(an_mil_ref **out, const char *text, size_t text_len, const uint8_t *blob, size_t blob_len,
                          an_err *err) {
    return load(out, text, text_len, blob, blob_len, false, err);
}

an_status an_mil_ref_const_f32(const char *text, size_t text_len, const uint8_t *blob, size_t blob_len, const char *fn,
                               const char *name, float *out, int64_t n, an_err *err) {
    an_mil_ref *r;
    AN_TRY(load(&r, text, text_len, blob, blob_len, true, err));
    an_status st = AN_OK;
    int f = an_mil_ref_find(r, fn);
    const ref_val *v = NULL;
    for (int k = 0; f >= 0 && k < r->fn[f].nv && !v; k++)
        if (r->fn[f].v[k].name && !strcmp(r->fn[f].v[k].name, name)) v = &r->fn[f].v[k];
    if (f < 0) st = an_err_set(err, AN_E_USAGE, "MIL: no function %s", fn);
    else if (!v || v->kind != V_CONST) st = an_err_set(err, AN_E_USAGE, "MIL: %s has no const value %s", fn, name);
    else if (v->n != n)
        st = an_err_set(err, AN_E_USAGE, "MIL: %s has %lld elements, not %lld", name, (long long)v->n, (long long)n);
    else
        for (int64_t i = 0; i < n; i++) out[i] = (float)ref_const_get(v, i);
    an_mil_ref_free(r);
    return st;
}

int an_mil_ref_n_fns(const an_mil_ref *r) { return r ? r->n_fns : 0; }

int an_mil_ref_find(const an_mil_ref *r, const char *name) {
    for (int i = 0; r && name && i < r->n_fns; i++)
        if (!strcmp(r->fn[i].name, name)) return i;
    return -1;
}

static const ref_fn *get_fn(const an_mil_ref *r, int fn) { return r && fn >= 0 && fn < r->n_fns ? &r->fn[fn] : NULL; }

const char *an_mil_ref_fn_name(const an_mil_ref *r, int fn) {
    const ref_fn *f = get_fn(r, fn);
    return f ? f->name : NULL;
}
int an_mil_ref_n_inputs(const an_mil_ref *r, int fn) {
    const ref_fn *f = get_fn(r, fn);
    return f ? f->n_in : 0;
}
int an_mil_ref_n_outputs(const an_mil_ref *r, int fn) {
    const ref_fn *f = get_fn(r, fn);
    return f ? f->n_out : 0;
}
const an_mil_ref_tensor *an_mil_ref_input(const an_mil_ref *r, int fn, int i) {
    const ref_fn *f = get_fn(r, fn);
    return f && i >= 0 && i < f->n_in ? &f->in_t[i] : NULL;
}
const an_mil_ref_tensor *an_mil_ref_output(const an_mil_ref *r, int fn, int i) {
    const ref_fn *f = get_fn(r, fn);
    return f && i >= 0 && i < f->n_out ? &f->out_t[i] : NULL;
}
size_t an_mil_ref_work_bytes(const an_mil_ref *r) { return r ? r->work_bytes : 0; }
void an_mil_ref_set_scalar_conv(an_mil_ref *r, int on) {
    if (r) r->scalar_conv = on != 0;
}

static an_status alloc_buffers(an_mil_ref *r, an_err *err) {
    for (int i = 0; i < r->n_fns; i++)
        for (int k = 0; k < r->fn[i].nv; k++) {
            ref_val *v = &r->fn[i].v[k];
            if (v->kind != V_OP || v->h) continue;
            v->h = malloc((size_t)v->n * sizeof *v->h);
            if (!v->h)
                return an_err_set(err, AN_E_NOMEM, "MIL: out of memory for %s of function %s (%lld fp16 values)",
                                  v->name, r->fn[i].name, (long long)v->n);
        }
    if (r->conv_xf) {
        r->xf = malloc((size_t)r->conv_xf * sizeof *r->xf);
        r->yf = malloc((size_t)r->conv_yf * sizeof *r->yf);
        if (!r->xf || !r->yf) return an_err_set(err, AN_E_NOMEM, "MIL: out of memory for the conv scratch");
    }
    r->buffers = true;
    return AN_OK;
}

/* The matmul workspace depends on the thread count, known only at run time. */
static an_status ensure_ws(an_mil_ref *r, an_pool *pool, an_err *err) {
    if (!r->conv_xf) return AN_OK;
    size_t need = an_cpu_matmul_wsize(r->conv_kmax, r->conv_nmax, pool ? an_pool_size(pool) : 1);
    need = (need + 63) / 64 * 64;
    if (need <= r->ws_size) return AN_OK;
    free(r->ws);
    r->ws_size = 0;
    r->ws = aligned_alloc(64, need);
    if (!r->ws) return an_err_set(err, AN_E_NOMEM, "MIL: out of memory for the matmul workspace (%zu bytes)", need);
    r->ws_size = need;
    return AN_OK;
}

an_status an_mil_ref_run(an_mil_ref *r, int fn, const uint16_t *const *in, uint16_t *const *out, an_pool *pool,
                         an_err *err) {
    ref_fn *f = r && fn >= 0 && fn < r->n_fns ? &r->fn[fn] : NULL;
    if (!f) return an_err_set(err, AN_E_USAGE, "MIL run: no function %d", fn);
    if ((f->n_in && !in) || !out) return an_err_set(err, AN_E_USAGE, "MIL run %s: missing input or output array", f->name);
    for (int i = 0; i < f->n_in; i++)
        if (!in[i]) return an_err_set(err, AN_E_USAGE, "MIL run %s: input %d (%s) is NULL", f->name, i, f->in_t[i].name);
    for (int i = 0; i < f->n_out; i++)
        if (!out[i])
            return an_err_set(err, AN_E_USAGE, "MIL run %s: output %d (%s) is NULL", f->name, i, f->out_t[i].name);
    if (!r->buffers) AN_TRY(alloc_buffers(r, err));
    AN_TRY(ensure_ws(r, pool, err));
    for (int k = 0; k < f->nv; k++) f->v[k].cur = f->v[k].h;
    for (int i = 0; i < f->n_in; i++) f->v[f->in[i]].cur = in[i];
    for (int k = 0; k < f->nops; k++) {
        const ref_op *op = &f->ops[k];
        ref_val *o = &f->v[op->out];
        const uint16_t *x = f->v[op->in[0]].cur;
        switch (op->kind) {
        case OP_COPY: memcpy(o->h, x, (size_t)o->n * sizeof *o->h); break;
        case OP_STRIDED: ref_k_strided(op, x, o->h); break;
        case OP_ADD:
        case OP_MUL: ref_k_binary(op, x, f->v[op->in[1]].cur, o->h); break;
        case OP_SIGMOID:
        case OP_SILU: ref_k_unary(op->kind, x, o->h, o->n); break;
        case OP_CONV: {
            const ref_val *w = &f->v[op->in[1]];
            const uint16_t *bias = op->bias >= 0 ? f->v[op->bias].h : NULL;
            if (r->scalar_conv) ref_k_conv_scalar(op, x, w->h, bias, o->h);
            else ref_k_conv_fast(r, op, x, &w->mat, bias, o->h, pool);
            break;
        }
        }
    }
    for (int i = 0; i < f->n_out; i++) {
        const ref_val *v = &f->v[f->out[i]];
        memcpy(out[i], v->cur, (size_t)v->n * sizeof *out[i]);
    }
    return AN_OK;
}
