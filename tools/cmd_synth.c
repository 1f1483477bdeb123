/* cmd_synth.c — `anelm synth`: writes a random-weight GGUF model with the shapes, metadata and
 * vocabulary layout of a real model (Llama 3.2 1B, Qwen2.5 0.5B, TinyLlama 1.1B or a tiny test
 * shape), so that benchmarks and loaders can run without downloading weights. llama.cpp loads
 * the files too, which makes them the common ground of bench/vs-llamacpp.
 *
 * Determinism: every row of every tensor draws from its own generator seeded by (seed, tensor
 * index, row), so the file bytes depend on the seed alone, not on the thread count. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/log.h"
#include "core/pool.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

/* ---- presets and options ------------------------------------------------------------------ */

typedef struct synth_preset {
    const char *name, *arch; /* arch: the default --arch */
    uint32_t n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_vocab, n_ctx;
    float rope_base, eps;
    bool tied;
} synth_preset;

static const synth_preset k_presets[] = {
    {"llama-3.2-1b", "llama", 2048, 16, 8192, 32, 8, 64, 32000, 4096, 500000.0f, 1e-5f, true},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 4864, 14, 2, 64, 151936, 4096, 1000000.0f, 1e-6f, true},
    {"tinyllama-1.1b", "llama", 2048, 22, 5632, 32, 4, 64, 32000, 2048, 10000.0f, 1e-5f, false},
    /* every row length a multiple of 256, so each --type applies to every matrix */
    {"tiny", "llama", 256, 2, 512, 4, 2, 64, 512, 512, 10000.0f, 1e-5f, true},
};

typedef enum { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3 } synth_arch;
static const char *const k_arch_names[] = {"llama", "qwen2", "qwen3"};

static const struct {
    const char *name;
    an_type type;
    uint32_t file_type; /* llama.cpp's general.file_type ("mostly T") */
} k_types[] = {
    {"f32", AN_TYPE_F32, 0},   {"f16", AN_TYPE_F16, 1},   {"bf16", AN_TYPE_BF16, 32},
    {"q8_0", AN_TYPE_Q8_0, 7}, {"q4_0", AN_TYPE_Q4_0, 2}, {"q4_k", AN_TYPE_Q4_K, 14}, /* Q4_K_S */
    {"q6_k", AN_TYPE_Q6_K, 18},
};

/* ---- random numbers ----------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t row_seed(uint64_t seed, uint32_t tensor, uint64_t row) {
    uint64_t s = seed ^ (UINT64_C(0xD1B54A32D192ED03) * ((uint64_t)tensor + 1));
    uint64_t a = splitmix64(&s);
    s = a ^ (UINT64_C(0x8CB92BA72F3D8DD7) * (row + 1));
    return splitmix64(&s);
}

/* n values with mean 0 and standard deviation std: the sum of four 16-bit uniforms (Irwin-Hall,
 * variance 1/3 around 2), rescaled. Bell-shaped, bounded at 2*sqrt(3)*std. */
static void fill_normal(float *x, int64_t n, uint64_t state, float std) {
    const float scale = std * 1.7320508f / 65536.0f; /* sqrt(3) / 2^16 */
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&state);
        uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) + (uint32_t)((r >> 32) & 0xffff) +
                       (uint32_t)(r >> 48);
        x[i] = ((float)sum - 131070.0f) * scale;
    }
}

/* ---- tensors ------------------------------------------------------------------------------ */

typedef enum { T_MATRIX, T_ONES, T_BIAS } tensor_kind;

typedef struct synth_tensor {
    char name[64];
    tensor_kind kind;
    an_type type;
    uint32_t n_dims;
    int64_t ne[2];
    uint8_t *data;
    uint64_t nbytes;
} synth_tensor;

typedef struct tensor_list {
    synth_tensor *v;
    size_t n, cap;
} tensor_list;

static bool add_tensor(tensor_list *l, const char *name, tensor_kind kind, int64_t ne0, int64_t ne1) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        synth_tensor *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    synth_tensor *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    return true;
}

/* The type a matrix of row length ne0 gets: the requested one, or llama.cpp quantize's fallback
 * when the row is not a whole number of blocks (Q4_K -> Q5_0, Q6_K -> Q8_0, else F16). */
static an_type matrix_type(an_type want, int64_t ne0) {
    if (ne0 % an_type_traits_get(want)->blck == 0) return want;
    an_type fb = want == AN_TYPE_Q4_K ? AN_TYPE_Q5_0 : want == AN_TYPE_Q6_K ? AN_TYPE_Q8_0 : AN_TYPE_F16;
    return ne0 % an_type_traits_get(fb)->blck == 0 ? fb : AN_TYPE_F32;
}

typedef struct gen_job {
    const synth_tensor *t;
    uint32_t index;
    uint64_t seed;
    float std;
    float *tmp; /* [nth][ne0] */
} gen_job;

static void gen_rows(void *arg, int ith, int nth) {
    gen_job *j = arg;
    const synth_tensor *t = j->t;
    int64_t cols = t->ne[0];
    uint64_t rb = an_row_bytes(an_type_traits_get(t->type), (uint64_t)cols);
    float *tmp = j->tmp + (size_t)ith * (size_t)cols;
    for (int64_t r = ith; r < t->ne[1]; r += nth) {
        fill_normal(tmp, cols, row_seed(j->seed, j->index, (uint64_t)r), j->std);
        an_quant_row_ref(t->type, tmp, t->data + (uint64_t)r * rb, cols);
    }
}

/* ---- vocabularies ------------------------------------------------------------------------- */

/* Strings kept in one growing buffer; views are made once it stops moving. */
typedef struct strtab {
    char *p;
    size_t n, cap;
    uint64_t *off; /* start of string i; off[count] = end */
    size_t count, off_cap;
    bool oom;
} strtab;

static void st_add(strtab *s, const char *a, size_t na, const char *b, size_t nb) {
    if (s->oom) return;
    if (s->count + 2 > s->off_cap) {
        size_t cap = s->off_cap ? s->off_cap * 2 : 1024;
        uint64_t *o = realloc(s->off, cap * sizeof *o);
        if (!o) {
            s->oom = true;
            return;
        }
        s->off = o;
        s->off_cap = cap;
    }
    if (s->n + na + nb > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + na + nb) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) {
            s->oom = true;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    s->off[s->count++] = s->n;
    memcpy(s->p + s->n, a, na);
    if (nb) memcpy(s->p + s->n + na, b, nb);
    s->n += na + nb;
    s->off[s->count] = s->n;
}

static void st_cstr(strtab *s, const char *a) { st_add(s, a, strlen(a), NULL, 0); }

/* an_str views of every string (malloc'ed; NULL when out of memory). */
static an_str *st_views(const strtab *s) {
    an_str *v = malloc((s->count ? s->count : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < s->count; i++) v[i] = (an_str){s->p + s->off[i], s->off[i + 1] - s->off[i]};
    return v;
}

static void st_free(strtab *s) {
    free(s->p);
    free(s->off);
}

/* Word k of length len over a-z, in lexicographic order. */
static void word_at(uint64_t k, int len, char *w) {
    for (int i = len - 1; i >= 0; i--) {
        w[i] = (char)('a' + k % 26);
        k /= 26;
    }
    w[len] = 0;
}

static uint64_t pow26(int len) {
    uint64_t p = 1;
    while (len-- > 0) p *= 26;
    return p;
}

/* SentencePiece ("llama"): <unk> <s> </s>, the 256 byte tokens, then normal pieces with
 * decreasing scores: "▁" and single characters, then every lowercase word w (length-lex order)
 * as "▁w" and "w". */
static void vocab_spm(an_gguf_writer *w, uint32_t nv, bool *oom) {
    static const char *const heads[] = {"<unk>", "<s>", "</s>"};
    static const char singles[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()";
    const char *sp = "\xE2\x96\x81"; /* U+2581 */
    strtab s = {0};
    float *scores = malloc((size_t)nv * sizeof *scores);
    int32_t *types = malloc((size_t)nv * sizeof *types);
    if (!scores || !types) {
        *oom = true;
        goto out;
    }
    for (int i = 0; i < 3; i++) st_cstr(&s, heads[i]);
    types[0] = 2;
    types[1] = types[2] = 3;
    for (int b = 0; b < 256; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        st_cstr(&s, t);
        types[3 + b] = 6;
    }
    for (uint32_t i = 0; i < 259 && i < nv; i++) scores[i] = 0.0f;
    size_t first = s.count;
    if (s.count < nv) st_cstr(&s, sp);
    for (const char *c = singles; *c && s.count < nv; c++) st_add(&s, c, 1, NULL, 0);
    char word[16];
    for (int len = 1; s.count < nv && len < 12; len++)
        for (uint64_t k = 0; k < pow26(len) && s.count < nv; k++) {
            word_at(k, len, word);
            st_add(&s, sp, 3, word, (size_t)len);
            if (s.count < nv) st_add(&s, word, (size_t)len, NULL, 0);
        }
    for (size_t i = first; i < nv; i++) {
        scores[i] = -(float)(i - first);
        types[i] = 1;
    }
    if (s.oom) {
        *oom = true;
        goto out;
    }
    an_str *v = st_views(&s);
    if (!v) {
        *oom = true;
        goto out;
    }
    an_gguf_writer_str(w, "tokenizer.ggml.model", "llama");
    an_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", v, s.count);
    an_gguf_writer_arr(w, "tokenizer.ggml.scores", AN_GGUF_F32, scores, nv);
    an_gguf_writer_arr(w, "tokenizer.ggml.token_type", AN_GGUF_I32, types, nv);
    an_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
    an_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
    an_gguf_writer_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    an_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", true);
    an_gguf_writer_bool(w, "tokenizer.ggml.add_eos_token", false);
    an_gguf_writer_bool(w, "tokenizer.ggml.add_space_prefix", true);
    free(v);
out:
    free(scores);
    free(types);
    st_free(&s);
}

/* UTF-8 of the GPT-2 byte-to-unicode character of byte b (1 or 2 bytes). */
static size_t byte_char(int b, char *o) {
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = (unsigned)b;
    } else { /* the 68 others, in byte order, from U+0100 */
        unsigned k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
        cp = 0x100 + k;
    }
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Byte-level BPE ("gpt2", pre-tokenizer qwen2): the 256 byte characters, then merged tokens
 * "Ġx" and, for every lowercase word w of length >= 2 in length-lex order, "w" and "Ġw", each
 * with the merge that makes it from two earlier tokens; <|endoftext|> last, as BOS and EOS. */
static void vocab_bpe(an_gguf_writer *w, uint32_t nv, bool *oom) {
    strtab s = {0}, m = {0};
    int32_t *types = malloc((size_t)nv * sizeof *types);
    if (!types) {
        *oom = true;
        goto out;
    }
    for (int b = 0; b < 256; b++) {
        char c[2];
        st_add(&s, c, byte_char(b, c), NULL, 0);
    }
    const char *G = "\xC4\xA0"; /* U+0120, the space */
    char word[16], left[24];
    for (int len = 1; s.count + 1 < nv && len < 12; len++)
        for (uint64_t k = 0; k < pow26(len) && s.count + 1 < nv; k++) {
            word_at(k, len, word);
            char last[3] = {' ', word[len - 1], 0};
            if (len >= 2) { /* "w" = "w[:-1]" + "c" */
                st_add(&s, word, (size_t)len, NULL, 0);
                st_add(&m, word, (size_t)len - 1, last, 2);
                if (s.count + 1 >= nv) break;
            }
            /* "Ġw" = "Ġw[:-1]" + "c" ("Ġ" + "c" for one letter) */
            st_add(&s, G, 2, word, (size_t)len);
            snprintf(left, sizeof left, "%s%.*s", G, len - 1, word);
            st_add(&m, left, strlen(left), last, 2);
        }
    st_cstr(&s, "<|endoftext|>");
    for (size_t i = 0; i < s.count; i++) types[i] = 1;
    types[s.count - 1] = 3;
    if (s.oom || m.oom) {
        *oom = true;
        goto out;
    }
    an_str *v = st_views(&s), *mv = st_views(&m);
    if (!v || !mv) {
        free(v);
        free(mv);
        *oom = true;
        goto out;
    }
    an_gguf_writer_str(w, "tokenizer.ggml.model", "gpt2");
    an_gguf_writer_str(w, "tokenizer.ggml.pre", "qwen2");
    an_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", v, s.count);
    an_gguf_writer_arr(w, "tokenizer.ggml.token_type", AN_GGUF_I32, types, s.count);
    an_gguf_writer_arr_str(w, "tokenizer.ggml.merges", mv, m.count);
    an_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s.count - 1);
    an_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s.count - 1);
    an_gguf_writer_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)s.count - 1);
    an_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", false);
    free(v);
    free(mv);
out:
    free(types);
    st_free(&s);
    st_free(&m);
}

/* ---- the command -------------------------------------------------------------------------- */

static const char *k_help =
    "usage: anelm synth -o FILE [--preset P] [--arch A] [--type T] [--seed S] [-t N]\n"
    "  writes a model with random weights and the shapes of a real one (loads in llama.cpp too)\n"
    "  --preset P   llama-3.2-1b | qwen2.5-0.5b | tinyllama-1.1b | tiny (default tiny)\n"
    "  --arch A     llama | qwen2 (q/k/v biases) | qwen3 (q/k norms); default: the preset's\n"
    "  --type T     f16 | bf16 | q8_0 | q4_0 | q4_k | q6_k | f32 (default f16): every matrix,\n"
    "               token_embd included; norms and biases stay F32. A row that is not a whole\n"
    "               number of blocks falls back as llama.cpp quantize does (q4_k->q5_0, q6_k->q8_0)\n"
    "  --seed S     weights generator seed (default 1234); same seed, same bytes\n"
    "  -t N         threads (default: all CPUs)\n"
    "  presets (n_embd/layers/n_ff/heads/kv heads/vocab): llama-3.2-1b 2048/16/8192/32/8/32000 tied,\n"
    "  qwen2.5-0.5b 896/24/4864/14/2/151936 tied, tinyllama-1.1b 2048/22/5632/32/4/32000,\n"
    "  tiny 256/2/512/4/2/512 tied. Llama vocabularies are SentencePiece, Qwen ones byte-level BPE.\n";

int cmd_synth(int argc, char **argv) {
    const char *cmd = "synth", *out_path = NULL, *preset_name = "tiny", *arch_name = NULL, *type_name = "f16";
    uint64_t seed = 1234;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_help, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "-o")) {
            if (!cli_str(cmd, argc, argv, &i, &out_path)) return EXIT_USAGE;
        } else if (!strcmp(a, "--preset")) {
            if (!cli_str(cmd, argc, argv, &i, &preset_name)) return EXIT_USAGE;
        } else if (!strcmp(a, "--arch")) {
            if (!cli_str(cmd, argc, argv, &i, &arch_name)) return EXIT_USAGE;
        } else if (!strcmp(a, "--type")) {
            if (!cli_str(cmd, argc, argv, &i, &type_name)) return EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            const char *v;
            if (!cli_str(cmd, argc, argv, &i, &v)) return EXIT_USAGE;
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 0);
            if (!*v || *end || *v == '-' || errno) return cli_usage_error(cmd, "option --seed: '%s' is not an unsigned integer", v);
            seed = x;
        } else if (!strcmp(a, "-t")) {
            if (!cli_int(cmd, argc, argv, &i, 1, 256, &threads)) return EXIT_USAGE;
        } else {
            return cli_usage_error(cmd, "unknown option or argument '%s'", a);
        }
    }
    if (!out_path) return cli_usage_error(cmd, "-o FILE is required");
    const synth_preset *P = NULL;
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (!strcmp(preset_name, k_presets[i].name)) P = &k_presets[i];
    if (!P) return cli_usage_error(cmd, "unknown preset '%s' (llama-3.2-1b, qwen2.5-0.5b, tinyllama-1.1b, tiny)", preset_name);
    if (!arch_name) arch_name = P->arch;
    int arch = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(arch_name, k_arch_names[i])) arch = i;
    if (arch < 0) return cli_usage_error(cmd, "unknown arch '%s' (llama, qwen2, qwen3)", arch_name);
    int ti = -1;
    for (int i = 0; i < (int)(sizeof k_types / sizeof k_types[0]); i++)
        if (!strcasecmp(type_name, k_types[i].name)) ti = i;
    if (ti < 0) return cli_usage_error(cmd, "unknown type '%s' (f16, bf16, q8_0, q4_0, q4_k, q6_k, f32)", type_name);
    const an_type want = k_types[ti].type;
    const char *A = k_arch_names[arch];

    an_log_set_level(1);
    const bool tty = isatty(2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    an_err err = {0};
    an_gguf_writer *w = NULL;
    an_pool *pool = NULL;
    tensor_list L = {0};
    float *tmp = NULL;
    int rc = EXIT_OK;
    bool oom = false;
    if (an_gguf_writer_create(&w, &err) != AN_OK ||
        an_pool_create(&pool, threads ? threads : an_cpu_count(), &err) != AN_OK) {
        rc = cli_fail(&err);
        goto done;
    }

    /* metadata */
    char key[128], name[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, A), key)
    an_gguf_writer_str(w, "general.architecture", A);
    snprintf(name, sizeof name, "anelm synth %s (%s, %s, random weights)", P->name, A, k_types[ti].name);
    an_gguf_writer_str(w, "general.name", name);
    an_gguf_writer_u32(w, "general.file_type", k_types[ti].file_type);
    an_gguf_writer_u32(w, "general.quantization_version", 2);
    an_gguf_writer_u32(w, KEY("context_length"), P->n_ctx);
    an_gguf_writer_u32(w, KEY("embedding_length"), P->n_embd);
    an_gguf_writer_u32(w, KEY("block_count"), P->n_layer);
    an_gguf_writer_u32(w, KEY("feed_forward_length"), P->n_ff);
    an_gguf_writer_u32(w, KEY("attention.head_count"), P->n_head);
    an_gguf_writer_u32(w, KEY("attention.head_count_kv"), P->n_head_kv);
    an_gguf_writer_u32(w, KEY("attention.key_length"), P->head_dim);
    an_gguf_writer_u32(w, KEY("attention.value_length"), P->head_dim);
    an_gguf_writer_u32(w, KEY("rope.dimension_count"), P->head_dim);
    an_gguf_writer_f32(w, KEY("rope.freq_base"), P->rope_base);
    an_gguf_writer_f32(w, KEY("attention.layer_norm_rms_epsilon"), P->eps);
    an_gguf_writer_u32(w, KEY("vocab_size"), P->n_vocab);
#undef KEY
    if (arch == ARCH_LLAMA) vocab_spm(w, P->n_vocab, &oom);
    else vocab_bpe(w, P->n_vocab, &oom);

    /* tensor list, in llama.cpp's usual order */
    const int64_t E = P->n_embd, Q = (int64_t)P->n_head * P->head_dim, KV = (int64_t)P->n_head_kv * P->head_dim;
    const int64_t F = P->n_ff, V = P->n_vocab, HD = P->head_dim;
    oom |= !add_tensor(&L, "token_embd.weight", T_MATRIX, E, V);
    oom |= !add_tensor(&L, "output_norm.weight", T_ONES, E, 0);
    if (!P->tied) oom |= !add_tensor(&L, "output.weight", T_MATRIX, E, V);
    for (uint32_t l = 0; l < P->n_layer && !oom; l++) {
        char n[64];
#define T(suffix, kind, ne0, ne1) (snprintf(n, sizeof n, "blk.%u." suffix, l), oom |= !add_tensor(&L, n, kind, ne0, ne1))
        T("attn_norm.weight", T_ONES, E, 0);
        T("attn_q.weight", T_MATRIX, E, Q);
        if (arch == ARCH_QWEN2) T("attn_q.bias", T_BIAS, Q, 0);
        T("attn_k.weight", T_MATRIX, E, KV);
        if (arch == ARCH_QWEN2) T("attn_k.bias", T_BIAS, KV, 0);
        T("attn_v.weight", T_MATRIX, E, KV);
        if (arch == ARCH_QWEN2) T("attn_v.bias", T_BIAS, KV, 0);
        T("attn_output.weight", T_MATRIX, Q, E);
        if (arch == ARCH_QWEN3) {
            T("attn_q_norm.weight", T_ONES, HD, 0);
            T("attn_k_norm.weight", T_ONES, HD, 0);
        }
        T("ffn_norm.weight", T_ONES, E, 0);
        T("ffn_gate.weight", T_MATRIX, E, F);
        T("ffn_up.weight", T_MATRIX, E, F);
        T("ffn_down.weight", T_MATRIX, F, E);
#undef T
    }
    if (oom) {
        an_err_set(&err, AN_E_NOMEM, "out of memory building the vocabulary or tensor list");
        rc = cli_fail(&err);
        goto done;
    }

    /* weights */
    uint64_t n_params = 0, n_fallback = 0;
    an_type fallback_to = want;
    int64_t max_cols = 1;
    for (size_t i = 0; i < L.n; i++) {
        synth_tensor *t = &L.v[i];
        t->type = t->kind == T_MATRIX ? matrix_type(want, t->ne[0]) : AN_TYPE_F32;
        if (t->kind == T_MATRIX && t->type != want) {
            n_fallback++;
            fallback_to = t->type;
        }
        t->nbytes = (uint64_t)t->ne[1] * an_row_bytes(an_type_traits_get(t->type), (uint64_t)t->ne[0]);
        n_params += (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
        if (t->ne[0] > max_cols) max_cols = t->ne[0];
    }
    fprintf(stderr, "synth: %s preset, arch %s, %s, %zu tensors, %.3f B parameters, vocab %u, seed %llu, %d threads\n",
            P->name, A, an_type_name(want), L.n, (double)n_params / 1e9, P->n_vocab, (unsigned long long)seed,
            an_pool_size(pool));
    if (n_fallback)
        fprintf(stderr, "synth: %llu matrices have rows of %lld elements, not whole %s blocks: written as %s\n",
                (unsigned long long)n_fallback, (long long)E, an_type_name(want), an_type_name(fallback_to));
    tmp = malloc((size_t)an_pool_size(pool) * (size_t)max_cols * sizeof *tmp);
    if (!tmp) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto done;
    }
    for (size_t i = 0; i < L.n; i++) {
        synth_tensor *t = &L.v[i];
        if (!(t->data = malloc(t->nbytes))) {
            an_err_set(&err, AN_E_NOMEM, "out of memory for tensor %s (%llu bytes)", t->name,
                       (unsigned long long)t->nbytes);
            rc = cli_fail(&err);
            goto done;
        }
        if (t->kind == T_ONES) {
            float *f = (float *)(void *)t->data;
            for (int64_t k = 0; k < t->ne[0]; k++) f[k] = 1.0f;
        } else if (t->kind == T_BIAS) {
            fill_normal((float *)(void *)t->data, t->ne[0], row_seed(seed, (uint32_t)i, 0), 0.01f);
        } else {
            gen_job j = {.t = t, .index = (uint32_t)i, .seed = seed, .std = 0.02f, .tmp = tmp};
            an_pool_run(pool, gen_rows, &j);
        }
        an_gguf_writer_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        an_progress("synth: tensors", (uint64_t)i + 1, (uint64_t)L.n);
        if (!tty && i + 1 < L.n && (i + 1) * 4 / L.n != i * 4 / L.n) { /* a line at 25, 50, 75% */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            fprintf(stderr, "synth: %zu/%zu tensors, %.0f s\n", i + 1, L.n,
                    (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
        }
    }
    if (an_gguf_writer_write(w, out_path, &err) != AN_OK) {
        rc = cli_fail(&err);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "wrote %s (%s %s, %s) in %.1f s\n", out_path, P->name, A, an_type_name(want),
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
done:
    for (size_t i = 0; i < L.n; i++) free(L.v[i].data);
    free(L.v);
    free(tmp);
    an_pool_free(pool);
    an_gguf_writer_free(w);
    return rc;
}
