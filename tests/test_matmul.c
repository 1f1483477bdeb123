/* test_matmul.c — an_cpu_matmul (batch GEMM and decode GEMV paths) against a double-precision
 * reference built from the scalar quant code: y = dequant(W) · dequant(act(x)). The ISA level
 * is the process's (ANELM_ISA): CI runs this suite once per level. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "core/cpu.h"
#include "quant/quant.h"
#include "t.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* NMSE bound: every output is a float sum over K <= 1024 products of exactly representable
 * values (both sides see the same rounded activations), so only summation order differs:
 * relative error ~1e-6 per output at worst, NMSE well under 1e-9. Exception: the GEMV path
 * (batches up to AN_CPU_GEMV_MAX_BATCH tokens) of Q4_1/Q5_1 uses the Q8_1 block's stored sum s = fp16(d * sum q) for the min term, as
 * llama.cpp's dot product does; s carries an fp16 rounding (2^-11 relative) that the
 * dequantized reference does not, so those get 1e-6. */
#define BOUND 1e-9
#define BOUND_Q8_1_DECODE 1e-6

static void one(an_type t, int M, int K, int N, an_pool *pool) {
    const an_type_traits *tt = an_type_traits_get(t);
    const uint64_t rb = an_row_bytes(tt, (uint64_t)K);
    unsigned seed = (unsigned)(t * 7919 + M * 31 + K * 7 + N);
    uint8_t *w = malloc(rb * (uint64_t)M);
    float *row = malloc(sizeof(float) * (size_t)K), *x = malloc(sizeof(float) * (size_t)K * (size_t)N);
    float *y = malloc(sizeof(float) * (size_t)M * (size_t)N), *wd = malloc(sizeof(float) * (size_t)K * (size_t)M);
    for (int r = 0; r < M; r++) {
        for (int k = 0; k < K; k++) row[k] = frand(&seed);
        an_quant_row_ref(t, row, w + rb * (uint64_t)r, K);
        an_dequant_row(t, w + rb * (uint64_t)r, wd + (size_t)r * K, K);
    }
    for (size_t i = 0; i < (size_t)K * N; i++) x[i] = frand(&seed) * 3.0f;
    for (size_t i = 0; i < (size_t)M * N; i++) y[i] = NAN;
    an_mat m = {.type = t, .rows = M, .cols = K, .row_bytes = rb, .data = w, .name = "w"};
    void *ws = aligned_alloc(64, (an_cpu_matmul_wsize(K, N, an_pool_size(pool)) + 63) / 64 * 64);
    an_cpu_matmul(pool, &m, x, N, y, M, ws);
    /* reference: activations converted exactly as the kernel does, then a double dot */
    const an_type vdt = an_quant_vec_dot_type(t);
    uint8_t *act = malloc(sizeof(float) * (size_t)K + 64);
    float *xd = malloc(sizeof(float) * (size_t)K);
    double num = 0, den = 0;
    for (int n = 0; n < N; n++) {
        an_quant_act_row(vdt, x + (size_t)n * K, act, K);
        an_dequant_row(vdt, act, xd, K);
        for (int r = 0; r < M; r++) {
            double ref = 0;
            for (int k = 0; k < K; k++) ref += (double)wd[(size_t)r * K + k] * xd[k];
            double got = y[(size_t)n * M + r];
            if (got != got) got = 1e30; /* unwritten output */
            num += (got - ref) * (got - ref);
            den += ref * ref;
        }
    }
    double e = num / (den > 0 ? den : 1);
    const double bound = N <= AN_CPU_GEMV_MAX_BATCH && vdt == AN_TYPE_Q8_1 ? BOUND_Q8_1_DECODE : BOUND;
    if (e > bound) T_FAIL("%s M=%d K=%d N=%d: NMSE %.3e > %.0e", tt->name, M, K, N, e, bound);
    t_note("%-5s M=%3d K=%4d N=%3d: NMSE %.2e", tt->name, M, K, N, e);
    free(w); free(row); free(x); free(y); free(wd); free(ws); free(act); free(xd);
}

static void matmul_matches_reference(void) {
    static const an_type types[] = {AN_TYPE_F32, AN_TYPE_F16, AN_TYPE_BF16, AN_TYPE_Q8_0, AN_TYPE_Q4_0,
                                    AN_TYPE_Q4_1, AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q2_K, AN_TYPE_Q3_K,
                                    AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    t_note("ISA %s", an_isa_name(an_cpu()->active));
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const int blk = (int)an_type_traits_get(types[i])->blck;
        const int K1 = blk == 256 ? 512 : 96, K2 = blk == 256 ? 1024 : 160;
        one(types[i], 37, K1, 1, pool);  /* decode: GEMV path, ragged rows */
        one(types[i], 70, K2, 13, pool); /* batch: ragged panels and a token tail */
        one(types[i], 32, K1, 6, pool);  /* a small batch: per-token GEMVs */
        one(types[i], 64, K1, 12, pool); /* two panels, two token groups (the GEMM) */
    }
    an_pool_free(pool);
}

const t_case t_suite_matmul[] = {
    {"matmul_matches_reference", matmul_matches_reference},
    {0, 0},
};
