/* test_kernels.c — the decode GEMV kernels (backends/cpu/gemv.h): every ISA variant this CPU
 * can run, for every weight type it accelerates, against the scalar reference an_vec_dot_ref
 * on random rows, with a stated NMSE bound per format; the dispatch honours the active ISA;
 * and (informational) single-thread throughput in GB/s of weight bytes. */
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "core/cpu.h"
#include "core/timer.h"
#include "core/types.h"
#include "quant/quant.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rng_u32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rng_uniform(void) { return (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); }
static float rng_gauss(void) { /* mean 0, sd ~1 */
    float s = rng_uniform() + rng_uniform() + rng_uniform() + rng_uniform();
    return (s - 2.0f) * 1.7320508f;
}

/* kind 0: gaussian; 1: offset gaussian (the mins of Q4_1/Q5_1/K-quants matter); 2: outliers */
static void fill_row(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float v = rng_gauss();
        if (kind == 1) v = 0.3f * v + 0.8f;
        if (kind == 2 && rng_u32() % 97 == 0) v *= 12.0f;
        x[i] = v * 0.05f;
    }
}

static const an_type k_types[] = {AN_TYPE_F32,  AN_TYPE_F16,  AN_TYPE_BF16, AN_TYPE_Q4_0, AN_TYPE_Q4_1,
                                  AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q8_0, AN_TYPE_Q2_K, AN_TYPE_Q3_K,
                                  AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

/* NMSE bounds, pooled over all shapes of one (isa, type) (sum of squared errors over sum of
 * squared reference outputs). Integer formats: block sums are exact integers in both, only the
 * float scaling association and the accumulation order (float lanes vs the reference's
 * double) differ, measured ~1e-13..2e-11 (Q4_1/Q5_1/Q5_K: the min term cancels against the
 * main term, so y is small relative to what was rounded); float formats: FMA (exact products)
 * vs products rounded to float, ~1e-13. Any indexing/nibble/scale mistake lands at 1e-3 or
 * worse. Each single shape is also held to CASE_BOUND: a 1-row shape's output can be near zero
 * by chance (heavy cancellation), which makes its own NMSE large without anything being wrong. */
static double nmse_bound(an_type t) {
    switch (t) {
    case AN_TYPE_F32: case AN_TYPE_F16: case AN_TYPE_BF16: return 1e-10;
    case AN_TYPE_Q4_1: case AN_TYPE_Q5_1: case AN_TYPE_Q5_K: return 1e-9;
    default: return 1e-10;
    }
}
#define CASE_BOUND 1e-6

typedef struct { an_isa isa; const char *name; } isa_entry;
static const isa_entry k_isas[] = {{AN_ISA_AVX2, "avx2"}, {AN_ISA_AVX512, "avx512"}, {AN_ISA_NEON, "neon"}};
#define N_ISAS (int)(sizeof k_isas / sizeof k_isas[0])

/* Can this CPU run the variants of isa? (x86 levels nest: scalar < avx2 < avx512.) */
static int isa_supported(an_isa isa) {
    const an_isa best = an_cpu()->best;
    switch (isa) {
    case AN_ISA_AVX2: return best == AN_ISA_AVX2 || best == AN_ISA_AVX512;
    case AN_ISA_AVX512: return best == AN_ISA_AVX512;
    case AN_ISA_NEON: return best == AN_ISA_NEON;
    default: return 0;
    }
}

static uint64_t row_bytes(an_type t, int64_t K) { return an_row_bytes(an_type_traits_get((uint32_t)t), (uint64_t)K); }

/* A test problem: nrows weight rows of type t (quantized by the reference quantizer from random
 * floats) and one activation row in the vec_dot type. The weight matrix sits at the very end of
 * its allocation and starts at an odd address, so an over-read trips ASan and nothing is
 * aligned; the activation likewise. */
typedef struct {
    an_type t;
    int64_t K, nrows;
    uint64_t rb;
    uint8_t *wbuf, *w, *abuf, *a;
    float *yref;
} problem;

static int problem_make(problem *p, an_type t, int64_t K, int64_t nrows, int act_kind) {
    memset(p, 0, sizeof *p);
    p->t = t, p->K = K, p->nrows = nrows, p->rb = row_bytes(t, K);
    const an_type vt = an_quant_vec_dot_type(t);
    const uint64_t ab = row_bytes(vt, K);
    p->wbuf = malloc(p->rb * (uint64_t)nrows + 1);
    p->abuf = malloc(ab + 1);
    p->yref = malloc((size_t)nrows * sizeof(float));
    float *x = malloc((size_t)K * sizeof(float));
    if (!p->wbuf || !p->abuf || !p->yref || !x) {
        free(x);
        return 0;
    }
    p->w = p->wbuf + 1;
    p->a = p->abuf + 1;
    for (int64_t r = 0; r < nrows; r++) {
        fill_row(x, K, (int)(r % 3));
        if (!an_quant_row_ref(t, x, p->w + (uint64_t)r * p->rb, K)) {
            free(x);
            return 0;
        }
    }
    fill_row(x, K, act_kind);
    an_quant_act_row(vt, x, p->a, K);
    for (int64_t r = 0; r < nrows; r++) p->yref[r] = an_vec_dot_ref(t, K, p->w + (uint64_t)r * p->rb, p->a);
    free(x);
    return 1;
}

static void problem_free(problem *p) {
    free(p->wbuf);
    free(p->abuf);
    free(p->yref);
}

/* sum (y - yref)^2 / sum yref^2 over the rows, in double; NaN/inf in y gives +inf. */
static double nmse(const float *y, const float *yref, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) return INFINITY;
        const double d = (double)y[i] - (double)yref[i];
        e += d * d;
        s += (double)yref[i] * (double)yref[i];
    }
    return s > 0 ? e / s : e;
}

/* ------------------------------------------------------------------------------------------ */
/* cases                                                                                       */

/* Every (isa, type) variant against the reference on K in {96 (32-block formats and floats
 * only), 256, 512, 4096} x rows in {1, 3, 6, 17, 64} (every tail of a 4-row pass), plus K = 37
 * for the float formats (a K % 16 tail). Outputs are pre-filled with NaN (so an unwritten row
 * fails) and followed by a sentinel (so a write past nrows fails). */
static void gemv_variants_match_reference(void) {
    static const int64_t Ks[] = {37, 96, 256, 512, 4096};
    static const int64_t Rs[] = {1, 3, 6, 17, 64};
    int tested = 0;
    for (int ii = 0; ii < N_ISAS; ii++) {
        if (!isa_supported(k_isas[ii].isa)) continue;
        for (int ti = 0; ti < N_TYPES; ti++) {
            const an_type t = k_types[ti];
            const an_gemv_fn fn = an_gemv_variant(k_isas[ii].isa, t);
            if (!fn) continue;
            const uint32_t blck = an_type_traits_get((uint32_t)t)->blck;
            double worst = 0, err_sum = 0, ref_sum = 0;
            int cases = 0;
            for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
                const int64_t K = Ks[ki];
                if (K % blck) continue;
                for (size_t ri = 0; ri < sizeof Rs / sizeof Rs[0]; ri++) {
                    const int64_t R = Rs[ri];
                    problem p;
                    if (!problem_make(&p, t, K, R, (int)((ki + ri) % 3))) {
                        T_FAIL("%s: cannot build a %lldx%lld problem", an_type_name(t), (long long)R, (long long)K);
                        problem_free(&p);
                        continue;
                    }
                    float *y = malloc((size_t)(R + 1) * sizeof(float));
                    if (!y) {
                        problem_free(&p);
                        continue;
                    }
                    for (int64_t r = 0; r < R; r++) y[r] = NAN;
                    y[R] = 12345.0f;
                    fn(p.w, p.rb, K, p.a, y, R);
                    const double e = nmse(y, p.yref, R);
                    T_CHECK(e <= CASE_BOUND, "%s %s K=%lld rows=%lld: NMSE %.3g > %.0e", k_isas[ii].name,
                            an_type_name(t), (long long)K, (long long)R, e, CASE_BOUND);
                    for (int64_t r = 0; r < R; r++) {
                        const double d = (double)y[r] - (double)p.yref[r];
                        err_sum += isfinite(y[r]) ? d * d : INFINITY;
                        ref_sum += (double)p.yref[r] * (double)p.yref[r];
                    }
                    T_CHECK(y[R] == 12345.0f, "%s %s K=%lld rows=%lld: wrote past the last row", k_isas[ii].name,
                            an_type_name(t), (long long)K, (long long)R);
                    if (e > worst) worst = e;
                    cases++;
                    free(y);
                    problem_free(&p);
                }
            }
            const double pooled = ref_sum > 0 ? err_sum / ref_sum : err_sum;
            T_CHECK(pooled <= nmse_bound(t), "%s %s: pooled NMSE %.3g > %.0e", k_isas[ii].name, an_type_name(t),
                    pooled, nmse_bound(t));
            t_note("%-6s %-5s NMSE %.2e pooled over %d shapes (bound %.0e), worst single shape %.2e", k_isas[ii].name,
                   an_type_name(t), pooled, cases, nmse_bound(t), worst);
            tested++;
        }
    }
    if (!tested) t_skip("no SIMD GEMV variant for this CPU");
}

/* an_gemv_get follows the active ISA (ANELM_ISA caps it): where the active ISA has its own
 * variant, that is what the dispatcher returns; it never returns NULL for a weight type. */
static void gemv_get_follows_active_isa(void) {
    const an_isa act = an_cpu()->active;
    for (int ti = 0; ti < N_TYPES; ti++) {
        const an_type t = k_types[ti];
        const an_gemv_fn f = an_gemv_get(t);
        T_CHECK(f != NULL, "%s: no kernel", an_type_name(t));
        const an_gemv_fn v = an_gemv_variant(act, t);
        if (v) T_CHECK(f == v, "%s: an_gemv_get is not the %s variant", an_type_name(t), an_isa_name(act));
    }
    T_CHECK(an_gemv_variant(an_cpu()->active, (an_type)AN_TYPE_COUNT) == NULL, "type out of range");
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Informational: GB/s of weight bytes for a 4096x4096 matrix, 1 thread, median of 5 calls.
 * The matrix tiles 8 reference-quantized rows (the reference K-quant quantizer is too slow for
 * 16M elements), which is fine for timing: values do not change the work. */
static void gemv_throughput(void) {
    const int64_t K = 4096, R = 4096;
    const int64_t distinct = 8;
    int measured = 0;
    float *x = malloc((size_t)K * sizeof(float));
    float *y = malloc((size_t)R * sizeof(float));
    if (!x || !y) {
        free(x), free(y);
        T_FAIL("out of memory");
        return;
    }
    for (int ti = 0; ti < N_TYPES; ti++) {
        const an_type t = k_types[ti];
        const uint64_t rb = row_bytes(t, K);
        uint8_t *w = malloc(rb * (uint64_t)R);
        uint8_t *a = malloc(row_bytes(an_quant_vec_dot_type(t), K));
        if (!w || !a) {
            free(w), free(a);
            continue;
        }
        for (int64_t r = 0; r < distinct; r++) {
            fill_row(x, K, (int)(r % 3));
            an_quant_row_ref(t, x, w + (uint64_t)r * rb, K);
        }
        for (int64_t r = distinct; r < R; r++) memcpy(w + (uint64_t)r * rb, w + (uint64_t)(r % distinct) * rb, rb);
        fill_row(x, K, 0);
        an_quant_act_row(an_quant_vec_dot_type(t), x, a, K);
        char line[256];
        int len = snprintf(line, sizeof line, "%-5s %6.1f MB:", an_type_name(t), (double)(rb * (uint64_t)R) / 1e6);
        for (int ii = 0; ii < N_ISAS; ii++) {
            if (!isa_supported(k_isas[ii].isa)) continue;
            const an_gemv_fn fn = an_gemv_variant(k_isas[ii].isa, t);
            if (!fn) continue;
            double s[5];
            fn(w, rb, K, a, y, R); /* warm-up (page faults) */
            for (int i = 0; i < 5; i++) {
                const double t0 = an_now();
                fn(w, rb, K, a, y, R);
                s[i] = an_now() - t0;
            }
            qsort(s, 5, sizeof s[0], cmp_double);
            if (len < (int)sizeof line)
                len += snprintf(line + len, sizeof line - (size_t)len, "  %s %5.1f GB/s", k_isas[ii].name,
                                (double)(rb * (uint64_t)R) / s[2] / 1e9);
            measured++;
        }
        t_note("%s", line);
        free(w);
        free(a);
    }
    free(x);
    free(y);
    if (!measured) t_skip("no SIMD GEMV variant for this CPU");
}

const t_case t_suite_kernels[] = {
    {"gemv_variants_match_reference", gemv_variants_match_reference},
    {"gemv_get_follows_active_isa", gemv_get_follows_active_isa},
    {"gemv_throughput", gemv_throughput},
    {0, 0},
};
