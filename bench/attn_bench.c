/* attn_bench.c — an_cpu_attention (blocked, vector exp) against the previous kernel (one
 * (query, key) pair at a time: dot call, scalar expf, axpy call), copied below as old_attention.
 *
 * Not built by the Makefile. Build the library first (make), then:
 *   cc -std=c11 -O2 -Isrc -Iinclude -D_GNU_SOURCE -pthread bench/attn_bench.c build/libanelm.a -o build/attn_bench -lm
 * Run: ./build/attn_bench [rounds] [new|newpp]   (default 9 rounds; "new" skips the old kernel,
 *      "newpp" also the decode cases, for profiling; ANELM_ISA caps the ISA of both kernels' helpers)
 *
 * Shape: Llama-3.2-1B (32 query heads, 8 KV heads, head 64), f16 KV cache, 2-thread pool.
 * Cases: prefill n = 512 at pos0 = 0 and at pos0 = 512, decode n = 1 at pos0 = 512 and 4096.
 * Every round runs old then new on each case (alternating, the machine is shared) and the
 * medians are reported, as ms per call and GFLOPS (4·hd flops per visible (query, key) pair).
 * The key block AN_ATTN_KB is a compile-time constant: rebuild the library with
 * CFLAGS="-O2 -g -DAN_ATTN_KB=32" (or 128; -DAN_ATTN_QB=8/32 for the query tile) into another
 * BUILD to compare block sizes.
 *
 * Measured (Sapphire Rapids VM, 2 threads, shared: load average 2-3, 9 rounds, medians):
 *   n 512 pos0    0: old 208.0 ms ( 5.2 GFLOPS)  new 28.8 ms (37.4 GFLOPS)  7.2x
 *   n 512 pos0  512: old 538.1 ms ( 6.0 GFLOPS)  new 73.0 ms (44.2 GFLOPS)  7.4x
 *   n   1 pos0  512: old   1.34 ms               new  0.69 ms               1.9x
 *   n   1 pos0 4096: old  14.0 ms                new  5.6 ms                2.5x
 * QB 8/16/32 and KB 32/64/128 (user CPU time of `attn_bench 9 newpp`) were within ~5% of each
 * other; QB 16 / KB 64 were at the low end. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "bench/limits.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "core/timer.h"

/* ---- the previous kernel (src/backends/cpu/ops.c before the blocked rewrite) ------------- */

#define OLD_QB 8 /* its query tile, AN_ATTN_QB at the time */

static size_t old_scratch_floats(int n_head, int n_head_kv, int hd) {
    size_t R = (size_t)(n_head / n_head_kv) * OLD_QB;
    return R * (size_t)hd * 2 + R * 2 + 2 * (size_t)hd;
}

static void old_tile(const an_attn_args *a, int g, int t0, int t1, float *ws) {
    const int hd = a->hd, rep = a->n_head / a->n_head_kv, nt = t1 - t0, R = rep * nt;
    float *Q = ws, *O = Q + (size_t)R * hd, *M = O + (size_t)R * hd, *L = M + R, *krow = L + R, *vrow = krow + hd;
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < rep; i++) {
            const int r = t * rep + i, h = g * rep + i;
            const float *q = a->q + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
            for (int d = 0; d < hd; d++) Q[(size_t)r * hd + d] = a->kv_f16 ? an_round_f16(q[d]) : q[d];
            memset(O + (size_t)r * hd, 0, (size_t)hd * sizeof(float));
            M[r] = -INFINITY;
            L[r] = 0;
        }
    const int jmax = a->pos0 + t1 - 1;
    for (int j = 0; j <= jmax; j++) {
        const int64_t base = (int64_t)j * a->kv_stride + (int64_t)g * hd;
        const float *kr, *vr;
        if (a->kv_f16) {
            an_cpu_f16_to_f32((const uint16_t *)a->k + base, krow, hd);
            an_cpu_f16_to_f32((const uint16_t *)a->v + base, vrow, hd);
            kr = krow;
            vr = vrow;
        } else {
            kr = (const float *)a->k + base;
            vr = (const float *)a->v + base;
        }
        const int tfirst = j - a->pos0 - t0 > 0 ? j - a->pos0 - t0 : 0;
        for (int r = tfirst * rep; r < R; r++) {
            const float s = an_cpu_dot_f32(Q + (size_t)r * hd, kr, hd) * a->scale;
            float *o = O + (size_t)r * hd;
            if (s > M[r]) {
                const float c = expf(M[r] - s);
                if (L[r] > 0) {
                    L[r] *= c;
                    for (int d = 0; d < hd; d++) o[d] *= c;
                }
                M[r] = s;
            }
            const float pexp = expf(s - M[r]);
            L[r] += pexp;
            an_cpu_axpy_f32(o, pexp, vr, hd);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < rep; i++) {
            const int r = t * rep + i, h = g * rep + i;
            float *out = a->out + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
            const float inv = 1.0f / L[r];
            for (int d = 0; d < hd; d++) out[d] = O[(size_t)r * hd + d] * inv;
        }
}

static void old_worker(void *arg, int ith, int nth) {
    const an_attn_args *a = arg;
    float *ws = a->scratch + (size_t)ith * old_scratch_floats(a->n_head, a->n_head_kv, a->hd);
    const int blocks = (a->n + OLD_QB - 1) / OLD_QB, items = blocks * a->n_head_kv;
    for (int it = ith; it < items; it += nth) {
        const int g = it % a->n_head_kv, b = it / a->n_head_kv;
        const int t0 = b * OLD_QB, t1 = t0 + OLD_QB < a->n ? t0 + OLD_QB : a->n;
        old_tile(a, g, t0, t1, ws);
    }
}

static void old_attention(an_pool *pool, const an_attn_args *a) { an_pool_run(pool, old_worker, (void *)a); }

/* ---- harness ------------------------------------------------------------------------------ */

enum { NH = 32, NKV = 8, HD = 64, NTH = 2 };


int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 9, only_new = argc > 2 && strncmp(argv[2], "new", 3) == 0;
    static const struct { int n, pos0; } cases[] = {{512, 0}, {512, 512}, {1, 512}, {1, 4096}};
    enum { NC = sizeof cases / sizeof cases[0] };
    const int nc = argc > 2 && strcmp(argv[2], "newpp") == 0 ? 2 : NC;
    const int ctx_max = 4097 + 512;
    an_pool *pool;
    an_err err = {0};
    if (an_pool_create(&pool, NTH, &err) != AN_OK) return 1;
    uint64_t rng = 88172645463325252ull;
    float *q = malloc(sizeof(float) * 512 * NH * HD);
    float *o_old = malloc(sizeof(float) * 512 * NH * HD), *o_new = malloc(sizeof(float) * 512 * NH * HD);
    uint16_t *k = malloc(sizeof(uint16_t) * (size_t)ctx_max * NKV * HD), *v = malloc(sizeof(uint16_t) * (size_t)ctx_max * NKV * HD);
    for (size_t i = 0; i < (size_t)512 * NH * HD; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        q[i] = (float)((rng >> 40) & 0xffff) / 16384.0f - 2.0f;
    }
    for (size_t i = 0; i < (size_t)ctx_max * NKV * HD; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        k[i] = an_f32_to_f16((float)((rng >> 40) & 0xffff) / 32768.0f - 1.0f);
        v[i] = an_f32_to_f16((float)((rng >> 20) & 0xffff) / 32768.0f - 1.0f);
    }
    size_t sf_new = an_attn_scratch_floats(NH, NKV, HD, 0), sf_old = old_scratch_floats(NH, NKV, HD);
    float *scratch = aligned_alloc(64, sizeof(float) * NTH * (sf_new > sf_old ? sf_new : sf_old) + 64);
    double t_old[NC][64], t_new[NC][64];
    printf("attention 1B shape (heads %d/%d, hd %d, f16 KV), %d threads, %d rounds, medians\n", NH, NKV, HD, NTH, rounds);
    for (int r = 0; r < rounds && r < 64; r++)
        for (int c = 0; c < nc; c++) {
            an_attn_args a = {.q = q, .k = k, .v = v, .n = cases[c].n, .pos0 = cases[c].pos0, .n_head = NH,
                              .n_head_kv = NKV, .hd = HD, .kv_stride = NKV * HD, .kv_f16 = 1,
                              .scale = 1.0f / sqrtf((float)HD), .scratch = scratch};
            const int reps = cases[c].n == 1 ? 50 : 1;
            a.out = o_old;
            double t0 = an_now();
            for (int i = 0; i < reps && !only_new; i++) old_attention(pool, &a);
            t_old[c][r] = (an_now() - t0) / reps;
            a.out = o_new;
            t0 = an_now();
            for (int i = 0; i < reps; i++) an_cpu_attention(pool, &a);
            t_new[c][r] = (an_now() - t0) / reps;
        }
    for (int c = 0; c < nc; c++) {
        const int n = cases[c].n, pos0 = cases[c].pos0;
        double pairs = 0, num = 0, den = 0;
        for (int t = 0; t < n; t++) pairs += pos0 + t + 1;
        for (size_t i = 0; i < (size_t)n * NH * HD; i++) {
            num += ((double)o_new[i] - o_old[i]) * ((double)o_new[i] - o_old[i]);
            den += (double)o_old[i] * o_old[i];
        }
        const double flops = 4.0 * HD * NH * pairs, mo = an_bench_median(t_old[c], rounds), mn = an_bench_median(t_new[c], rounds);
        printf("n %3d pos0 %4d: old %8.3f ms (%6.1f GFLOPS)  new %8.3f ms (%6.1f GFLOPS)  speedup %5.2fx  NMSE new/old %.1e\n",
               n, pos0, mo * 1e3, flops / mo * 1e-9, mn * 1e3, flops / mn * 1e-9, mo / mn, den > 0 ? num / den : num);
    }
    an_pool_free(pool);
    free(q), free(o_old), free(o_new), free(k), free(v), free(scratch);
    return 0;
}
