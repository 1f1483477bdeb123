/* llm.h — the llama-family model: hyper-parameters and weights bound from a GGUF file, the KV
 * cache, and the forward pass over a batch of tokens. Architectures: llama (Llama 2/3,
 * TinyLlama, Mistral, SmolLM), qwen2 (q/k/v biases, NEOX rope), qwen3 (q/k RMSNorm, NEOX). */
#ifndef AN_MODEL_LLM_H
#define AN_MODEL_LLM_H

#include <stdint.h>
#include <stdbool.h>

#include "backends/cpu/cpu.h"
#include "core/pool.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "sched/sched.h"

typedef enum an_arch { AN_ARCH_LLAMA, AN_ARCH_QWEN2, AN_ARCH_QWEN3 } an_arch;

typedef struct an_hparams {
    an_arch arch;
    char arch_name[16];
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int32_t n_head, n_head_kv, head_dim; /* head_dim: attention.key_length (= value_length) */
    int32_t n_rot;
    float rms_eps;
    int rope_neox;
    an_rope_params rope; /* freq_factors filled from rope_freqs.weight when present */
} an_hparams;

/* A vector weight (norm gains, biases) in f32. */
typedef struct an_vec {
    const float *data; /* NULL when absent */
    int64_t n;
} an_vec;

typedef struct an_layer {
    an_vec attn_norm, ffn_norm;
    an_mat wq, wk, wv, wo, gate, up, down;
    an_vec bq, bk, bv;         /* qwen2 */
    an_vec q_norm, k_norm;     /* qwen3 */
} an_layer;

typedef struct an_llm {
    an_hparams hp;
    an_mat tok_embd, output;   /* output may be tok_embd (tied) */
    an_vec output_norm;
    an_layer *layers;
    float *owned_f32;          /* f32 copies of vectors stored as F16/BF16 in the file */
    uint64_t n_params, weight_bytes;
} an_llm;

/* Binds hyper-parameters and every tensor, checking types and shapes against the hparams;
 * errors name the key or the tensor (with its expected and actual shape). */
an_status an_llm_load(an_llm *m, const an_gguf *g, an_err *err);
void an_llm_free(an_llm *m);

/* ---- inference state ---------------------------------------------------------------------- */

typedef struct an_llm_state {
    const an_llm *m;
    int n_ctx, n_ubatch;
    int kv_f16;
    bool logits_all;
    an_pool *pool;
    an_sched *sched;         /* where each matmul op runs (not owned) */
    void *k_cache, *v_cache; /* [n_layer][n_ctx][n_head_kv*head_dim] */
    int32_t pos;
    /* activation arena, sized once for n_ubatch tokens */
    float *x, *h, *q, *k, *v, *att, *g, *u, *logits, *attn_scratch;
    float *rope_cs; /* [n_ubatch][n_rot]: cos/sin pairs of each token of the batch */
    void *mm_ws;
    void *arena;
} an_llm_state;

an_status an_llm_state_init(an_llm_state *s, const an_llm *m, int n_ctx, int n_ubatch,
                            int kv_f16, bool logits_all, an_pool *pool, an_sched *sched, an_err *err);

/* One representative op per kind (layer 0's weights) at n tokens, for plans. */
void an_llm_ops(const an_llm *m, int n, an_op ops[AN_OPK_COUNT]);
void an_llm_state_free(an_llm_state *s);

/* Runs n (1..n_ubatch) tokens at s->pos and advances it. Writes logits of the last token to
 * s->logits (or of every token with logits_all). Allocates nothing. */
an_status an_llm_forward(an_llm_state *s, const int32_t *tokens, int n, an_err *err);

#endif
