/* llm.c — binding a GGUF file to the llama-family model: hyper-parameters from metadata and
 * every weight checked against them (names, shapes and types, with the tensor named). */
#include "model/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "quant/lut.h"
#include "quant/quant.h"

/* ---- metadata ----------------------------------------------------------------------------- */

/* Reads "<arch>.<name>" as u32; a per-layer array is accepted when all its values agree. */
static an_status get_u32(const an_gguf *g, const char *arch, const char *name, uint32_t *out,
                         bool *found, an_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    const an_gguf_kv *kv = an_gguf_find(g, key);
    if (kv && kv->type == AN_GGUF_ARR) {
        if (kv->arr_n == 0 || kv->arr_type == AN_GGUF_STR || kv->arr_type == AN_GGUF_F32 ||
            kv->arr_type == AN_GGUF_F64 || kv->arr_type == AN_GGUF_BOOL)
            return an_err_set(err, AN_E_FORMAT, "%s: byte %llu: key %s: expected an integer array",
                              an_gguf_path(g), (unsigned long long)kv->off, key);
        int64_t v0 = an_gguf_arr_i64(kv, 0);
        for (uint64_t i = 1; i < kv->arr_n; i++)
            if (an_gguf_arr_i64(kv, i) != v0)
                return an_err_set(err, AN_E_UNSUPPORTED, "%s: key %s: per-layer values differ (layer %llu)",
                                  an_gguf_path(g), key, (unsigned long long)i);
        if (v0 < 0 || v0 > (int64_t)UINT32_MAX)
            return an_err_set(err, AN_E_FORMAT, "%s: key %s: value %lld out of range", an_gguf_path(g), key,
                              (long long)v0);
        *out = (uint32_t)v0;
        if (found) *found = true;
        return AN_OK;
    }
    return an_gguf_get_u32(g, key, out, found, err);
}

static an_status get_f32(const an_gguf *g, const char *arch, const char *name, float *out,
                         bool *found, an_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    return an_gguf_get_f32(g, key, out, found, err);
}

/* Positive and at most lim, else a format error naming the key. */
static an_status check_range(const an_gguf *g, const char *arch, const char *name, uint32_t v,
                             uint32_t lo, uint32_t hi, an_err *err) {
    if (v < lo || v > hi)
        return an_err_set(err, AN_E_FORMAT, "%s: key %s.%s = %u is outside [%u, %u]", an_gguf_path(g), arch,
                          name, v, lo, hi);
    return AN_OK;
}

static an_status load_hparams(an_llm *m, const an_gguf *g, an_err *err) {
    an_hparams *hp = &m->hp;
    an_str a;
    AN_TRY(an_gguf_get_str(g, "general.architecture", &a, NULL, err));
    if (an_str_eq(a, "llama")) hp->arch = AN_ARCH_LLAMA;
    else if (an_str_eq(a, "qwen2")) hp->arch = AN_ARCH_QWEN2;
    else if (an_str_eq(a, "qwen3")) hp->arch = AN_ARCH_QWEN3;
    else
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: unsupported architecture '%.*s' (supported: llama, qwen2, qwen3)",
                          an_gguf_path(g), (int)(a.n > 64 ? 64 : a.n), a.p);
    snprintf(hp->arch_name, sizeof hp->arch_name, "%.*s", (int)a.n, a.p);
    const char *ar = hp->arch_name;

    uint32_t v;
    bool f;
    AN_TRY(get_u32(g, ar, "context_length", &v, NULL, err));
    AN_TRY(check_range(g, ar, "context_length", v, 1, 1u << 24, err));
    hp->n_ctx_train = (int32_t)v;
    AN_TRY(get_u32(g, ar, "embedding_length", &v, NULL, err));
    AN_TRY(check_range(g, ar, "embedding_length", v, 1, 1u << 16, err));
    hp->n_embd = (int32_t)v;
    AN_TRY(get_u32(g, ar, "block_count", &v, NULL, err));
    AN_TRY(check_range(g, ar, "block_count", v, 1, 4096, err));
    hp->n_layer = (int32_t)v;
    AN_TRY(get_u32(g, ar, "feed_forward_length", &v, &f, err));
    if (!f) return an_err_set(err, AN_E_FORMAT, "%s: missing key %s.feed_forward_length", an_gguf_path(g), ar);
    AN_TRY(check_range(g, ar, "feed_forward_length", v, 1, 1u << 20, err));
    hp->n_ff = (int32_t)v;
    AN_TRY(get_u32(g, ar, "attention.head_count", &v, &f, err));
    if (!f) return an_err_set(err, AN_E_FORMAT, "%s: missing key %s.attention.head_count", an_gguf_path(g), ar);
    AN_TRY(check_range(g, ar, "attention.head_count", v, 1, 4096, err));
    hp->n_head = (int32_t)v;
    v = (uint32_t)hp->n_head;
    AN_TRY(get_u32(g, ar, "attention.head_count_kv", &v, &f, err));
    AN_TRY(check_range(g, ar, "attention.head_count_kv", v, 1, (uint32_t)hp->n_head, err));
    if (hp->n_head % (int32_t)v)
        return an_err_set(err, AN_E_FORMAT, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %u",
                          an_gguf_path(g), ar, hp->n_head, v);
    hp->n_head_kv = (int32_t)v;
    v = (uint32_t)(hp->n_embd / hp->n_head);
    AN_TRY(get_u32(g, ar, "attention.key_length", &v, &f, err));
    AN_TRY(check_range(g, ar, "attention.key_length", v, 2, 512, err));
    hp->head_dim = (int32_t)v;
    uint32_t vl = v;
    AN_TRY(get_u32(g, ar, "attention.value_length", &vl, &f, err));
    if (vl != v)
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: %s.attention.value_length %u differs from key_length %u",
                          an_gguf_path(g), ar, vl, v);
    v = (uint32_t)hp->head_dim;
    AN_TRY(get_u32(g, ar, "rope.dimension_count", &v, &f, err));
    if (v % 2 || (int32_t)v > hp->head_dim || v == 0)
        return an_err_set(err, AN_E_FORMAT, "%s: %s.rope.dimension_count %u must be even and at most the head size %d",
                          an_gguf_path(g), ar, v, hp->head_dim);
    hp->n_rot = (int32_t)v;
    AN_TRY(get_f32(g, ar, "attention.layer_norm_rms_epsilon", &hp->rms_eps, NULL, err));
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1))
        return an_err_set(err, AN_E_FORMAT, "%s: %s.attention.layer_norm_rms_epsilon %g is not in (0, 1)",
                          an_gguf_path(g), ar, (double)hp->rms_eps);

    an_rope_params *rp = &hp->rope;
    rp->n_rot = hp->n_rot;
    rp->freq_base = 10000.0f;
    AN_TRY(get_f32(g, ar, "rope.freq_base", &rp->freq_base, &f, err));
    if (!(rp->freq_base > 1))
        return an_err_set(err, AN_E_FORMAT, "%s: %s.rope.freq_base %g must be > 1", an_gguf_path(g), ar,
                          (double)rp->freq_base);
    rp->freq_scale = 1.0f;
    rp->ext_factor = 0.0f;
    rp->attn_factor = 1.0f;
    rp->beta_fast = 32.0f;
    rp->beta_slow = 1.0f;
    rp->n_ctx_orig = hp->n_ctx_train;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", ar);
    an_str st = {"linear", 6};
    AN_TRY(an_gguf_get_str(g, key, &st, &f, err));
    float factor = 0;
    AN_TRY(get_f32(g, ar, "rope.scaling.factor", &factor, &f, err));
    if (!f) AN_TRY(get_f32(g, ar, "rope.scale_linear", &factor, &f, err));
    if (an_str_eq(st, "none")) {
        /* scaling off */
    } else if (an_str_eq(st, "linear") || an_str_eq(st, "yarn")) {
        if (factor > 0) rp->freq_scale = 1.0f / factor;
        if (an_str_eq(st, "yarn")) {
            rp->ext_factor = 1.0f;
            float af = 1.0f;
            AN_TRY(get_f32(g, ar, "rope.scaling.attn_factor", &af, &f, err));
            rp->attn_factor = af;
            uint32_t oc = (uint32_t)hp->n_ctx_train;
            AN_TRY(get_u32(g, ar, "rope.scaling.original_context_length", &oc, &f, err));
            rp->n_ctx_orig = (int)oc;
        }
    } else {
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: key %s: rope scaling type '%.*s' is not supported",
                          an_gguf_path(g), key, (int)(st.n > 32 ? 32 : st.n), st.p);
    }
    hp->rope_neox = hp->arch != AN_ARCH_LLAMA;
    if (hp->arch == AN_ARCH_LLAMA && hp->n_rot != hp->head_dim)
        return an_err_set(err, AN_E_FORMAT, "%s: llama.rope.dimension_count %d must equal the head size %d",
                          an_gguf_path(g), hp->n_rot, hp->head_dim);
    return AN_OK;
}

/* ---- weights ------------------------------------------------------------------------------ */

static void shape_str(const an_gguf_tensor *t, char *buf, size_t cap) {
    int o = snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < t->n_dims && o < (int)cap; i++)
        o += snprintf(buf + o, cap - (size_t)o, "%s%lld", i ? ", " : "", (long long)t->ne[i]);
    if (o < (int)cap) snprintf(buf + o, cap - (size_t)o, "]");
}

static an_status find_tensor(const an_gguf *g, const char *name, bool required,
                             const an_gguf_tensor **out, an_err *err) {
    *out = an_gguf_tensor_find(g, name);
    if (!*out && required)
        return an_err_set(err, AN_E_FORMAT, "%s: missing tensor '%s'", an_gguf_path(g), name);
    return AN_OK;
}

static an_status check_shape(const an_gguf *g, const an_gguf_tensor *t, int64_t ne0, int64_t ne1,
                             an_err *err) {
    bool ok = t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        char have[96];
        shape_str(t, have, sizeof have);
        if (ne1 == 1)
            return an_err_set(err, AN_E_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld]", an_gguf_path(g),
                              t->name, have, (long long)ne0);
        return an_err_set(err, AN_E_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld, %lld]", an_gguf_path(g),
                          t->name, have, (long long)ne0, (long long)ne1);
    }
    return AN_OK;
}

/* The matrix view of a weight tensor: rows of cols elements of its type, in the mapped file. */
static void mat_of_tensor(const an_gguf_tensor *t, int64_t rows, int64_t cols, an_mat *out) {
    out->type = t->type;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = an_row_bytes(an_type_traits_get(t->type), (uint64_t)cols);
    out->data = t->data;
    out->name = t->name;
}

/* A palettized matrix (LUT4/6/8) with its companion tensors: NAME.lut, F16 [2^b, n_tables]
 * with n_tables dividing rows (lut_group = rows / n_tables), and optionally NAME.lut_scale,
 * F16 [rows] (README, "LUT format"). */
static an_status bind_lut(an_llm *m, const an_gguf *g, const an_gguf_tensor *t, int64_t cols, int64_t rows,
                          an_mat *out, an_err *err) {
    const int bits = an_lut_bits(t->type);
    const int64_t k = (int64_t)1 << bits;
    char name[96];
    snprintf(name, sizeof name, "%s.lut", t->name);
    const an_gguf_tensor *lt = an_gguf_tensor_find(g, name);
    if (!lt)
        return an_err_set(err, AN_E_FORMAT, "%s: tensor %s is %s but its table tensor '%s' is missing", an_gguf_path(g),
                          t->name, an_type_name(t->type), name);
    char have[96];
    shape_str(lt, have, sizeof have);
    if (lt->type != AN_TYPE_F16)
        return an_err_set(err, AN_E_FORMAT, "%s: table tensor %s has type %s, expected F16", an_gguf_path(g), lt->name,
                          an_type_name(lt->type));
    if (lt->n_dims != 2 || lt->ne[0] != k || lt->ne[1] < 1 || lt->ne[1] > rows || rows % lt->ne[1])
        return an_err_set(err, AN_E_FORMAT,
                          "%s: table tensor %s has shape %s, expected [%lld, n_tables] with n_tables dividing the %lld rows of %s",
                          an_gguf_path(g), lt->name, have, (long long)k, (long long)rows, t->name);
    snprintf(name, sizeof name, "%s.lut_scale", t->name);
    const an_gguf_tensor *st = an_gguf_tensor_find(g, name);
    if (st) {
        shape_str(st, have, sizeof have);
        if (st->type != AN_TYPE_F16)
            return an_err_set(err, AN_E_FORMAT, "%s: row-scale tensor %s has type %s, expected F16", an_gguf_path(g),
                              st->name, an_type_name(st->type));
        if (st->n_dims != 1 || st->ne[0] != rows)
            return an_err_set(err, AN_E_FORMAT, "%s: row-scale tensor %s has shape %s, expected [%lld]", an_gguf_path(g),
                              st->name, have, (long long)rows);
    }
    mat_of_tensor(t, rows, cols, out);
    out->lut = lt->data;
    out->lut_group = (int32_t)(rows / lt->ne[1]);
    out->row_scale = st ? st->data : NULL;
    an_err e = {0};
    if (an_lut_check(out, &e) != AN_OK)
        return an_err_set(err, AN_E_FORMAT, "%s: tensor %s: %s", an_gguf_path(g), t->name, e.msg);
    m->n_params += (uint64_t)(rows * cols);
    m->weight_bytes += t->nbytes + lt->nbytes + (st ? st->nbytes : 0);
    return AN_OK;
}

static an_status bind_mat(an_llm *m, const an_gguf *g, const char *name, int64_t cols, int64_t rows,
                          bool required, an_mat *out, an_err *err) {
    const an_gguf_tensor *t;
    memset(out, 0, sizeof *out);
    AN_TRY(find_tensor(g, name, required, &t, err));
    if (!t) return AN_OK;
    AN_TRY(check_shape(g, t, cols, rows, err));
    if (an_lut_is_type(t->type)) return bind_lut(m, g, t, cols, rows, out, err);
    if (!an_quant_is_weight_type(t->type))
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: unsupported tensor type %s in tensor %s", an_gguf_path(g),
                          an_type_name(t->type), t->name);
    mat_of_tensor(t, rows, cols, out);
    m->n_params += (uint64_t)(rows * cols);
    m->weight_bytes += t->nbytes;
    return AN_OK;
}

typedef struct {
    const an_gguf_tensor *t;
    an_vec *dst;
} vec_fixup;

/* Vectors are used as f32; F16/BF16 ones are converted into m->owned_f32 (filled later). */
static an_status bind_vec(an_llm *m, const an_gguf *g, const char *name, int64_t n, bool required,
                          an_vec *out, size_t *convert_floats, an_err *err) {
    const an_gguf_tensor *t;
    memset(out, 0, sizeof *out);
    AN_TRY(find_tensor(g, name, required, &t, err));
    if (!t) return AN_OK;
    AN_TRY(check_shape(g, t, n, 1, err));
    if (t->type != AN_TYPE_F32 && t->type != AN_TYPE_F16 && t->type != AN_TYPE_BF16)
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: unsupported tensor type %s in tensor %s", an_gguf_path(g),
                          an_type_name(t->type), t->name);
    out->n = n;
    out->data = t->type == AN_TYPE_F32 ? t->data : NULL;
    if (t->type != AN_TYPE_F32) *convert_floats += (size_t)n;
    m->n_params += (uint64_t)n;
    m->weight_bytes += t->nbytes;
    return AN_OK;
}

/* Second pass for vectors stored as F16/BF16: point them at converted copies. */
static void convert_vec(const an_gguf *g, const char *name, an_vec *v, float **cursor) {
    if (!v->n || v->data) return;
    const an_gguf_tensor *t = an_gguf_tensor_find(g, name);
    float *dst = *cursor;
    an_dequant_row((an_type)t->type, t->data, dst, v->n);
    v->data = dst;
    *cursor += v->n;
}

#define LAYER_VECS(X)                                   \
    X(attn_norm, "attn_norm.weight", E, true)           \
    X(ffn_norm, "ffn_norm.weight", E, true)             \
    X(bq, "attn_q.bias", NQ, false)                     \
    X(bk, "attn_k.bias", NKV, false)                    \
    X(bv, "attn_v.bias", NKV, false)                    \
    X(q_norm, "attn_q_norm.weight", HD, qwen3)          \
    X(k_norm, "attn_k_norm.weight", HD, qwen3)

an_status an_llm_load(an_llm *m, const an_gguf *g, an_err *err) {
    memset(m, 0, sizeof *m);
    AN_TRY(load_hparams(m, g, err));
    an_hparams *hp = &m->hp;
    const an_gguf_tensor *te;
    AN_TRY(find_tensor(g, "token_embd.weight", true, &te, err));
    if (te->ne[0] != hp->n_embd || te->ne[1] < 1 || te->ne[1] > (1 << 24) || te->n_dims != 2) {
        char have[96];
        shape_str(te, have, sizeof have);
        return an_err_set(err, AN_E_FORMAT, "%s: tensor 'token_embd.weight' has shape %s, expected [%d, n_vocab]",
                          an_gguf_path(g), have, hp->n_embd);
    }
    hp->n_vocab = (int32_t)te->ne[1];
    const int64_t E = hp->n_embd, V = hp->n_vocab, HD = hp->head_dim;
    const int64_t NQ = (int64_t)hp->n_head * HD, NKV = (int64_t)hp->n_head_kv * HD, FF = hp->n_ff;
    const bool qwen3 = hp->arch == AN_ARCH_QWEN3;
    size_t conv = 0;
    AN_TRY(bind_mat(m, g, "token_embd.weight", E, V, true, &m->tok_embd, err));
    AN_TRY(bind_vec(m, g, "output_norm.weight", E, true, &m->output_norm, &conv, err));
    AN_TRY(bind_mat(m, g, "output.weight", E, V, false, &m->output, err));
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */

    /* llama3-style rope scaling: per-frequency divisors precomputed by the converter */
    const an_gguf_tensor *rf = an_gguf_tensor_find(g, "rope_freqs.weight");
    if (rf) {
        AN_TRY(check_shape(g, rf, hp->n_rot / 2, 1, err));
        if (rf->type != AN_TYPE_F32)
            return an_err_set(err, AN_E_UNSUPPORTED, "%s: unsupported tensor type %s in tensor %s", an_gguf_path(g),
                              an_type_name(rf->type), rf->name);
        hp->rope.freq_factors = rf->data;
    }

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return an_err_set(err, AN_E_NOMEM, "out of memory binding %d layers", hp->n_layer);
    char name[96];
    for (int l = 0; l < hp->n_layer; l++) {
        an_layer *L = &m->layers[l];
#define MAT(field, suffix, cols, rows)                                        \
    snprintf(name, sizeof name, "blk.%d." suffix, l);                        \
    AN_TRY(bind_mat(m, g, name, cols, rows, true, &L->field, err));
        MAT(wq, "attn_q.weight", E, NQ)
        MAT(wk, "attn_k.weight", E, NKV)
        MAT(wv, "attn_v.weight", E, NKV)
        MAT(wo, "attn_output.weight", NQ, E)
        MAT(gate, "ffn_gate.weight", E, FF)
        MAT(up, "ffn_up.weight", E, FF)
        MAT(down, "ffn_down.weight", FF, E)
#undef MAT
#define VEC(field, suffix, n, req)                                            \
    snprintf(name, sizeof name, "blk.%d." suffix, l);                        \
    AN_TRY(bind_vec(m, g, name, n, req, &L->field, &conv, err));
        LAYER_VECS(VEC)
#undef VEC
    }
    if (conv) {
        m->owned_f32 = malloc(conv * sizeof(float));
        if (!m->owned_f32) return an_err_set(err, AN_E_NOMEM, "out of memory converting norm vectors");
        float *cur = m->owned_f32;
        convert_vec(g, "output_norm.weight", &m->output_norm, &cur);
        for (int l = 0; l < hp->n_layer; l++) {
            an_layer *L = &m->layers[l];
#define VEC(field, suffix, n, req)                      \
    snprintf(name, sizeof name, "blk.%d." suffix, l); \
    convert_vec(g, name, &L->field, &cur);
            LAYER_VECS(VEC)
#undef VEC
        }
    }
    return AN_OK;
}

void an_llm_free(an_llm *m) {
    if (!m) return;
    free(m->layers);
    free(m->owned_f32);
    memset(m, 0, sizeof *m);
}
