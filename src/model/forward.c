/* forward.c — the inference state (KV cache + activation arena) and the forward pass of a
 * batch of tokens. A batch is processed as matrices: every projection is one matmul over all
 * its tokens; only attention and the elementwise ops loop over tokens. */
#include "model/llm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

an_status an_llm_state_init(an_llm_state *s, const an_llm *m, int n_ctx, int n_ubatch,
                            int kv_f16, bool logits_all, an_pool *pool, an_sched *sched, an_err *err) {
    memset(s, 0, sizeof *s);
    const an_hparams *hp = &m->hp;
    if (n_ctx < 1 || n_ubatch < 1)
        return an_err_set(err, AN_E_USAGE, "context size %d and batch size %d must be positive", n_ctx, n_ubatch);
    if (n_ubatch > n_ctx) n_ubatch = n_ctx;
    s->m = m;
    s->n_ctx = n_ctx;
    s->n_ubatch = n_ubatch;
    s->kv_f16 = kv_f16;
    s->logits_all = logits_all;
    s->pool = pool;
    s->sched = sched;
    const size_t ub = (size_t)n_ubatch, E = (size_t)hp->n_embd;
    const size_t NQ = (size_t)hp->n_head * (size_t)hp->head_dim;
    const size_t NKV = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    const size_t FF = (size_t)hp->n_ff, V = (size_t)hp->n_vocab;
    const int nth = an_pool_size(pool);
    size_t kmax = E > NQ ? E : NQ;
    if (FF > kmax) kmax = FF;

    size_t kv_bytes = (size_t)hp->n_layer * (size_t)n_ctx * NKV * (kv_f16 ? 2 : 4);
    s->k_cache = calloc(1, kv_bytes);
    s->v_cache = calloc(1, kv_bytes);
    if (!s->k_cache || !s->v_cache) {
        an_llm_state_free(s);
        return an_err_set(err, AN_E_NOMEM, "cannot allocate the KV cache (%zu MiB for %d tokens)",
                          2 * kv_bytes >> 20, n_ctx);
    }
    /* the matmul workspace: the largest any device needs */
    size_t mm_ws = 0;
    for (int i = 0; i < an_sched_n_devices(sched); i++) {
        an_device *d = an_sched_device(sched, i);
        size_t w = d->i->wsize(d, (int64_t)kmax, n_ubatch, nth);
        if (w > mm_ws) mm_ws = w;
    }
    /* the arena: every activation buffer, sized for the largest batch, allocated once; the
     * matmul workspace goes last */
    struct {
        float **dst;
        size_t bytes;
    } parts[] = {
        {&s->x, ub * E * 4},
        {&s->h, ub * E * 4},
        {&s->q, ub * NQ * 4},
        {&s->k, ub * NKV * 4},
        {&s->v, ub * NKV * 4},
        {&s->att, ub * NQ * 4},
        {&s->g, ub * FF * 4},
        {&s->u, ub * FF * 4},
        {&s->logits, (logits_all ? ub : 1) * V * 4},
        {&s->rope_cs, ub * (size_t)hp->n_rot * 4}, /* [n][n_rot]: cos/sin per token */
        {&s->attn_scratch,
         (size_t)nth * an_attn_scratch_floats(hp->n_head, hp->n_head_kv, hp->head_dim, n_ctx) * 4},
    };
    const size_t n_parts = sizeof parts / sizeof parts[0];
    size_t total = ALIGN64(mm_ws);
    for (size_t i = 0; i < n_parts; i++) total += ALIGN64(parts[i].bytes);
    s->arena = aligned_alloc(64, total);
    if (!s->arena) {
        an_llm_state_free(s);
        return an_err_set(err, AN_E_NOMEM, "cannot allocate %zu MiB of activation buffers", total >> 20);
    }
    uint8_t *p = s->arena;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].dst = (float *)p;
        p += ALIGN64(parts[i].bytes);
    }
    s->mm_ws = p;
    return AN_OK;
}

void an_llm_state_free(an_llm_state *s) {
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

static void add_bias(float *y, const an_vec *b, int n, int64_t width) {
    if (!b->data) return;
    for (int t = 0; t < n; t++)
        for (int64_t i = 0; i < width; i++) y[(int64_t)t * width + i] += b->data[i];
}

/* Copies n rows of K or V into the cache at rows pos.. (converting to f16 if needed). */
static void kv_store(void *cache, int kv_f16, int64_t row0, const float *src, int n, int64_t width) {
    if (kv_f16) {
        uint16_t *d = (uint16_t *)cache + row0 * width;
        for (int64_t i = 0; i < (int64_t)n * width; i++) d[i] = an_f32_to_f16(src[i]);
    } else {
        memcpy((float *)cache + row0 * width, src, (size_t)n * (size_t)width * 4);
    }
}

void an_llm_ops(const an_llm *m, int n, an_op ops[AN_OPK_COUNT]) {
    const an_layer *L = &m->layers[0];
    memset(ops, 0, sizeof(an_op) * AN_OPK_COUNT);
    ops[AN_OPK_QKV] = (an_op){.name = "attn_qkv", .w = {&L->wq, &L->wk, &L->wv}, .n_w = 3, .n = n};
    ops[AN_OPK_O] = (an_op){.name = "attn_output", .w = {&L->wo}, .n_w = 1, .n = n};
    ops[AN_OPK_GATE_UP] = (an_op){.name = "ffn_gate_up", .w = {&L->gate, &L->up}, .n_w = 2, .n = n};
    ops[AN_OPK_DOWN] = (an_op){.name = "ffn_down", .w = {&L->down}, .n_w = 1, .n = n};
    ops[AN_OPK_OUTPUT] = (an_op){.name = "output", .w = {&m->output}, .n_w = 1, .n = n};
}

/* One matmul op through the scheduler: outs[i].y = x · outs[i].wᵀ. */
static an_status mm(an_llm_state *s, an_op_kind k, const an_mm_out *outs, int n_outs, const float *x, int n,
                    an_err *err) {
    an_op op = {.name = an_op_kind_name(k), .n_w = n_outs, .n = n};
    for (int i = 0; i < n_outs; i++) op.w[i] = outs[i].w;
    return an_sched_run(s->sched, k, &op, outs, x, s->pool, s->mm_ws, err);
}

/* The layer's SwiGLU FFN as one fused op on d, h = down(silu(gate h) * up h) in place (the
 * ANE: one program, one dispatch instead of two). *done = false: not fused here (no such
 * device for this batch, or it has no program for this layer), the caller runs the halves. */
static an_status ffn_fused(an_llm_state *s, an_device *d, const an_layer *L, float *h, int n, bool *done,
                           an_err *err) {
    *done = false;
    if (!d) return AN_OK;
    const an_op f = {.name = "ffn", .w = {&L->gate, &L->up, &L->down}, .n_w = 3, .n = n, .ffn = true};
    const an_mm_out out = {&L->down, h, s->m->hp.n_embd};
    an_err e = {0};
    const an_status st = d->i->run(d, &f, &out, h, s->pool, s->mm_ws, &e);
    if (st == AN_E_UNSUPPORTED) return AN_OK; /* not prepared: the halves run through the scheduler */
    if (st != AN_OK) return an_err_set(err, st, "%s", e.msg);
    *done = true;
    return AN_OK;
}

an_status an_llm_forward(an_llm_state *s, const int32_t *tokens, int n, an_err *err) {
    const an_llm *m = s->m;
    const an_hparams *hp = &m->hp;
    if (n < 1 || n > s->n_ubatch)
        return an_err_set(err, AN_E_USAGE, "batch of %d tokens (the limit is %d)", n, s->n_ubatch);
    if ((int64_t)s->pos + n > s->n_ctx)
        return an_err_set(err, AN_E_RANGE, "%d tokens at position %d do not fit the context of %d tokens", n, s->pos,
                          s->n_ctx);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
            return an_err_set(err, AN_E_USAGE, "token id %d is outside the vocabulary (0..%d)", tokens[t],
                              hp->n_vocab - 1);

    const int64_t E = hp->n_embd, HD = hp->head_dim, FF = hp->n_ff;
    const int64_t NQ = (int64_t)hp->n_head * HD, NKV = (int64_t)hp->n_head_kv * HD;
    an_pool *pool = s->pool;
    const int pos0 = s->pos;

    for (int t = 0; t < n; t++) {
        if (m->tok_embd.lut) /* palettized: table lookup (and row scale) */
            an_lut_dequant_row(&m->tok_embd, tokens[t], s->x + t * E);
        else
            an_dequant_row((an_type)m->tok_embd.type,
                           (const uint8_t *)m->tok_embd.data + (uint64_t)tokens[t] * m->tok_embd.row_bytes, s->x + t * E,
                           E);
    }

    /* the rotary angles depend only on the position: once per batch, not once per layer */
    for (int t = 0; t < n; t++) an_rope_cache(&hp->rope, pos0 + t, s->rope_cs + (int64_t)t * hp->n_rot);

    /* whether the FFN runs fused is decided per batch size, like every placement (all layers
     * share the shapes; the scheduler plans on layer 0's ops) */
    an_device *ffn_dev;
    {
        an_op ops[AN_OPK_COUNT];
        an_llm_ops(m, n, ops);
        ffn_dev = an_sched_ffn_device(s->sched, &ops[AN_OPK_GATE_UP], &ops[AN_OPK_DOWN]);
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const an_layer *L = &m->layers[l];
        for (int t = 0; t < n; t++) an_rms_norm(s->x + t * E, L->attn_norm.data, s->h + t * E, E, hp->rms_eps);
        const an_mm_out qkv[3] = {{&L->wq, s->q, NQ}, {&L->wk, s->k, NKV}, {&L->wv, s->v, NKV}};
        AN_TRY(mm(s, AN_OPK_QKV, qkv, 3, s->h, n, err));
        add_bias(s->q, &L->bq, n, NQ);
        add_bias(s->k, &L->bk, n, NKV);
        add_bias(s->v, &L->bv, n, NKV);
        for (int t = 0; t < n; t++) {
            float *q = s->q + t * NQ, *k = s->k + t * NKV;
            if (L->q_norm.data) {
                for (int h = 0; h < hp->n_head; h++) an_rms_norm(q + h * HD, L->q_norm.data, q + h * HD, HD, hp->rms_eps);
                for (int h = 0; h < hp->n_head_kv; h++)
                    an_rms_norm(k + h * HD, L->k_norm.data, k + h * HD, HD, hp->rms_eps);
            }
            const float *cs = s->rope_cs + (int64_t)t * hp->n_rot;
            for (int h = 0; h < hp->n_head; h++) an_rope_apply(q + h * HD, cs, hp->n_rot, hp->rope_neox);
            for (int h = 0; h < hp->n_head_kv; h++) an_rope_apply(k + h * HD, cs, hp->n_rot, hp->rope_neox);
        }
        const int64_t layer_rows = (int64_t)l * s->n_ctx;
        kv_store(s->k_cache, s->kv_f16, layer_rows + pos0, s->k, n, NKV);
        kv_store(s->v_cache, s->kv_f16, layer_rows + pos0, s->v, n, NKV);
        const size_t esz = s->kv_f16 ? 2 : 4;
        an_attn_args aa = {
            .q = s->q, .k = (const uint8_t *)s->k_cache + (size_t)layer_rows * (size_t)NKV * esz,
            .v = (const uint8_t *)s->v_cache + (size_t)layer_rows * (size_t)NKV * esz, .out = s->att, .n = n,
            .pos0 = pos0, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .hd = (int)HD, .kv_stride = NKV,
            .kv_f16 = s->kv_f16, .scale = 1.0f / sqrtf((float)HD), .scratch = s->attn_scratch,
        };
        an_cpu_attention(pool, &aa);
        const an_mm_out o = {&L->wo, s->h, E};
        AN_TRY(mm(s, AN_OPK_O, &o, 1, s->att, n, err));
        for (int64_t i = 0; i < n * E; i++) s->x[i] += s->h[i];

        for (int t = 0; t < n; t++) an_rms_norm(s->x + t * E, L->ffn_norm.data, s->h + t * E, E, hp->rms_eps);
        const an_mm_out gu[2] = {{&L->gate, s->g, FF}, {&L->up, s->u, FF}};
        const an_mm_out dn = {&L->down, s->h, E};
        bool fused;
        AN_TRY(ffn_fused(s, ffn_dev, L, s->h, n, &fused, err));
        if (!fused) { /* gate/up, SwiGLU on the cpu, down */
            AN_TRY(mm(s, AN_OPK_GATE_UP, gu, 2, s->h, n, err));
            an_swiglu(s->g, s->u, s->g, n * FF);
            AN_TRY(mm(s, AN_OPK_DOWN, &dn, 1, s->g, n, err));
        }
        for (int64_t i = 0; i < n * E; i++) s->x[i] += s->h[i];
    }

    const int first = s->logits_all ? 0 : n - 1, rows = n - first;
    for (int t = 0; t < rows; t++)
        an_rms_norm(s->x + (first + t) * E, m->output_norm.data, s->h + t * E, E, hp->rms_eps);
    const an_mm_out out = {&m->output, s->logits, hp->n_vocab};
    AN_TRY(mm(s, AN_OPK_OUTPUT, &out, 1, s->h, rows, err));
    s->pos += n;
    return AN_OK;
}
