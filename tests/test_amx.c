/* test_amx.c — the AMX engine against the double-precision reference of test_matmul.c:
 * y = dequant(W) · dequant(act(x)), with act the activation conversion of llama.cpp's CPU
 * path. Odd shapes (rows not a multiple of 16 or 32, K = 96 / 160 for 32-blocks, K = 100 for
 * float weights, tokens 1, 13, 33, 70), outputs pre-filled with NaN. SKIPs loudly when AMX is
 * unavailable (no AMX, or the kernel refused XTILEDATA).
 *
 * NMSE bounds (stated per kernel; measured values are printed):
 *   BF16 weights, F16 with 4 passes: every product exact in f32, only the f32 summation order
 *     differs from the reference: 1e-12 (measured 1e-15 .. 5e-14).
 *   F16, 3 passes (default): drops lo·lo (< 2^-16 of each product, ~2^-20 on average): 1e-10
 *     (measured 6e-12 .. 1.2e-11).
 *   F16, 1 or 2 passes (fast modes; X only to bf16): 2e-5 (measured 3e-6 .. 5e-6).
 *   F32, 6 passes: dropped plane pairs < 2^-24 of each product: 1e-12 (measured ~8e-15).
 *   INT8 formats: exact integer block sums, f32 scaling and accumulation: 1e-12 (measured
 *     1e-15 .. 3e-14).
 *   LUT4/LUT6 (palettized, expanded to BF16 tiles a chunk at a time): table entries and
 *     activations rounded to bf16 (2^-9 relative each), f32 accumulation, against the f32
 *     activations of the CPU LUT path: 2e-5. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/amx/amx.h"
#include "backends/backend.h"
#include "backends/cpu/cpu.h"
#include "core/cpu.h"
#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"
#include "t.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct {
    an_type t;
    int M, K;
    uint8_t *w;
    float *wd; /* dequantized W [M][K] */
    an_mat m;
} wmat;

static void wmat_make(wmat *m, an_type t, int M, int K, unsigned seed) {
    const an_type_traits *tt = an_type_traits_get(t);
    const uint64_t rb = an_row_bytes(tt, (uint64_t)K);
    m->t = t, m->M = M, m->K = K;
    m->w = malloc(rb * (uint64_t)M);
    m->wd = malloc(sizeof(float) * (size_t)K * (size_t)M);
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int r = 0; r < M; r++) {
        for (int k = 0; k < K; k++) row[k] = frand(&seed);
        an_quant_row_ref(t, row, m->w + rb * (uint64_t)r, K);
        an_dequant_row(t, m->w + rb * (uint64_t)r, m->wd + (size_t)r * K, K);
    }
    free(row);
    m->m = (an_mat){.type = t, .rows = M, .cols = K, .row_bytes = rb, .data = m->w, .name = "w"};
}

static void wmat_free(wmat *m) {
    free(m->w);
    free(m->wd);
}

/* NMSE of y[N][ldy] (columns [0, M)) against the reference. */
static double nmse(const wmat *m, const float *x, int N, const float *y, int64_t ldy) {
    const int K = m->K;
    const an_type vdt = an_quant_vec_dot_type(m->t);
    uint8_t *act = malloc(sizeof(float) * (size_t)K + 64);
    float *xd = malloc(sizeof(float) * (size_t)K);
    double num = 0, den = 0;
    for (int n = 0; n < N; n++) {
        an_quant_act_row(vdt, x + (size_t)n * K, act, K);
        an_dequant_row(vdt, act, xd, K);
        for (int r = 0; r < m->M; r++) {
            double ref = 0;
            for (int k = 0; k < K; k++) ref += (double)m->wd[(size_t)r * K + k] * xd[k];
            double got = y[(size_t)n * ldy + r];
            if (got != got) got = 1e30; /* unwritten output */
            num += (got - ref) * (got - ref);
            den += ref * ref;
        }
    }
    free(act);
    free(xd);
    return num / (den > 0 ? den : 1);
}

static double bound_for(an_type t) {
    if (t == AN_TYPE_F16 && an_amx_f16_passes() == 3) return 1e-10;
    if (t == AN_TYPE_F16 && an_amx_f16_passes() < 3) return 2e-5;
    return 1e-12;
}

static bool need_amx(void) {
    const char *why;
    if (!an_amx_available(&why)) {
        t_skip("%s", why);
        return false;
    }
    return true;
}

static void one(an_type t, int M, int K, int N, an_pool *pool) {
    wmat m;
    wmat_make(&m, t, M, K, (unsigned)(t * 7919 + M * 31 + K * 7 + N));
    unsigned seed = (unsigned)(N * 13 + 5);
    float *x = malloc(sizeof(float) * (size_t)K * (size_t)N), *y = malloc(sizeof(float) * (size_t)M * (size_t)N);
    for (size_t i = 0; i < (size_t)K * N; i++) x[i] = frand(&seed) * 3.0f;
    for (size_t i = 0; i < (size_t)M * N; i++) y[i] = NAN;
    an_err err = {0};
    an_amx_weight *pw = NULL;
    if (an_amx_pack(&m.m, &pw, &err) != AN_OK) {
        T_FAIL("%s pack: %s", an_type_name(t), err.msg);
        goto done;
    }
    void *ws = aligned_alloc(64, (an_amx_wsize(K, N, an_pool_size(pool)) + 63) / 64 * 64);
    an_mm_out o = {&m.m, y, M};
    const an_amx_weight *wl[1] = {pw};
    if (an_amx_matmul(pool, wl, &o, 1, x, N, ws, &err) != AN_OK) T_FAIL("%s matmul: %s", an_type_name(t), err.msg);
    const double e = nmse(&m, x, N, y, M), bound = bound_for(t);
    if (e > bound) T_FAIL("%s M=%d K=%d N=%d: NMSE %.3e > %.0e", an_type_name(t), M, K, N, e, bound);
    t_note("%-5s M=%3d K=%4d N=%3d: NMSE %.2e (bound %.0e)", an_type_name(t), M, K, N, e, bound);
    free(ws);
    an_amx_weight_free(pw);
done:
    free(x);
    free(y);
    wmat_free(&m);
}

static const an_type k_types[] = {AN_TYPE_F32, AN_TYPE_F16, AN_TYPE_BF16, AN_TYPE_Q8_0, AN_TYPE_Q4_0,
                                  AN_TYPE_Q4_1, AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};

static void amx_matches_reference(void) {
    if (!need_amx()) return;
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) {
        const int blk = (int)an_type_traits_get(k_types[i])->blck;
        const int K1 = blk == 256 ? 512 : 96, K2 = blk == 256 ? 1024 : 160;
        one(k_types[i], 37, K1, 1, pool);  /* decode, ragged rows */
        one(k_types[i], 70, K2, 13, pool); /* ragged rows and tokens */
        one(k_types[i], 32, K1, 70, pool); /* several token blocks, a 6-token tail */
        one(k_types[i], 45, K1, 33, pool); /* 32 + 1 tokens */
        if (blk == 1) one(k_types[i], 19, 100, 17, pool); /* K not a multiple of 32 */
    }
    an_pool_free(pool);
}

/* F16 with every pass count: 4 is exact products, 3 the default; 1 and 2 are the fast modes. */
static void amx_f16_passes(void) {
    if (!need_amx()) return;
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    const int saved = an_amx_f16_passes();
    for (int p = 1; p <= 4; p++) {
        an_amx_set_f16_passes(p);
        t_note("F16 passes = %d:", p);
        one(AN_TYPE_F16, 70, 1024, 40, pool);
    }
    an_amx_set_f16_passes(saved);
    an_pool_free(pool);
}

/* pack_into + weight_view (the compile-cache route) gives bit-identical outputs; several
 * weights of different formats in one call equal separate calls; mismatches are refused. */
static void amx_blob_and_multi(void) {
    if (!need_amx()) return;
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    const int K = 512, N = 21;
    static const an_type ts[3] = {AN_TYPE_Q4_K, AN_TYPE_Q6_K, AN_TYPE_F16};
    static const int Ms[3] = {40, 17, 64};
    wmat m[3];
    an_amx_weight *pw[3], *vw[3];
    void *blob[3];
    unsigned seed = 99;
    float *x = malloc(sizeof(float) * K * N);
    for (int i = 0; i < K * N; i++) x[i] = frand(&seed);
    float *y1 = malloc(sizeof(float) * 128 * N), *y2 = malloc(sizeof(float) * 128 * N);
    for (int i = 0; i < 128 * N; i++) y1[i] = y2[i] = NAN;
    void *ws = aligned_alloc(64, (an_amx_wsize(K, N, 2) + 63) / 64 * 64);
    an_mm_out o1[3], o2[3];
    int64_t col = 0;
    for (int i = 0; i < 3; i++) {
        wmat_make(&m[i], ts[i], Ms[i], K, 1000u + (unsigned)i);
        T_CHECK(an_amx_pack(&m[i].m, &pw[i], &err) == AN_OK, "%s", err.msg);
        const size_t sz = an_amx_packed_size(&m[i].m);
        blob[i] = aligned_alloc(64, sz);
        T_CHECK(an_amx_pack_into(&m[i].m, blob[i], sz, &err) == AN_OK, "%s", err.msg);
        T_CHECK(an_amx_weight_view(blob[i], sz, &m[i].m, &vw[i], &err) == AN_OK, "%s", err.msg);
        o1[i] = (an_mm_out){&m[i].m, y1 + col, 128};
        o2[i] = (an_mm_out){&m[i].m, y2 + col, 128};
        col += Ms[i];
    }
    /* a blob for another shape is refused */
    an_amx_weight *bad = NULL;
    an_err e2 = {0};
    T_CHECK(an_amx_weight_view(blob[0], an_amx_packed_size(&m[0].m), &m[1].m, &bad, &e2) != AN_OK && !bad,
            "mismatched blob accepted");
    for (int i = 0; i < 3; i++) {
        const an_amx_weight *one_w[1] = {pw[i]};
        T_CHECK(an_amx_matmul(pool, one_w, &o1[i], 1, x, N, ws, &err) == AN_OK, "%s", err.msg);
    }
    T_CHECK(an_amx_matmul(pool, (const an_amx_weight *const *)vw, o2, 3, x, N, ws, &err) == AN_OK, "%s", err.msg);
    int diff = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < col; c++) diff += memcmp(&y1[n * 128 + c], &y2[n * 128 + c], 4) != 0;
    T_CHECK(diff == 0, "%d outputs differ between separate packed calls and one fused call on views", diff);
    for (int i = 0; i < 3; i++) {
        const double e = nmse(&m[i], x, N, o2[i].y, 128);
        T_CHECK(e <= bound_for(ts[i]), "%s fused NMSE %.3e", an_type_name(ts[i]), e);
    }
    /* unsupported format: a clear error, no object */
    wmat q5;
    wmat_make(&q5, AN_TYPE_Q5_0, 16, 64, 7);
    an_amx_weight *nw = NULL;
    an_err e3 = {0};
    T_CHECK(an_amx_pack(&q5.m, &nw, &e3) == AN_E_UNSUPPORTED && !nw, "Q5_0 should be unsupported");
    wmat_free(&q5);
    for (int i = 0; i < 3; i++) {
        an_amx_weight_free(pw[i]);
        an_amx_weight_free(vw[i]);
        free(blob[i]);
        wmat_free(&m[i]);
    }
    free(x);
    free(y1);
    free(y2);
    free(ws);
    an_pool_free(pool);
}

/* The device wrapper: declines decode, prepares, runs a fused op equal to an_amx_matmul. */
static void amx_device(void) {
    an_device *d = an_amx_device_create(NULL);
    T_CHECK(d != NULL, "device");
    if (!d) return;
    if (!need_amx()) {
        d->i->free(d);
        return;
    }
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    const int K = 256, N = 9;
    wmat a, b;
    wmat_make(&a, AN_TYPE_Q8_0, 48, K, 1);
    wmat_make(&b, AN_TYPE_BF16, 20, K, 2);
    an_op op = {.name = "t", .w = {&a.m, &b.m}, .n_w = 2, .n = 1};
    const char *why = NULL;
    T_CHECK(!d->i->supports(d, &op, &why) && why, "decode should be declined");
    op.n = N;
    T_CHECK(d->i->supports(d, &op, &why), "%s", why ? why : "");
    T_CHECK(d->i->prepare(d, &a.m, &err) == AN_OK && d->i->prepare(d, &a.m, &err) == AN_OK, "%s", err.msg);
    unsigned seed = 5;
    float *x = malloc(sizeof(float) * K * N), *y = malloc(sizeof(float) * 68 * N);
    for (int i = 0; i < K * N; i++) x[i] = frand(&seed);
    for (int i = 0; i < 68 * N; i++) y[i] = NAN;
    void *ws = aligned_alloc(64, (d->i->wsize(d, K, N, 2) + 63) / 64 * 64);
    an_mm_out o[2] = {{&a.m, y, 68}, {&b.m, y + 48, 68}};
    T_CHECK(d->i->run(d, &op, o, x, pool, ws, &err) == AN_OK, "%s", err.msg); /* b packed lazily */
    T_CHECK(nmse(&a, x, N, y, 68) <= 1e-12, "Q8_0 via device");
    T_CHECK(nmse(&b, x, N, y + 48, 68) <= 1e-12, "BF16 via device");
    /* Memory reused for another weight of the same type and shape (what the scheduler's
     * calibration buffers do): the device keys packed weights by pointer, so it serves the
     * stale packing until forget() drops it. */
    wmat c;
    wmat_make(&c, AN_TYPE_Q8_0, 48, K, 99);
    memcpy(a.w, c.w, a.m.row_bytes * 48);
    memcpy(a.wd, c.wd, sizeof(float) * (size_t)K * 48);
    an_op op1 = {.name = "t", .w = {&a.m}, .n_w = 1, .n = N};
    an_mm_out o1 = {&a.m, y, 68};
    T_CHECK(d->i->run(d, &op1, &o1, x, pool, ws, &err) == AN_OK, "%s", err.msg);
    T_CHECK(nmse(&a, x, N, y, 68) > 1e-6, "the stale packing was not used: this check cannot see forget()");
    d->i->forget(d, &a.m);
    T_CHECK(d->i->run(d, &op1, &o1, x, pool, ws, &err) == AN_OK, "%s", err.msg);
    T_CHECK(nmse(&a, x, N, y, 68) <= 1e-12, "after forget() the new weight is packed afresh");
    d->i->forget(d, &b.m); /* forgetting the other entry keeps the table consistent */
    T_CHECK(d->i->run(d, &op, o, x, pool, ws, &err) == AN_OK, "%s", err.msg);
    T_CHECK(nmse(&b, x, N, y + 48, 68) <= 1e-12, "BF16 after forget and repack");
    wmat_free(&c);
    free(x);
    free(y);
    free(ws);
    wmat_free(&a);
    wmat_free(&b);
    d->i->free(d);
    an_pool_free(pool);
}

static void amx_availability(void) {
    const char *why = NULL;
    const bool ok = an_amx_available(&why);
    T_CHECK(why && why[0], "no reason given");
    t_note("available: %s — %s", ok ? "yes" : "no", why ? why : "");
    if (!ok) t_skip("%s", why);
}

/* Same bits, or both NaN (inf x 0 in a block scale times a sum of 0). */
static bool same_f(float a, float b) { return memcmp(&a, &b, 4) == 0 || (a != a && b != b); }

/* The AVX-512 activation quantizer of the INT8 engine against its scalar reference
 * (an_quant_act_row, llama.cpp's rounding): bit for bit, on random rows with ties of the
 * largest magnitude (both signs), zero and tiny blocks, values on .5 after scaling, huge
 * values, infinities and NaNs. */
static void amx_quant_act_matches_reference(void) {
    if (!need_amx()) return;
    static const an_type types[] = {AN_TYPE_Q8_0, AN_TYPE_Q4_1, AN_TYPE_Q4_K, AN_TYPE_Q6_K};
    const int K = 1024;
    float *x = malloc(sizeof(float) * K), *as[2], *am[2];
    int8_t *q[2];
    for (int i = 0; i < 2; i++) {
        as[i] = malloc(sizeof(float) * K), am[i] = malloc(sizeof(float) * K);
        q[i] = malloc((size_t)K);
    }
    unsigned seed = 7;
    int rows = 0, bad = 0;
    for (int r = 0; r < 200; r++) {
        for (int k = 0; k < K; k++) x[k] = frand(&seed) * (r % 7 == 0 ? 1e-30f : r % 5 == 0 ? 3e4f : 1.f);
        if (r % 3 == 0) for (int k = 0; k < K; k += 37) x[k] = (float)((int)(frand(&seed) * 256)) / 2; /* .5 ties */
        if (r % 4 == 1) for (int k = 64; k < 96; k++) x[k] = 0.f;                 /* a zero block */
        if (r % 4 == 2) for (int k = 256; k < 512; k++) x[k] = k % 2 ? 0.75f : -0.75f; /* tied maxima */
        if (r % 10 == 3) x[(r * 13) % K] = NAN;
        if (r % 10 == 4) x[(r * 17) % K] = -INFINITY;
        if (r % 10 == 5) x[(r * 19) % K] = 3e38f;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            an_err err = {0};
            for (int i = 0; i < 2; i++) {
                memset(q[i], 0x55, (size_t)K);
                T_CHECK(an_amx_quant_act_row(types[ti], x, K, i == 0, q[i], as[i], am[i], &err) == AN_OK, "%s", err.msg);
            }
            const int nb = K / (types[ti] == AN_TYPE_Q6_K ? 16 : 32);
            bool ok = memcmp(q[0], q[1], (size_t)K) == 0;
            for (int b = 0; b < nb; b++) ok = ok && same_f(as[0][b], as[1][b]) && same_f(am[0][b], am[1][b]);
            if (!ok && bad++ < 3) T_FAIL("row %d, %s: AVX-512 quantization differs from the reference", r, an_type_name(types[ti]));
            rows++;
        }
    }
    t_note("%d rows x formats compared, %d differ", rows, bad);
    for (int i = 0; i < 2; i++) free(as[i]), free(am[i]), free(q[i]);
    free(x);
}

/* Palettized weights: random indices, random fp16 tables shared by groups of g rows, with and
 * without row scales; rows not a multiple of 16 or of the chunk, K not a multiple of 32. */
static void lut_one(uint32_t type, int M, int K, int N, int g, int scaled, an_pool *pool) {
    const int bits = an_lut_bits(type), ne = 1 << bits;
    unsigned seed = (unsigned)(M * 7 + K * 3 + N + g + bits * 101 + scaled);
    const uint64_t rb = an_lut_row_bytes(bits, K);
    uint8_t *data = calloc((size_t)(rb * (uint64_t)M), 1), *idx = malloc((size_t)K);
    uint16_t *lut = malloc(sizeof(uint16_t) * (size_t)(M / g * ne)), *rs = malloc(sizeof(uint16_t) * (size_t)M);
    for (int i = 0; i < M / g * ne; i++) lut[i] = an_f32_to_f16(frand(&seed));
    for (int r = 0; r < M; r++) {
        for (int k = 0; k < K; k++) idx[k] = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24) & (ne - 1);
        an_lut_pack_row(idx, K, bits, data + rb * (uint64_t)r);
        rs[r] = an_f32_to_f16(0.5f + 0.01f * (float)(r % 37));
    }
    an_mat m = {.type = type, .rows = M, .cols = K, .row_bytes = rb, .data = data, .name = "lut",
                .lut = lut, .lut_group = g, .row_scale = scaled ? rs : NULL};
    float *x = malloc(sizeof(float) * (size_t)K * (size_t)N), *y = malloc(sizeof(float) * (size_t)M * (size_t)N);
    for (size_t i = 0; i < (size_t)K * N; i++) x[i] = frand(&seed) * 3.0f;
    for (size_t i = 0; i < (size_t)M * N; i++) y[i] = NAN;
    an_err err = {0};
    an_amx_weight *pw = NULL;
    void *ws = aligned_alloc(64, (an_amx_wsize(K, N, an_pool_size(pool)) + 63) / 64 * 64);
    if (an_amx_pack(&m, &pw, &err) != AN_OK) {
        T_FAIL("%s pack: %s", an_type_name(type), err.msg);
    } else {
        an_mm_out o = {&m, y, M};
        const an_amx_weight *wl[1] = {pw};
        if (an_amx_matmul(pool, wl, &o, 1, x, N, ws, &err) != AN_OK) T_FAIL("matmul: %s", err.msg);
        double num = 0, den = 0;
        for (int n = 0; n < N; n++)
            for (int r = 0; r < M; r++) {
                const double ref = an_lut_dot_ref(&m, r, x + (size_t)n * K);
                double got = y[(size_t)n * M + r];
                if (got != got) got = 1e30;
                num += (got - ref) * (got - ref), den += ref * ref;
            }
        const double e = num / den;
        T_CHECK(e <= 2e-5, "%s M=%d K=%d N=%d g=%d scaled=%d: NMSE %.3e > 2e-5", an_type_name(type), M, K, N, g,
                scaled, e);
        t_note("%-4s M=%4d K=%4d N=%3d group %2d%s: NMSE %.2e (bound 2e-5)", an_type_name(type), M, K, N, g,
               scaled ? " row scales" : "", e);
    }
    an_amx_weight_free(pw);
    free(ws), free(x), free(y), free(data), free(idx), free(lut), free(rs);
}

static void amx_lut_matches_reference(void) {
    if (!need_amx()) return;
    an_pool *pool;
    an_err err = {0};
    an_pool_create(&pool, 2, &err);
    const uint32_t types[] = {AN_TYPE_LUT4, AN_TYPE_LUT6};
    for (int i = 0; i < 2; i++) {
        lut_one(types[i], 48, 96, 13, 4, 0, pool);
        lut_one(types[i], 70, 100, 33, 1, 1, pool);   /* a table per row; ragged K */
        lut_one(types[i], 60, 64, 5, 3, 0, pool);     /* group boundaries inside 16-row tiles */
        lut_one(types[i], 96, 2048, 40, 32, 1, pool); /* groups wider than a tile */
        lut_one(types[i], 600, 4096, 70, 8, 0, pool); /* several chunks per thread */
    }
    an_pool_free(pool);
}

const t_case t_suite_amx[] = {
    {"amx_lut_matches_reference", amx_lut_matches_reference},
    {"amx_availability", amx_availability},
    {"amx_quant_act_matches_reference", amx_quant_act_matches_reference},
    {"amx_matches_reference", amx_matches_reference},
    {"amx_f16_passes", amx_f16_passes},
    {"amx_blob_and_multi", amx_blob_and_multi},
    {"amx_device", amx_device},
    {0, 0},
};
