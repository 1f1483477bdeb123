/* anelm.h — the public C API of the anelm runtime.
 *
 * Conventions (every function below follows them):
 *  - Functions that can fail return an an_status (AN_OK == 0, failures negative) and fill an
 *    an_err with a message that says what failed and where (file, byte offset, key or tensor).
 *    The first error recorded in an an_err wins; later ones do not overwrite it.
 *  - Handles are opaque and come in create/free pairs; every *_free accepts NULL.
 *  - The library never exits, aborts or prints on bad input; it only logs progress when asked.
 *  - Threading: an an_model is read-only after open and may be shared; an an_ctx is used by one
 *    thread at a time (it owns a thread pool internally).
 */
#ifndef ANELM_H
#define ANELM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ------------------------------------------------------------------------------ */

typedef enum an_status {
    AN_OK = 0,
    AN_E_USAGE = -1,       /* the caller passed bad arguments */
    AN_E_FORMAT = -2,      /* an input file is malformed (GGUF, vocab, cache entry...) */
    AN_E_UNSUPPORTED = -3, /* well-formed input we do not support (tensor type, architecture) */
    AN_E_IO = -4,          /* open/read/write/mmap failed */
    AN_E_NOMEM = -5,       /* allocation failed */
    AN_E_RANGE = -6,       /* a runtime limit was exceeded (prompt longer than the context...) */
    AN_E_RUNTIME = -7,     /* anything else that went wrong while computing */
} an_status;

typedef struct an_err {
    an_status code;  /* AN_OK until the first error is recorded */
    char msg[1024];  /* NUL-terminated human-readable message */
} an_err;

const char *an_status_str(an_status s);

/* ---- model ------------------------------------------------------------------------------- */

typedef struct an_model an_model;

typedef struct an_model_params {
    const char *path;  /* GGUF file (opened read-only, mmap'ed) */
    int verbose;       /* 0 quiet, 1 progress and decisions on stderr, 2 debug */
    /* Load-time palettization (README, "LUT format"): NULL keeps the weights as stored; "lut4",
     * "lut6" or "lut8" palettizes every layer matrix held as F32/F16/BF16 or a block format
     * (matrices already palettized are kept), and quantizes a float token embedding / output
     * matrix to Q8_0 (Q6_K with lut4), as `anelm quantize` would; the palettized matrices go
     * through the compile cache (a second load of the same weights reads them back). */
    const char *weights;
    int lut_group;      /* rows per table; 0 = the palettizer's default */
    bool lut_row_scale; /* per-row fp16 scale before clustering */
    int n_threads;      /* threads for load-time work; 0 = number of online CPUs */
    bool no_cache;      /* do not read or write the compile cache at load time */
} an_model_params;

an_status an_model_open(an_model **out, const an_model_params *p, an_err *err);
void an_model_free(an_model *m);

/* Model facts. */
int32_t an_model_n_vocab(const an_model *m);
int32_t an_model_n_ctx_train(const an_model *m);
int32_t an_model_n_embd(const an_model *m);
const char *an_model_arch(const an_model *m);
const char *an_model_desc(const an_model *m); /* one line: arch, size, types */
uint64_t an_model_n_params(const an_model *m);
uint64_t an_model_weight_bytes(const an_model *m);
/* Weight bytes one decode step reads: every matrix and vector once, except that an untied
 * token embedding table contributes only the one row looked up (tied, it is the output
 * matrix and is read whole). The numerator of decode GB/s. */
uint64_t an_model_bytes_per_token(const an_model *m);
bool an_model_has_weights(const an_model *m); /* false for vocabulary-only files */

/* ---- tokens ------------------------------------------------------------------------------ */

int32_t an_token_bos(const an_model *m);   /* -1 if none */
int32_t an_token_eos(const an_model *m);   /* -1 if none */
bool an_token_add_bos(const an_model *m);  /* metadata asks for BOS */
bool an_token_is_eog(const an_model *m, int32_t id); /* end of generation (eos, eot, ...) */

/* Tokenize text. add_bos: prepend BOS (when the vocabulary has one). parse_special: recognize
 * control-token text such as "<s>" as the token (otherwise it is plain text). On success
 * *n_out is the number of ids; if cap is too small, returns AN_E_RANGE with *n_out = needed. */
an_status an_tokenize(const an_model *m, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t *out, size_t cap, size_t *n_out, an_err *err);

/* Detokenize a whole sequence the way llama.cpp's llama_detokenize does with
 * remove_special = false, unparse_special = false (control tokens give no text; SentencePiece
 * strips the leading space of the first piece). Returns bytes needed (excluding NUL); writes at
 * most cap bytes including a NUL terminator. */
size_t an_detokenize(const an_model *m, const int32_t *ids, size_t n, char *buf, size_t cap);

/* Streaming detokenizer: pieces are emitted only as complete UTF-8 characters. */
typedef struct an_detok {
    uint8_t pend[8]; /* bytes of an incomplete UTF-8 character held back */
    int n_pend;
} an_detok;
/* Appends the text of token id to out (cap bytes); returns bytes written (no NUL). */
size_t an_detok_push(const an_model *m, an_detok *st, int32_t id, char *out, size_t cap);
/* Emits whatever is held back (invalid sequences come out as U+FFFD). */
size_t an_detok_flush(an_detok *st, char *out, size_t cap);

/* ---- inference context ------------------------------------------------------------------- */

typedef struct an_ctx an_ctx;

typedef enum an_kv_type { AN_KV_F16 = 0, AN_KV_F32 = 1 } an_kv_type;

typedef struct an_ctx_params {
    int n_ctx;       /* context size in tokens; 0 = the model's training context */
    int n_ubatch;    /* prefill chunk (tokens per matrix pass); 0 = 512 */
    int n_threads;   /* 0 = number of online CPUs */
    an_kv_type kv_type;
    bool logits_all; /* keep logits for every token of a batch (perplexity), not only the last */
    const char *device; /* where matmuls run: "auto" (NULL: the scheduler picks by measured cost),
                         * or a device name ("cpu", "amx") to force it where it can run an op */
    bool no_cache;      /* do not read or write the compile cache (weights are compiled in memory) */
} an_ctx_params;

an_status an_ctx_create(an_ctx **out, an_model *m, const an_ctx_params *p, an_err *err);
void an_ctx_free(an_ctx *c);

/* Prints the placement of every matmul op for a prefill of n_prefill tokens and for decode,
 * with the cause of each choice (`anelm run --plan`). */
an_status an_ctx_print_plan(an_ctx *c, int n_prefill, FILE *f, an_err *err);

/* Names of the devices this context can use, joined by "+" ("cpu", "cpu+amx"). */
const char *an_ctx_devices(const an_ctx *c);

/* Forget the KV cache; the next eval starts at position 0. */
void an_ctx_reset(an_ctx *c);
int32_t an_ctx_pos(const an_ctx *c);
int32_t an_ctx_n_ctx(const an_ctx *c);

/* Evaluate n tokens at the current position (n may exceed n_ubatch: the batch is processed in
 * chunks of n_ubatch tokens, each as matrix operations). Afterwards an_ctx_logits() holds the
 * logits of the last token, or with logits_all of every token of the last call (then n must be
 * <= n_ubatch). Fails with AN_E_RANGE if the context would overflow; nothing is evaluated then. */
an_status an_ctx_eval(an_ctx *c, const int32_t *tokens, int n, an_err *err);

/* Logits [n_rows x n_vocab], row-major; n_rows = 1, or n of the last eval with logits_all. */
const float *an_ctx_logits(const an_ctx *c);

typedef struct an_timings {
    double prompt_s, gen_s; /* accumulated wall time in prefill (n > 1) and decode (n == 1) evals */
    int64_t prompt_tokens, gen_tokens;
} an_timings;
an_timings an_ctx_timings(const an_ctx *c);

/* ---- sampling ---------------------------------------------------------------------------- */

typedef struct an_sampler an_sampler;

typedef struct an_sampler_params {
    float temp;           /* <= 0: greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* tokens of history the penalty looks at */
    uint64_t seed;
} an_sampler_params;

/* llama.cpp's defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat 1.0 over 64. */
an_sampler_params an_sampler_default_params(void);
an_status an_sampler_create(an_sampler **out, const an_sampler_params *p, int32_t n_vocab,
                            an_err *err);
void an_sampler_free(an_sampler *s);
/* Choose the next token from logits [n_vocab]; does not allocate. */
int32_t an_sampler_sample(an_sampler *s, const float *logits);
/* Record a token (prompt or generated) in the repetition-penalty history. */
void an_sampler_accept(an_sampler *s, int32_t id);

#ifdef __cplusplus
}
#endif
#endif
