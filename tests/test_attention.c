/* test_attention.c — the blocked online-softmax attention against the scalar reference, and the
 * vector exp / SwiGLU it shares. Everything runs on the active ISA: run the suite under
 * ANELM_ISA=avx512, avx2 and scalar to cover every variant. */
#include <float.h>
#include <math.h>
#include <stdint.h>
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

/* The key-block (AN_ATTN_KB = 64) and query-tile edges: context lengths that are not a
 * multiple of the block, a diagonal that crosses a block boundary, prefill after a prefix,
 * long contexts, GQA ratios 1/3/4/7/8 (queries per tile 8..64, padded to 16), head 64/128. */
static void block_edges(void) {
    for (int f16 = 0; f16 <= 1; f16++) {
        double b = f16 ? 1e-6 : 1e-10;
        run_case(70, 0, 4, 4, 64, f16, b);     /* GQA 1: 8 queries per tile, keys 64 + 6 */
        run_case(64, 0, 16, 4, 64, f16, b);    /* GQA 4, exactly one key block */
        run_case(65, 0, 32, 4, 64, f16, b);    /* GQA 8: 64 queries per tile, one key past */
        run_case(33, 60, 8, 2, 64, f16, b);    /* diagonal crosses the 64 boundary */
        run_case(9, 127, 12, 4, 128, f16, b);  /* GQA 3, head 128, ragged tile, pos0 = KB*2-1 */
        run_case(100, 130, 14, 2, 128, f16, b); /* GQA 7, head 128 */
        run_case(2, 2000, 32, 8, 64, f16, b);  /* 1B shape, decode-like, long context */
        run_case(40, 900, 32, 8, 64, f16, b);  /* 1B shape, prefill after a long prefix */
    }
}

/* Relative error of an_cpu_exp_f32 against exp() in double over [-87, 88]: every 61st float
 * (about 35M points) plus a uniform grid; then the edges and special values. */
static void exp_accuracy(void) {
    enum { CH = 4096 };
    static float x[CH], y[CH];
    double worst = 0;
    float worst_x = 0;
    size_t cnt = 0, k = 0;
    /* negative side: bit patterns from -0 up to -87, positive side 0 .. 88 */
    const uint32_t neg_hi = an_f32_bits(87.0f), pos_hi = an_f32_bits(88.0f);
    for (int side = 0; side < 2; side++) {
        const uint32_t hi = side ? pos_hi : neg_hi;
        for (uint64_t u = 0; u <= hi; u += 61) {
            x[k++] = side ? an_bits_f32((uint32_t)u) : -an_bits_f32((uint32_t)u);
            if (k == CH || u + 61 > hi) {
                an_cpu_exp_f32(x, y, (int64_t)k);
                for (size_t i = 0; i < k; i++) {
                    const double ref = exp((double)x[i]), e = fabs((double)y[i] - ref) / ref;
                    if (!(e <= worst)) worst = e, worst_x = x[i]; /* NaN counts as worst */
                }
                cnt += k;
                k = 0;
            }
        }
    }
    for (int i = 0; i < CH; i++) x[i] = -87.0f + 175.0f * (float)i / (CH - 1);
    an_cpu_exp_f32(x, y, CH);
    for (int i = 0; i < CH; i++) {
        const double ref = exp((double)x[i]), e = fabs((double)y[i] - ref) / ref;
        if (!(e <= worst)) worst = e, worst_x = x[i];
    }
    t_note("%zu points: max relative error %.3g (%.2f ulp of 1.0) at x = %.9g", cnt + CH, worst, worst / 0x1p-23, worst_x);
    T_CHECK(worst <= 0x1p-22, "exp max relative error %.3g > 2^-22 at %.9g", worst, worst_x);

    /* specials; n = 13 also exercises the vector tails */
    const float sx[13] = {-INFINITY, -1000.0f, -110.5f, 0.0f, -0.0f, 1e-30f, -1e-30f, 88.72f, 88.8f, 89.5f, INFINITY, NAN, -100.0f};
    float sy[13];
    an_cpu_exp_f32(sx, sy, 13);
    T_CHECK(sy[0] == 0.0f && sy[1] == 0.0f && sy[2] == 0.0f, "exp(-inf/-1000/-110.5) = %g %g %g", sy[0], sy[1], sy[2]);
    T_CHECK(sy[3] == 1.0f && sy[4] == 1.0f && sy[5] == 1.0f && sy[6] == 1.0f, "exp(0/-0/±1e-30) = %.9g %.9g %.9g %.9g", sy[3], sy[4], sy[5], sy[6]);
    T_CHECK(fabs(sy[7] / exp((double)sx[7]) - 1) < 0x1p-22, "exp(88.72) = %g", sy[7]);
    T_CHECK(isinf(sy[8]) && isinf(sy[9]) && isinf(sy[10]) && sy[10] > 0, "exp(88.8/89.5/inf) = %g %g %g", sy[8], sy[9], sy[10]);
    T_CHECK(isnan(sy[11]), "exp(nan) = %g", sy[11]);
    T_CHECK(fabs(sy[12] - exp(-100.0)) <= 0x1p-149, "exp(-100) = %g (subnormal, want %g)", sy[12], exp(-100.0));
    /* subnormal results: absolute error within a couple of subnormal steps */
    double sub_worst = 0;
    for (int i = 0; i < CH; i++) x[i] = -103.0f + 15.7f * (float)i / (CH - 1); /* down from -87.3 */
    an_cpu_exp_f32(x, y, CH);
    for (int i = 0; i < CH; i++) {
        const double ref = exp((double)x[i]), e = fabs((double)y[i] - ref) / (ref > FLT_MIN ? ref / FLT_MIN : 1.0);
        if (!(e <= sub_worst)) sub_worst = e;
    }
    T_CHECK(sub_worst <= 2 * 0x1p-149, "exp in the subnormal range: error %.3g > 2 subnormal steps", sub_worst);
}

/* an_swiglu against silu in double, every tail length, and in place (y = g). */
static void swiglu_matches(void) {
    unsigned seed = 7;
    float g[67], u[67], y[67];
    double worst = 0;
    for (int n = 1; n <= 67; n++) {
        for (int i = 0; i < n; i++) {
            g[i] = frand(&seed) * 12.0f;
            u[i] = frand(&seed) * 3.0f;
        }
        if (n == 67) g[0] = -200.0f, g[1] = 200.0f, g[2] = -90.0f; /* exp overflow / underflow */
        an_swiglu(g, u, y, n);
        for (int i = 0; i < n; i++) {
            const double ref = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            const double e = fabs(y[i] - ref) / (fabs(ref) + 1e-30);
            if (!(e <= worst)) worst = e;
        }
        float yy[67];
        memcpy(yy, y, sizeof(float) * (size_t)n);
        an_swiglu(g, u, g, n); /* y aliases g */
        T_CHECK(memcmp(g, yy, sizeof(float) * (size_t)n) == 0, "in-place swiglu differs (n %d)", n);
    }
    t_note("swiglu max relative error %.3g", worst);
    T_CHECK(worst <= 1e-6, "swiglu relative error %.3g", worst);
}

const t_case t_suite_attention[] = {
    {"tiled_matches_reference", tiled_matches_reference},
    {"block_edges", block_edges},
    {"exp_accuracy", exp_accuracy},
    {"swiglu_matches", swiglu_matches},
    {0, 0},
};
