/* ops.c — checking each op's arguments and declared result, and turning it into a run step.
 * Argument names are coremltools' (ane.md §3.2); unknown or repeated names, missing required
 * ones, operands of the wrong kind (a runtime tensor where a const is needed), and a declared
 * type other than what the op produces are errors with the statement's line:column. Runtime
 * ops compute in fp16 only (the ANE's datapath, ane.md §5.1); int32/bool/string values are
 * op parameters and must be consts. The constexpr ops are folded here, at load. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"

typedef struct B {
    ref_ctx *c;
    ref_fn *fn;
    const char *op;
    int line, col;
    const ref_arg *args;
    int n_args;
    int out;
} B;

static an_status bfail_at(B *b, int line, int col, const char *fmt, ...) AN_PRINTF(4, 5);
static an_status bfail_at(B *b, int line, int col, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return an_err_set(b->c->err, AN_E_FORMAT, "MIL line %d, column %d: %s: %s", line, col, b->op, msg);
}
#define BFAIL(...) bfail_at(b, b->line, b->col, __VA_ARGS__)

static const ref_arg *find_arg(const B *b, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < b->n_args; i++)
        if (b->args[i].name_n == n && memcmp(b->args[i].name, name, n) == 0) return &b->args[i];
    return NULL;
}

/* Every argument must be one of names (NULL-terminated). */
static an_status allow(B *b, const char *const *names) {
    for (int i = 0; i < b->n_args; i++) {
        const ref_arg *a = &b->args[i];
        bool ok = false;
        for (const char *const *n = names; *n && !ok; n++) ok = strlen(*n) == a->name_n && !memcmp(*n, a->name, a->name_n);
        if (!ok) {
            char list[256] = "";
            size_t k = 0;
            for (const char *const *n = names; *n; n++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", *n);
            int nn = a->name_n > 40 ? 40 : (int)a->name_n;
            return bfail_at(b, a->line, a->col, "no argument '%.*s' (it takes %s)", nn, a->name, list);
        }
    }
    return AN_OK;
}

static an_status need(B *b, const char *name, const ref_arg **a) {
    *a = find_arg(b, name);
    if (!*a) return BFAIL("missing argument %s", name);
    return AN_OK;
}

static ref_val *val(B *b, const ref_arg *a) { return &b->fn->v[a->slot]; }

/* An fp16 tensor operand (runtime, or a const made available as fp16 for the run). */
static an_status fp16_operand(B *b, const ref_arg *a, bool allow_scalar) {
    ref_val *v = val(b, a);
    char tb[96];
    if (v->type.dt != DT_FP16 || (!allow_scalar && v->type.rank == 0) || v->type.rank > REF_MAX_RANK)
        return bfail_at(b, a->line, a->col, "argument %.*s: expected an fp16 tensor of rank 1..%d, got %s",
                        (int)a->name_n, a->name, REF_MAX_RANK, ref_type_str(&v->type, tb, sizeof tb));
    if (v->kind == V_CONST) return ref_const_to_f16(v, b->c->err);
    return AN_OK;
}

/* A const integer (or bool) parameter: a scalar when n < 0, else a rank-1 tensor of n. */
static an_status const_ints(B *b, const ref_arg *a, ref_dt dt, int64_t n, int64_t *out) {
    const ref_val *v = val(b, a);
    char tb[96];
    bool ok = v->type.dt == dt && v->kind == V_CONST && (n < 0 ? v->type.rank == 0 : v->type.rank == 1 && v->n == n);
    if (!ok) {
        if (n < 0)
            return bfail_at(b, a->line, a->col, "argument %.*s: expected a const %s, got %s%s", (int)a->name_n,
                            a->name, ref_dt_get(dt)->name, v->kind == V_CONST ? "" : "the runtime value ",
                            ref_type_str(&v->type, tb, sizeof tb));
        return bfail_at(b, a->line, a->col, "argument %.*s: expected a const tensor<%s, [%lld]>, got %s%s",
                        (int)a->name_n, a->name, ref_dt_get(dt)->name, (long long)n,
                        v->kind == V_CONST ? "" : "the runtime value ", ref_type_str(&v->type, tb, sizeof tb));
    }
    for (int64_t i = 0; i < (n < 0 ? 1 : n); i++) out[i] = (int64_t)ref_const_get(v, i);
    return AN_OK;
}

static an_status const_string(B *b, const ref_arg *a, const char **s) {
    const ref_val *v = val(b, a);
    if (v->type.dt != DT_STRING || v->kind != V_CONST || !v->str)
        return bfail_at(b, a->line, a->col, "argument %.*s: expected a const string", (int)a->name_n, a->name);
    *s = v->str;
    return AN_OK;
}

static an_status check_out(B *b, const ref_type *want) {
    const ref_type *got = &b->fn->v[b->out].type;
    if (ref_type_eq(got, want)) return AN_OK;
    char g[96], w[96];
    return BFAIL("declared type %s, but the op produces %s", ref_type_str(got, g, sizeof g),
                 ref_type_str(want, w, sizeof w));
}

static ref_op *add_op(B *b, ref_opk kind) {
    ref_fn *fn = b->fn;
    if (fn->nops == fn->capops) {
        int nc = fn->capops ? fn->capops * 2 : 16;
        ref_op *no = realloc(fn->ops, (size_t)nc * sizeof *no);
        if (!no) {
            an_err_set(b->c->err, AN_E_NOMEM, "MIL: out of memory");
            return NULL;
        }
        fn->ops = no;
        fn->capops = nc;
    }
    ref_op *op = &fn->ops[fn->nops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->out = b->out;
    op->in[0] = op->in[1] = op->bias = -1;
    for (int d = 0; d < REF_MAX_RANK; d++) op->odim[d] = 1;
    return op;
}

static void row_strides(const ref_type *t, int64_t *s) {
    int64_t k = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        s[d] = k;
        k *= t->dim[d];
    }
}

/* out dims right-aligned into op->odim (5 axes). */
static void set_odim(ref_op *op, const ref_type *t) {
    for (int d = 0; d < t->rank; d++) op->odim[REF_MAX_RANK - t->rank + d] = t->dim[d];
}

/* ---- ops ------------------------------------------------------------------------------- */

static an_status op_transpose(B *b) {
    static const char *const names[] = {"x", "perm", NULL};
    const ref_arg *ax, *ap;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &ax));
    AN_TRY(need(b, "perm", &ap));
    AN_TRY(fp16_operand(b, ax, false));
    const ref_type xt = val(b, ax)->type;
    int64_t perm[REF_MAX_RANK];
    AN_TRY(const_ints(b, ap, DT_INT32, xt.rank, perm));
    bool seen[REF_MAX_RANK] = {false};
    for (int d = 0; d < xt.rank; d++) {
        if (perm[d] < 0 || perm[d] >= xt.rank || seen[perm[d]])
            return bfail_at(b, ap->line, ap->col, "perm is not a permutation of 0..%d", xt.rank - 1);
        seen[perm[d]] = true;
    }
    ref_type ot = xt;
    for (int d = 0; d < xt.rank; d++) ot.dim[d] = xt.dim[perm[d]];
    AN_TRY(check_out(b, &ot));
    ref_op *op = add_op(b, OP_STRIDED);
    if (!op) return AN_E_NOMEM;
    op->in[0] = ax->slot;
    set_odim(op, &ot);
    int64_t is[REF_MAX_RANK];
    row_strides(&xt, is);
    for (int d = 0; d < xt.rank; d++) op->stride[0][REF_MAX_RANK - xt.rank + d] = is[perm[d]];
    return AN_OK;
}

static an_status op_reshape(B *b) {
    static const char *const names[] = {"x", "shape", NULL};
    const ref_arg *ax, *as;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &ax));
    AN_TRY(need(b, "shape", &as));
    AN_TRY(fp16_operand(b, ax, false));
    const ref_val *x = val(b, ax), *s = val(b, as);
    if (s->type.rank != 1 || s->n > REF_MAX_RANK)
        return bfail_at(b, as->line, as->col, "shape must be a const int32 tensor of 1..%d elements", REF_MAX_RANK);
    int64_t sh[REF_MAX_RANK];
    AN_TRY(const_ints(b, as, DT_INT32, s->n, sh));
    ref_type ot = {DT_FP16, (int)s->n, {0}};
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ot.rank; d++) {
        if (sh[d] == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (sh[d] < 1 || sh[d] > REF_MAX_AXIS)
            return bfail_at(b, as->line, as->col, "shape entry %lld is outside 1..%d (or a single -1)",
                            (long long)sh[d], REF_MAX_AXIS);
        known *= sh[d];
        ot.dim[d] = sh[d];
    }
    if (infer >= 0) {
        if (x->n % known || x->n / known > REF_MAX_AXIS)
            return bfail_at(b, as->line, as->col, "cannot infer the -1 entry: %lld elements", (long long)x->n);
        ot.dim[infer] = x->n / known;
        known = x->n;
    }
    if (known != x->n)
        return bfail_at(b, as->line, as->col, "shape has %lld elements, x has %lld", (long long)known,
                        (long long)x->n);
    AN_TRY(check_out(b, &ot));
    ref_op *op = add_op(b, OP_COPY);
    if (!op) return AN_E_NOMEM;
    op->in[0] = ax->slot;
    return AN_OK;
}

static an_status op_slice(B *b) {
    static const char *const names[] = {"x", "begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask", NULL};
    const ref_arg *ax, *ab, *ae;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &ax));
    AN_TRY(need(b, "begin", &ab));
    AN_TRY(need(b, "end", &ae));
    AN_TRY(fp16_operand(b, ax, false));
    const ref_type xt = val(b, ax)->type;
    const int R = xt.rank;
    int64_t beg[REF_MAX_RANK], end[REF_MAX_RANK], st[REF_MAX_RANK], bm[REF_MAX_RANK] = {0}, em[REF_MAX_RANK] = {0},
                                                                      sq[REF_MAX_RANK] = {0};
    AN_TRY(const_ints(b, ab, DT_INT32, R, beg));
    AN_TRY(const_ints(b, ae, DT_INT32, R, end));
    const ref_arg *a;
    if ((a = find_arg(b, "stride"))) AN_TRY(const_ints(b, a, DT_INT32, R, st));
    else for (int d = 0; d < R; d++) st[d] = 1;
    if ((a = find_arg(b, "begin_mask"))) AN_TRY(const_ints(b, a, DT_BOOL, R, bm));
    if ((a = find_arg(b, "end_mask"))) AN_TRY(const_ints(b, a, DT_BOOL, R, em));
    if ((a = find_arg(b, "squeeze_mask"))) {
        AN_TRY(const_ints(b, a, DT_BOOL, R, sq));
        for (int d = 0; d < R; d++)
            if (sq[d]) return bfail_at(b, a->line, a->col, "squeeze_mask is not supported (write a reshape)");
    }
    ref_type ot = xt;
    int64_t is[REF_MAX_RANK], base = 0;
    row_strides(&xt, is);
    for (int d = 0; d < R; d++) {
        const int64_t n = xt.dim[d];
        int64_t b0 = bm[d] ? 0 : beg[d], e0 = em[d] ? n : end[d];
        if (b0 < 0) b0 += n; /* negative indices count from the end, as in numpy */
        if (e0 < 0) e0 += n;
        if (st[d] < 1) return BFAIL("axis %d: stride %lld (only positive strides are supported)", d, (long long)st[d]);
        if (b0 < 0 || b0 >= n || e0 <= b0 || e0 > n)
            return BFAIL("axis %d: slice [%lld, %lld) is empty or outside 0..%lld", d, (long long)b0, (long long)e0,
                         (long long)n);
        ot.dim[d] = (e0 - b0 + st[d] - 1) / st[d];
        base += b0 * is[d];
        is[d] *= st[d];
    }
    AN_TRY(check_out(b, &ot));
    ref_op *op = add_op(b, OP_STRIDED);
    if (!op) return AN_E_NOMEM;
    op->in[0] = ax->slot;
    op->base = base;
    set_odim(op, &ot);
    for (int d = 0; d < R; d++) op->stride[0][REF_MAX_RANK - R + d] = is[d];
    return AN_OK;
}

/* add, mul: numpy broadcasting (axes aligned on the right; an axis of 1 stretches). */
static an_status op_binary(B *b, ref_opk kind) {
    static const char *const names[] = {"x", "y", NULL};
    const ref_arg *a[2];
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &a[0]));
    AN_TRY(need(b, "y", &a[1]));
    AN_TRY(fp16_operand(b, a[0], true));
    AN_TRY(fp16_operand(b, a[1], true));
    const ref_type *t[2] = {&val(b, a[0])->type, &val(b, a[1])->type};
    ref_type ot = {DT_FP16, t[0]->rank > t[1]->rank ? t[0]->rank : t[1]->rank, {0}};
    int64_t dim[2][REF_MAX_RANK];
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < REF_MAX_RANK; d++) {
            int sd = d - (REF_MAX_RANK - t[k]->rank);
            dim[k][d] = sd >= 0 ? t[k]->dim[sd] : 1;
        }
    for (int d = REF_MAX_RANK - ot.rank; d < REF_MAX_RANK; d++) {
        if (dim[0][d] != dim[1][d] && dim[0][d] != 1 && dim[1][d] != 1)
            return BFAIL("shapes do not broadcast: axis %d has %lld and %lld", d - (REF_MAX_RANK - ot.rank),
                         (long long)dim[0][d], (long long)dim[1][d]);
        ot.dim[d - (REF_MAX_RANK - ot.rank)] = dim[0][d] > dim[1][d] ? dim[0][d] : dim[1][d];
    }
    if (ot.rank == 0) return BFAIL("both operands are scalars (the ANE computes tensors)");
    AN_TRY(check_out(b, &ot));
    ref_op *op = add_op(b, kind);
    if (!op) return AN_E_NOMEM;
    set_odim(op, &ot);
    for (int k = 0; k < 2; k++) {
        op->in[k] = a[k]->slot;
        int64_t s = 1;
        for (int d = REF_MAX_RANK - 1; d >= 0; d--) {
            op->stride[k][d] = dim[k][d] == 1 ? 0 : s;
            s *= dim[k][d];
        }
    }
    return AN_OK;
}

static an_status op_unary(B *b, ref_opk kind) {
    static const char *const names[] = {"x", NULL};
    const ref_arg *ax;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &ax));
    AN_TRY(fp16_operand(b, ax, false));
    AN_TRY(check_out(b, &val(b, ax)->type));
    ref_op *op = add_op(b, kind);
    if (!op) return AN_E_NOMEM;
    op->in[0] = ax->slot;
    return AN_OK;
}

/* conv as the emitters use it for a linear layer: a 1x1 const weight, stride and dilation 1,
 * no padding, one group. */
static an_status op_conv(B *b) {
    static const char *const names[] = {"x", "weight", "bias", "strides", "pad_type", "pad", "dilations", "groups",
                                        NULL};
    const ref_arg *ax, *aw, *a;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "x", &ax));
    AN_TRY(need(b, "weight", &aw));
    AN_TRY(fp16_operand(b, ax, false));
    const ref_type xt = val(b, ax)->type;
    if (xt.rank != 4) return bfail_at(b, ax->line, ax->col, "x must be [B, C, H, W] (rank 4)");
    ref_val *w = val(b, aw);
    char tb[96];
    if (w->kind != V_CONST || w->type.dt != DT_FP16 || w->type.rank != 4 || w->type.dim[2] != 1 || w->type.dim[3] != 1)
        return bfail_at(b, aw->line, aw->col, "weight must be a const fp16 [M, K, 1, 1] (1x1 kernels only), got %s%s",
                        w->kind == V_CONST ? "" : "the runtime value ", ref_type_str(&w->type, tb, sizeof tb));
    if (w->type.dim[1] != xt.dim[1])
        return bfail_at(b, aw->line, aw->col, "weight has K = %lld input channels, x has %lld",
                        (long long)w->type.dim[1], (long long)xt.dim[1]);
    int64_t v[4];
    if ((a = find_arg(b, "strides"))) {
        AN_TRY(const_ints(b, a, DT_INT32, 2, v));
        if (v[0] != 1 || v[1] != 1) return bfail_at(b, a->line, a->col, "only strides [1, 1] are supported");
    }
    if ((a = find_arg(b, "dilations"))) {
        AN_TRY(const_ints(b, a, DT_INT32, 2, v));
        if (v[0] != 1 || v[1] != 1) return bfail_at(b, a->line, a->col, "only dilations [1, 1] are supported");
    }
    if ((a = find_arg(b, "pad"))) {
        AN_TRY(const_ints(b, a, DT_INT32, 4, v));
        if (v[0] || v[1] || v[2] || v[3]) return bfail_at(b, a->line, a->col, "only pad [0, 0, 0, 0] is supported");
    }
    if ((a = find_arg(b, "groups"))) {
        AN_TRY(const_ints(b, a, DT_INT32, -1, v));
        if (v[0] != 1) return bfail_at(b, a->line, a->col, "only groups 1 is supported");
    }
    if ((a = find_arg(b, "pad_type"))) {
        const char *s = NULL;
        AN_TRY(const_string(b, a, &s));
        /* with a 1x1 kernel at stride 1 all three pad no element */
        if (strcmp(s, "valid") && strcmp(s, "same") && strcmp(s, "custom"))
            return bfail_at(b, a->line, a->col, "pad_type must be valid, same or custom");
    }
    const int64_t M = w->type.dim[0];
    int bias = -1;
    if ((a = find_arg(b, "bias"))) {
        ref_val *bv = val(b, a);
        if (bv->kind != V_CONST || bv->type.dt != DT_FP16 || bv->type.rank != 1 || bv->n != M)
            return bfail_at(b, a->line, a->col, "bias must be a const tensor<fp16, [%lld]>", (long long)M);
        AN_TRY(ref_const_to_f16(bv, b->c->err));
        bias = a->slot;
    }
    ref_type ot = xt;
    ot.dim[1] = M;
    AN_TRY(check_out(b, &ot));
    const int64_t S = xt.dim[2] * xt.dim[3];
    if (S * xt.dim[0] > INT32_MAX) return BFAIL("more than 2^31 positions");
    AN_TRY(ref_const_to_f16(w, b->c->err));
    w->is_weight = true;
    w->mat = (an_mat){.type = AN_TYPE_F16, .rows = M, .cols = xt.dim[1], .row_bytes = (uint64_t)xt.dim[1] * 2,
                      .data = w->h, .name = w->name};
    ref_op *op = add_op(b, OP_CONV);
    if (!op) return AN_E_NOMEM;
    op->in[0] = ax->slot;
    op->in[1] = aw->slot;
    op->bias = bias;
    op->B = xt.dim[0];
    op->K = xt.dim[1];
    op->S = S;
    op->M = M;
    an_mil_ref *r = b->c->r;
    if (S * op->K > r->conv_xf) r->conv_xf = S * op->K;
    if (S * M > r->conv_yf) r->conv_yf = S * M;
    if (S > r->conv_nmax) r->conv_nmax = (int)S;
    if (op->K > r->conv_kmax) r->conv_kmax = op->K;
    return AN_OK;
}

/* A constexpr operand: a const (or an earlier constexpr's folded result). */
static an_status const_operand(B *b, const ref_arg *a) {
    const ref_val *v = val(b, a);
    if (v->kind != V_CONST || v->type.rank == 0 || (!v->raw && !v->num && !v->f && !v->h))
        return bfail_at(b, a->line, a->col, "argument %.*s must be a const tensor", (int)a->name_n, a->name);
    return AN_OK;
}

static an_status op_blockwise(B *b) {
    static const char *const names[] = {"data", "scale", "offset", NULL};
    const ref_arg *ad, *as, *ao;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "data", &ad));
    AN_TRY(need(b, "scale", &as));
    ao = find_arg(b, "offset");
    AN_TRY(const_operand(b, ad));
    AN_TRY(const_operand(b, as));
    const ref_val *d = val(b, ad), *s = val(b, as);
    char tb[96];
    const ref_dt dd = d->type.dt;
    if (dd != DT_INT8 && dd != DT_UINT8 && dd != DT_INT4 && dd != DT_UINT4 && dd != DT_FP16)
        return bfail_at(b, ad->line, ad->col, "data must be int8, uint8, int4, uint4 or fp16, got %s",
                        ref_type_str(&d->type, tb, sizeof tb));
    if (d->type.rank > REF_MAX_RANK) return bfail_at(b, ad->line, ad->col, "data has rank above %d", REF_MAX_RANK);
    if (s->type.dt != DT_FP16 || s->type.rank != d->type.rank)
        return bfail_at(b, as->line, as->col, "scale must be an fp16 tensor of the data's rank %d, got %s",
                        d->type.rank, ref_type_str(&s->type, tb, sizeof tb));
    for (int k = 0; k < d->type.rank; k++)
        if (d->type.dim[k] % s->type.dim[k])
            return bfail_at(b, as->line, as->col, "scale axis %d (%lld) does not divide data axis %d (%lld)", k,
                            (long long)s->type.dim[k], k, (long long)d->type.dim[k]);
    if (ao) {
        AN_TRY(const_operand(b, ao));
        const ref_val *o = val(b, ao);
        ref_type want = s->type;
        want.dt = o->type.dt;
        if ((o->type.dt != dd && o->type.dt != DT_FP16) || !ref_type_eq(&o->type, &want))
            return bfail_at(b, ao->line, ao->col, "offset must have the scale's shape and the data's dtype (or fp16), "
                            "got %s", ref_type_str(&o->type, tb, sizeof tb));
    }
    ref_type ot = d->type;
    ot.dt = DT_FP16;
    AN_TRY(check_out(b, &ot));
    return ref_fold_blockwise(b->c, b->fn, b->out, ad->slot, as->slot, ao ? ao->slot : -1);
}

static an_status op_lut(B *b) {
    static const char *const names[] = {"indices", "lut", "vector_axis", NULL};
    const ref_arg *ai, *al, *a;
    AN_TRY(allow(b, names));
    AN_TRY(need(b, "indices", &ai));
    AN_TRY(need(b, "lut", &al));
    AN_TRY(const_operand(b, ai));
    AN_TRY(const_operand(b, al));
    const ref_val *ix = val(b, ai), *t = val(b, al);
    char tb[96];
    const ref_dt di = ix->type.dt;
    if (di != DT_UINT1 && di != DT_UINT2 && di != DT_UINT3 && di != DT_UINT4 && di != DT_UINT6 && di != DT_UINT8)
        return bfail_at(b, ai->line, ai->col, "indices must be uint1/2/3/4/6/8, got %s",
                        ref_type_str(&ix->type, tb, sizeof tb));
    const int R = ix->type.rank;
    if (R > REF_MAX_RANK) return bfail_at(b, ai->line, ai->col, "indices have rank above %d", REF_MAX_RANK);
    const int64_t entries = (int64_t)1 << ref_dt_get(di)->bits;
    if (t->type.dt != DT_FP16 || t->type.rank != R + 2 || t->type.dim[R] != entries)
        return bfail_at(b, al->line, al->col, "lut must be fp16 of rank %d with %lld entries on axis %d, got %s", R + 2,
                        (long long)entries, R, ref_type_str(&t->type, tb, sizeof tb));
    if (t->type.dim[R + 1] != 1)
        return bfail_at(b, al->line, al->col, "vector lookup tables (VECTOR_SIZE %lld > 1) are not supported",
                        (long long)t->type.dim[R + 1]);
    if ((a = find_arg(b, "vector_axis")))
        return bfail_at(b, a->line, a->col, "vector_axis is only for VECTOR_SIZE > 1 (not supported)");
    for (int k = 0; k < R; k++)
        if (ix->type.dim[k] % t->type.dim[k])
            return bfail_at(b, al->line, al->col, "lut axis %d (%lld) does not divide indices axis %d (%lld)", k,
                            (long long)t->type.dim[k], k, (long long)ix->type.dim[k]);
    ref_type ot = ix->type;
    ot.dt = DT_FP16;
    AN_TRY(check_out(b, &ot));
    return ref_fold_lut(b->c, b->fn, b->out, ai->slot, al->slot);
}

an_status ref_op_build(ref_ctx *c, ref_fn *fn, const char *op, size_t op_n, const ref_arg *args, int n_args, int out,
                       int line, int col) {
    char name[48];
    snprintf(name, sizeof name, "%.*s", op_n < 40 ? (int)op_n : 40, op);
    B b = {c, fn, name, line, col, args, n_args, out};
    /* operands other than LUT tables are tensors the ANE computes with: rank <= 5 */
    bool is_lut = strcmp(name, "constexpr_lut_to_dense") == 0;
    for (int i = 0; i < n_args; i++) {
        const ref_val *v = &fn->v[args[i].slot];
        bool lut_arg = is_lut && args[i].name_n == 3 && memcmp(args[i].name, "lut", 3) == 0;
        if (v->type.rank > REF_MAX_RANK && !lut_arg)
            return bfail_at(&b, args[i].line, args[i].col, "argument %.*s has rank %d, above the ANE's %d",
                            (int)args[i].name_n, args[i].name, v->type.rank, REF_MAX_RANK);
    }
    if (!strcmp(name, "transpose")) return op_transpose(&b);
    if (!strcmp(name, "reshape")) return op_reshape(&b);
    if (!strcmp(name, "slice_by_index")) return op_slice(&b);
    if (!strcmp(name, "add")) return op_binary(&b, OP_ADD);
    if (!strcmp(name, "mul")) return op_binary(&b, OP_MUL);
    if (!strcmp(name, "sigmoid")) return op_unary(&b, OP_SIGMOID);
    if (!strcmp(name, "silu")) return op_unary(&b, OP_SILU);
    if (!strcmp(name, "conv")) return op_conv(&b);
    if (!strcmp(name, "constexpr_blockwise_shift_scale")) return op_blockwise(&b);
    if (is_lut) return op_lut(&b);
    return an_err_set(c->err, AN_E_UNSUPPORTED, "MIL line %d, column %d: unknown or unsupported op '%s'", line, col,
                      name);
}
