/* ane_device.c — the "ane-ref" and "ane" devices (ane.h): prepare_op() emits one MIL program per
 * op (mil/mil.h) with a function per bucket, through the compile cache, and loads it into the
 * reference executor or the bridge; run() pads the batch to its bucket, converts activations
 * to fp16, evaluates, and writes the outputs back as floats. */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ane.h"
#include "backends/ane/bridge/bridge.h"
#include "backends/ane/ref/ref.h"
#include "core/fp16.h"
#include "core/log.h"
#include "quant/lut.h"
#include "quant/quant.h"

/* Bumped whenever the emitter's output for the same weights changes: part of the cache key. */
#define ANE_EMIT_VERSION 1
#define PAYLOAD_MAGIC 0x50454e41u /* "ANEP" */

/* One compiled program: the functions of one or more ops. */
typedef struct {
    int n_fns;
    struct an_mil_io *io; /* [n_fns] */
    an_mil_ref *ref;      /* ane-ref */
    an_ane_prog *hw;      /* ane */
} bank;

/* One op (its weights: identity by data pointers, count, formats and shapes) and where its
 * functions live: bank, functions fn0 .. fn0 + n_buckets - 1 for buckets 32, 64, ... */
typedef struct {
    const an_mat *w[AN_OP_MAX_W];
    int n_w;
    bool ffn; /* the fused SwiGLU FFN (an_op.ffn) */
    int bank; /* -1: collected, not built yet */
    int fn0;
} prog_entry;

typedef struct {
    an_ane_params p;
    int n_buckets;            /* functions per op: buckets up to n_max */
    prog_entry *e;
    int n, cap;
    bank *banks;
    int n_banks;              /* programs compiled (the compile budget counts these) */
    uint16_t *in, *out;       /* fp16 staging for one evaluation */
    size_t in_cap, out_cap;   /* elements */
} ane_ctx;

an_ane_family an_ane_family_from_env(void) {
    const char *s = getenv("ANELM_ANE_FAMILY");
    if (s && (s[0] == 'm' || s[0] == 'M') && s[1] >= '1' && s[1] <= '3') return AN_ANE_M1_M3;
    return AN_ANE_M4_PLUS;
}

/* ---- cost model ------------------------------------------------------------------------- */

/* Bytes per weight the ANE streams from DRAM per evaluation (research/ane.md §3.3): M3 and
 * later stream int8, blockwise int4 and LUT indices compressed, M1/M2 fold everything but LUT4
 * to dense fp16; the M1-M3 family is costed like M1/M2 (the conservative side). */
static double weight_bytes(an_ane_family f, const an_mat *w) {
    const double n = (double)w->rows * (double)w->cols;
    switch (w->type) {
    case AN_TYPE_LUT4: return n * 0.5;
    case AN_TYPE_LUT6: return f == AN_ANE_M4_PLUS ? n * 0.75 : n * 2;
    case AN_TYPE_LUT8: case AN_TYPE_Q8_0: return f == AN_ANE_M4_PLUS ? n * (34.0 / 32) : n * 2;
    case AN_TYPE_Q4_0: return f == AN_ANE_M4_PLUS ? n * (18.0 / 32) : n * 2;
    default: return n * 2;
    }
}

double an_ane_cost_model(an_ane_family f, const an_op *op) {
    /* published anchors (research/ane.md §5.4-5.5): per-evaluation floor, one-conv throughput,
     * weight streaming bandwidth; M1-M3 from ANEForge's M1 anchors, M4+ from the M4/M5 ones */
    const double floor_s = f == AN_ANE_M4_PLUS ? 100e-6 : 220e-6;
    const double flops_s = f == AN_ANE_M4_PLUS ? 4.0e12 : 3.25e12;
    const double dram_bs = f == AN_ANE_M4_PLUS ? 57e9 : 9e9;
    const double host_bs = 10e9; /* f32 <-> f16 conversion and copies on the host */
    const double nb = an_ane_bucket(op->n);
    double flops = 0, wb = 0, io = 0;
    for (int i = 0; i < op->n_w; i++) {
        flops += 2.0 * (double)op->w[i]->rows * (double)op->w[i]->cols * nb;
        wb += weight_bytes(f, op->w[i]);
        if (!op->ffn || i == op->n_w - 1) io += (double)op->n * (double)op->w[i]->rows * 6; /* read f16, write f32 */
    }
    io += (double)op->n * (double)op->w[0]->cols * 6;
    const double t_mac = flops / flops_s, t_w = wb / dram_bs;
    return floor_s + (t_mac > t_w ? t_mac : t_w) + io / host_bs;
}

/* ---- programs ---------------------------------------------------------------------------- */

static bool same_op(const prog_entry *e, const an_op *op) {
    if (e->n_w != op->n_w || e->ffn != op->ffn) return false;
    for (int k = 0; k < op->n_w; k++)
        if (e->w[k]->data != op->w[k]->data || e->w[k]->type != op->w[k]->type || e->w[k]->rows != op->w[k]->rows ||
            e->w[k]->cols != op->w[k]->cols)
            return false;
    return true;
}

static prog_entry *find(ane_ctx *c, const an_op *op) {
    for (int i = 0; i < c->n; i++)
        if (same_op(&c->e[i], op)) return &c->e[i];
    return NULL;
}

/* every format the emitter maps losslessly or dequantizes to fp16 */
static bool type_ok(uint32_t t) { return an_quant_is_weight_type(t) || an_lut_is_type(t); }

static bool ane_supports(an_device *d, const an_op *op, const char **why) {
    ane_ctx *c = d->ctx;
    const char *w;
    if (c->p.hardware && !an_ane_bridge_available(&w)) {
        if (why) *why = w ? w : "ane: bridge unavailable";
        return false;
    }
    if (c->n > 0 && !find(c, op)) { /* after loading: only what was compiled */
        if (why) *why = "ane: no program for this op (compiled at load for the plan of a full batch)";
        return false;
    }
    if (an_ane_bucket(op->n) > an_ane_bucket(c->p.n_max)) {
        if (why) *why = "ane: batch larger than the programs' largest bucket";
        return false;
    }
    if (op->ffn && (op->n_w != 3 || op->w[1]->rows != op->w[0]->rows || op->w[1]->cols != op->w[0]->cols ||
                    op->w[2]->cols != op->w[0]->rows)) {
        if (why) *why = "ane: FFN weights do not chain";
        return false;
    }
    for (int i = 0; i < op->n_w; i++) {
        if (!type_ok(op->w[i]->type)) {
            if (why) *why = "ane: weight format without an fp16 mapping";
            return false;
        }
        if (!op->ffn && op->w[i]->cols != op->w[0]->cols) {
            if (why) *why = "ane: fused weights differ in K";
            return false;
        }
    }
    return true;
}

static double ane_cost(an_device *d, const an_op *op) { return an_ane_cost_model(((ane_ctx *)d->ctx)->p.family, op); }

/* Adds to kb everything about op's weights that shapes the emitted text and blob: their content
 * (tables and row scales of palettized ones included), formats and shapes. */
static void key_add_op(an_cache_keyer *kb, const prog_entry *op) {
    an_cache_key_add_u64(kb, (uint64_t)op->n_w);
    an_cache_key_add_u64(kb, (uint64_t)op->ffn);
    for (int i = 0; i < op->n_w; i++) an_weight_key_add(kb, op->w[i]);
}

/* Cache payload: u32 magic, u32 n_fns, u64 text_len, u64 blob_len, io[n_fns], text, blob. */
typedef struct {
    uint32_t magic, n_fns;
    uint64_t text_len, blob_len;
} payload_head;

static void payload_put(an_cache *cache, const an_cache_key *k, const an_mil_program *pr) {
    const size_t n = sizeof(payload_head) + (size_t)pr->n_fns * sizeof *pr->io + pr->text_len + pr->blob_len;
    uint8_t *buf = malloc(n);
    if (!buf) return; /* a failed store only costs an emit later */
    payload_head h = {PAYLOAD_MAGIC, (uint32_t)pr->n_fns, pr->text_len, pr->blob_len};
    uint8_t *q = buf;
    memcpy(q, &h, sizeof h), q += sizeof h;
    memcpy(q, pr->io, (size_t)pr->n_fns * sizeof *pr->io), q += (size_t)pr->n_fns * sizeof *pr->io;
    memcpy(q, pr->text, pr->text_len), q += pr->text_len;
    memcpy(q, pr->blob, pr->blob_len);
    an_err e = {0};
    if (an_cache_put(cache, k, buf, n, &e) != AN_OK) an_log(1, "ane: compile cache: %s\n", e.msg);
    free(buf);
}

/* A view of a cached payload as a program (text and blob borrowed from the mapping; io copied
 * so the bank can outlive the mapping). */
static bool payload_view(const uint8_t *p, size_t n, int n_fns, an_mil_program *out) {
    payload_head h;
    if (n < sizeof h) return false;
    memcpy(&h, p, sizeof h);
    const size_t io_b = (size_t)h.n_fns * sizeof *out->io;
    if (h.magic != PAYLOAD_MAGIC || (int)h.n_fns != n_fns || n != sizeof h + io_b + h.text_len + h.blob_len)
        return false;
    memset(out, 0, sizeof *out);
    if (!(out->io = malloc(io_b))) return false;
    memcpy(out->io, p + sizeof h, io_b);
    out->n_fns = n_fns;
    out->text = (char *)(p + sizeof h + io_b);
    out->text_len = h.text_len;
    out->blob = (uint8_t *)(p + sizeof h + io_b + h.text_len);
    out->blob_len = h.blob_len;
    return true;
}

/* Staging buffers large enough for every function of b (allocated here, never in run()). */
static an_status grow_staging(ane_ctx *c, const bank *b, an_err *err) {
    for (int f = 0; f < b->n_fns; f++) {
        const struct an_mil_io *io = &b->io[f];
        size_t ni = 0, no = 0;
        for (int i = 0; i < io->n_in; i++) ni += (size_t)io->n * (size_t)io->in_width[i];
        for (int o = 0; o < io->n_out; o++) no += (size_t)io->n * (size_t)io->out_width[o];
        if (ni > c->in_cap) {
            free(c->in);
            if (!(c->in = malloc(ni * 2))) return an_err_set(err, AN_E_NOMEM, "ane: staging buffers");
            c->in_cap = ni;
        }
        if (no > c->out_cap) {
            free(c->out);
            if (!(c->out = malloc(no * 2))) return an_err_set(err, AN_E_NOMEM, "ane: staging buffers");
            c->out_cap = no;
        }
    }
    return AN_OK;
}

/* The bridge's known-answer test: every function on a deterministic input, answered by the
 * reference executor (same program, same numerics contract). */
static an_status load_hardware(ane_ctx *c, bank *b, const an_mil_program *pr, an_err *err) {
    an_mil_ref *ref = NULL;
    AN_TRY(an_mil_ref_load(&ref, pr->text, pr->text_len, pr->blob, pr->blob_len, err));
    an_status s = AN_OK;
    const int nf = pr->n_fns;
    uint16_t ***rin = calloc((size_t)nf, sizeof *rin), ***rout = calloc((size_t)nf, sizeof *rout);
    if (!rin || !rout) s = an_err_set(err, AN_E_NOMEM, "ane: self-test buffers");
    uint32_t rng = 12345;
    for (int f = 0; f < nf && s == AN_OK; f++) {
        const struct an_mil_io *io = &pr->io[f];
        rin[f] = calloc(AN_MIL_MAX_IN, sizeof **rin);
        rout[f] = calloc(AN_MIL_MAX_OUT, sizeof **rout);
        if (!rin[f] || !rout[f]) s = an_err_set(err, AN_E_NOMEM, "ane: self-test buffers");
        for (int i = 0; i < io->n_in && s == AN_OK; i++) {
            const size_t m = (size_t)io->n * (size_t)io->in_width[i];
            if (!(rin[f][i] = malloc(m * 2))) s = an_err_set(err, AN_E_NOMEM, "ane: self-test buffers");
            for (size_t k = 0; rin[f][i] && k < m; k++) {
                rng = rng * 1664525u + 1013904223u;
                rin[f][i][k] = an_f32_to_f16((float)(rng >> 8) / 16777216.0f - 0.5f);
            }
        }
        for (int o = 0; o < io->n_out && s == AN_OK; o++)
            if (!(rout[f][o] = malloc((size_t)io->n * (size_t)io->out_width[o] * 2)))
                s = an_err_set(err, AN_E_NOMEM, "ane: self-test buffers");
        if (s == AN_OK)
            s = an_mil_ref_run(ref, f, (const uint16_t *const *)rin[f], (uint16_t *const *)rout[f], NULL, err);
    }
    if (s == AN_OK) {
        an_ane_prog_desc d = {.mil = pr->text, .mil_len = pr->text_len, .blob = pr->blob, .blob_len = pr->blob_len,
                              .n_fns = nf, .io = pr->io, .cache_dir = c->p.cache ? an_cache_path(c->p.cache) : NULL,
                              .ref_in = (const uint16_t *const *const *)rin,
                              .ref_out = (const uint16_t *const *const *)rout, .tol_abs = 5e-2f, .tol_rel = 2e-2f};
        s = an_ane_prog_load(&b->hw, &d, err);
    }
    for (int f = 0; f < nf; f++) {
        for (int i = 0; rin && rin[f] && i < AN_MIL_MAX_IN; i++) free(rin[f][i]);
        for (int o = 0; rout && rout[f] && o < AN_MIL_MAX_OUT; o++) free(rout[f][o]);
        if (rin) free(rin[f]);
        if (rout) free(rout[f]);
    }
    free(rin);
    free(rout);
    an_mil_ref_free(ref);
    return s;
}

/* Emits (or takes from the compile cache) and loads the program of entries e[0 .. n-1]: one
 * function per (op, bucket), op-major, into bank b. */
static an_status build_bank(ane_ctx *c, prog_entry *e, int n, bank *b, an_err *err) {
    const int per_op = c->n_buckets, n_fns = n * per_op;
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_cache_key_add_str(&kb, "ane-mil-bank");
    an_cache_key_add_u64(&kb, ANE_EMIT_VERSION);
    an_cache_key_add_u64(&kb, (uint64_t)c->p.family);
    an_cache_key_add_u64(&kb, (uint64_t)per_op);
    for (int i = 0; i < n; i++) key_add_op(&kb, &e[i]);
    const an_cache_key k = an_cache_key_final(&kb);
    an_mil_program pr = {0};
    an_cache_blob *blob = NULL;
    bool from_cache = false;
    const bool use_cache = c->p.cache && an_cache_enabled(c->p.cache);
    if (use_cache) {
        an_err ce = {0};
        if (an_cache_get(c->p.cache, &k, &blob, &ce) == AN_OK && blob) {
            from_cache = payload_view(an_cache_blob_data(blob), an_cache_blob_size(blob), n_fns, &pr);
            if (!from_cache) {
                an_log(1, "ane: a cached program does not match its key's shape; emitting it again\n");
                an_cache_blob_free(blob);
                blob = NULL;
            }
        }
    }
    if (!from_cache) {
        an_mil_fn *fns = calloc((size_t)n_fns, sizeof *fns);
        if (!fns) return an_err_set(err, AN_E_NOMEM, "ane: program functions");
        for (int i = 0; i < n; i++)
            for (int f = 0; f < per_op; f++) {
                an_mil_fn *fn = &fns[i * per_op + f];
                fn->kind = e[i].ffn ? AN_MIL_FFN : AN_MIL_LINEAR;
                fn->n_w = e[i].n_w;
                for (int w = 0; w < e[i].n_w; w++) fn->w[w] = e[i].w[w];
                fn->n = (f + 1) * AN_ANE_BUCKET;
            }
        an_status s = an_mil_emit(fns, n_fns, c->p.family, &pr, err);
        free(fns);
        AN_TRY(s);
        if (use_cache) payload_put(c->p.cache, &k, &pr);
    }
    memset(b, 0, sizeof *b);
    b->n_fns = pr.n_fns;
    an_status s = AN_OK;
    if (!(b->io = malloc((size_t)pr.n_fns * sizeof *b->io))) s = an_err_set(err, AN_E_NOMEM, "ane: program table");
    else memcpy(b->io, pr.io, (size_t)pr.n_fns * sizeof *b->io);
    if (s == AN_OK)
        s = c->p.hardware ? load_hardware(c, b, &pr, err)
                          : an_mil_ref_load(&b->ref, pr.text, pr.text_len, pr.blob, pr.blob_len, err);
    if (s == AN_OK) s = grow_staging(c, b, err);
    if (from_cache) {
        free(pr.io);
        an_cache_blob_free(blob);
    } else {
        an_mil_program_free(&pr);
    }
    if (s != AN_OK) {
        an_mil_ref_free(b->ref);
        an_ane_prog_free(b->hw);
        free(b->io);
        memset(b, 0, sizeof *b);
    }
    return s;
}

/* Ops are collected one by one, then compiled together so they can share banks: one program
 * holds the functions of several consecutive ops (research/ane.md §1.3), as few programs as
 * the bank caps allow, which keeps a model of any depth inside the per-process compile budget
 * (the prototype compiled every weight once per prompt length). */
static an_status ane_prepare_op(an_device *d, const an_op *op, an_err *err) {
    ane_ctx *c = d->ctx;
    if (op) {
        if (find(c, op)) return AN_OK;
        if (c->n == c->cap) {
            int nc = c->cap ? c->cap * 2 : 64;
            prog_entry *ne = realloc(c->e, (size_t)nc * sizeof *ne);
            if (!ne) return an_err_set(err, AN_E_NOMEM, "ane: program table");
            c->e = ne, c->cap = nc;
        }
        prog_entry *e = &c->e[c->n++];
        memset(e, 0, sizeof *e);
        e->n_w = op->n_w;
        e->ffn = op->ffn;
        for (int i = 0; i < op->n_w; i++) e->w[i] = op->w[i];
        e->bank = -1;
        return AN_OK;
    }
    /* the end of a batch: bank and build every op not built yet */
    int first = c->n;
    for (int i = 0; i < c->n; i++)
        if (c->e[i].bank < 0) {
            first = i;
            break;
        }
    const int n_new = c->n - first;
    if (n_new == 0) return AN_OK;
    uint64_t *bytes = calloc((size_t)n_new, sizeof *bytes);
    int *nf = calloc((size_t)n_new, sizeof *nf), *bank_of = calloc((size_t)n_new, sizeof *bank_of), n_banks = 0;
    an_status s = bytes && nf && bank_of ? AN_OK : an_err_set(err, AN_E_NOMEM, "ane: bank plan");
    for (int i = 0; s == AN_OK && i < n_new; i++) {
        const prog_entry *e = &c->e[first + i];
        for (int w = 0; w < e->n_w; w++) bytes[i] += (uint64_t)e->w[w]->rows * (uint64_t)e->w[w]->cols * 2;
        nf[i] = c->n_buckets;
    }
    if (s == AN_OK)
        s = an_ane_bank_plan(bytes, nf, n_new, AN_ANE_COMPILE_BUDGET - c->n_banks, bank_of, &n_banks, err);
    if (s == AN_OK) {
        bank *nb = realloc(c->banks, (size_t)(c->n_banks + n_banks) * sizeof *nb);
        if (!nb) s = an_err_set(err, AN_E_NOMEM, "ane: banks");
        else c->banks = nb;
    }
    for (int bi = 0, i = 0; s == AN_OK && bi < n_banks; bi++) {
        int j = i;
        while (j < n_new && bank_of[j] == bi) j++;
        s = build_bank(c, &c->e[first + i], j - i, &c->banks[c->n_banks], err);
        if (s != AN_OK) break;
        for (int k = i; k < j; k++) {
            c->e[first + k].bank = c->n_banks;
            c->e[first + k].fn0 = (k - i) * c->n_buckets;
        }
        c->n_banks++;
        an_progress("ane: compiling programs", (uint64_t)bi + 1, (uint64_t)n_banks);
        i = j;
    }
    if (s != AN_OK) c->n = first; /* the ops of a failed batch stay unprepared: they run on the cpu */
    free(bytes);
    free(nf);
    free(bank_of);
    return s;
}

static an_status ane_prepare(an_device *d, const an_mat *w, an_err *err) {
    (void)d, (void)w, (void)err; /* programs are per op: prepare_op */
    return AN_OK;
}

static an_status ane_run(an_device *d, const an_op *op, const an_mm_out *outs, const float *x, an_pool *pool,
                         void *ws, an_err *err) {
    (void)ws;
    ane_ctx *c = d->ctx;
    prog_entry *e = find(c, op);
    if (!e || e->bank < 0)
        return an_err_set(err, AN_E_UNSUPPORTED, "ane: no program prepared for %s", op->name ? op->name : "?");
    const int bi = an_ane_bucket(op->n) / AN_ANE_BUCKET - 1;
    if (bi < 0 || bi >= c->n_buckets)
        return an_err_set(err, AN_E_UNSUPPORTED, "ane: %d tokens exceed the largest bucket of %s", op->n,
                          op->name ? op->name : "?");
    bank *b = &c->banks[e->bank];
    const int fn = e->fn0 + bi;
    const struct an_mil_io *io = &b->io[fn];
    const int64_t K = op->w[0]->cols;
    const uint16_t *in[AN_MIL_MAX_IN];
    uint16_t *out[AN_MIL_MAX_OUT];
    /* inputs: column slices of x as fp16, rows past n zero (padding activations, never tokens) */
    uint16_t *q = c->in;
    for (int i = 0; i < io->n_in; i++) {
        const int64_t w = io->in_width[i], c0 = io->in_col0[i];
        for (int t = 0; t < io->n; t++)
            for (int64_t k = 0; k < w; k++) q[(int64_t)t * w + k] = t < op->n ? an_f32_to_f16(x[(int64_t)t * K + c0 + k]) : 0;
        in[i] = q;
        q += (size_t)io->n * (size_t)w;
    }
    q = c->out;
    for (int o = 0; o < io->n_out; o++) {
        out[o] = q;
        q += (size_t)io->n * (size_t)io->out_width[o];
    }
    AN_TRY(c->p.hardware ? an_ane_prog_eval(b->hw, fn, in, out, err) : an_mil_ref_run(b->ref, fn, in, out, pool, err));
    for (int o = 0; o < io->n_out; o++) {
        const an_mm_out *dst = &outs[io->out_w[o]];
        const int64_t w = io->out_width[o], c0 = io->out_col0[o];
        for (int t = 0; t < op->n; t++) {
            float *y = dst->y + (int64_t)t * dst->ldy + c0;
            const uint16_t *h = out[o] + (int64_t)t * w;
            for (int64_t k = 0; k < w; k++) y[k] = an_f16_to_f32(h[k]);
        }
    }
    return AN_OK;
}

static size_t ane_wsize(an_device *d, int64_t k_max, int n_max, int nth) {
    (void)d, (void)k_max, (void)n_max, (void)nth;
    return 0;
}

static void ane_sync(an_device *d) { (void)d; }

static void ane_free(an_device *d) {
    if (!d) return;
    ane_ctx *c = d->ctx;
    for (int i = 0; i < c->n_banks; i++) {
        an_mil_ref_free(c->banks[i].ref);
        an_ane_prog_free(c->banks[i].hw);
        free(c->banks[i].io);
    }
    free(c->banks);
    free(c->e);
    free(c->in);
    free(c->out);
    free(c);
    free(d);
}

static const an_device_i k_ane_ref = {
    .name = "ane-ref", .supports = ane_supports, .cost = ane_cost, .prepare = ane_prepare,
    .prepare_op = ane_prepare_op, .run = ane_run, .forget = NULL, .wsize = ane_wsize, .sync = ane_sync,
    .free = ane_free, .forced_by_cost = true,
};
static const an_device_i k_ane = {
    .name = "ane", .supports = ane_supports, .cost = ane_cost, .prepare = ane_prepare,
    .prepare_op = ane_prepare_op, .run = ane_run, .forget = NULL, .wsize = ane_wsize, .sync = ane_sync,
    .free = ane_free, .forced_by_cost = true,
};

an_device *an_ane_device_create(const an_ane_params *p) {
    an_device *d = calloc(1, sizeof *d);
    ane_ctx *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return NULL;
    }
    c->p = *p;
    if (c->p.n_max < 1) c->p.n_max = 1;
    c->n_buckets = an_ane_bucket(c->p.n_max) / AN_ANE_BUCKET;
    d->i = p->hardware ? &k_ane : &k_ane_ref;
    d->ctx = c;
    return d;
}
