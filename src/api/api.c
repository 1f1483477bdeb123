/* api.c — include/anelm.h: the one place that knows every subsystem (GGUF reader, model,
 * tokenizer, thread pool) and wires them together. */
#include "anelm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/pool.h"
#include "core/timer.h"
#include "gguf/gguf.h"
#include "backends/amx/amx.h"
#include "backends/ane/ane.h"
#include "backends/backend.h"
#include "cache/cache.h"
#include "model/llm.h"
#include "quant/lut.h"
#include "quant/palettize.h"
#include "quant/quant.h"
#include "sched/sched.h"
#include "tokenizer/tokenizer.h"

struct an_model {
    an_gguf *g;
    an_tok *tok;
    an_llm llm;
    bool has_weights;
    char desc[256];
    /* load-time palettization: the cache and what the converted an_mats point into */
    an_cache *cache;
    an_cache_blob **blobs;
    void **bufs;
    int n_blobs, n_bufs;
};

struct an_ctx {
    an_model *m;
    an_pool *pool;
    an_device *dev[AN_MAX_DEV];
    int n_dev;
    an_cache *cache;
    char dev_names[64];
    an_sched *sched;
    an_llm_state st;
    an_timings tm;
    int n_logit_rows;
};

/* ---- model -------------------------------------------------------------------------------- */

/* FNV-1a of a tensor name: the palettizer's per-tensor salt, as `anelm quantize` uses it, so a
 * load-time palettization and a quantized file of the same weights hold the same bytes. */
static uint64_t name_salt(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Palettizes one matrix in place (the an_mat is re-pointed), through the compile cache. The
 * payload is the packed indices, the tables and the row scales, each 64-byte aligned. */
static an_status palettize_mat(an_model *m, an_pool *pool, an_mat *w, const an_pal_params *pp, an_err *err) {
    const uint32_t lt = an_pal_type(pp->bits);
    const an_type_traits *ot = an_type_traits_get(lt), *st = an_type_traits_get(w->type);
    const int64_t rows = w->rows, cols = w->cols, grp = an_pal_group(rows, pp->group), k = 1 << pp->bits;
    const size_t idx_b = (size_t)rows * an_row_bytes(ot, (uint64_t)cols), lut_b = (size_t)(rows / grp * k) * 2,
                 sc_b = pp->row_scale ? (size_t)rows * 2 : 0;
    const size_t off_lut = align64(idx_b), off_sc = off_lut + align64(lut_b), total = off_sc + sc_b;
    const uint64_t in_bytes = (uint64_t)rows * w->row_bytes;
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_cache_key_add(&kb, w->data, (size_t)in_bytes);
    an_cache_key_add_str(&kb, an_type_name(w->type));
    an_cache_key_add_str(&kb, an_type_name(lt));
    an_cache_key_add_str(&kb, "palettize");
    an_cache_key_add_u64(&kb, (uint64_t)grp);
    an_cache_key_add_u64(&kb, pp->row_scale);
    an_cache_key_add_u64(&kb, (uint64_t)pp->iters);
    an_cache_key_add_u64(&kb, pp->seed);
    an_cache_key_add_u64(&kb, name_salt(w->name));
    an_cache_key_add_u64(&kb, (uint64_t)rows);
    an_cache_key_add_u64(&kb, (uint64_t)cols);
    an_cache_key_add_u64(&kb, AN_PAL_VERSION);
    const an_cache_key key = an_cache_key_final(&kb);
    an_cache_blob *blob = NULL;
    an_err ce = {0};
    if (an_cache_get(m->cache, &key, &blob, &ce) != AN_OK) an_log(1, "compile cache: %s (palettizing anyway)\n", ce.msg);
    const uint8_t *base;
    if (blob && an_cache_blob_size(blob) == total) {
        m->blobs[m->n_blobs++] = blob;
        base = an_cache_blob_data(blob);
    } else {
        if (blob) an_cache_blob_free(blob);
        uint8_t *buf = aligned_alloc(64, align64(total ? total : 1));
        if (!buf) return an_err_set(err, AN_E_NOMEM, "out of memory palettizing %s", w->name);
        memset(buf, 0, align64(total ? total : 1));
        m->bufs[m->n_bufs++] = buf;
        AN_TRY(an_palettize(pool, w->type, w->data, rows, cols, pp, name_salt(w->name), buf, (uint16_t *)(buf + off_lut),
                            pp->row_scale ? (uint16_t *)(buf + off_sc) : NULL, w->name, NULL, NULL, err));
        an_err pe = {0};
        if (an_cache_put(m->cache, &key, buf, total, &pe) != AN_OK) an_log(1, "compile cache: %s\n", pe.msg);
        base = buf;
    }
    (void)st;
    m->llm.weight_bytes += idx_b + lut_b + sc_b;
    m->llm.weight_bytes -= in_bytes;
    w->type = lt;
    w->row_bytes = an_row_bytes(ot, (uint64_t)cols);
    w->data = base;
    w->lut = (const uint16_t *)(base + off_lut);
    w->lut_group = (int32_t)grp;
    w->row_scale = pp->row_scale ? (const uint16_t *)(base + off_sc) : NULL;
    return an_lut_check(w, err);
}

/* The token embedding / output matrix of a palettized model: an F32/F16/BF16 one is quantized
 * to an_pal_embd_type (reference rounding, as `anelm quantize` does), a block-quantized one is
 * kept. */
static an_status convert_embd(an_model *m, an_mat *w, int bits, an_err *err) {
    const uint32_t et = an_pal_embd_type(bits, w->cols);
    if (!et || !(w->type == AN_TYPE_F32 || w->type == AN_TYPE_F16 || w->type == AN_TYPE_BF16)) return AN_OK;
    const an_type_traits *ot = an_type_traits_get(et);
    const uint64_t rb = an_row_bytes(ot, (uint64_t)w->cols), in_bytes = (uint64_t)w->rows * w->row_bytes;
    uint8_t *buf = malloc(rb * (uint64_t)w->rows);
    float *row = malloc(sizeof(float) * (size_t)w->cols);
    if (!buf || !row) {
        free(buf), free(row);
        return an_err_set(err, AN_E_NOMEM, "out of memory converting %s", w->name);
    }
    for (int64_t r = 0; r < w->rows; r++) {
        an_dequant_row((an_type)w->type, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, row, w->cols);
        an_quant_row_ref((an_type)et, row, buf + (uint64_t)r * rb, w->cols);
    }
    free(row);
    m->bufs[m->n_bufs++] = buf;
    m->llm.weight_bytes += rb * (uint64_t)w->rows;
    m->llm.weight_bytes -= in_bytes;
    w->type = et;
    w->row_bytes = rb;
    w->data = buf;
    return AN_OK;
}

/* --weights lut4|lut6|lut8: every layer matrix is palettized; the token embedding and the output
 * matrix get an_pal_embd_type (README, "LUT quality", has the measurement behind that). */
static an_status palettize_model(an_model *m, const an_model_params *p, an_err *err) {
    an_llm *l = &m->llm;
    const int bits = an_pal_parse(p->weights);
    if (!bits) return an_err_set(err, AN_E_USAGE, "weights '%s': expected lut4, lut6 or lut8", p->weights);
    an_pal_params pp = an_pal_defaults(bits);
    if (p->lut_group > 0) pp.group = p->lut_group;
    pp.row_scale = p->lut_row_scale;
    const bool tied = l->output.data == l->tok_embd.data;
    const int n_mats = 7 * l->hp.n_layer + 2; /* buffers: every layer matrix, embedding, output */
    an_mat **mats = calloc((size_t)n_mats, sizeof *mats);
    m->blobs = calloc((size_t)n_mats, sizeof *m->blobs);
    m->bufs = calloc((size_t)n_mats, sizeof *m->bufs);
    if (!mats || !m->blobs || !m->bufs) {
        free(mats);
        return an_err_set(err, AN_E_NOMEM, "out of memory");
    }
    int n = 0;
    for (int li = 0; li < l->hp.n_layer; li++) {
        an_layer *L = &l->layers[li];
        an_mat *lm[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (int i = 0; i < 7; i++) mats[n++] = lm[i];
    }
    an_pool *pool = NULL;
    an_cache_params cpar = {.disabled = p->no_cache};
    an_status s = convert_embd(m, &l->tok_embd, bits, err);
    if (s == AN_OK && !tied) s = convert_embd(m, &l->output, bits, err);
    if (s == AN_OK) s = an_pool_create(&pool, p->n_threads > 0 ? p->n_threads : an_cpu_count(), err);
    if (s == AN_OK) s = an_cache_open(&m->cache, &cpar, err);
    char label[64];
    snprintf(label, sizeof label, "palettizing weights (%s)", an_type_name(an_pal_type(bits)));
    an_progress(label, 0, (uint64_t)n);
    const double t0 = an_now();
    for (int i = 0; i < n && s == AN_OK; i++) {
        an_mat *w = mats[i];
        const an_type_traits *st = an_type_traits_get(w->type), *ot = an_type_traits_get(an_pal_type(bits));
        bool ok = !an_lut_is_type(w->type) && st && w->cols % st->blck == 0 && w->cols % ot->blck == 0;
        if (ok) s = palettize_mat(m, pool, w, &pp, err);
        an_progress(label, (uint64_t)i + 1, (uint64_t)n);
    }
    if (s == AN_OK && tied) l->output = l->tok_embd;
    if (s == AN_OK)
        an_log(1, "palettized %d matrices to %s in %.2f s (%d from the compile cache)\n", n,
               an_type_name(an_pal_type(bits)), an_now() - t0, m->n_blobs);
    an_pool_free(pool);
    free(mats);
    return s;
}

an_status an_model_open(an_model **out, const an_model_params *p, an_err *err) {
    *out = NULL;
    if (!p || !p->path) return an_err_set(err, AN_E_USAGE, "no model path given");
    an_model *m = calloc(1, sizeof *m);
    if (!m) return an_err_set(err, AN_E_NOMEM, "out of memory");
    double t0 = an_now();
    an_status s = an_gguf_open(&m->g, p->path, err);
    if (s == AN_OK) s = an_tok_create(&m->tok, m->g, err);
    if (s == AN_OK && an_gguf_n_tensors(m->g) > 0) {
        s = an_llm_load(&m->llm, m->g, err);
        m->has_weights = s == AN_OK;
        if (s == AN_OK && an_tok_n_vocab(m->tok) != m->llm.hp.n_vocab)
            s = an_err_set(err, AN_E_FORMAT, "%s: tensor 'token_embd.weight' has %d rows but the vocabulary has %d tokens",
                           p->path, m->llm.hp.n_vocab, an_tok_n_vocab(m->tok));
        if (s == AN_OK && p->weights) s = palettize_model(m, p, err);
    } else if (s == AN_OK && p->weights) {
        s = an_err_set(err, AN_E_USAGE, "%s has no weights to palettize (vocabulary-only file)", p->path);
    }
    if (s != AN_OK) {
        an_model_free(m);
        return s;
    }
    if (m->has_weights) {
        const an_hparams *hp = &m->llm.hp;
        snprintf(m->desc, sizeof m->desc, "%s, %.1fM params, %d layers, n_embd %d, %d/%d heads, vocab %d, %s",
                 hp->arch_name, (double)m->llm.n_params / 1e6, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv,
                 hp->n_vocab, an_type_name(m->llm.layers[0].wq.type));
    } else {
        snprintf(m->desc, sizeof m->desc, "vocabulary only, %d tokens", an_tok_n_vocab(m->tok));
    }
    an_log(1, "loaded %s (%s) in %.2f s\n", p->path, m->desc, an_now() - t0);
    *out = m;
    return AN_OK;
}

void an_model_free(an_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_blobs; i++) an_cache_blob_free(m->blobs[i]);
    for (int i = 0; i < m->n_bufs; i++) free(m->bufs[i]);
    free(m->blobs);
    free(m->bufs);
    an_cache_free(m->cache);
    an_llm_free(&m->llm);
    an_tok_free(m->tok);
    an_gguf_free(m->g);
    free(m);
}

int32_t an_model_n_vocab(const an_model *m) { return an_tok_n_vocab(m->tok); }
int32_t an_model_n_ctx_train(const an_model *m) { return m->has_weights ? m->llm.hp.n_ctx_train : 0; }
int32_t an_model_n_embd(const an_model *m) { return m->has_weights ? m->llm.hp.n_embd : 0; }
const char *an_model_arch(const an_model *m) { return m->has_weights ? m->llm.hp.arch_name : "none"; }
const char *an_model_desc(const an_model *m) { return m->desc; }
uint64_t an_model_n_params(const an_model *m) { return m->llm.n_params; }
uint64_t an_model_weight_bytes(const an_model *m) { return m->llm.weight_bytes; }
uint64_t an_model_bytes_per_token(const an_model *m) {
    const an_llm *l = &m->llm;
    if (!m->has_weights) return 0;
    const uint64_t embd = l->tok_embd.row_bytes * (uint64_t)l->tok_embd.rows;
    const bool tied = l->output.data == l->tok_embd.data;
    return tied ? l->weight_bytes : l->weight_bytes - embd + l->tok_embd.row_bytes;
}
bool an_model_has_weights(const an_model *m) { return m->has_weights; }

/* ---- tokens ------------------------------------------------------------------------------- */

int32_t an_token_bos(const an_model *m) { return an_tok_bos(m->tok); }
int32_t an_token_eos(const an_model *m) { return an_tok_eos(m->tok); }
bool an_token_add_bos(const an_model *m) { return an_tok_add_bos(m->tok); }
bool an_token_is_eog(const an_model *m, int32_t id) { return an_tok_is_eog(m->tok, id); }

an_status an_tokenize(const an_model *m, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t *out, size_t cap, size_t *n_out, an_err *err) {
    return an_tok_encode(m->tok, text, len, add_bos, parse_special, out, cap, n_out, err);
}

size_t an_detokenize(const an_model *m, const int32_t *ids, size_t n, char *buf, size_t cap) {
    return an_tok_decode(m->tok, ids, n, buf, cap);
}

size_t an_detok_push(const an_model *m, an_detok *st, int32_t id, char *out, size_t cap) {
    return an_tok_stream_push(m->tok, st->pend, &st->n_pend, id, out, cap);
}

size_t an_detok_flush(an_detok *st, char *out, size_t cap) {
    return an_tok_stream_flush(st->pend, &st->n_pend, out, cap);
}

/* ---- context ------------------------------------------------------------------------------ */

/* Compiles (repacks) every weight of the op kinds the prefill plan puts on a matrix engine,
 * through the compile cache, with a progress line: a user waits for this. */
static an_status prepare_weights(an_ctx *c, const an_plan *plan, an_err *err) {
    const an_llm *l = &c->m->llm;
    /* an engine that runs both FFN halves and fuses them gets the fused op instead of the two */
    an_op gu, dn;
    {
        an_op ops[AN_OPK_COUNT];
        an_llm_ops(l, plan->n, ops);
        gu = ops[AN_OPK_GATE_UP], dn = ops[AN_OPK_DOWN];
    }
    an_device *fd = an_sched_ffn_device(c->sched, &gu, &dn);
    if (fd && fd->i->prepare_op) {
        char label[64];
        snprintf(label, sizeof label, "%s: preparing fused ffn weights", fd->i->name);
        for (int li = 0; li < l->hp.n_layer; li++) {
            const an_layer *L = &l->layers[li];
            const an_op f = {.name = "ffn", .w = {&L->gate, &L->up, &L->down}, .n_w = 3, .n = c->st.n_ubatch, .ffn = true};
            AN_TRY(fd->i->prepare_op(fd, &f, err));
            an_progress(label, (uint64_t)li + 1, (uint64_t)l->hp.n_layer);
        }
    }
    for (int k = 0; k < AN_OPK_COUNT; k++) {
        an_device *d = c->dev[plan->op[k].dev];
        if (plan->op[k].dev == 0) continue;
        if (d == fd && fd->i->prepare_op && (k == AN_OPK_GATE_UP || k == AN_OPK_DOWN)) continue; /* fused above */
        const int layers = k == AN_OPK_OUTPUT ? 1 : l->hp.n_layer;
        char label[64];
        snprintf(label, sizeof label, "%s: preparing %s weights", d->i->name, an_op_kind_name((an_op_kind)k));
        for (int li = 0; li < layers; li++) {
            const an_layer *L = &l->layers[li];
            const an_mat *ws[3] = {0};
            switch ((an_op_kind)k) {
            case AN_OPK_QKV: ws[0] = &L->wq, ws[1] = &L->wk, ws[2] = &L->wv; break;
            case AN_OPK_O: ws[0] = &L->wo; break;
            case AN_OPK_GATE_UP: ws[0] = &L->gate, ws[1] = &L->up; break;
            case AN_OPK_DOWN: ws[0] = &L->down; break;
            default: ws[0] = &l->output; break;
            }
            if (d->i->prepare_op) { /* engines that compile whole ops (the ANE) */
                an_op op = {.name = an_op_kind_name((an_op_kind)k), .n = c->st.n_ubatch};
                for (int i = 0; i < 3 && ws[i]; i++) op.w[op.n_w++] = ws[i];
                AN_TRY(d->i->prepare_op(d, &op, err));
            } else {
                for (int i = 0; i < 3 && ws[i]; i++) AN_TRY(d->i->prepare(d, ws[i], err));
            }
            an_progress(label, (uint64_t)li + 1, (uint64_t)layers);
        }
    }
    for (int i = 1; i < c->n_dev; i++) { /* end the batch: op-compiling devices build now */
        an_device *d = c->dev[i];
        an_err e = {0};
        if (d->i->prepare_op && d->i->prepare_op(d, NULL, &e) != AN_OK) /* loud, not fatal */
            an_log(0, "anelm: %s could not compile its programs (%s); those matmuls run on the cpu\n", d->i->name,
                   e.msg);
    }
    return AN_OK;
}

an_status an_ctx_create(an_ctx **out, an_model *m, const an_ctx_params *p, an_err *err) {
    *out = NULL;
    if (!m->has_weights)
        return an_err_set(err, AN_E_USAGE, "%s has no weights (vocabulary-only file)", an_gguf_path(m->g));
    an_ctx *c = calloc(1, sizeof *c);
    if (!c) return an_err_set(err, AN_E_NOMEM, "out of memory");
    c->m = m;
    int n_ctx = p->n_ctx > 0 ? p->n_ctx : m->llm.hp.n_ctx_train;
    int n_ub = p->n_ubatch > 0 ? p->n_ubatch : 512;
    int nth = p->n_threads > 0 ? p->n_threads : an_cpu_count();
    an_status s = an_pool_create(&c->pool, nth, err);
    /* devices: the CPU always (first: the fallback), then the matrix engines this machine has */
    if (s == AN_OK && !(c->dev[c->n_dev++] = an_cpu_device_create())) s = an_err_set(err, AN_E_NOMEM, "out of memory");
    if (s == AN_OK) {
        an_cache_params cpar = {.disabled = p->no_cache};
        s = an_cache_open(&c->cache, &cpar, err);
    }
    const bool ane = p->device && (!strcmp(p->device, "ane-ref") || !strcmp(p->device, "ane"));
    if (s == AN_OK && ane) {
        /* the ANE flavours are the only offload engine when asked for (the plan shows what a Mac
         * would run); never chosen by "auto": ane-ref is a simulator, slower than the CPU here */
        an_ane_params ap = {.hardware = !strcmp(p->device, "ane"), .family = an_ane_family_from_env(),
                            .n_max = p->n_ubatch > 0 ? p->n_ubatch : 512, .cache = c->cache};
        if (ap.n_max > n_ctx) ap.n_max = n_ctx;
        if (!(c->dev[c->n_dev++] = an_ane_device_create(&ap))) s = an_err_set(err, AN_E_NOMEM, "out of memory");
    }
    if (s == AN_OK && !ane) {
        const char *why = NULL;
        bool amx = an_amx_available(&why);
        an_log(1, "amx: %s\n", why ? why : (amx ? "available" : "unavailable"));
        if (amx && !(c->dev[c->n_dev++] = an_amx_device_create(c->cache)))
            s = an_err_set(err, AN_E_NOMEM, "out of memory");
    }
    if (s == AN_OK) {
        int o = 0;
        for (int i = 0; i < c->n_dev; i++)
            o += snprintf(c->dev_names + o, sizeof c->dev_names - (size_t)o, "%s%s", i ? "+" : "", c->dev[i]->i->name);
        s = an_sched_create(&c->sched, c->dev, c->n_dev, p->device, c->pool, err);
    }
    if (s == AN_OK)
        s = an_llm_state_init(&c->st, &m->llm, n_ctx, n_ub, p->kv_type == AN_KV_F16, p->logits_all, c->pool, c->sched,
                              err);
    if (s == AN_OK) {
        /* place every op now for decode and a full chunk: this runs the one-time calibration
         * (with a progress line) here rather than inside the first timed evaluation */
        an_op ops[AN_OPK_COUNT];
        an_plan plan;
        an_llm_ops(&m->llm, 1, ops);
        an_sched_plan(c->sched, ops, 1, &plan);
        an_sched_plan(c->sched, ops, c->st.n_ubatch, &plan);
        s = prepare_weights(c, &plan, err);
    }
    if (s != AN_OK) {
        an_ctx_free(c);
        return s;
    }
    an_log(1, "context: %d tokens, batch %d, %d threads, KV cache %s\n", n_ctx, c->st.n_ubatch, nth,
           p->kv_type == AN_KV_F16 ? "f16" : "f32");
    *out = c;
    return AN_OK;
}

void an_ctx_free(an_ctx *c) {
    if (!c) return;
    an_llm_state_free(&c->st);
    an_sched_free(c->sched);
    for (int i = 0; i < c->n_dev; i++) c->dev[i]->i->free(c->dev[i]);
    an_cache_free(c->cache); /* after the devices: their packed weights may map cache entries */
    an_pool_free(c->pool);
    free(c);
}

void an_ctx_reset(an_ctx *c) { c->st.pos = 0; }
const char *an_ctx_devices(const an_ctx *c) { return c->dev_names; }

an_status an_ctx_print_plan(an_ctx *c, int n_prefill, FILE *f, an_err *err) {
    an_op ops[AN_OPK_COUNT];
    an_llm_ops(&c->m->llm, 1, ops);
    an_plan plan;
    if (n_prefill > c->st.n_ubatch) n_prefill = c->st.n_ubatch; /* prefill runs in chunks of -ub */
    if (n_prefill < 1) n_prefill = 1;
    an_sched_plan(c->sched, ops, n_prefill, &plan);
    /* where the FFN runs fused, its halves run in that one program */
    ops[AN_OPK_GATE_UP].n = ops[AN_OPK_DOWN].n = n_prefill;
    const an_device *fd = an_sched_ffn_device(c->sched, &ops[AN_OPK_GATE_UP], &ops[AN_OPK_DOWN]);
    for (int i = 0; fd && i < an_sched_n_devices(c->sched); i++)
        if (an_sched_device(c->sched, i) == fd)
            for (int k = AN_OPK_GATE_UP; k <= AN_OPK_DOWN; k++) {
                plan.op[k].dev = i;
                snprintf(plan.op[k].cause, sizeof plan.op[k].cause,
                         "fused: gate, up, SiLU, multiply, down in one program per layer");
            }
    an_plan_print(c->sched, &plan, "prefill", c->m->llm.hp.n_layer, f);

    an_sched_plan(c->sched, ops, 1, &plan);
    an_plan_print(c->sched, &plan, "decode", c->m->llm.hp.n_layer, f);
    (void)err;
    return AN_OK;
}
int32_t an_ctx_pos(const an_ctx *c) { return c->st.pos; }
int32_t an_ctx_n_ctx(const an_ctx *c) { return c->st.n_ctx; }
const float *an_ctx_logits(const an_ctx *c) { return c->st.logits; }
an_timings an_ctx_timings(const an_ctx *c) { return c->tm; }

an_status an_ctx_eval(an_ctx *c, const int32_t *tokens, int n, an_err *err) {
    if (n < 1) return an_err_set(err, AN_E_USAGE, "nothing to evaluate (0 tokens)");
    if ((int64_t)c->st.pos + n > c->st.n_ctx)
        return an_err_set(err, AN_E_RANGE, "%d tokens at position %d exceed the context size of %d tokens (use -c)", n,
                          c->st.pos, c->st.n_ctx);
    if (c->st.logits_all && n > c->st.n_ubatch)
        return an_err_set(err, AN_E_USAGE, "with all logits kept, a batch holds at most %d tokens", c->st.n_ubatch);
    double t0 = an_now();
    for (int i = 0; i < n; i += c->st.n_ubatch) {
        int k = n - i < c->st.n_ubatch ? n - i : c->st.n_ubatch;
        AN_TRY(an_llm_forward(&c->st, tokens + i, k, err));
    }
    double dt = an_now() - t0;
    if (n == 1) {
        c->tm.gen_s += dt;
        c->tm.gen_tokens += 1;
    } else {
        c->tm.prompt_s += dt;
        c->tm.prompt_tokens += n;
    }
    return AN_OK;
}
