/* amx_ceiling.c — what one core's AMX delivers on this machine for the engine's inner loops,
 * against the register-resident peak that `anelm bench --limits` reports. It explains the
 * fractions of peak amx_bench measures: how much is lost to tile loads, to L2, and (INT8) to
 * storing each 32-k block's int32 sums and rescaling them with AVX-512, which exact per-block
 * scales (Q8_0, Q4_0, the K-quants) require.
 *
 * Not built by the Makefile. Build the library first (make), then:
 *   cc -std=c11 -O2 -Isrc -Iinclude -D_GNU_SOURCE -pthread -mamx-tile -mamx-int8 -mamx-bf16 \
 *      -mavx512f -mavx512bw -mavx512dq -mavx512vl bench/amx_ceiling.c build/libanelm.a \
 *      -o build/amx_ceiling -lm
 * Run: ./build/amx_ceiling [rounds]   (default 7; one thread; the loops alternate every round
 *      and the medians are printed, as the machine is a shared VM whose AMX rate swings)
 *
 * Every loop uses the engine's register blocking: 4 C tiles (32 x 32 f32 or int32), 2 A and
 * 2 B tiles, i.e. one 1 KiB tile load per TDPBF16PS, the most reuse 8 tiles allow.
 *   peak       TDPBF16PS on tiles already loaded (no loads)
 *   L1         A and B reloaded every step from the same 2 KiB each (L1)
 *   A L1 B L2  A cycling through 16 KiB, B streamed through 1 MiB (the best a K-blocked
 *              kernel can do: one operand from L1, the other from L2)
 *   A L2 B L2  A through 256 KiB, B through 1 MiB (the engine's pattern for K = 4096: one
 *              32-token panel and one 1 MiB chunk of weights)
 *   i8 peak    TDPBSSD (K = 64) on tiles already loaded
 *   i8 tmul    per 32-k block: zero C, load A (16 x 32 B twice) and B, 4 TDPBSSD — a K = 32
 *              TDPBSSD takes as long as a K = 64 one, so this is at most half the peak
 *   i8 +store  ... and store the 4 int32 tiles
 *   i8 +scale  ... and the AVX-512 rescale of the previous block (32 tokens x 32 rows:
 *              cvt, weight scale x activation scale, fma into f32 sums): the engine's loop */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/amx/amx.h"
#include "bench/limits.h"
#include "core/timer.h"

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

static void config(int a_colsb, int b_rows) {
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    c.colsb[4] = c.colsb[5] = (uint16_t)a_colsb;
    c.rows[6] = c.rows[7] = (uint8_t)b_rows;
    __asm__ volatile("" : : "r"(&c) : "memory"); /* gcc would drop the stores (see amx_gemm_amx.c) */
    _tile_loadconfig(&c);
}

static uint8_t *g_a, *g_b; /* operand buffers (zeros: the rate does not depend on values) */
static float g_c[1024] __attribute__((aligned(64)));
static int32_t g_ib[2][1024] __attribute__((aligned(64)));
static float g_ws[64 * 32], g_as[32 * 128];

static void load_once(void) {
    _tile_loadd(4, g_a, 64);
    _tile_loadd(5, g_a, 64);
    _tile_loadd(6, g_b, 64);
    _tile_loadd(7, g_b, 64);
}

/* BF16 steps: a_kib / b_kib of A / B cycled through (0: no loads at all). Returns GFLOPS. */
static double bf16_loop(size_t a_kib, size_t b_kib, long steps) {
    config(64, 16);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    if (!a_kib) load_once();
    const size_t na = a_kib / 2, nb = b_kib / 2; /* 2 KiB per step each */
    size_t ia = 0, ib = 0;
    const double t0 = an_now();
    for (long i = 0; i < steps; i++) {
        if (a_kib) {
            const uint8_t *a = g_a + ia * 2048, *b = g_b + ib * 2048;
            _tile_loadd(4, a, 64);
            _tile_loadd(5, a + 1024, 64);
            _tile_loadd(6, b, 64);
            _tile_loadd(7, b + 1024, 64);
            if (++ia == na) ia = 0;
            if (++ib == nb) ib = 0;
        }
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, g_c, 64);
    const double t = an_now() - t0;
    _tile_release();
    return (double)steps * 4 * 16 * 16 * 32 * 2 / t * 1e-9;
}

/* The engine's rescale of one block's int32 sums (32 tokens x 32 rows) into f32 sums: the
 * arithmetic of rescale_i8 in src/backends/amx/amx_gemm_amx.c (which is static and also
 * handles min terms), restated so the loop is measured alone. */
static void rescale(const int32_t *ib, const float *ws, const float *as) {
    const __m512 w0 = _mm512_loadu_ps(ws), w1 = _mm512_loadu_ps(ws + 16);
    for (int t = 0; t < 32; t++) {
        const __m512 s = _mm512_set1_ps(as[t * 128]);
        float *c = g_c + t * 32;
        const int32_t *it = ib + t * 32;
        _mm512_store_ps(c, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it)), _mm512_mul_ps(w0, s),
                                           _mm512_load_ps(c)));
        _mm512_store_ps(c + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it + 16)),
                                                _mm512_mul_ps(w1, s), _mm512_load_ps(c + 16)));
    }
}

/* INT8 register-resident peak: TDPBSSD on full (K = 64) tiles loaded once. Returns GOPS. */
static double i8_peak(long steps) {
    config(64, 16);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    load_once();
    const double t0 = an_now();
    for (long i = 0; i < steps; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, g_ib[0], 64);
    const double t = an_now() - t0;
    _tile_release();
    return (double)steps * 4 * 16 * 16 * 64 * 2 / t * 1e-9;
}

/* INT8 blocks of 32 k (stage 0: tmul, 1: + store, 2: + rescale). Returns GOPS. */
static double i8_loop(int stage, long blocks) {
    config(32, 8);
    const double t0 = an_now();
    for (long i = 0; i < blocks; i++) {
        int32_t *cur = g_ib[i & 1];
        _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
        _tile_loadd(4, g_a, 32);
        _tile_loadd(5, g_a + 512, 32);
        _tile_loadd(6, g_b, 64);
        _tile_loadd(7, g_b + 512, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
        if (stage >= 1) {
            _tile_stored(0, cur, 128);
            _tile_stored(1, cur + 16, 128);
            _tile_stored(2, cur + 512, 128);
            _tile_stored(3, cur + 528, 128);
        }
        if (stage >= 2) rescale(g_ib[(i + 1) & 1], g_ws + (i & 63) * 32, g_as + (i & 127));
    }
    const double t = an_now() - t0;
    _tile_release();
    return (double)blocks * 2 * 32 * 32 * 32 / t * 1e-9;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    if (rounds < 1 || rounds > 64) rounds = 7;
    const char *why;
    if (!an_amx_available(&why)) { /* also obtains the XTILEDATA permission */
        printf("AMX unavailable: %s\n", why);
        return 1;
    }
    g_a = aligned_alloc(64, 4u << 20), g_b = aligned_alloc(64, 4u << 20);
    if (!g_a || !g_b) return 1;
    memset(g_a, 0, 4u << 20), memset(g_b, 0, 4u << 20);
    enum { NL = 8 };
    static const char *name[NL] = {"bf16 peak", "bf16 L1", "bf16 A L1 B L2", "bf16 A L2 B L2",
                                   "i8 peak", "i8 tmul", "i8 +store", "i8 +scale"};
    double v[NL][64];
    const long steps = 400000;
    for (int r = 0; r < rounds; r++) {
        v[0][r] = bf16_loop(0, 0, steps);
        v[1][r] = bf16_loop(2, 2, steps);
        v[2][r] = bf16_loop(16, 1024, steps);
        v[3][r] = bf16_loop(256, 1024, steps);
        v[4][r] = i8_peak(steps);
        for (int s = 0; s < 3; s++) v[5 + s][r] = i8_loop(s, steps);
    }
    double med[NL];
    for (int l = 0; l < NL; l++) med[l] = an_bench_median(v[l], rounds);
    printf("one thread, %d rounds (medians); %% of the register-resident peak of the same kind\n", rounds);
    printf("%-16s %10s %8s\n", "loop", "G(FL)OPS", "%peak");
    for (int l = 0; l < NL; l++) {
        const double pk = l < 4 ? med[0] : med[4];
        printf("%-16s %10.1f %7.1f%%\n", name[l], med[l], 100 * med[l] / pk);
    }
    free(g_a), free(g_b);
    return 0;
}
