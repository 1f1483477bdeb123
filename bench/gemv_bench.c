/* gemv_bench.c — decode GEMV throughput against this machine's DRAM read bandwidth.
 *
 * Not built by the Makefile. Build the library first (make), then:
 *   cc -std=c11 -O2 -Isrc -Iinclude -D_GNU_SOURCE -pthread bench/gemv_bench.c build/libanelm.a -o build/gemv_bench -lm
 * Run: ./build/gemv_bench [rounds] [type ...]      (ANELM_ISA=avx2|avx512|scalar caps the ISA)
 *
 * For each weight type and the two FFN shapes of a Llama-3.2-1B-like model (2048x8192 and
 * 8192x2048, rows x K) it times y = W a with an_gemv_get(type) on 1 thread and on 2 threads
 * (an_pool, rows split into nth contiguous ranges). The machine's L3 is large (105 MB, shared),
 * so each measurement cycles over enough copies of the matrix (>= 256 MB) that every byte comes
 * from DRAM, as in a real decode step over many layers. The DRAM read bandwidth is measured in
 * the same rounds, alternating with the kernel (a streaming read of a 1 GiB buffer, 4 streams
 * per thread, 1 and 2 threads); every figure is the median over the rounds, and "ratio" = kernel / DRAM: the
 * machine is shared and noisy (research/machine.md). "hot" is the in-cache rate (a 1 MB matrix
 * reused; thread CPU time), i.e. the compute ceiling of one thread. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "bench/limits.h"
#include "bench_util.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/types.h"
#include "quant/quant.h"


/* ---- gemv over copies --------------------------------------------------------------------- */
typedef struct {
    an_gemv_fn fn;
    const uint8_t *w;
    uint64_t rb, mat_bytes;
    int64_t K, rows;
    const void *a;
    float *y;
    int copy;
} gemv_job;

static void gemv_fn(void *arg, int ith, int nth) {
    gemv_job *j = arg;
    const int64_t r0 = j->rows * ith / nth, r1 = j->rows * (ith + 1) / nth;
    if (r1 > r0)
        j->fn(j->w + (uint64_t)j->copy * j->mat_bytes + (uint64_t)r0 * j->rb, j->rb, j->K, j->a, j->y + r0, r1 - r0);
}

typedef struct { an_type t; int64_t rows, K; uint8_t *w; int copies; uint64_t rb, mb; void *a; } problem;

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1) rounds = 5;
    an_type types[16];
    int nt = 0;
    static const an_type all[] = {AN_TYPE_F32, AN_TYPE_F16,  AN_TYPE_BF16, AN_TYPE_Q8_0, AN_TYPE_Q4_0, AN_TYPE_Q4_1,
                                  AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    for (int i = 2; i < argc && nt < 16; i++)
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            if (strcmp(argv[i], an_type_name((uint32_t)all[k])) == 0) types[nt++] = all[k];
    if (!nt)
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) types[nt++] = all[k];

    an_pool *pool = NULL;
    an_err err = {0};
    if (an_pool_create(&pool, 2, &err) != AN_OK) {
        fprintf(stderr, "pool: %s\n", err.msg);
        return 1;
    }
    printf("isa: %s (best %s)\n", an_isa_name(an_cpu()->active), an_isa_name(an_cpu()->best));

    const size_t rd_bytes = (size_t)1 << 30;
    uint64_t *rd = malloc(rd_bytes);
    if (!rd) return 1;
    memset(rd, 1, rd_bytes);
    bench_read_job rj = {.p = rd, .n = rd_bytes / 8};

    /* problems: 2 shapes per type, one at a time (all at once would need ~8 GB); weights tile
     * 16 reference-quantized rows. Each round measures DRAM (1 then 2 threads) right before
     * the kernel (1 then 2 threads), so both see the same machine state. */
    const int64_t shapes[2][2] = {{2048, 8192}, {8192, 2048}};
    const uint64_t min_bytes = 256ull << 20;
    float *x = malloc(8192 * sizeof(float)), *y = malloc(8192 * sizeof(float));
    double *d1s = calloc((size_t)rounds, sizeof(double)), *d2s = calloc((size_t)rounds, sizeof(double));
    double *g1 = calloc((size_t)rounds, sizeof(double)), *g2 = calloc((size_t)rounds, sizeof(double));
    double *gh = calloc((size_t)rounds, sizeof(double));
    if (!x || !y || !d1s || !d2s || !g1 || !g2 || !gh) return 1;
    printf("%-5s %-10s %8s %8s %6s %8s %8s %6s %9s\n", "type", "rows x K", "dram 1t", "gemv 1t", "ratio", "dram 2t",
           "gemv 2t", "ratio", "hot GB/s");
    for (int i = 0; i < nt * 2; i++) {
        problem P = {0}, *p = &P;
        p->t = types[i / 2], p->rows = shapes[i % 2][0], p->K = shapes[i % 2][1];
        p->rb = an_row_bytes(an_type_traits_get((uint32_t)p->t), (uint64_t)p->K);
        p->mb = p->rb * (uint64_t)p->rows;
        p->copies = (int)((min_bytes + p->mb - 1) / p->mb);
        p->w = malloc(p->mb * (uint64_t)p->copies);
        const an_type vt = an_quant_vec_dot_type(p->t);
        p->a = malloc(an_row_bytes(an_type_traits_get((uint32_t)vt), (uint64_t)p->K));
        if (!p->w || !p->a) return 1;
        for (int r = 0; r < 16; r++) {
            for (int64_t k = 0; k < p->K; k++) x[k] = bench_rnd() * (r % 3 == 1 ? 0.2f : 0.1f) + (r % 3 == 1 ? 0.05f : 0.f);
            an_quant_row_ref(p->t, x, p->w + (uint64_t)r * p->rb, p->K);
        }
        for (uint64_t r = 16; r < (uint64_t)p->rows * (uint64_t)p->copies; r++)
            memcpy(p->w + r * p->rb, p->w + (r % 16) * p->rb, p->rb);
        for (int64_t k = 0; k < p->K; k++) x[k] = bench_rnd();
        an_quant_act_row(vt, x, p->a, p->K);
        gemv_job j = {.fn = an_gemv_get(p->t), .w = p->w, .rb = p->rb, .mat_bytes = p->mb, .K = p->K,
                      .rows = p->rows, .a = p->a, .y = y};
        const double bytes = (double)p->mb * p->copies;
        for (int r = 0; r < rounds; r++) {
            double t0 = an_now();
            bench_read_fn(&rj, 0, 1);
            d1s[r] = (double)rd_bytes / (an_now() - t0) / 1e9;
            t0 = an_now();
            for (j.copy = 0; j.copy < p->copies; j.copy++) gemv_fn(&j, 0, 1);
            g1[r] = bytes / (an_now() - t0) / 1e9;
            t0 = an_now();
            an_pool_run(pool, bench_read_fn, &rj);
            d2s[r] = (double)rd_bytes / (an_now() - t0) / 1e9;
            t0 = an_now();
            for (j.copy = 0; j.copy < p->copies; j.copy++) an_pool_run(pool, gemv_fn, &j);
            g2[r] = bytes / (an_now() - t0) / 1e9;
            /* hot: the first ~1 MB of rows, 20 calls, thread CPU time */
            gemv_job h = j;
            int64_t hr = (int64_t)((1u << 20) / p->rb);
            h.rows = hr < 4 ? 4 : hr > p->rows ? p->rows : hr;
            h.copy = 0;
            gemv_fn(&h, 0, 1);
            t0 = bench_cpu_now();
            for (int k = 0; k < 20; k++) gemv_fn(&h, 0, 1);
            gh[r] = 20.0 * (double)h.rows * (double)p->rb / (bench_cpu_now() - t0) / 1e9;
        }
        const double md1 = an_bench_median(d1s, rounds), md2 = an_bench_median(d2s, rounds);
        const double m1 = an_bench_median(g1, rounds), m2 = an_bench_median(g2, rounds), mh = an_bench_median(gh, rounds);
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)p->rows, (long long)p->K);
        printf("%-5s %-10s %8.1f %8.1f %5.0f%% %8.1f %8.1f %5.0f%% %9.1f\n", an_type_name((uint32_t)p->t), shape, md1, m1,
               100 * m1 / md1, md2, m2, 100 * m2 / md2, mh);
        fflush(stdout);
        free(p->w);
        free(p->a);
    }
    if (rj.sink[0] == 42) printf(" \n"); /* keep the read loop */
    an_pool_free(pool);
    return 0;
}
