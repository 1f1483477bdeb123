/* test_ane.c — the ANE devices as the rest of anelm sees them: the published cost model as a
 * pure function, `anelm run --device ane-ref --plan` placing prefill on the ANE path and decode
 * on the CPU, and perplexity through the reference executor against llama.cpp's. (Greedy
 * agreement with --device cpu is in the model suite; the emitter, blob format and executor have
 * their own suites: ane_mil, ane_ref, ane_bridge.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ane.h"
#include "json.h"
#include "t.h"

static void cost_model_shape(void) {
    an_mat w = {.type = AN_TYPE_F16, .rows = 2048, .cols = 2048, .row_bytes = 4096};
    an_op op = {.name = "o", .w = {&w}, .n_w = 1, .n = 1};
    const double c1 = an_ane_cost_model(AN_ANE_M4_PLUS, &op);
    T_CHECK(c1 >= 100e-6, "decode must pay the dispatch floor: %g s", c1);
    op.n = 32;
    const double c32 = an_ane_cost_model(AN_ANE_M4_PLUS, &op);
    op.n = 17;
    T_CHECK(an_ane_cost_model(AN_ANE_M4_PLUS, &op) <= c32, "17 tokens run in the 32 bucket");
    op.n = 512;
    const double c512 = an_ane_cost_model(AN_ANE_M4_PLUS, &op);
    T_CHECK(c512 > c32 && c32 >= c1, "cost grows with the bucket: %g %g %g", c1, c32, c512);
    /* 2 * 2048^2 * 512 flops at 4 TFLOPS ~ 1.07 ms, plus the floor and host conversion */
    T_CHECK(c512 > 1.0e-3 && c512 < 3e-3, "512 tokens of 2048^2: %g s", c512);
    T_CHECK(an_ane_cost_model(AN_ANE_M1_M3, &op) > c512, "M1-M3 anchors are slower than M4's");
    /* weights streamed, not computed, bound a one-token LM head: 128256 x 2048 fp16 = 525 MB */
    an_mat head = {.type = AN_TYPE_F16, .rows = 128256, .cols = 2048, .row_bytes = 4096};
    an_op h = {.name = "output", .w = {&head}, .n_w = 1, .n = 1};
    T_CHECK(an_ane_cost_model(AN_ANE_M4_PLUS, &h) > 5e-3, "LM head at decode streams its weights: %g s",
            an_ane_cost_model(AN_ANE_M4_PLUS, &h));
}

/* The done-criterion of the ANE issue: every prefill matmul on the ANE path, decode on the cpu. */
static void plan_prefill_on_ane_ref(void) {
    char prompt[2048] = "";
    for (int i = 0; i < 40; i++) strcat(prompt, "The king of Israel went up. ");
    t_run_result r = t_run("", "run -m models/tinyscribe-28m-q8_0.gguf --device ane-ref --plan -p '%s' -n 2 -t 2 --temp 0", prompt);
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    const char *pre = strstr(r.err, "prefill (n = "), *dec = strstr(r.err, "decode (n = 1");
    T_CHECK(pre && dec && pre < dec, "plan not printed: %s", r.err);
    if (pre && dec) {
        const char *ops[] = {"attn_qkv", "attn_output", "ffn_gate_up", "ffn_down"};
        for (int i = 0; i < 4; i++) {
            const char *a = strstr(pre, ops[i]), *b = strstr(dec, ops[i]);
            T_CHECK(a && a < dec && strncmp(strstr(a, "->") + 3, "ane-ref", 7) == 0, "prefill %s not on ane-ref:\n%s",
                    ops[i], r.err);
            T_CHECK(b && strncmp(strstr(b, "->") + 3, "cpu", 3) == 0, "decode %s not on the cpu:\n%s", ops[i], r.err);
        }
        t_note("plan:\n%s", pre);
    }
    t_run_free(&r);
}

/* Perplexity through the reference executor (fp16 activations in and out of every offloaded
 * matmul) against llama.cpp's on the reference protocol: within 0.5%. */
static void perplexity_ane_ref(void) {
    const char *mpath = t_shared_path("models/tinyscribe-28m-f16.gguf");
    const char *vpath = t_shared_path("data/val.txt");
    const char *refp = t_shared_path("reference/tinyscribe-28m-f16.json");
    if (!mpath || !vpath || !refp) {
        t_skip("needs ../shared (model, val.txt, reference)");
        return;
    }
    t_json *ref = t_json_parse_file(refp);
    const t_json *ppl = t_json_get(ref, "ppl");
    const double want = t_json_get(ppl, "ppl")->num;
    const int n_tok = (int)t_json_get(ppl, "n_tokens")->num, n_ctx = (int)t_json_get(ppl, "n_ctx")->num;
    t_run_result r = t_run("", "perplexity -m %s -f %s -c %d --max-tokens %d --kv-type f32 -t 2 --json --device ane-ref",
                           mpath, vpath, n_ctx, n_tok);
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    t_json *j = t_json_parse(r.out, r.out_len);
    if (j && t_json_get(j, "ppl")) {
        const double got = t_json_get(j, "ppl")->num, rel = fabs(got - want) / want;
        t_note("perplexity with --device ane-ref %.4f vs llama.cpp %.4f (%.3f%%, bound 0.5%%)", got, want, rel * 100);
        T_CHECK(rel < 0.005, "perplexity %.4f is not within 0.5%% of %.4f", got, want);
    } else {
        T_FAIL("no perplexity in: %s", r.out);
    }
    t_json_free(j);
    t_json_free(ref);
    t_run_free(&r);
}

const t_case t_suite_ane[] = {
    {"cost_model_shape", cost_model_shape},
    {"plan_prefill_on_ane_ref", plan_prefill_on_ane_ref},
    {"perplexity_ane_ref", perplexity_ane_ref},
    {0, 0},
};
