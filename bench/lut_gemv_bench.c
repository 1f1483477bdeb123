/* lut_gemv_bench.c — decode GEMV throughput of the palettized formats (LUT4/LUT6/LUT8) against
 * Q8_0 and Q4_0 from the same process, and against this machine's DRAM read bandwidth.
 *
 * Not built by the Makefile. Build the library first (make), then:
 *   cc -std=c11 -O2 -Isrc -Iinclude -D_GNU_SOURCE -pthread bench/lut_gemv_bench.c build/libanelm.a \
 *      -o build/lut_gemv_bench -lm
 * Run: ./build/lut_gemv_bench [rounds] [threads]     (ANELM_ISA=avx2|scalar caps the ISA)
 *
 * Shapes (rows x K): 4096x4096 and 2048x8192. Each format's matrix is repeated over enough
 * copies (>= 256 MB) that every byte comes from DRAM, as in a decode step over many layers
 * (L3 is 105 MB and shared). LUT matrices use groups of 4 rows with row scales (the
 * palettizer's default group). Every round times, one after another, the DRAM streaming read
 * (1 GiB, 4 streams per thread) and each format's GEMV over all its copies, so they alternate
 * under the same machine state; the figures are medians over the rounds. "roofline" is the
 * kernel's GB/s of weight bytes over the DRAM read figure. "hot" is one thread's rate on ~1 MB
 * of rows reused from cache (thread CPU time): the compute ceiling. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/gemv.h"
#include "backends/cpu/lut_gemv.h"
#include "bench/limits.h"
#include "bench_util.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/types.h"
#include "quant/lut.h"
#include "quant/quant.h"


/* ---- one format's problem ----------------------------------------------------------------- */
typedef struct {
    uint32_t t;
    int64_t rows, K;
    int copies;
    uint64_t rb, mb;
    uint8_t *w;
    an_mat *mats; /* LUT: one an_mat per copy (same tables) */
    uint16_t *lut, *rs;
    void *a;      /* converted activation (block formats) or prepared row (LUT) */
    an_gemv_fn fn;
    an_lut_kernel lk;
    float *y;
    int copy;
    int64_t rows_run; /* rows a call covers (hot runs use fewer) */
    double *g, *gh;
} problem;

static void gemv_fn(void *arg, int ith, int nth) {
    problem *p = arg;
    const int64_t r0 = p->rows_run * ith / nth, r1 = p->rows_run * (ith + 1) / nth;
    if (r1 <= r0) return;
    if (p->lk.gemv) p->lk.gemv(&p->mats[p->copy], r0, r1 - r0, p->a, p->y + r0);
    else p->fn(p->w + (uint64_t)p->copy * p->mb + (uint64_t)r0 * p->rb, p->rb, p->K, p->a, p->y + r0, r1 - r0);
}

/* base: the AVX-512 F/BW-only LUT kernel instead of the dispatched one (VBMI where present) */
static int problem_make(problem *p, uint32_t t, int base, int64_t rows, int64_t K, int rounds) {
    memset(p, 0, sizeof *p);
    p->t = t, p->rows = rows, p->K = K;
    const int bits = an_lut_bits(t);
    p->rb = bits ? an_lut_row_bytes(bits, K) : an_row_bytes(an_type_traits_get(t), (uint64_t)K);
    p->mb = p->rb * (uint64_t)rows;
    p->copies = (int)(((256ull << 20) + p->mb - 1) / p->mb);
    p->w = malloc(p->mb * (uint64_t)p->copies);
    p->y = malloc(sizeof(float) * (size_t)rows);
    p->g = calloc((size_t)rounds, sizeof(double)), p->gh = calloc((size_t)rounds, sizeof(double));
    float *x = malloc(sizeof(float) * (size_t)K);
    uint8_t *idx = malloc((size_t)K);
    if (!p->w || !p->y || !x || !idx || !p->g || !p->gh) return 0;
    /* 16 distinct rows, tiled */
    for (int r = 0; r < 16; r++) {
        if (bits) {
            for (int64_t k = 0; k < K; k++) idx[k] = (uint8_t)(bench_rnd_u32() & ((1u << bits) - 1));
            an_lut_pack_row(idx, K, bits, p->w + (uint64_t)r * p->rb);
        } else {
            for (int64_t k = 0; k < K; k++) x[k] = bench_rnd() * 0.1f;
            an_quant_row_ref((an_type)t, x, p->w + (uint64_t)r * p->rb, K);
        }
    }
    for (uint64_t r = 16; r < (uint64_t)rows * (uint64_t)p->copies; r++) memcpy(p->w + r * p->rb, p->w + (r % 16) * p->rb, p->rb);
    for (int64_t k = 0; k < K; k++) x[k] = bench_rnd();
    if (bits) {
        const int group = 4, nv = 1 << bits;
        const int64_t ng = (rows + group - 1) / group;
        p->lut = malloc(sizeof(uint16_t) * (size_t)(ng * nv));
        p->rs = malloc(sizeof(uint16_t) * (size_t)rows);
        p->mats = malloc(sizeof(an_mat) * (size_t)p->copies);
        p->a = malloc(sizeof(float) * (size_t)K);
        if (!p->lut || !p->rs || !p->mats || !p->a) return 0;
        for (int64_t i = 0; i < ng * nv; i++) p->lut[i] = an_f32_to_f16(bench_rnd() * 0.1f);
        for (int64_t r = 0; r < rows; r++) p->rs[r] = an_f32_to_f16(1.0f + bench_rnd());
        for (int c = 0; c < p->copies; c++)
            p->mats[c] = (an_mat){.type = t, .rows = rows, .cols = K, .row_bytes = p->rb, .data = p->w + (uint64_t)c * p->mb,
                                  .name = "bench", .lut = p->lut, .lut_group = group, .row_scale = p->rs};
        p->lk = base ? an_lut_kernel_avx512_base(t) : an_lut_kernel_get(t);
        if (p->lk.prep) p->lk.prep(x, p->a, K);
        else memcpy(p->a, x, sizeof(float) * (size_t)K);
    } else {
        const an_type vt = an_quant_vec_dot_type((an_type)t);
        p->a = malloc(an_row_bytes(an_type_traits_get(vt), (uint64_t)K));
        if (!p->a) return 0;
        an_quant_act_row(vt, x, p->a, K);
        p->fn = an_gemv_get((an_type)t);
    }
    free(x), free(idx);
    return 1;
}

static void problem_free(problem *p) {
    free(p->w), free(p->y), free(p->g), free(p->gh), free(p->lut), free(p->rs), free(p->mats), free(p->a);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    int nth = argc > 2 ? atoi(argv[2]) : 2;
    if (rounds < 1) rounds = 7;
    if (nth < 1) nth = 2;
    an_pool *pool = NULL;
    an_err err = {0};
    if (an_pool_create(&pool, nth, &err) != AN_OK) {
        fprintf(stderr, "pool: %s\n", err.msg);
        return 1;
    }
    printf("isa: %s (best %s), %d threads, %d rounds, medians\n", an_isa_name(an_cpu()->active),
           an_isa_name(an_cpu()->best), nth, rounds);
    const size_t rd_bytes = (size_t)1 << 30;
    uint64_t *rd = malloc(rd_bytes);
    if (!rd) return 1;
    memset(rd, 1, rd_bytes);
    bench_read_job rj = {.p = rd, .n = rd_bytes / 8};

    /* LUT6 and LUT8 also run with the AVX-512 base kernels when the dispatched ones differ
     * (VBMI), in the same rounds */
    static const uint32_t types[] = {AN_TYPE_LUT6, AN_TYPE_LUT4, AN_TYPE_LUT8, AN_TYPE_Q8_0, AN_TYPE_Q4_0, AN_TYPE_LUT6,
                                     AN_TYPE_LUT8};
    static const int base[] = {0, 0, 0, 0, 0, 1, 1};
    int NT = 5;
    if (an_cpu()->active == AN_ISA_AVX512 && an_lut_kernel_avx512_base(AN_TYPE_LUT6).gemv != an_lut_kernel_get(AN_TYPE_LUT6).gemv)
        NT = 7;
    const int64_t shapes[2][2] = {{4096, 4096}, {2048, 8192}};
    double *dr = calloc((size_t)rounds, sizeof(double));
    printf("%-9s %-10s %7s %9s %9s %9s %9s\n", "type", "rows x K", "B/elem", "GB/s", "DRAM GB/s", "roofline", "hot 1t");
    for (int s = 0; s < 2; s++) {
        problem P[7];
        for (int i = 0; i < NT; i++)
            if (!problem_make(&P[i], types[i], base[i], shapes[s][0], shapes[s][1], rounds)) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
        for (int r = 0; r < rounds; r++) {
            double t0 = an_now();
            an_pool_run(pool, bench_read_fn, &rj);
            dr[r] = (double)rd_bytes / (an_now() - t0) / 1e9;
            for (int i = 0; i < NT; i++) { /* the formats alternate within each round */
                problem *p = &P[i];
                p->rows_run = p->rows;
                t0 = an_now();
                for (p->copy = 0; p->copy < p->copies; p->copy++) an_pool_run(pool, gemv_fn, p);
                p->g[r] = (double)p->mb * p->copies / (an_now() - t0) / 1e9;
                /* hot: ~1 MB of rows, 20 calls on this thread */
                int64_t hr = (int64_t)((1u << 20) / p->rb);
                p->rows_run = hr < 4 ? 4 : hr > p->rows ? p->rows : hr;
                p->copy = 0;
                gemv_fn(p, 0, 1);
                t0 = bench_cpu_now();
                for (int k = 0; k < 20; k++) gemv_fn(p, 0, 1);
                p->gh[r] = 20.0 * (double)p->rows_run * (double)p->rb / (bench_cpu_now() - t0) / 1e9;
            }
        }
        const double md = an_bench_median(dr, rounds);
        for (int i = 0; i < NT; i++) {
            problem *p = &P[i];
            const double g = an_bench_median(p->g, rounds), h = an_bench_median(p->gh, rounds);
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)p->rows, (long long)p->K);
            char name[32];
            snprintf(name, sizeof name, "%s%s", an_type_name(p->t), base[i] ? "/base" : "");
            printf("%-9s %-10s %7.3f %9.1f %9.1f %8.0f%% %9.1f\n", name, shape, (double)p->rb / (double)p->K,
                   g, md, 100 * g / md, h);
            fflush(stdout);
        }
        for (int i = 0; i < NT; i++) problem_free(&P[i]);
    }
    if (rj.sink[0] == 42) printf(" \n"); /* keep the read loop */
    free(dr), free(rd);
    an_pool_free(pool);
    return 0;
}
