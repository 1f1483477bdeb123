/* amx_bench.c — AMX engine GEMM throughput against the tile peaks and the vector CPU path.
 *
 * Not built by the Makefile. Build the library first (make), then:
 *   cc -std=c11 -O2 -Isrc -Iinclude -D_GNU_SOURCE -pthread bench/amx_bench.c build/libanelm.a -o build/amx_bench -lm
 * Run: ./build/amx_bench [rounds] [maxN] [type ...]   (defaults: 5 rounds, N up to 512,
 *      types F16 BF16 Q8_0 Q4_0 Q4_K; ANELM_AMX_F16_PASSES=1..4 picks the F16 mode)
 *
 * W is M x K = 4096 x 4096. For each type and N = 1, 2, 4, ... maxN it times
 * an_amx_matmul (weights packed once beforehand) and an_cpu_matmul on a 2-thread pool,
 * alternating the two in every round, and reports the medians as GFLOPS (2·M·K·N per call;
 * "GOPS" for the INT8 kinds). The AMX peaks are measured in the same run on both threads
 * (register-resident TDPBF16PS / TDPBSSD loops, src/bench/limits_amx.c), once per round of
 * every type, and their median is the denominator of "%peak". The machine is shared and
 * noisy (research/machine.md): read medians, not single runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/amx/amx.h"
#include "backends/cpu/cpu.h"
#include "bench/limits.h"
#include "bench_util.h"
#include "core/pool.h"
#include "core/timer.h"
#include "quant/quant.h"

#define M 4096
#define K 4096


typedef struct {
    int kind; /* 0 bf16, 1 int8 */
    int64_t iters;
    double t[2];
} peak_job;

static void peak_fn(void *arg, int ith, int nth) {
    peak_job *j = arg;
    double t0 = an_now();
    if (j->kind == 0) (void)an_lim_amx_bf16(j->iters);
    else (void)an_lim_amx_int8(j->iters);
    j->t[ith] = an_now() - t0;
    (void)nth;
}

/* Both threads' tile rate: ops of both threads over the slower thread's time. */
static double peak(an_pool *pool, int kind) {
    peak_job j = {kind, 200000, {0, 0}};
    an_pool_run(pool, peak_fn, &j);
    const double t = j.t[0] > j.t[1] ? j.t[0] : j.t[1];
    const double per = kind == 0 ? 16384.0 : 32768.0;
    return (double)an_pool_size(pool) * (double)j.iters * 4 * per / t * 1e-9;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5, maxn = argc > 2 ? atoi(argv[2]) : 512;
    if (rounds < 1) rounds = 1;
    const char *why;
    if (!an_amx_available(&why)) {
        printf("AMX unavailable: %s\n", why);
        return 1;
    }
    static const an_type deft[] = {AN_TYPE_F16, AN_TYPE_BF16, AN_TYPE_Q8_0, AN_TYPE_Q4_0, AN_TYPE_Q4_K};
    an_type types[16];
    int nt = 0;
    for (int i = 3; i < argc && nt < 16; i++)
        for (uint32_t t = 0; t < AN_TYPE_COUNT; t++)
            if (an_type_traits_get(t) && strcmp(an_type_name(t), argv[i]) == 0) types[nt++] = (an_type)t;
    if (!nt) {
        memcpy(types, deft, sizeof deft);
        nt = 5;
    }
    an_pool *pool;
    an_err err = {0};
    if (an_pool_create(&pool, 2, &err) != AN_OK) return 1;
    float *x = malloc(sizeof(float) * (size_t)K * (size_t)maxn), *y = malloc(sizeof(float) * (size_t)M * (size_t)maxn);
    for (size_t i = 0; i < (size_t)K * maxn; i++) x[i] = bench_rnd();
    size_t wsz = an_amx_wsize(K, maxn, 2), wsc = an_cpu_matmul_wsize(K, maxn, 2);
    void *ws = aligned_alloc(64, ((wsz > wsc ? wsz : wsc) + 63) / 64 * 64);
    double pk_bf[256], pk_i8[256];
    int npk = 0;
    printf("M = K = %d, 2 threads, %d rounds (medians); F16 passes = %d\n", M, rounds, an_amx_f16_passes());
    typedef struct { double amx, cpu; int n; } row;
    row res[16][16];
    int nn = 0;
    for (int ti = 0; ti < nt; ti++) {
        const an_type t = types[ti];
        const an_type_traits *tt = an_type_traits_get(t);
        const uint64_t rb = an_row_bytes(tt, K);
        uint8_t *w = malloc(rb * M);
        float *rowf = malloc(sizeof(float) * K);
        for (int r = 0; r < M; r++) {
            for (int k = 0; k < K; k++) rowf[k] = bench_rnd();
            an_quant_row_ref(t, rowf, w + rb * (uint64_t)r, K);
        }
        an_mat m = {.type = t, .rows = M, .cols = K, .row_bytes = rb, .data = w, .name = "w"};
        an_amx_weight *pw;
        double tp = an_now();
        if (an_amx_pack(&m, &pw, &err) != AN_OK) {
            printf("%s: %s\n", tt->name, err.msg);
            return 1;
        }
        printf("%s: packed in %.0f ms (%zu bytes)\n", tt->name, (an_now() - tp) * 1e3, an_amx_packed_size(&m));
        nn = 0;
        for (int n = 1; n <= maxn; n *= 2, nn++) {
            double ta[64], tc[64];
            an_mm_out o = {&m, y, M};
            const an_amx_weight *wl[1] = {pw};
            an_amx_matmul(pool, wl, &o, 1, x, n, ws, &err); /* warm */
            for (int r = 0; r < rounds && r < 64; r++) {
                double t0 = an_now();
                an_amx_matmul(pool, wl, &o, 1, x, n, ws, &err);
                ta[r] = an_now() - t0;
                t0 = an_now();
                an_cpu_matmul(pool, &m, x, n, y, M, ws);
                tc[r] = an_now() - t0;
                if (n == 1 && npk < 256) { /* the peaks, interleaved with the matmuls */
                    pk_bf[npk] = peak(pool, 0);
                    pk_i8[npk++] = peak(pool, 1);
                }
            }
            const double fl = 2.0 * M * K * n * 1e-9;
            res[ti][nn] = (row){fl / an_bench_median(ta, rounds), fl / an_bench_median(tc, rounds), n};
        }
        an_amx_weight_free(pw);
        free(w);
        free(rowf);
    }
    double cpb[256], cpi[256];
    memcpy(cpb, pk_bf, sizeof(double) * (size_t)npk);
    memcpy(cpi, pk_i8, sizeof(double) * (size_t)npk);
    const double pbf = an_bench_median(cpb, npk), pi8 = an_bench_median(cpi, npk);
    printf("AMX peaks (2 threads, median of %d): BF16 %.0f GFLOPS, INT8 %.0f GOPS\n\n", npk, pbf, pi8);
    printf("%-5s %5s %10s %8s %10s %8s\n", "type", "N", "AMX", "%peak", "vector", "speedup");
    for (int ti = 0; ti < nt; ti++) {
        const bool i8 = types[ti] != AN_TYPE_F16 && types[ti] != AN_TYPE_BF16 && types[ti] != AN_TYPE_F32;
        for (int i = 0; i < nn; i++) {
            const row *r = &res[ti][i];
            printf("%-5s %5d %10.1f %7.1f%% %10.1f %7.2fx\n", an_type_name(types[ti]), r->n, r->amx,
                   100.0 * r->amx / (i8 ? pi8 : pbf), r->cpu, r->amx / r->cpu);
        }
    }
    free(x);
    free(y);
    free(ws);
    an_pool_free(pool);
    return 0;
}
