/* test_synth.c — `anelm synth`: the tiny preset for every architecture and several types opens
 * through the public API and runs; shapes, tensor types, metadata and vocabularies are what the
 * real architectures use; the same seed gives the same bytes whatever the thread count. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anelm.h"
#include "gguf/gguf.h"
#include "t.h"

/* Runs `build/anelm ARGS`; returns the exit code. */
#define synth_run(...) synth_code(t_run("", __VA_ARGS__))
static int synth_code(t_run_result r) {
    t_run_free(&r);
    return r.code;
}

static const char *tmp_path(const char *tag) {
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 256, "/tmp/anelm_synth_%d_%s.gguf", (int)getpid(), tag);
    return b;
}

static bool same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = t_read_file(a, &na), *y = t_read_file(b, &nb);
    bool eq = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static const struct {
    const char *name;
    an_type type;
} k_types[] = {{"f16", AN_TYPE_F16}, {"bf16", AN_TYPE_BF16}, {"q8_0", AN_TYPE_Q8_0},
               {"q4_0", AN_TYPE_Q4_0}, {"q4_k", AN_TYPE_Q4_K}, {"q6_k", AN_TYPE_Q6_K}};
static const char *const k_archs[] = {"llama", "qwen2", "qwen3"};

static uint32_t tensor_type(const an_gguf *g, const char *name) {
    const an_gguf_tensor *t = an_gguf_tensor_find(g, name);
    return t ? t->type : 0xffffffffu;
}

/* The tensor directory and metadata of a tiny model of the given arch and type. */
static void check_file(const char *path, const char *arch, an_type type) {
    an_err err = {0};
    an_gguf *g = NULL;
    if (an_gguf_open(&g, path, &err) != AN_OK) {
        T_FAIL("%s: %s", path, err.msg);
        return;
    }
    an_str s;
    T_CHECK(an_gguf_get_str(g, "general.architecture", &s, NULL, &err) == AN_OK && an_str_eq(s, arch), "%s", path);
    uint32_t v = 0;
    char key[96];
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    T_CHECK(an_gguf_get_u32(g, key, &v, NULL, &err) == AN_OK && v == 256, "%s: %s", path, key);
    snprintf(key, sizeof key, "%s.block_count", arch);
    T_CHECK(an_gguf_get_u32(g, key, &v, NULL, &err) == AN_OK && v == 2, "%s: %s", path, key);
    T_CHECK(an_gguf_get_u32(g, "general.quantization_version", &v, NULL, &err) == AN_OK && v == 2, "%s", path);
    const an_gguf_tensor *e = an_gguf_tensor_find(g, "token_embd.weight");
    T_CHECK(e && e->type == (uint32_t)type && e->ne[0] == 256 && e->ne[1] == 512, "%s: token_embd", path);
    const char *mats[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
                          "blk.0.attn_output.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight",
                          "blk.1.ffn_down.weight"};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        T_CHECK(tensor_type(g, mats[i]) == (uint32_t)type, "%s: %s is %s", path, mats[i],
                an_type_name(tensor_type(g, mats[i])));
    const an_gguf_tensor *k = an_gguf_tensor_find(g, "blk.0.attn_k.weight");
    T_CHECK(k && k->ne[0] == 256 && k->ne[1] == 128, "%s: attn_k shape (2 kv heads of 64)", path);
    const an_gguf_tensor *d = an_gguf_tensor_find(g, "blk.1.ffn_down.weight");
    T_CHECK(d && d->ne[0] == 512 && d->ne[1] == 256, "%s: ffn_down shape", path);
    T_CHECK(tensor_type(g, "blk.0.attn_norm.weight") == AN_TYPE_F32, "%s: norms are F32", path);
    T_CHECK(tensor_type(g, "output_norm.weight") == AN_TYPE_F32, "%s", path);
    T_CHECK(!an_gguf_tensor_find(g, "output.weight"), "%s: the tiny preset ties the output", path);
    bool qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    T_CHECK((tensor_type(g, "blk.1.attn_q.bias") == AN_TYPE_F32) == qwen2, "%s: q bias iff qwen2", path);
    T_CHECK((tensor_type(g, "blk.1.attn_v.bias") == AN_TYPE_F32) == qwen2, "%s: v bias iff qwen2", path);
    T_CHECK((tensor_type(g, "blk.1.attn_k_norm.weight") == AN_TYPE_F32) == qwen3, "%s: k norm iff qwen3", path);
    int64_t want_tensors = 2 + 2 * (9 + (qwen2 ? 3 : 0) + (qwen3 ? 2 : 0));
    T_CHECK(an_gguf_n_tensors(g) == want_tensors, "%s: %lld tensors, want %lld", path,
            (long long)an_gguf_n_tensors(g), (long long)want_tensors);
    an_gguf_free(g);
}

/* Opens the file through the public API, checks the facts and runs a short greedy generation. */
static void check_runs(const char *path, const char *arch) {
    an_err err = {0};
    an_model *m = NULL;
    an_model_params mp = {.path = path};
    if (an_model_open(&m, &mp, &err) != AN_OK) {
        T_FAIL("%s: %s", path, err.msg);
        return;
    }
    T_CHECK(an_model_n_vocab(m) == 512 && an_model_n_embd(m) == 256, "%s: vocab %d embd %d", path,
            an_model_n_vocab(m), an_model_n_embd(m));
    T_CHECK(!strcmp(an_model_arch(m), arch), "%s: arch %s", path, an_model_arch(m));
    bool spm = !strcmp(arch, "llama");
    T_CHECK(an_token_add_bos(m) == spm, "%s: add_bos", path);
    T_CHECK(spm ? an_token_bos(m) == 1 && an_token_eos(m) == 2 : an_token_eos(m) == 511, "%s: bos %d eos %d", path,
            an_token_bos(m), an_token_eos(m));

    const char *text = "hello world, the cat 42";
    int32_t ids[64];
    size_t n = 0;
    T_CHECK(an_tokenize(m, text, strlen(text), an_token_add_bos(m), false, ids, 64, &n, &err) == AN_OK && n > 3,
            "%s: tokenize: %s", path, err.msg);
    char back[128];
    size_t off = spm ? 1 : 0;
    an_detokenize(m, ids + off, n - off, back, sizeof back);
    T_CHECK(!strcmp(back, text), "%s: round trip gives '%s'", path, back);

    an_ctx *c = NULL;
    an_ctx_params cp = {.n_ctx = 64, .n_threads = 2};
    if (an_ctx_create(&c, m, &cp, &err) != AN_OK) {
        T_FAIL("%s: %s", path, err.msg);
        an_model_free(m);
        return;
    }
    int32_t tok = 0;
    for (int step = 0; step < 4; step++) {
        an_status st = step == 0 ? an_ctx_eval(c, ids, (int)n, &err) : an_ctx_eval(c, &tok, 1, &err);
        if (st != AN_OK) {
            T_FAIL("%s: eval: %s", path, err.msg);
            break;
        }
        const float *l = an_ctx_logits(c);
        double sum = 0, sq = 0;
        bool finite = true;
        for (int i = 0; i < 512; i++) {
            finite &= isfinite(l[i]) != 0;
            sum += l[i];
            sq += (double)l[i] * l[i];
            if (l[i] > l[tok]) tok = i;
        }
        double sd = sqrt(sq / 512 - (sum / 512) * (sum / 512));
        T_CHECK(finite && sd > 0.05 && sd < 20, "%s: logits finite and spread (sd %g)", path, sd);
    }
    an_ctx_free(c);
    an_model_free(m);
}

static void every_arch_and_type_opens_and_runs(void) {
    for (size_t a = 0; a < 3; a++)
        for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++) {
            char tag[64];
            snprintf(tag, sizeof tag, "%s_%s", k_archs[a], k_types[t].name);
            const char *p = tmp_path(tag);
            int rc = synth_run("synth --arch %s --preset tiny --type %s -t 2 -o %s", k_archs[a], k_types[t].name, p);
            T_CHECK(rc == 0, "synth %s exit %d", tag, rc);
            if (rc == 0) {
                check_file(p, k_archs[a], k_types[t].type);
                check_runs(p, k_archs[a]);
            }
            unlink(p);
        }
}

static void same_seed_same_bytes(void) {
    const char *a = tmp_path("seed_a"), *b = tmp_path("seed_b"), *c = tmp_path("seed_c");
    const char *fmt = "synth --arch qwen2 --preset tiny --type q4_k --seed %d -t %d -o %s";
    int ra = synth_run(fmt, 7, 1, a), rb = synth_run(fmt, 7, 2, b), rc = synth_run(fmt, 8, 2, c);
    T_CHECK(ra == 0 && rb == 0 && rc == 0, "exit codes %d %d %d", ra, rb, rc);
    T_CHECK(same_bytes(a, b), "same seed, 1 and 2 threads: files differ");
    T_CHECK(!same_bytes(a, c), "different seeds: files are identical");
    unlink(a);
    unlink(b);
    unlink(c);
}

/* The vocabularies: SentencePiece layout for llama, byte-level BPE with merges for qwen. */
static void vocabularies(void) {
    const char *p = tmp_path("vocab_llama"), *q = tmp_path("vocab_qwen");
    int rp = synth_run("synth --arch llama --preset tiny --type q8_0 -o %s", p);
    int rq = synth_run("synth --arch qwen3 --preset tiny --type q8_0 -o %s", q);
    T_CHECK(rp == 0 && rq == 0, "exit codes %d %d", rp, rq);
    an_err err = {0};
    an_gguf *g = NULL;
    const an_gguf_kv *tok = NULL, *ty = NULL, *mg = NULL, *sc = NULL;
    if (an_gguf_open(&g, p, &err) == AN_OK) {
        an_str s;
        T_CHECK(an_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL, &err) == AN_OK && an_str_eq(s, "llama"), "model");
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.tokens", AN_GGUF_STR, &tok, NULL, &err) == AN_OK &&
                    tok->arr_n == 512, "tokens");
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.token_type", AN_GGUF_I32, &ty, NULL, &err) == AN_OK, "types");
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.scores", AN_GGUF_F32, &sc, NULL, &err) == AN_OK, "scores");
        if (tok && ty && sc) {
            T_CHECK(an_str_eq(tok->arr_str[0], "<unk>") && an_gguf_arr_i64(ty, 0) == 2, "unk");
            T_CHECK(an_str_eq(tok->arr_str[1], "<s>") && an_gguf_arr_i64(ty, 1) == 3, "bos");
            T_CHECK(an_str_eq(tok->arr_str[2], "</s>") && an_gguf_arr_i64(ty, 2) == 3, "eos");
            T_CHECK(an_str_eq(tok->arr_str[3], "<0x00>") && an_str_eq(tok->arr_str[258], "<0xFF>") &&
                        an_gguf_arr_i64(ty, 100) == 6, "byte tokens");
            for (uint64_t i = 260; i < 512; i++)
                if (!(an_gguf_arr_i64(ty, i) == 1 && an_gguf_arr_f64(sc, i) < an_gguf_arr_f64(sc, i - 1))) {
                    T_FAIL("normal piece %llu: type or score order", (unsigned long long)i);
                    break;
                }
        }
        an_gguf_free(g);
    } else {
        T_FAIL("%s", err.msg);
    }
    if (an_gguf_open(&g, q, &err) == AN_OK) {
        an_str s;
        T_CHECK(an_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL, &err) == AN_OK && an_str_eq(s, "gpt2"), "model");
        T_CHECK(an_gguf_get_str(g, "tokenizer.ggml.pre", &s, NULL, &err) == AN_OK && an_str_eq(s, "qwen2"), "pre");
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.tokens", AN_GGUF_STR, &tok, NULL, &err) == AN_OK &&
                    tok->arr_n == 512, "tokens");
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.merges", AN_GGUF_STR, &mg, NULL, &err) == AN_OK, "merges");
        if (tok && mg && tok->arr_n == 512) {
            T_CHECK(mg->arr_n == 512 - 257, "%llu merges", (unsigned long long)mg->arr_n);
            T_CHECK(an_str_eq(tok->arr_str[32], "\xC4\xA0") && an_str_eq(tok->arr_str[65], "A") &&
                        an_str_eq(tok->arr_str[10], "\xC4\x8A"), "GPT-2 byte characters");
            T_CHECK(an_str_eq(tok->arr_str[511], "<|endoftext|>"), "endoftext last");
            /* merge i makes token 256 + i out of two earlier tokens */
            for (uint64_t i = 0; i < mg->arr_n; i++) {
                an_str m = mg->arr_str[i], t = tok->arr_str[256 + i];
                const char *sp = m.n > 1 ? memchr(m.p + 1, ' ', m.n - 1) : NULL;
                size_t nl = sp ? (size_t)(sp - m.p) : 0, nr = sp ? (size_t)m.n - nl - 1 : 0;
                bool ok = sp && nl + nr == t.n && !memcmp(m.p, t.p, nl) && !memcmp(sp + 1, t.p + nl, nr);
                bool has_l = false, has_r = false;
                for (uint64_t j = 0; ok && j < 256 + i; j++) {
                    an_str u = tok->arr_str[j];
                    has_l |= u.n == nl && !memcmp(u.p, m.p, nl);
                    has_r |= u.n == nr && !memcmp(u.p, sp + 1, nr);
                }
                if (!ok || !has_l || !has_r) {
                    T_FAIL("merge %llu '%.*s' does not make token '%.*s' from earlier tokens", (unsigned long long)i,
                           (int)m.n, m.p, (int)t.n, t.p);
                    break;
                }
            }
        }
        an_gguf_free(g);
    } else {
        T_FAIL("%s", err.msg);
    }
    unlink(p);
    unlink(q);
}

static void usage_errors(void) {
    T_CHECK(synth_run("synth --preset nope -o /tmp/x.gguf") == 1, "unknown preset");
    T_CHECK(synth_run("synth --arch gpt9 -o /tmp/x.gguf") == 1, "unknown arch");
    T_CHECK(synth_run("synth --type q3_x -o /tmp/x.gguf") == 1, "unknown type");
    T_CHECK(synth_run("synth --preset tiny") == 1, "missing -o");
    T_CHECK(synth_run("synth --seed -3 -o /tmp/x.gguf") == 1, "negative seed");
    T_CHECK(synth_run("synth --preset tiny -o /nonexistent-dir/x.gguf") == 2 ||
                synth_run("synth --preset tiny -o /nonexistent-dir/x.gguf") == 3,
            "unwritable output");
}

const t_case t_suite_synth[] = {
    {"every_arch_and_type_opens_and_runs", every_arch_and_type_opens_and_runs},
    {"same_seed_same_bytes", same_seed_same_bytes},
    {"vocabularies", vocabularies},
    {"usage_errors", usage_errors},
    {0, 0},
};
