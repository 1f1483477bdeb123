/* test_model.c — end-to-end agreement with llama.cpp (shared/reference): greedy continuations
 * and next-token logits for the llama (F16, Q8_0), qwen2 and qwen3 models, plus model-binding
 * errors. References were computed with an F32 KV cache, so these runs use one too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anelm.h"
#include "json.h"
#include "t.h"

/* Bounds, justified in README "Agreement with llama.cpp":
 * - a greedy divergence is accepted only where llama.cpp's token and ours are within
 *   max(NEAR_TIE, the format's logit bound) of each other in our logits at that step (a
 *   near-tie): two logits closer than the error the logits test allows can swap;
 * - next-token logits: |ours - llama.cpp| <= tol on the reference's top 10, per weight format.
 *   F16 weights: we round activations to f16 exactly as llama.cpp does, so only summation order
 *   differs (measured 0.0015): bound 0.01. Q8_0 weights: llama.cpp ran its multi-token Q8_0
 *   matmuls on its AMX int8 path; with AMX (--device auto here) ours reproduces them exactly
 *   (measured 0.00000), while our CPU vector path, which accumulates dequantized products,
 *   differs by up to 0.065 on 6-7 token prompts (a 4-token prompt agrees exactly): bound 0.1,
 *   so that the test also holds on machines without AMX. */
#define NEAR_TIE 0.05f

typedef struct {
    const char *ref;   /* reference JSON under shared/reference */
    const char *model; /* model path under shared/models */
    float logit_tol;
} model_case;

static const model_case k_models[] = {
    {"reference/tinyscribe-28m-f16.json", "models/tinyscribe-28m-f16.gguf", 0.01f},
    {"reference/tinyscribe-28m-q8_0.json", "models/tinyscribe-28m-q8_0.gguf", 0.1f},
    {"reference/qwen2-mini-f16.json", "models/arch/qwen2-mini-f16.gguf", 0.01f},
    {"reference/qwen3-mini-f16.json", "models/arch/qwen3-mini-f16.gguf", 0.01f},
};

static int ids_of(const t_json *arr, int32_t *out, int cap) {
    int n = 0;
    for (size_t i = 0; arr && i < arr->len && n < cap; i++) out[n++] = (int32_t)t_json_at(arr, i)->num;
    return n;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* Opens a model and a context with an F32 KV cache; NULL (skip) if the files are absent. */
static t_json *open_case(const model_case *mc, an_model **m, an_ctx **c) {
    *m = NULL;
    *c = NULL;
    const char *rp = t_shared_path(mc->ref);
    if (!rp) return NULL;
    t_json *ref = t_json_parse_file(rp);
    if (!ref) {
        T_FAIL("cannot parse %s", mc->ref);
        return NULL;
    }
    const char *mp = t_shared_path(mc->model);
    an_err err = {0};
    an_model_params p = {.path = mp};
    if (!mp || an_model_open(m, &p, &err) != AN_OK) {
        T_FAIL("cannot open %s: %s", mc->model, err.msg);
        t_json_free(ref);
        return NULL;
    }
    an_ctx_params cp = {.n_ctx = 512, .n_threads = 2, .kv_type = AN_KV_F32};
    if (an_ctx_create(c, *m, &cp, &err) != AN_OK) {
        T_FAIL("ctx: %s", err.msg);
        an_model_free(*m);
        t_json_free(ref);
        return NULL;
    }
    return ref;
}

static void greedy_one(const model_case *mc) {
    an_model *m;
    an_ctx *c;
    if (!t_shared_dir()) {
        t_skip("needs ../shared (models and llama.cpp references)");
        return;
    }
    t_json *ref = open_case(mc, &m, &c);
    if (!ref) return;
    const t_json *greedy = t_json_get(ref, "greedy");
    int total = 0, matched = 0, diverged = 0;
    for (size_t g = 0; g < greedy->len; g++) {
        const t_json *e = t_json_at(greedy, g);
        int32_t prompt[512], want[512];
        int np = ids_of(t_json_get(e, "prompt_ids"), prompt, 512);
        int nw = ids_of(t_json_get(e, "ids"), want, 512);
        an_err err = {0};
        an_ctx_reset(c);
        if (an_ctx_eval(c, prompt, np, &err) != AN_OK) {
            T_FAIL("%s: eval: %s", mc->model, err.msg);
            break;
        }
        int i = 0;
        for (; i < nw; i++) {
            const float *lg = an_ctx_logits(c);
            int32_t ours = argmax(lg, an_model_n_vocab(m));
            if (ours != want[i]) {
                float gap = lg[ours] - lg[want[i]];
                t_note("%s prompt %zu: diverges at token %d of %d: ours %d, llama.cpp %d, gap %.4f in our logits",
                       mc->model, g, i, nw, ours, want[i], (double)gap);
                const float tie = mc->logit_tol > NEAR_TIE ? mc->logit_tol : NEAR_TIE;
                T_CHECK(gap <= tie, "divergence at token %d is not a near-tie (gap %.4f > %.2f)", i, (double)gap,
                        (double)tie);
                diverged++;
                break;
            }
            if (i + 1 < nw && an_ctx_eval(c, &ours, 1, &err) != AN_OK) {
                T_FAIL("%s: eval: %s", mc->model, err.msg);
                break;
            }
        }
        matched += i;
        total += nw;
    }
    t_note("%s: %d/%d greedy tokens identical to llama.cpp, %d divergence(s) at near-ties", mc->model, matched, total,
           diverged);
    an_ctx_free(c);
    an_model_free(m);
    t_json_free(ref);
}

static void logits_one(const model_case *mc) {
    an_model *m;
    an_ctx *c;
    if (!t_shared_dir()) {
        t_skip("needs ../shared (models and llama.cpp references)");
        return;
    }
    t_json *ref = open_case(mc, &m, &c);
    if (!ref) return;
    const t_json *lgs = t_json_get(ref, "logits");
    double worst = 0;
    for (size_t g = 0; g < lgs->len; g++) {
        const t_json *e = t_json_at(lgs, g);
        int32_t prompt[512];
        int np = ids_of(t_json_get(e, "prompt_ids"), prompt, 512);
        an_err err = {0};
        an_ctx_reset(c);
        if (an_ctx_eval(c, prompt, np, &err) != AN_OK) {
            T_FAIL("%s: eval: %s", mc->model, err.msg);
            break;
        }
        const float *lg = an_ctx_logits(c);
        const t_json *top = t_json_get(e, "top");
        int best = argmax(lg, an_model_n_vocab(m));
        T_CHECK(best == (int)t_json_at(t_json_at(top, 0), 0)->num, "%s prompt %zu: argmax %d, llama.cpp %d", mc->model,
                g, best, (int)t_json_at(t_json_at(top, 0), 0)->num);
        for (size_t k = 0; k < top->len; k++) {
            int id = (int)t_json_at(t_json_at(top, k), 0)->num;
            double d = fabs((double)lg[id] - t_json_at(t_json_at(top, k), 1)->num);
            if (d > worst) worst = d;
        }
    }
    t_note("%s: max |logit - llama.cpp| over the top-10 of %zu prompts = %.5f (bound %.3f)", mc->model, lgs->len,
           worst, (double)mc->logit_tol);
    T_CHECK(worst <= mc->logit_tol, "%s: logit difference %.5f", mc->model, worst);
    an_ctx_free(c);
    an_model_free(m);
    t_json_free(ref);
}

static void greedy_tinyscribe_f16(void) { greedy_one(&k_models[0]); }
static void greedy_tinyscribe_q8_0(void) { greedy_one(&k_models[1]); }
static void greedy_qwen2(void) { greedy_one(&k_models[2]); }
static void greedy_qwen3(void) { greedy_one(&k_models[3]); }
static void logits_tinyscribe_f16(void) { logits_one(&k_models[0]); }
static void logits_tinyscribe_q8_0(void) { logits_one(&k_models[1]); }
static void logits_qwen2(void) { logits_one(&k_models[2]); }
static void logits_qwen3(void) { logits_one(&k_models[3]); }

/* Prefill in chunks (-ub) must give the logits of one big batch and of token-by-token decode. */
static void chunked_prefill_consistent(void) {
    const char *mp = t_shared_path("models/tinyscribe-28m-f16.gguf");
    if (!mp) {
        t_skip("needs ../shared/models/tinyscribe-28m-f16.gguf");
        return;
    }
    an_model *m;
    an_err err = {0};
    an_model_params p = {.path = mp};
    if (an_model_open(&m, &p, &err) != AN_OK) {
        T_FAIL("%s", err.msg);
        return;
    }
    int32_t toks[100];
    for (int i = 0; i < 100; i++) toks[i] = 300 + (i * 37) % 5000;
    toks[0] = 1;
    int ubs[] = {512, 7, 1};
    float *ref = NULL;
    int V = an_model_n_vocab(m);
    for (int u = 0; u < 3; u++) {
        an_ctx *c;
        an_ctx_params cp = {.n_ctx = 128, .n_ubatch = ubs[u], .n_threads = 2, .kv_type = AN_KV_F32};
        if (an_ctx_create(&c, m, &cp, &err) != AN_OK) {
            T_FAIL("%s", err.msg);
            break;
        }
        if (ubs[u] == 1) {
            for (int i = 0; i < 100 && err.code == AN_OK; i++) an_ctx_eval(c, toks + i, 1, &err);
        } else {
            an_ctx_eval(c, toks, 100, &err);
        }
        T_CHECK(err.code == AN_OK, "%s", err.msg);
        const float *lg = an_ctx_logits(c);
        if (!ref) {
            ref = malloc((size_t)V * sizeof *ref);
            memcpy(ref, lg, (size_t)V * sizeof *ref);
        } else {
            double md = 0;
            for (int i = 0; i < V; i++) md = fmax(md, fabs((double)lg[i] - ref[i]));
            t_note("ubatch %d vs one batch: max |logit diff| = %.2e", ubs[u], md);
            /* decode (n = 1) and prefill sum in different orders; with activations rounded to
             * f16 at every matmul a last-bit difference can flip a rounding, so allow what we
             * allow against llama.cpp for F16 weights */
            T_CHECK(md < 1e-2, "ubatch %d differs by %.3e", ubs[u], md);
            T_CHECK(argmax(lg, V) == argmax(ref, V), "argmax differs with ubatch %d", ubs[u]);
        }
        an_ctx_free(c);
    }
    free(ref);
    an_model_free(m);
}

/* --device DEV (auto: AMX prefill where the cost model says so; ane-ref: prefill matmuls as MIL
 * programs through the reference ANE executor, fp16 activations and outputs) against --device
 * cpu: the greedy continuations of the reference prompts agree, or part only at a near-tie,
 * reported. */
static void device_matches_cpu(const char *model, const char *dev, float tie) {
    const char *mp = t_shared_path(model), *rp = t_shared_path("reference/tinyscribe-28m-f16.json");
    if (!mp || !rp) {
        t_skip("needs ../shared (models and reference prompts)");
        return;
    }
    an_model *m;
    an_err err = {0};
    an_model_params p = {.path = mp};
    if (an_model_open(&m, &p, &err) != AN_OK) {
        T_FAIL("%s", err.msg);
        return;
    }
    an_ctx *c[2] = {0};
    const char *devs[2] = {"cpu", dev};
    for (int d = 0; d < 2; d++) {
        an_ctx_params cp = {.n_ctx = 512, .n_threads = 2, .kv_type = AN_KV_F32, .device = devs[d]};
        if (an_ctx_create(&c[d], m, &cp, &err) != AN_OK) T_FAIL("%s: %s", devs[d], err.msg);
    }
    t_json *ref = t_json_parse_file(rp);
    const t_json *greedy = t_json_get(ref, "greedy");
    int total = 0, same = 0, split = 0;
    const int V = an_model_n_vocab(m);
    for (size_t g = 0; c[0] && c[1] && g < greedy->len; g++) {
        int32_t prompt[512];
        int np = ids_of(t_json_get(t_json_at(greedy, g), "prompt_ids"), prompt, 512);
        for (int d = 0; d < 2; d++) {
            an_ctx_reset(c[d]);
            an_ctx_eval(c[d], prompt, np, &err);
        }
        for (int i = 0; i < 48 && err.code == AN_OK; i++) {
            const float *l0 = an_ctx_logits(c[0]), *l1 = an_ctx_logits(c[1]);
            int32_t a = argmax(l0, V), b = argmax(l1, V);
            total++;
            if (a != b) {
                float gap = fabsf(l0[a] - l0[b]);
                t_note("%s prompt %zu: cpu and %s part at token %d (%d vs %d), gap %.4f", model, g, dev, i, a, b,
                       (double)gap);
                T_CHECK(gap <= tie, "not a near-tie: gap %.4f > %.2f", (double)gap, (double)tie);
                split++;
                break;
            }
            same++;
            an_ctx_eval(c[0], &a, 1, &err);
            an_ctx_eval(c[1], &a, 1, &err);
        }
        T_CHECK(err.code == AN_OK, "%s", err.msg);
    }
    t_note("%s: %d/%d greedy tokens identical with --device %s (%s) and --device cpu, %d near-tie split(s)", model,
           same, total, dev, c[1] ? an_ctx_devices(c[1]) : "?", split);
    t_json_free(ref);
    an_ctx_free(c[0]);
    an_ctx_free(c[1]);
    an_model_free(m);
}

/* Near-tie bounds: as for llama.cpp, the format's logit bound (Q8_0: 0.1), except ane-ref on
 * Q8_0: the CPU path quantizes activations to Q8_0 blocks as llama.cpp does (AMX reproduces
 * that exactly), while the ANE has no int8 activations and ane-ref keeps them in fp16, so the
 * two differ by the activation quantization itself: up to 0.09 in the top-5 logits of a
 * 30-token prompt (`anelm logits --device cpu|ane-ref`; on F16 weights they agree within
 * 0.002, the fp16 rounding of the logits): bound 0.15. */
static void auto_matches_cpu_f16(void) { device_matches_cpu("models/tinyscribe-28m-f16.gguf", "auto", NEAR_TIE); }
static void auto_matches_cpu_q8_0(void) { device_matches_cpu("models/tinyscribe-28m-q8_0.gguf", "auto", 0.1f); }
static void ane_ref_matches_cpu_f16(void) { device_matches_cpu("models/tinyscribe-28m-f16.gguf", "ane-ref", NEAR_TIE); }
static void ane_ref_matches_cpu_q8_0(void) { device_matches_cpu("models/tinyscribe-28m-q8_0.gguf", "ane-ref", 0.15f); }

const t_case t_suite_model[] = {
    {"auto_matches_cpu_f16", auto_matches_cpu_f16},
    {"auto_matches_cpu_q8_0", auto_matches_cpu_q8_0},
    {"ane_ref_matches_cpu_f16", ane_ref_matches_cpu_f16},
    {"ane_ref_matches_cpu_q8_0", ane_ref_matches_cpu_q8_0},
    {"greedy_tinyscribe_f16", greedy_tinyscribe_f16},
    {"greedy_tinyscribe_q8_0", greedy_tinyscribe_q8_0},
    {"greedy_qwen2", greedy_qwen2},
    {"greedy_qwen3", greedy_qwen3},
    {"logits_tinyscribe_f16", logits_tinyscribe_f16},
    {"logits_tinyscribe_q8_0", logits_tinyscribe_q8_0},
    {"logits_qwen2", logits_qwen2},
    {"logits_qwen3", logits_qwen3},
    {"chunked_prefill_consistent", chunked_prefill_consistent},
    {0, 0},
};
