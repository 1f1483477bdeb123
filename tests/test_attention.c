/* test_attention.c — the tiled online-softmax attention against the scalar reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "core/fp16.h"
#include "t.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* NMSE = sum (a - b)^2 / sum b^2 in double; NaN in a fails. */
static double nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] != a[i]) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

static void run_case(int n, int pos0, int n_head, int n_head_kv, int hd, int kv_f16, double bound) {
    const int ctx = pos0 + n, NQ = n_head * hd, NKV = n_head_kv * hd;
    unsigned seed = (unsigned)(n * 131 + pos0 * 7 + n_head * 3 + hd + kv_f16);
    float *q = malloc(sizeof(float) * (size_t)n * NQ);
    float *o1 = malloc(sizeof(float) * (size_t)n * NQ), *o2 = malloc(sizeof(float) * (size_t)n * NQ);
    void *k = malloc((size_t)ctx * NKV * 4), *v = malloc((size_t)ctx * NKV * 4);
    for (int i = 0; i < n * NQ; i++) q[i] = frand(&seed) * 2.0f;
    for (int i = 0; i < ctx * NKV; i++) {
        float kv = frand(&seed), vv = frand(&seed);
        if (kv_f16) {
            ((uint16_t *)k)[i] = an_f32_to_f16(kv);
            ((uint16_t *)v)[i] = an_f32_to_f16(vv);
        } else {
            ((float *)k)[i] = kv;
            ((float *)v)[i] = vv;
        }
    }
    for (int i = 0; i < n * NQ; i++) o1[i] = o2[i] = NAN; /* unwritten outputs must show */
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    size_t sf = an_attn_scratch_floats(n_head, n_head_kv, hd, ctx);
    float *scratch = malloc(sizeof(float) * sf * 2);
    an_attn_args a = {.q = q, .k = k, .v = v, .out = o1, .n = n, .pos0 = pos0, .n_head = n_head,
                      .n_head_kv = n_head_kv, .hd = hd, .kv_stride = NKV, .kv_f16 = kv_f16,
                      .scale = 1.0f / sqrtf((float)hd), .scratch = scratch};
    an_cpu_attention(pool, &a);
    a.out = o2;
    an_attention_ref(&a);
    double e = nmse(o1, o2, (size_t)n * NQ);
    t_note("n %3d pos0 %4d heads %2d/%d hd %3d %s: NMSE %.2e (bound %.0e)", n, pos0, n_head, n_head_kv, hd,
           kv_f16 ? "f16" : "f32", e, bound);
    T_CHECK(e <= bound, "attention NMSE %.3e > %.0e", e, bound);
    an_pool_free(pool);
    free(q);
    free(o1);
    free(o2);
    free(k);
    free(v);
    free(scratch);
}

/* Bounds: with an f32 cache the two differ only by float summation order and the online
 * rescaling (exp(a)exp(b) vs exp(a+b)): 1e-10. With an f16 cache the reference rounds the
 * probabilities to f16 as llama.cpp's non-flash path does and the tiled kernel does not (like
 * llama.cpp's flash path), a relative error up to 2^-11 per weight: 1e-6. */
static void tiled_matches_reference(void) {
    for (int f16 = 0; f16 <= 1; f16++) {
        double b = f16 ? 1e-6 : 1e-10;
        run_case(1, 0, 4, 4, 64, f16, b);     /* first token */
        run_case(1, 300, 8, 2, 64, f16, b);   /* decode deep in the context, GQA 4 */
        run_case(7, 0, 8, 4, 64, f16, b);     /* prefill shorter than a tile */
        run_case(37, 5, 14, 2, 64, f16, b);   /* qwen2.5-0.5b grouping (7), ragged tiles */
        run_case(64, 100, 4, 1, 128, f16, b); /* MQA, head 128 */
        run_case(20, 3, 2, 2, 32, f16, b);    /* no GQA, small head */
    }
}

const t_case t_suite_attention[] = {
    {"tiled_matches_reference", tiled_matches_reference},
    {0, 0},
};
