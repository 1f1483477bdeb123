/* test_ane.c — the ANE devices as the rest of anelm sees them: the published cost model as a
 * pure function, `anelm run --device ane-ref --plan` placing prefill on the ANE path and decode
 * on the CPU, and perplexity through the reference executor against llama.cpp's. (Greedy
 * agreement with --device cpu is in the model suite; the emitter, blob format and executor have
 * their own suites: ane_mil, ane_ref, ane_bridge.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "backends/ane/ane.h"
#include "quant/quant.h"
#include "ppl_check.h"
#include "t.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct {
    uint8_t *data;
    an_mat m;
} tmat;

static void tmat_make(tmat *t, an_type type, int M, int K, unsigned seed) {
    const uint64_t rb = an_row_bytes(an_type_traits_get(type), (uint64_t)K);
    float *row = malloc(sizeof(float) * (size_t)K);
    t->data = malloc(rb * (uint64_t)M);
    for (int r = 0; r < M; r++) {
        for (int k = 0; k < K; k++) row[k] = frand(&seed) * 0.2f;
        an_quant_row_ref(type, row, t->data + rb * (uint64_t)r, K);
    }
    free(row);
    t->m = (an_mat){.type = type, .rows = M, .cols = K, .row_bytes = rb, .data = t->data, .name = "w"};
}

/* The ane-ref device on its own: three ops (a fused pair and two singles, F16 / Q8_0 / Q4_0)
 * collected, banked and built, then run at batch sizes inside and across buckets against a
 * float reference of the same (dequantized) weights. fp16 activations in and fp16 outputs out
 * (2^-11 relative each): NMSE bound 1e-6. A second device on the same cache takes the programs from it. */
static void device_runs_banked_programs(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/anelm_t_ane.%d", (int)getpid());
    an_err err = {0};
    an_cache *cache = NULL;
    an_cache_params cp = {.dir = dir};
    T_CHECK(an_cache_open(&cache, &cp, &err) == AN_OK, "%s", err.msg);
    an_pool *pool;
    an_pool_create(&pool, 2, &err);
    tmat a, b, q, d;
    tmat_make(&a, AN_TYPE_F16, 96, 128, 1);
    tmat_make(&b, AN_TYPE_F16, 64, 128, 2);
    tmat_make(&q, AN_TYPE_Q8_0, 80, 128, 3);
    tmat_make(&d, AN_TYPE_Q4_0, 128, 96, 4);
    an_op ops[3] = {{.name = "pair", .w = {&a.m, &b.m}, .n_w = 2, .n = 70},
                    {.name = "q8", .w = {&q.m}, .n_w = 1, .n = 70},
                    {.name = "q4", .w = {&d.m}, .n_w = 1, .n = 70}};
    for (int pass = 0; pass < 2; pass++) {
        an_ane_params ap = {.hardware = false, .family = AN_ANE_M4_PLUS, .n_max = 70, .cache = cache};
        an_device *dev = an_ane_device_create(&ap);
        const an_cache_stats before = an_cache_get_stats(cache);
        /* an op that was never prepared is declined (the scheduler then runs it on the cpu) */
        float yy[96];
        an_mm_out o1 = {&a.m, yy, 96};
        float xx[128] = {0};
        T_CHECK(dev->i->run(dev, &ops[0], &o1, xx, pool, NULL, &err) == AN_E_UNSUPPORTED, "unprepared op ran");
        an_err_clear(&err);
        for (int i = 0; i < 3; i++) T_CHECK(dev->i->prepare_op(dev, &ops[i], &err) == AN_OK, "%s", err.msg);
        T_CHECK(dev->i->prepare_op(dev, NULL, &err) == AN_OK, "%s", err.msg);
        const an_cache_stats after = an_cache_get_stats(cache);
        if (pass == 1) T_CHECK(after.hits > before.hits, "the second device did not take its programs from the cache");
        const int ns[] = {1, 32, 33, 70};
        for (int t = 0; t < 4; t++) {
            const int n = ns[t];
            for (int i = 0; i < 3; i++) {
                an_op op = ops[i];
                op.n = n;
                const int64_t K = op.w[0]->cols;
                float *x = malloc(sizeof(float) * (size_t)(n * K));
                unsigned seed = (unsigned)(n * 7 + i);
                for (int64_t k = 0; k < n * K; k++) x[k] = frand(&seed);
                an_mm_out outs[2];
                float *y[2], *r[2];
                for (int w = 0; w < op.n_w; w++) {
                    y[w] = malloc(sizeof(float) * (size_t)(n * op.w[w]->rows));
                    r[w] = malloc(sizeof(float) * (size_t)(n * op.w[w]->rows));
                    outs[w] = (an_mm_out){op.w[w], y[w], op.w[w]->rows};
                }
                T_CHECK(dev->i->run(dev, &op, outs, x, pool, NULL, &err) == AN_OK, "%s n=%d: %s", op.name, n, err.msg);
                double num = 0, den = 0;
                float *wr = malloc(sizeof(float) * (size_t)K);
                for (int w = 0; w < op.n_w; w++) {
                    for (int64_t row = 0; row < op.w[w]->rows; row++) { /* float reference */
                        an_dequant_row((an_type)op.w[w]->type, (const uint8_t *)op.w[w]->data + row * op.w[w]->row_bytes,
                                       wr, K);
                        for (int tk = 0; tk < n; tk++) {
                            double acc = 0;
                            for (int64_t k = 0; k < K; k++) acc += (double)wr[k] * x[tk * K + k];
                            r[w][tk * op.w[w]->rows + row] = (float)acc;
                        }
                    }
                    for (int64_t k = 0; k < n * op.w[w]->rows; k++) {
                        num += (double)(y[w][k] - r[w][k]) * (y[w][k] - r[w][k]);
                        den += (double)r[w][k] * r[w][k];
                    }
                    free(y[w]);
                    free(r[w]);
                }
                const double e = num / den;
                T_CHECK(e < 1e-6, "%s n=%d: NMSE %.3e vs float (bound 1e-6)", op.name, n, e);
                if (t == 3 && pass == 0) t_note("%s (%s) n=%d: NMSE %.2e vs float (bound 1e-6)", op.name,
                                               an_type_name(op.w[0]->type), n, e);
                free(wr);
                free(x);
            }
        }
        dev->i->free(dev);
    }
    an_cache_clear(cache, NULL, NULL, &err);
    an_cache_free(cache);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    T_CHECK(system(cmd) == 0, "rm");
    free(a.data), free(b.data), free(q.data), free(d.data);
    an_pool_free(pool);
}

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
        const char *fu = strstr(pre, "fused: gate, up, SiLU");
        T_CHECK(fu && fu < dec, "the FFN is not fused:\n%s", r.err);
        t_note("plan:\n%s", pre);
    }
    t_run_free(&r);
}

/* Perplexity through the reference executor (fp16 activations in and out of every offloaded
 * matmul) against llama.cpp's on the reference protocol: within 0.5%. */
static void perplexity_ane_ref(void) { t_check_perplexity("--device ane-ref"); }

const t_case t_suite_ane[] = {
    {"cost_model_shape", cost_model_shape},
    {"device_runs_banked_programs", device_runs_banked_programs},
    {"plan_prefill_on_ane_ref", plan_prefill_on_ane_ref},
    {"perplexity_ane_ref", perplexity_ane_ref},
    {0, 0},
};
