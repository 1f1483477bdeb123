/* test_ane_ref.c — the reference MIL executor (src/backends/ane/ref): hand-written programs in
 * the emitter's subset (linear, QKV, FFN, a two-function bank, a K-sliced add) against a
 * scalar float reference, per weight format; the fast conv against the scalar one; fp16
 * overflow; Q8_0/Q4_0 exactness of the blockwise form; malformed text and blobs.
 *
 * NMSE = sum (y - ref)^2 / sum ref^2. Two references per program:
 *   "deq":  float math with the format's exact dequantized weights. What remains is fp16:
 *           weights folded to fp16 (relative error <= 2^-11) and every op output rounded
 *           (relative <= 2^-11): 4e-8..9e-8 measured; the bound is 2e-6.
 *   "true": float math with the original weights: adds the format's own quantization error,
 *           bounded per format (see g_fmt). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/blob.h"
#include "backends/ane/mil/mil.h"
#include "backends/ane/ref/ref.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "quant/lut.h"
#include "quant/quant.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct sb {
    char *p;
    size_t n, cap;
} sb;

static void sb_printf(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *s, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (s->p && s->n + (size_t)k < s->cap) {
            s->n += (size_t)k;
            return;
        }
        size_t nc = s->cap ? s->cap * 2 : 4096;
        while (nc < s->n + (size_t)k + 1) nc *= 2;
        s->p = realloc(s->p, nc);
        s->cap = nc;
    }
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static double nmse(const float *y, const double *ref, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += (y[i] - ref[i]) * (y[i] - ref[i]);
        s += ref[i] * ref[i];
    }
    return s > 0 ? e / s : e;
}

static const char *HEAD =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, {\"coremlc-version\", \"3505.4.1\"}, "
    "{\"coremltools-component-milinternal\", \"\"}, {\"coremltools-version\", \"9.0\"}})]\n{\n";

static void conv_consts(sb *s) {
    sb_printf(s, "        tensor<int32, [4]> perm = const()[name = string(\"perm\"), val = tensor<int32, [4]>([0, 3, 2, 1])];\n"
                 "        tensor<int32, [2]> strides = const()[name = string(\"strides\"), val = tensor<int32, [2]>([1, 1])];\n"
                 "        string pad_type = const()[name = string(\"pad_type\"), val = string(\"valid\")];\n"
                 "        tensor<int32, [4]> pad = const()[name = string(\"pad\"), val = tensor<int32, [4]>([0, 0, 0, 0])];\n"
                 "        tensor<int32, [2]> dilations = const()[name = string(\"dilations\"), val = tensor<int32, [2]>([1, 1])];\n"
                 "        int32 groups = const()[name = string(\"groups\"), val = int32(1)];\n");
}

static void conv_stmt(sb *s, const char *out, const char *x, const char *w, int64_t M, int64_t N) {
    sb_printf(s,
              "        tensor<fp16, [1, %lld, 1, %lld]> %s = conv(x = %s, weight = %s, strides = strides, pad_type = "
              "pad_type, pad = pad, dilations = dilations, groups = groups)[name = string(\"%s\")];\n",
              (long long)M, (long long)N, out, x, w, out);
}

static void blobfile_const(sb *s, const char *name, const char *dt, const char *dims, uint64_t off) {
    sb_printf(s,
              "        tensor<%s, [%s]> %s = const()[name = string(\"%s\"), val = tensor<%s, [%s]>(BLOBFILE(path = "
              "string(\"@model_path/weights/weight.bin\"), offset = uint64(%llu)))];\n",
              dt, dims, name, name, dt, dims, (unsigned long long)off);
}

static uint64_t append(an_blob_writer *bw, an_blob_dtype dt, const void *data, uint64_t n) {
    uint64_t off = 0;
    an_err err;
    an_err_clear(&err);
    if (an_blob_append(bw, dt, data, n, &off, &err) != AN_OK) T_FAIL("blob append: %s", err.msg);
    return off;
}

/* ---- weight formats ---------------------------------------------------------------------- */

typedef enum wfmt { WF_F16, WF_INT8, WF_INT4, WF_LUT4, WF_LUT6 } wfmt;
static const struct {
    const char *name;
    double true_bound; /* NMSE against the unquantized weights (random uniform weights) */
} g_fmt[] = {
    [WF_F16] = {"fp16", 2e-6},  /* fp16 rounding only */
    [WF_INT8] = {"int8", 1e-4}, /* 8-bit blocks of 32: 1.4e-5 measured */
    [WF_INT4] = {"int4", 2e-2}, /* 4-bit blocks of 32 (levels -7..7): 4.4e-3 measured */
    [WF_LUT4] = {"lut4", 2e-2}, /* 16 uniform levels per 8 rows: 4.3e-3 measured */
    [WF_LUT6] = {"lut6", 2e-3}, /* 64 levels per 8 rows, then a row scale: 2.5e-4 measured */
};

#define QB 32  /* blockwise scale block along K */
#define LUTG 8 /* rows per table */

/* Adds the statements (and blobs) that define fp16 [M, K, 1, 1] weight `name` from w[M][K] in
 * format f; deq[M][K] receives the format's exact dequantized values (float, before the fold
 * rounds them to fp16). */
static void emit_weight(sb *s, an_blob_writer *bw, const char *name, const float *w, int64_t M, int64_t K, wfmt f,
                        float *deq) {
    char dims[64], sdims[64], n2[64], n3[64], n4[64];
    snprintf(dims, sizeof dims, "%lld, %lld, 1, 1", (long long)M, (long long)K);
    const int64_t n = M * K;
    if (f == WF_F16) {
        uint16_t *h = malloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) {
            h[i] = an_f32_to_f16(w[i]);
            deq[i] = an_f16_to_f32(h[i]);
        }
        blobfile_const(s, name, "fp16", dims, append(bw, AN_BLOB_FP16, h, (uint64_t)n));
        free(h);
        return;
    }
    snprintf(n2, sizeof n2, "%s_q", name);
    snprintf(n3, sizeof n3, "%s_s", name);
    snprintf(n4, sizeof n4, "%s_l", name);
    if (f == WF_INT8 || f == WF_INT4) {
        const int qmax = f == WF_INT8 ? 127 : 7;
        uint8_t *q = malloc((size_t)n);
        uint16_t *sc = malloc((size_t)(n / QB) * 2);
        for (int64_t b = 0; b < n / QB; b++) {
            float amax = 0;
            for (int j = 0; j < QB; j++) amax = fmaxf(amax, fabsf(w[b * QB + j]));
            sc[b] = an_f32_to_f16(amax / qmax);
            const float d = an_f16_to_f32(sc[b]);
            for (int j = 0; j < QB; j++) {
                int v = d > 0 ? (int)lrintf(w[b * QB + j] / d) : 0;
                v = v > qmax ? qmax : v < -qmax - 1 ? -qmax - 1 : v;
                q[b * QB + j] = (uint8_t)(v & (f == WF_INT8 ? 0xff : 0xf)); /* two's complement byte / nibble */
                deq[b * QB + j] = d * (float)v;
            }
        }
        if (f == WF_INT8) {
            blobfile_const(s, n2, "int8", dims, append(bw, AN_BLOB_INT8, q, (uint64_t)n));
        } else {
            uint8_t *packed = malloc((size_t)(n + 1) / 2);
            an_blob_pack_bits(q, (uint64_t)n, 4, packed);
            blobfile_const(s, n2, "int4", dims, append(bw, AN_BLOB_INT4, packed, (uint64_t)n));
            free(packed);
        }
        snprintf(sdims, sizeof sdims, "%lld, %lld, 1, 1", (long long)M, (long long)(K / QB));
        blobfile_const(s, n3, "fp16", sdims, append(bw, AN_BLOB_FP16, sc, (uint64_t)(n / QB)));
        sb_printf(s,
                  "        tensor<fp16, [%s]> %s = constexpr_blockwise_shift_scale(data = %s, scale = %s)[name = "
                  "string(\"%s\")];\n",
                  dims, name, n2, n3, name);
        free(q);
        free(sc);
        return;
    }
    /* LUT: per group of LUTG rows, E uniform levels between the group's min and max (LUT6: of
     * the rows divided by their absmax, which a blockwise row scale then restores) */
    const int bits = f == WF_LUT4 ? 4 : 6, E = 1 << bits;
    const bool rs = f == WF_LUT6;
    uint8_t *idx = malloc((size_t)n);
    uint16_t *lut = malloc((size_t)(M / LUTG) * E * 2), *rsc = malloc((size_t)M * 2);
    float *wn = malloc((size_t)n * sizeof *wn);
    for (int64_t m = 0; m < M; m++) {
        float amax = 0;
        for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(w[m * K + k]));
        rsc[m] = an_f32_to_f16(rs ? amax : 1.0f);
        for (int64_t k = 0; k < K; k++) wn[m * K + k] = w[m * K + k] / an_f16_to_f32(rsc[m]);
    }
    for (int64_t g = 0; g < M / LUTG; g++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = g * LUTG * K; i < (g + 1) * LUTG * K; i++) {
            lo = fminf(lo, wn[i]);
            hi = fmaxf(hi, wn[i]);
        }
        for (int e = 0; e < E; e++) lut[g * E + e] = an_f32_to_f16(lo + (hi - lo) * (float)e / (float)(E - 1));
        for (int64_t i = g * LUTG * K; i < (g + 1) * LUTG * K; i++) {
            int best = 0;
            for (int e = 1; e < E; e++)
                if (fabsf(an_f16_to_f32(lut[g * E + e]) - wn[i]) < fabsf(an_f16_to_f32(lut[g * E + best]) - wn[i]))
                    best = e;
            idx[i] = (uint8_t)best;
            deq[i] = an_f16_to_f32(lut[g * E + best]) * an_f16_to_f32(rsc[i / K]);
        }
    }
    uint8_t *packed = malloc((size_t)(n * bits + 7) / 8);
    an_blob_pack_bits(idx, (uint64_t)n, bits, packed);
    blobfile_const(s, n2, bits == 4 ? "uint4" : "uint6", dims,
                   append(bw, bits == 4 ? AN_BLOB_UINT4 : AN_BLOB_UINT6, packed, (uint64_t)n));
    snprintf(sdims, sizeof sdims, "%lld, 1, 1, 1, %d, 1", (long long)(M / LUTG), E);
    blobfile_const(s, n3, "fp16", sdims, append(bw, AN_BLOB_FP16, lut, (uint64_t)(M / LUTG * E)));
    const char *lname = rs ? n4 : name;
    sb_printf(s, "        tensor<fp16, [%s]> %s = constexpr_lut_to_dense(indices = %s, lut = %s)[name = string(\"%s\")];\n",
              dims, lname, n2, n3, lname);
    if (rs) {
        char rn[64], rdims[64];
        snprintf(rn, sizeof rn, "%s_r", name);
        snprintf(rdims, sizeof rdims, "%lld, 1, 1, 1", (long long)M);
        blobfile_const(s, rn, "fp16", rdims, append(bw, AN_BLOB_FP16, rsc, (uint64_t)M));
        sb_printf(s,
                  "        tensor<fp16, [%s]> %s = constexpr_blockwise_shift_scale(data = %s, scale = %s)[name = "
                  "string(\"%s\")];\n",
                  dims, name, n4, rn, name);
    }
    free(idx);
    free(lut);
    free(rsc);
    free(wn);
    free(packed);
}

/* ---- running ------------------------------------------------------------------------------ */

typedef struct prog {
    sb text;
    an_blob_writer *bw;
    an_mil_ref *r;
} prog;

static void prog_init(prog *p) {
    memset(p, 0, sizeof *p);
    an_err err;
    an_err_clear(&err);
    an_blob_writer_create(&p->bw, &err);
    sb_printf(&p->text, "%s", HEAD);
}

static bool prog_load(prog *p) {
    an_err err;
    an_err_clear(&err);
    size_t bl;
    const uint8_t *b = an_blob_bytes(p->bw, &bl);
    if (an_mil_ref_load(&p->r, p->text.p, p->text.n, b, bl, &err) != AN_OK) {
        T_FAIL("load: %s", err.msg);
        fprintf(stderr, "%s\n", p->text.p);
        return false;
    }
    return true;
}

static void prog_free(prog *p) {
    an_mil_ref_free(p->r);
    an_blob_writer_free(p->bw);
    free(p->text.p);
}

/* Runs fn with float inputs (rounded to fp16), float outputs. */
static bool run_f(an_mil_ref *r, int fn, float *const *xin, float **yout, an_pool *pool) {
    const int ni = an_mil_ref_n_inputs(r, fn), no = an_mil_ref_n_outputs(r, fn);
    uint16_t *in[8], *out[16];
    for (int i = 0; i < ni; i++) {
        const an_mil_ref_tensor *t = an_mil_ref_input(r, fn, i);
        in[i] = malloc((size_t)t->n * 2);
        for (int64_t k = 0; k < t->n; k++) in[i][k] = an_f32_to_f16(xin[i][k]);
    }
    for (int j = 0; j < no; j++) out[j] = malloc((size_t)an_mil_ref_output(r, fn, j)->n * 2);
    an_err err;
    an_err_clear(&err);
    an_status st = an_mil_ref_run(r, fn, (const uint16_t *const *)in, out, pool, &err);
    if (st != AN_OK) T_FAIL("run: %s", err.msg);
    for (int j = 0; j < no; j++) {
        const an_mil_ref_tensor *t = an_mil_ref_output(r, fn, j);
        for (int64_t k = 0; k < t->n; k++) yout[j][k] = an_f16_to_f32(out[j][k]);
        free(out[j]);
    }
    for (int i = 0; i < ni; i++) free(in[i]);
    return st == AN_OK;
}

/* ref[n][m] = sum_k x[n][k] * w[m][k], in double; x values as fp16 would hold them */
static void matmul_ref(const float *x, const float *w, int64_t N, int64_t K, int64_t M, double *ref) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)an_round_f16(x[n * K + k]) * w[m * K + k];
            ref[n * M + m] = acc;
        }
}

static float *rand_vec(int64_t n, float scale) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

/* ---- cases -------------------------------------------------------------------------------- */

/* x [1, N, 1, K] -> transpose -> conv W [M, K] -> transpose -> y [1, N, 1, M], per format */
static void linear_formats(void) {
    const int64_t N = 40, K = 256, M = 96;
    an_pool *pool = NULL;
    an_err err;
    an_err_clear(&err);
    an_pool_create(&pool, 2, &err);
    for (int f = WF_F16; f <= WF_LUT6; f++) {
        prog p;
        prog_init(&p);
        float *w = rand_vec(M * K, 0.1f), *deq = malloc((size_t)(M * K) * sizeof *deq), *x = rand_vec(N * K, 1.0f);
        float *y = malloc((size_t)(N * M) * sizeof *y);
        double *ref = malloc((size_t)(N * M) * sizeof *ref);
        sb_printf(&p.text, "    func main<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", (long long)N, (long long)K);
        conv_consts(&p.text);
        emit_weight(&p.text, p.bw, "W", w, M, K, (wfmt)f, deq);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n",
                  (long long)K, (long long)N);
        conv_stmt(&p.text, "c", "xt", "W", M, N);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> y = transpose(x = c, perm = perm)[name = string(\"y\")];\n"
                           "    } -> (y);\n}",
                  (long long)N, (long long)M);
        if (prog_load(&p) && run_f(p.r, 0, &x, &y, pool)) {
            matmul_ref(x, deq, N, K, M, ref);
            double e_deq = nmse(y, ref, N * M);
            matmul_ref(x, w, N, K, M, ref);
            double e_true = nmse(y, ref, N * M);
            t_note("%s: NMSE vs dequantized %.2e (bound 2e-6), vs unquantized %.2e (bound %.0e)", g_fmt[f].name, e_deq,
                   e_true, g_fmt[f].true_bound);
            T_CHECK(e_deq < 2e-6, "%s: %g", g_fmt[f].name, e_deq);
            T_CHECK(e_true < g_fmt[f].true_bound, "%s: %g", g_fmt[f].name, e_true);
        }
        prog_free(&p);
        free(w);
        free(deq);
        free(x);
        free(y);
        free(ref);
    }
    an_pool_free(pool);
}

/* The fast conv (CPU F16 matmul) against the scalar loop, same program and inputs. Both sum
 * fp32 products and round once; only the summation order differs, so outputs differ by at most
 * an fp16 ulp here and there: NMSE bound 1e-7 (0 measured with gcc on AVX-512). */
static void conv_fast_vs_scalar(void) {
    const int64_t N = 64, K = 512, M = 128;
    prog p;
    prog_init(&p);
    float *w = rand_vec(M * K, 0.05f), *deq = malloc((size_t)(M * K) * sizeof *deq), *x = rand_vec(N * K, 1.0f);
    sb_printf(&p.text, "    func main<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", (long long)K, (long long)N);
    conv_consts(&p.text);
    emit_weight(&p.text, p.bw, "W", w, M, K, WF_F16, deq);
    conv_stmt(&p.text, "y", "x", "W", M, N);
    sb_printf(&p.text, "    } -> (y);\n}");
    float *yf = malloc((size_t)(N * M) * sizeof *yf), *ys = malloc((size_t)(N * M) * sizeof *ys);
    double *d = malloc((size_t)(N * M) * sizeof *d);
    an_pool *pool = NULL;
    an_err err;
    an_err_clear(&err);
    an_pool_create(&pool, 2, &err);
    if (prog_load(&p) && run_f(p.r, 0, &x, &yf, pool)) {
        an_mil_ref_set_scalar_conv(p.r, 1);
        run_f(p.r, 0, &x, &ys, NULL);
        int diff = 0;
        for (int64_t i = 0; i < N * M; i++) {
            d[i] = ys[i];
            diff += yf[i] != ys[i];
        }
        double e = nmse(yf, d, N * M);
        t_note("fast vs scalar conv: NMSE %.2e (bound 1e-7), %d of %lld outputs differ", e, diff, (long long)(N * M));
        T_CHECK(e < 1e-7, "%g", e);
        /* and the executor is deterministic: a second fast run gives the same bits */
        an_mil_ref_set_scalar_conv(p.r, 0);
        run_f(p.r, 0, &x, &ys, pool);
        T_CHECK(memcmp(yf, ys, (size_t)(N * M) * sizeof *ys) == 0, "two runs differ");
    }
    an_pool_free(pool);
    prog_free(&p);
    free(w);
    free(deq);
    free(x);
    free(yf);
    free(ys);
    free(d);
}

/* one input, three convs, three outputs (Q, K, V with GQA widths), int8 weights */
static void qkv_three_outputs(void) {
    const int64_t N = 32, K = 128, Mq = 128, Mkv = 32;
    const int64_t Ms[3] = {Mq, Mkv, Mkv};
    const char *names[3] = {"q", "k", "v"};
    prog p;
    prog_init(&p);
    float *w[3], *deq[3], *y[3], *x = rand_vec(N * K, 1.0f);
    sb_printf(&p.text, "    func main<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", (long long)N, (long long)K);
    conv_consts(&p.text);
    sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n",
              (long long)K, (long long)N);
    for (int i = 0; i < 3; i++) {
        char wn[8], cn[8];
        snprintf(wn, sizeof wn, "w%s", names[i]);
        snprintf(cn, sizeof cn, "c%s", names[i]);
        w[i] = rand_vec(Ms[i] * K, 0.1f);
        deq[i] = malloc((size_t)(Ms[i] * K) * sizeof *deq[i]);
        y[i] = malloc((size_t)(N * Ms[i]) * sizeof *y[i]);
        emit_weight(&p.text, p.bw, wn, w[i], Ms[i], K, WF_INT8, deq[i]);
        conv_stmt(&p.text, cn, "xt", wn, Ms[i], N);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> %s = transpose(x = %s, perm = perm)[name = string(\"%s\")];\n",
                  (long long)N, (long long)Ms[i], names[i], cn, names[i]);
    }
    sb_printf(&p.text, "    } -> (q, k, v);\n}");
    if (prog_load(&p)) {
        T_CHECK(an_mil_ref_n_outputs(p.r, 0) == 3);
        T_CHECK(an_mil_ref_output(p.r, 0, 1)->dims[3] == Mkv && !strcmp(an_mil_ref_output(p.r, 0, 1)->name, "k"));
        if (run_f(p.r, 0, &x, y, NULL))
            for (int i = 0; i < 3; i++) {
                double *ref = malloc((size_t)(N * Ms[i]) * sizeof *ref);
                matmul_ref(x, deq[i], N, K, Ms[i], ref);
                double e = nmse(y[i], ref, N * Ms[i]);
                t_note("%s: NMSE vs dequantized %.2e (bound 2e-6)", names[i], e);
                T_CHECK(e < 2e-6, "%s %g", names[i], e);
                free(ref);
            }
    }
    for (int i = 0; i < 3; i++) {
        free(w[i]);
        free(deq[i]);
        free(y[i]);
    }
    free(x);
    prog_free(&p);
}

/* FFN y = (silu(x·gateᵀ) * (x·upᵀ)) · downᵀ, in two functions of one program: silu written as
 * sigmoid then mul (what the emitter writes) and as the silu op. LUT4 gate/up, int4 down.
 * Reference: float math, exact silu, on the dequantized weights. The hidden activations are
 * rounded to fp16 three or four times before the down projection: NMSE bound 2e-5. */
static void ffn_sigmoid_and_silu(void) {
    const int64_t N = 32, K = 64, F = 128;
    prog p;
    prog_init(&p);
    float *wg = rand_vec(F * K, 0.15f), *wu = rand_vec(F * K, 0.15f), *wd = rand_vec(K * F, 0.1f);
    float *dg = malloc((size_t)(F * K) * 4), *du = malloc((size_t)(F * K) * 4), *dd = malloc((size_t)(K * F) * 4);
    float *x = rand_vec(N * K, 1.0f), *y = malloc((size_t)(N * K) * 4), *y2 = malloc((size_t)(N * K) * 4);
    for (int fn = 0; fn < 2; fn++) {
        sb_printf(&p.text, "    func %s<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", fn ? "ffn_silu" : "ffn_sig",
                  (long long)N, (long long)K);
        conv_consts(&p.text);
        /* the second function repeats the weight consts: functions share no variables */
        an_blob_writer *bw = p.bw;
        emit_weight(&p.text, bw, "wg", wg, F, K, WF_LUT4, dg);
        emit_weight(&p.text, bw, "wu", wu, F, K, WF_LUT4, du);
        emit_weight(&p.text, bw, "wd", wd, K, F, WF_INT4, dd);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n",
                  (long long)K, (long long)N);
        conv_stmt(&p.text, "g", "xt", "wg", F, N);
        conv_stmt(&p.text, "u", "xt", "wu", F, N);
        if (fn == 0)
            sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> sg = sigmoid(x = g)[name = string(\"sg\")];\n"
                               "        tensor<fp16, [1, %lld, 1, %lld]> a = mul(x = g, y = sg)[name = string(\"a\")];\n",
                      (long long)F, (long long)N, (long long)F, (long long)N);
        else
            sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> a = silu(x = g)[name = string(\"a\")];\n",
                      (long long)F, (long long)N);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> h = mul(x = a, y = u)[name = string(\"h\")];\n",
                  (long long)F, (long long)N);
        conv_stmt(&p.text, "d", "h", "wd", K, N);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> y = transpose(x = d, perm = perm)[name = string(\"y\")];\n"
                           "    } -> (y);\n",
                  (long long)N, (long long)K);
    }
    sb_printf(&p.text, "}");
    double *gref = malloc((size_t)(N * F) * 8), *uref = malloc((size_t)(N * F) * 8), *ref = malloc((size_t)(N * K) * 8);
    if (prog_load(&p) && run_f(p.r, an_mil_ref_find(p.r, "ffn_sig"), &x, &y, NULL) &&
        run_f(p.r, an_mil_ref_find(p.r, "ffn_silu"), &x, &y2, NULL)) {
        matmul_ref(x, dg, N, K, F, gref);
        matmul_ref(x, du, N, K, F, uref);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                double acc = 0;
                for (int64_t f = 0; f < F; f++) {
                    double g = gref[n * F + f];
                    acc += g / (1 + exp(-g)) * uref[n * F + f] * dd[k * F + f];
                }
                ref[n * K + k] = acc;
            }
        double e1 = nmse(y, ref, N * K), e2 = nmse(y2, ref, N * K);
        t_note("FFN NMSE vs float reference: sigmoid+mul %.2e, silu %.2e (bound 2e-5)", e1, e2);
        T_CHECK(e1 < 2e-5, "%g", e1);
        T_CHECK(e2 < 2e-5, "%g", e2);
    }
    free(gref);
    free(uref);
    free(ref);
    free(wg);
    free(wu);
    free(wd);
    free(dg);
    free(du);
    free(dd);
    free(x);
    free(y);
    free(y2);
    prog_free(&p);
}

/* A bank: procedure000 (N = 32) and procedure001 (N = 64) read the same blob (one weight, two
 * buckets). Each function's results must equal the reference, and the 32 rows that both
 * computed must agree exactly (per-token math does not depend on the bucket). */
static void two_function_bank(void) {
    const int64_t K = 128, M = 64, Ns[2] = {32, 64};
    prog p;
    prog_init(&p);
    float *w = rand_vec(M * K, 0.1f), *deq = malloc((size_t)(M * K) * 4), *x = rand_vec(64 * K, 1.0f);
    /* one blob, referenced by both functions: emit once, reuse the offsets by copying text */
    sb wtext = {0};
    emit_weight(&wtext, p.bw, "W", w, M, K, WF_LUT6, deq);
    for (int f = 0; f < 2; f++) {
        sb_printf(&p.text, "    func procedure%03d<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", f, (long long)Ns[f],
                  (long long)K);
        conv_consts(&p.text);
        sb_printf(&p.text, "%s", wtext.p);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n",
                  (long long)K, (long long)Ns[f]);
        conv_stmt(&p.text, "c", "xt", "W", M, Ns[f]);
        sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> y = transpose(x = c, perm = perm)[name = string(\"y\")];\n"
                           "    } -> (y);\n",
                  (long long)Ns[f], (long long)M);
    }
    sb_printf(&p.text, "}");
    float *y[2] = {malloc((size_t)(32 * M) * 4), malloc((size_t)(64 * M) * 4)};
    double *ref = malloc((size_t)(64 * M) * 8);
    if (prog_load(&p)) {
        T_CHECK(an_mil_ref_n_fns(p.r) == 2);
        T_CHECK(an_mil_ref_find(p.r, "procedure001") == 1 && an_mil_ref_find(p.r, "main") == -1);
        T_CHECK(an_mil_ref_input(p.r, 1, 0)->dims[1] == 64 && an_mil_ref_input(p.r, 0, 0)->dims[1] == 32);
        T_CHECK(!strcmp(an_mil_ref_fn_name(p.r, 0), "procedure000"));
        for (int f = 0; f < 2; f++)
            if (run_f(p.r, f, &x, &y[f], NULL)) {
                matmul_ref(x, deq, Ns[f], K, M, ref);
                double e = nmse(y[f], ref, Ns[f] * M);
                t_note("procedure%03d: NMSE vs dequantized %.2e (bound 2e-6)", f, e);
                T_CHECK(e < 2e-6, "%g", e);
            }
        T_CHECK(memcmp(y[0], y[1], (size_t)(32 * M) * 4) == 0, "the shared rows differ between buckets");
    }
    free(wtext.p);
    free(w);
    free(deq);
    free(x);
    free(y[0]);
    free(y[1]);
    free(ref);
    prog_free(&p);
}

/* K split with slice_by_index: two partial convs over the halves of the contraction, summed
 * with add (what the emitter does for a contraction above the cap). fp16 weights. The partial
 * sums are rounded to fp16 before the add: NMSE bound 2e-6. Also one broadcasting mul by a
 * per-channel inline constant. */
static void k_sliced_add(void) {
    const int64_t N = 32, K = 256, H = 128, M = 64;
    prog p;
    prog_init(&p);
    float *w = rand_vec(M * K, 0.1f), *deq = malloc((size_t)(M * K) * 4), *x = rand_vec(N * K, 1.0f);
    float *wa = malloc((size_t)(M * H) * 4), *wb = malloc((size_t)(M * H) * 4), *da = malloc((size_t)(M * H) * 4),
          *db = malloc((size_t)(M * H) * 4);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < H; k++) {
            wa[m * H + k] = w[m * K + k];
            wb[m * H + k] = w[m * K + H + k];
        }
    sb_printf(&p.text, "    func main<ios18>(tensor<fp16, [1, %lld, 1, %lld]> x) {\n", (long long)N, (long long)K);
    conv_consts(&p.text);
    emit_weight(&p.text, p.bw, "wa", wa, M, H, WF_F16, da);
    emit_weight(&p.text, p.bw, "wb", wb, M, H, WF_F16, db);
    sb_printf(&p.text,
              "        tensor<fp16, [1, %lld, 1, %lld]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n"
              "        tensor<int32, [4]> b0 = const()[name = string(\"b0\"), val = tensor<int32, [4]>([0, 0, 0, 0])];\n"
              "        tensor<int32, [4]> e0 = const()[name = string(\"e0\"), val = tensor<int32, [4]>([1, %lld, 1, %lld])];\n"
              "        tensor<int32, [4]> b1 = const()[name = string(\"b1\"), val = tensor<int32, [4]>([0, %lld, 0, 0])];\n"
              "        tensor<int32, [4]> e1 = const()[name = string(\"e1\"), val = tensor<int32, [4]>([1, %lld, 1, %lld])];\n"
              "        tensor<fp16, [1, %lld, 1, %lld]> xa = slice_by_index(x = xt, begin = b0, end = e0)[name = string(\"xa\")];\n"
              "        tensor<fp16, [1, %lld, 1, %lld]> xb = slice_by_index(x = xt, begin = b1, end = e1)[name = string(\"xb\")];\n",
              (long long)K, (long long)N, (long long)H, (long long)N, (long long)H, (long long)K, (long long)N,
              (long long)H, (long long)N, (long long)H, (long long)N);
    conv_stmt(&p.text, "ca", "xa", "wa", M, N);
    conv_stmt(&p.text, "cb", "xb", "wb", M, N);
    sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, %lld]> c = add(x = ca, y = cb)[name = string(\"c\")];\n",
              (long long)M, (long long)N);
    /* per-channel scale 2^-1 on even channels, 1 on odd: exact, so the reference just applies it */
    sb_printf(&p.text, "        tensor<fp16, [1, %lld, 1, 1]> sc = const()[name = string(\"sc\"), val = tensor<fp16, [1, %lld, 1, 1]>([",
              (long long)M, (long long)M);
    for (int64_t m = 0; m < M; m++) sb_printf(&p.text, "%s%s", m ? ", " : "", m % 2 ? "0x1p+0" : "0x1p-1");
    sb_printf(&p.text, "])];\n        tensor<fp16, [1, %lld, 1, %lld]> cs = mul(x = c, y = sc)[name = string(\"cs\")];\n"
                       "        tensor<fp16, [1, %lld, 1, %lld]> y = transpose(x = cs, perm = perm)[name = string(\"y\")];\n"
                       "    } -> (y);\n}",
              (long long)M, (long long)N, (long long)N, (long long)M);
    float *y = malloc((size_t)(N * M) * 4);
    double *ref = malloc((size_t)(N * M) * 8);
    if (prog_load(&p) && run_f(p.r, 0, &x, &y, NULL)) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++) deq[m * K + k] = an_round_f16(w[m * K + k]) * (m % 2 ? 1.0f : 0.5f);
        matmul_ref(x, deq, N, K, M, ref);
        double e = nmse(y, ref, N * M);
        t_note("K-sliced add: NMSE %.2e (bound 2e-6)", e);
        T_CHECK(e < 2e-6, "%g", e);
    }
    free(w);
    free(deq);
    free(x);
    free(wa);
    free(wb);
    free(da);
    free(db);
    free(y);
    free(ref);
    prog_free(&p);
}

/* A program of inline literals only (no weight file). */
static an_mil_ref *load_text(const char *text, an_err *err) {
    an_mil_ref *r = NULL;
    an_err_clear(err);
    if (an_mil_ref_load(&r, text, strlen(text), NULL, 0, err) != AN_OK) return NULL;
    return r;
}

/* Every op output is stored as fp16: past 65504 it is ±inf, whatever the op. */
static void fp16_overflow_inf(void) {
    sb s = {0};
    sb_printf(&s, "%s", HEAD);
    sb_printf(&s, "    func main<ios18>(tensor<fp16, [1, 4, 1, 1]> x) {\n");
    conv_consts(&s);
    sb_printf(&s,
              "        tensor<fp16, [1, 4, 1, 1]> c = const()[name = string(\"c\"), val = tensor<fp16, [1, 4, 1, 1]>([0x1.2cp+8, "
              "0x1.2cp+8, 0x1p+0, 0x1p+1])];\n"
              "        tensor<fp16, [1, 4, 1, 1]> m = mul(x = x, y = c)[name = string(\"m\")];\n"
              "        tensor<fp16, [1, 4, 1, 1]> a = add(x = x, y = x)[name = string(\"a\")];\n"
              "        tensor<fp16, [4, 4, 1, 1]> w = const()[name = string(\"w\"), val = tensor<fp16, [4, 4, 1, 1]>([[0x1p+8, "
              "0x1p+8, 0x1p+8, 0x1p+8], [-0x1p+8, -0x1p+8, -0x1p+8, -0x1p+8], [0x1p-8, 0, 0, 0], [0, 0, 0, 0x1p+4]])];\n");
    conv_stmt(&s, "cv", "x", "w", 4, 1);
    sb_printf(&s, "        tensor<fp16, [1, 4, 1, 1]> sl = silu(x = m)[name = string(\"sl\")];\n"
                  "        tensor<fp16, [1, 4, 1, 1]> sg = sigmoid(x = m)[name = string(\"sg\")];\n"
                  "    } -> (m, a, cv, sl, sg);\n}");
    an_err err;
    an_mil_ref *r = load_text(s.p, &err);
    T_CHECK(r, "%s", err.msg);
    if (r) {
        /* x = [300, -300, 1, 65504] */
        uint16_t x[4] = {an_f32_to_f16(300), an_f32_to_f16(-300), an_f32_to_f16(1), 0x7bff};
        uint16_t m[4], a[4], cv[4], sl[4], sg[4];
        const uint16_t *in[1] = {x};
        uint16_t *out[5] = {m, a, cv, sl, sg};
        T_CHECK(an_mil_ref_run(r, 0, in, out, NULL, &err) == AN_OK, "%s", err.msg);
        T_CHECK(m[0] == 0x7c00 && m[1] == 0xfc00, "300*300 and -300*300: %04x %04x", m[0], m[1]);
        T_CHECK(m[2] == 0x3c00 && m[3] == 0x7c00, "1*1, 65504*2: %04x %04x", m[2], m[3]);
        T_CHECK(a[3] == 0x7c00 && a[0] == an_f32_to_f16(600), "65504+65504: %04x", a[3]);
        /* conv rows: 256*(300-300+1+65504) = +inf, the negated row -inf, 300/256, 16*65504 = inf */
        T_CHECK(cv[0] == 0x7c00 && cv[1] == 0xfc00, "%04x %04x", cv[0], cv[1]);
        T_CHECK(cv[2] == an_f32_to_f16(300.0f / 256) && cv[3] == 0x7c00, "%04x %04x", cv[2], cv[3]);
        T_CHECK(sl[0] == 0x7c00 && (sl[1] & 0x7fff) == 0, "silu(+inf) = inf, silu(-inf) = -0: %04x %04x", sl[0], sl[1]);
        T_CHECK(sg[0] == 0x3c00 && sg[1] == 0, "sigmoid(+-inf) = 1, 0: %04x %04x", sg[0], sg[1]);
        an_mil_ref_free(r);
    }
    free(s.p);
}

/* Q8_0 and Q4_0 rows written as constexpr_blockwise_shift_scale (int8 q, or int4 q - 8, with
 * the block's fp16 d as scale) evaluate exactly to GGUF's dequantization. */
static void q8_0_q4_0_exact(void) {
    const int64_t M = 8, K = 128, NB = K / 32;
    float *w = rand_vec(M * K, 0.3f), *gguf = malloc((size_t)(M * K) * 4), *got = malloc((size_t)(M * K) * 4);
    for (int t = 0; t < 2; t++) {
        const an_type ty = t ? AN_TYPE_Q4_0 : AN_TYPE_Q8_0;
        an_block_q8_0 b8[NB];
        an_block_q4_0 b4[NB];
        an_blob_writer *bw;
        an_err err;
        an_err_clear(&err);
        an_blob_writer_create(&bw, &err);
        uint8_t q[M * K];
        uint16_t d[M * NB];
        for (int64_t m = 0; m < M; m++) {
            void *blk = t ? (void *)b4 : (void *)b8;
            an_quant_row_ref(ty, w + m * K, blk, K);
            an_dequant_row(ty, blk, gguf + m * K, K);
            for (int64_t b = 0; b < NB; b++) {
                d[m * NB + b] = t ? b4[b].d : b8[b].d;
                for (int j = 0; j < 32; j++) {
                    int v = t ? (j < 16 ? b4[b].qs[j] & 15 : b4[b].qs[j - 16] >> 4) - 8 : b8[b].qs[j];
                    q[m * K + b * 32 + j] = (uint8_t)(v & (t ? 15 : 255));
                }
            }
        }
        uint8_t packed[M * K];
        if (t) an_blob_pack_bits(q, (uint64_t)(M * K), 4, packed);
        else memcpy(packed, q, sizeof packed);
        uint64_t oq = append(bw, t ? AN_BLOB_INT4 : AN_BLOB_INT8, packed, (uint64_t)(M * K));
        uint64_t od = append(bw, AN_BLOB_FP16, d, (uint64_t)(M * NB));
        sb s = {0};
        sb_printf(&s, "%s    func main<ios18>(tensor<fp16, [1, %lld, 1, 1]> x) {\n", HEAD, (long long)M);
        char dims[32], sd[32];
        snprintf(dims, sizeof dims, "%lld, %lld, 1, 1", (long long)M, (long long)K);
        snprintf(sd, sizeof sd, "%lld, %lld, 1, 1", (long long)M, (long long)NB);
        blobfile_const(&s, "q", t ? "int4" : "int8", dims, oq);
        blobfile_const(&s, "d", "fp16", sd, od);
        sb_printf(&s, "        tensor<fp16, [%s]> W = constexpr_blockwise_shift_scale(data = q, scale = d)[name = string(\"W\")];\n"
                      "    } -> (x);\n}",
                  dims);
        size_t bl;
        const uint8_t *blob = an_blob_bytes(bw, &bl);
        an_status st = an_mil_ref_const_f32(s.p, s.n, blob, bl, "main", "W", got, M * K, &err);
        T_CHECK(st == AN_OK, "%s", err.msg);
        if (st == AN_OK) {
            int bad = 0;
            for (int64_t i = 0; i < M * K; i++) bad += memcmp(&got[i], &gguf[i], 4) != 0;
            t_note("%s: %d of %lld values differ from GGUF's dequantization (exact: 0)", t ? "Q4_0" : "Q8_0", bad,
                   (long long)(M * K));
            T_CHECK(bad == 0, "%d", bad);
        }
        /* the executor itself holds the fp16 fold: within half an fp16 ulp of each value */
        an_mil_ref *r = NULL;
        T_CHECK(an_mil_ref_load(&r, s.p, s.n, blob, bl, &err) == AN_OK, "%s", err.msg);
        an_mil_ref_free(r);
        T_CHECK(an_mil_ref_const_f32(s.p, s.n, blob, bl, "main", "nope", got, 1, &err) == AN_E_USAGE);
        free(s.p);
        an_blob_writer_free(bw);
    }
    free(w);
    free(gguf);
    free(got);
}

/* ---- malformed input ---------------------------------------------------------------------- */

/* A small valid program and its blob (fp16 weight [3, 4] at metadata offset 64). */
static char *small_prog(uint8_t **blob, size_t *bl) {
    an_blob_writer *bw;
    an_err err;
    an_err_clear(&err);
    an_blob_writer_create(&bw, &err);
    uint16_t w[12];
    for (int i = 0; i < 12; i++) w[i] = an_f32_to_f16((float)(i - 5) / 4);
    append(bw, AN_BLOB_FP16, w, 12);
    const uint8_t *b = an_blob_bytes(bw, bl);
    *blob = malloc(*bl);
    memcpy(*blob, b, *bl);
    an_blob_writer_free(bw);
    sb s = {0};
    sb_printf(&s, "%s    func main<ios18>(tensor<fp16, [1, 2, 1, 4]> x) {\n", HEAD);
    conv_consts(&s);
    blobfile_const(&s, "w0", "fp16", "3, 4, 1, 1", 64);
    sb_printf(&s, "        tensor<fp16, [1, 4, 1, 2]> xt = transpose(x = x, perm = perm)[name = string(\"xt\")];\n");
    conv_stmt(&s, "c0", "xt", "w0", 3, 2);
    sb_printf(&s, "        tensor<fp16, [1, 2, 1, 3]> y0 = transpose(x = c0, perm = perm)[name = string(\"y0\")];\n"
                  "    } -> (y0);\n}");
    return s.p;
}

/* load from an exactly sized copy, so ASan sees any read past the end */
static an_status load_copy(const char *text, size_t n, const uint8_t *blob, size_t bl, an_err *err) {
    char *t = malloc(n ? n : 1);
    memcpy(t, text, n);
    uint8_t *b = NULL;
    if (blob) {
        b = malloc(bl ? bl : 1);
        memcpy(b, blob, bl);
    }
    an_mil_ref *r = NULL;
    an_err_clear(err);
    an_status st = an_mil_ref_load(&r, t, n, b, bl, err);
    if (st == AN_OK) {
        /* run it once with zeros too */
        uint16_t in[8] = {0}, out[6];
        const uint16_t *ip[1] = {in};
        uint16_t *op[1] = {out};
        if (an_mil_ref_run(r, 0, ip, op, NULL, err) != AN_OK) T_FAIL("run: %s", err->msg);
    }
    an_mil_ref_free(r);
    free(t);
    free(b);
    return st;
}

static void truncated_text(void) {
    uint8_t *blob;
    size_t bl;
    char *text = small_prog(&blob, &bl);
    const size_t n = strlen(text);
    an_err err;
    T_CHECK(load_copy(text, n, blob, bl, &err) == AN_OK, "%s", err.msg);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        an_status st = load_copy(text, cut, blob, bl, &err);
        if (st == AN_OK || err.msg[0] == 0) {
            if (!bad++) T_FAIL("truncated at byte %zu of %zu: accepted or no message", cut, n);
        }
    }
    T_CHECK(bad == 0, "%d truncations accepted", bad);
    t_note("%zu truncations of a %zu-byte program, all refused with a message", n, n);
    free(text);
    free(blob);
}

static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    if (!p) return NULL;
    size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *o = malloc(n - fl + tl + 1);
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, p + fl, n - a - fl + 1);
    return o;
}

static void malformed_text(void) {
    uint8_t *blob;
    size_t bl;
    char *text = small_prog(&blob, &bl);
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"= conv(", "= convo(", "unknown or unsupported op 'convo'"},
        {"[1, 3, 1, 2]> c0", "[1, 4, 1, 2]> c0", "declared type tensor<fp16, [1, 4, 1, 2]>, but the op produces tensor<fp16, [1, 3, 1, 2]>"},
        {"[1, 2, 1, 3]> y0", "[1, 2, 3]> y0", "declared type tensor<fp16, [1, 2, 3]>"},
        {"tensor<fp16, [1, 2, 1, 3]> y0", "tensor<int32, [1, 2, 1, 3]> y0", "but the op produces tensor<fp16"},
        {"weight = w0", "weight = w9", "'w9' is not defined"},
        {"weight = w0", "weights = w0", "no argument 'weights'"},
        {"> xt = transpose", "> perm = transpose", "'perm' is already defined"},
        {"[1, 2, 1, 4]> x", "[1, 2, 1, 4, 1, 1]> x", "rank above 5"},
        {"[1, 2, 1, 4]> x", "[1, 65537, 1, 4]> x", "axis 65537 is outside 1..65536"},
        {"[1, 2, 1, 4]> x", "[1, 0, 1, 4]> x", "axis 0 is outside"},
        {"offset = uint64(64)", "offset = uint64(128)", "not the metadata offset"},
        {"weight.bin", "other.bin", "BLOBFILE path must be"},
        {"tensor<fp16, [3, 4, 1, 1]> w0 = const()[name = string(\"w0\"), val = tensor<fp16, [3, 4, 1, 1]>",
         "tensor<int8, [3, 4, 1, 1]> w0 = const()[name = string(\"w0\"), val = tensor<int8, [3, 4, 1, 1]>",
         "holds fp16, the type says int8"},
        {"[3, 4, 1, 1]> w0 = const()[name = string(\"w0\"), val = tensor<fp16, [3, 4, 1, 1]>",
         "[3, 2, 1, 1]> w0 = const()[name = string(\"w0\"), val = tensor<fp16, [3, 2, 1, 1]>", "need 12"},
        {"x = xt, weight", "x = perm, weight", "expected an fp16 tensor"},
        {"weight = w0", "weight = xt", "weight must be a const"},
        {"<ios18>", "<ios17>", "opset 'ios17' is not supported"},
        {"[0, 3, 2, 1]", "[0, 3, 3, 1]", "not a permutation"},
        {"strides = strides, ", "", "c0"},                      /* still valid: strides are optional */
        {"weight = w0, ", "", "missing argument weight"},
        {"name = string(\"xt\")", "name = string(\"xu\")", "name attribute differs"},
        {"-> (y0)", "-> (y1)", "output 'y1' is not defined"},
        {"program(1.3)", "program(1.4)", "version 1.3"},
        {"int32(1)", "int32(1.5)", "expected an integer"},
        {"int32(1)", "int32(2)", "only groups 1"},
        {"int32(1)", "int8(1)", "declared type int32 but the value is int8"},
        {"([1, 1])", "([1, 1, 1])", "more than the 2 elements"},
        {"([1, 1])", "([1])", "has 1 elements, its type 2"},
        {"string(\"valid\")", "string(\"full\")", "pad_type must be"},
        {"string(\"valid\")", "string(\"valid)", "unterminated string"},
        {"perm = perm)[name = string(\"xt\")]", "perm = perm)[name = string(\"xt\"), val = int32(1)]", "only const takes a val"},
        {"x = xt, weight", "x = xt, x = xt, weight", "argument 'x' given twice"},
        {"    } -> (y0);\n}", "    } -> (y0);\n}}", "end of text after the program"},
        {"uint64(64)", "uint64(0x40)", "c0"}, /* valid: hex integer */
        {"val = int32(1)", "val = int32(1)\x01", "unexpected byte 0x01"},
    };
    int n_ok = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = replace(text, cases[i].from, cases[i].to);
        if (!m) {
            T_FAIL("case %zu: '%s' not in the program", i, cases[i].from);
            continue;
        }
        an_err err;
        an_status st = load_copy(m, strlen(m), blob, bl, &err);
        const bool valid = !strcmp(cases[i].want, "c0");
        if (valid) {
            T_CHECK(st == AN_OK, "case %zu should load: %s", i, err.msg);
        } else {
            T_CHECK(st != AN_OK && strstr(err.msg, cases[i].want), "case %zu: want \"%s\", got \"%s\"", i,
                    cases[i].want, err.msg);
            T_CHECK(strstr(err.msg, "line ") && strstr(err.msg, "column "), "case %zu: no position: %s", i, err.msg);
            n_ok += st != AN_OK;
        }
        free(m);
    }
    /* the position is the offending token's: "weights" is on line 13 (header 3 lines, func 1,
     * 6 consts, w0, xt, then c0), after "conv(x = xt, " */
    char *m = replace(text, "weight = w0", "weights = w0");
    an_err err;
    load_copy(m, strlen(m), blob, bl, &err);
    T_CHECK(strstr(err.msg, "MIL line 13, column 54") != NULL, "%s", err.msg);
    free(m);
    t_note("%d malformed variants refused, e.g. \"%s\"", n_ok, err.msg);
    /* no weight file at all */
    T_CHECK(load_copy(text, strlen(text), NULL, 0, &err) != AN_OK && strstr(err.msg, "no weight file"), "%s", err.msg);
    free(text);
    free(blob);
}

static void malformed_blob(void) {
    uint8_t *blob;
    size_t bl;
    char *text = small_prog(&blob, &bl);
    an_err err;
    static const struct {
        size_t at;
        uint8_t val;
        const char *want;
    } cases[] = {
        {64, 0x00, "sentinel"},  /* sentinel */
        {4, 0x03, "version"},    /* storage version */
        {68, 0x04, "holds int8"}, /* dtype int8 while the MIL says fp16 */
        {72, 0x02, "bytes after the last"}, /* size */
        {80, 0xC0, "lies outside the file"}, /* data offset */
        {0, 0x02, "count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *b = malloc(bl);
        memcpy(b, blob, bl);
        b[cases[i].at] = cases[i].val;
        an_status st = load_copy(text, strlen(text), b, bl, &err);
        T_CHECK(st != AN_OK && strstr(err.msg, cases[i].want), "case %zu: want %s, got %s", i, cases[i].want, err.msg);
        free(b);
    }
    /* every truncation of the blob */
    int bad = 0;
    for (size_t cut = 0; cut < bl; cut++)
        bad += load_copy(text, strlen(text), blob, cut, &err) == AN_OK || !err.msg[0];
    T_CHECK(bad == 0, "%d blob truncations accepted", bad);
    free(text);
    free(blob);
}

/* Inline literal forms: nested tensor lists, hex floats, negative numbers, reshape and
 * slice with stride, masks and negative indices. */
static void literals_and_shapes(void) {
    const char *text =
        "program(1.3)\n{\n  func f<ios18>(tensor<fp16, [2, 6]> x) {\n"
        "    tensor<fp16, [2, 1]> c = const()[name = string(\"c\"), val = tensor<fp16, [2, 1]>([[0x1.8p+1], [-0.5]])];\n"
        "    tensor<fp16, [2, 6]> m = mul(x = x, y = c)[name = string(\"m\")];\n"
        "    tensor<int32, [3]> shp = const()[name = string(\"shp\"), val = tensor<int32, [3]>([3, -1, 2])];\n"
        "    tensor<fp16, [3, 2, 2]> r = reshape(x = m, shape = shp)[name = string(\"r\")];\n"
        "    tensor<int32, [2]> b = const()[name = string(\"b\"), val = tensor<int32, [2]>([0, -5])];\n"
        "    tensor<int32, [2]> e = const()[name = string(\"e\"), val = tensor<int32, [2]>([2, 6])];\n"
        "    tensor<int32, [2]> st = const()[name = string(\"st\"), val = tensor<int32, [2]>([1, 2])];\n"
        "    tensor<bool, [2]> em = const()[name = string(\"em\"), val = tensor<bool, [2]>([true, false])];\n"
        "    tensor<fp16, [2, 3]> s = slice_by_index(x = x, begin = b, end = e, stride = st, end_mask = em)[name = string(\"s\")];\n"
        "    tensor<fp16, [2, 3]> s2 = add(x = s, y = fp16(0x1p-2))[name = string(\"s2\")];\n"
        "  } -> (r, s2);\n}";
    an_err err;
    an_mil_ref *r = load_text(text, &err);
    T_CHECK(r, "%s", err.msg);
    if (!r) return;
    uint16_t x[12], ro[12], so[6];
    for (int i = 0; i < 12; i++) x[i] = an_f32_to_f16((float)i);
    const uint16_t *in[1] = {x};
    uint16_t *out[2] = {ro, so};
    T_CHECK(an_mil_ref_run(r, 0, in, out, NULL, &err) == AN_OK, "%s", err.msg);
    for (int i = 0; i < 12; i++) T_CHECK(an_f16_to_f32(ro[i]) == (float)i * (i < 6 ? 3.0f : -0.5f), "r[%d]", i);
    /* rows 0..1, columns 1, 3, 5 (begin -5 = 1, stride 2), plus 0.25 */
    for (int i = 0; i < 6; i++) {
        const float want = (float)((i / 3) * 6 + 1 + 2 * (i - i / 3 * 3)) + 0.25f;
        T_CHECK(an_f16_to_f32(so[i]) == want, "s[%d] = %g, want %g", i, an_f16_to_f32(so[i]), want);
    }
    T_CHECK(an_mil_ref_output(r, 0, 0)->rank == 3 && an_mil_ref_work_bytes(r) > 0);
    an_mil_ref_free(r);
}


/* ---- programs from the emitter (mil/emit.c) ----------------------------------------------- */

/* A weight as the model holds it: type F16, Q8_0, Q4_0 (reference quantizer) or LUT4/LUT6
 * (random indices, tables of 8 rows, row scales); deq gets its dequantized rows. */
typedef struct ew {
    an_mat m;
    void *data;
    uint16_t *lut, *rs;
    float *deq;
} ew;

static ew make_ew(uint32_t type, int64_t rows, int64_t cols, const char *name) {
    ew w;
    memset(&w, 0, sizeof w);
    w.m.type = type;
    w.m.rows = rows;
    w.m.cols = cols;
    w.m.name = name;
    w.deq = malloc((size_t)(rows * cols) * sizeof *w.deq);
    const int bits = an_lut_bits(type);
    if (bits) {
        w.m.row_bytes = an_lut_row_bytes(bits, cols);
        w.m.lut_group = 8;
        w.lut = malloc((size_t)(rows / 8 << bits) * 2);
        w.rs = malloc((size_t)rows * 2);
        for (int64_t i = 0; i < rows / 8 << bits; i++) w.lut[i] = an_f32_to_f16(frand());
        for (int64_t r = 0; r < rows; r++) w.rs[r] = an_f32_to_f16(0.05f + 0.1f * fabsf(frand()));
        w.m.lut = w.lut;
        w.m.row_scale = w.rs;
        w.data = malloc(w.m.row_bytes * (uint64_t)rows);
        uint8_t *idx = malloc((size_t)cols);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t k = 0; k < cols; k++) idx[k] = (uint8_t)((g_rng = g_rng * 6364136223846793005ull + 1) >> 58) & ((1 << bits) - 1);
            an_lut_pack_row(idx, cols, bits, (uint8_t *)w.data + w.m.row_bytes * (uint64_t)r);
        }
        free(idx);
        w.m.data = w.data;
        for (int64_t r = 0; r < rows; r++) an_lut_dequant_row(&w.m, r, w.deq + r * cols);
        return w;
    }
    w.m.row_bytes = an_row_bytes(an_type_traits_get(type), (uint64_t)cols);
    w.data = malloc(w.m.row_bytes * (uint64_t)rows);
    float *row = malloc((size_t)cols * sizeof *row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) row[k] = frand() * 0.2f;
        an_quant_row_ref((an_type)type, row, (uint8_t *)w.data + w.m.row_bytes * (uint64_t)r, cols);
        an_dequant_row((an_type)type, (uint8_t *)w.data + w.m.row_bytes * (uint64_t)r, w.deq + r * cols, cols);
    }
    free(row);
    w.m.data = w.data;
    return w;
}

static void free_ew(ew *w) {
    free(w->data);
    free(w->lut);
    free(w->rs);
    free(w->deq);
}

/* Runs emitted function fn on x [n][K] (split over its inputs by column as an_mil_io says) and
 * gathers each output tile into y[weight][n][rows[weight]]. Checks the executor sees the shapes
 * an_mil_io promises. */
static bool run_emitted(an_mil_ref *r, const an_mil_program *p, int fn, const float *x, int64_t K, float **y,
                        const int64_t *rows) {
    const struct an_mil_io *io = &p->io[fn];
    const int n = io->n;
    if (an_mil_ref_n_inputs(r, fn) != io->n_in || an_mil_ref_n_outputs(r, fn) != io->n_out) {
        T_FAIL("fn %d: executor sees %d inputs / %d outputs, an_mil_io says %d / %d", fn, an_mil_ref_n_inputs(r, fn),
               an_mil_ref_n_outputs(r, fn), io->n_in, io->n_out);
        return false;
    }
    uint16_t *in[AN_MIL_MAX_IN], *out[AN_MIL_MAX_OUT];
    bool ok = true;
    for (int i = 0; i < io->n_in; i++) {
        const an_mil_ref_tensor *t = an_mil_ref_input(r, fn, i);
        ok &= t->rank == 4 && t->dims[1] == n && t->dims[3] == io->in_width[i];
        in[i] = malloc((size_t)(n * io->in_width[i]) * 2);
        for (int t2 = 0; t2 < n; t2++)
            for (int64_t c = 0; c < io->in_width[i]; c++)
                in[i][t2 * io->in_width[i] + c] = an_f32_to_f16(x[t2 * K + io->in_col0[i] + c]);
    }
    for (int j = 0; j < io->n_out; j++) {
        const an_mil_ref_tensor *t = an_mil_ref_output(r, fn, j);
        ok &= t->rank == 4 && t->dims[1] == n && t->dims[3] == io->out_width[j];
        out[j] = malloc((size_t)(n * io->out_width[j]) * 2);
    }
    T_CHECK(ok, "fn %d: input/output shapes differ from an_mil_io", fn);
    an_err err;
    an_err_clear(&err);
    an_status st = an_mil_ref_run(r, fn, (const uint16_t *const *)in, out, NULL, &err);
    T_CHECK(st == AN_OK, "%s", err.msg);
    for (int j = 0; j < io->n_out && st == AN_OK; j++) {
        const int wi = io->out_w[j];
        for (int t2 = 0; t2 < n; t2++)
            for (int64_t c = 0; c < io->out_width[j]; c++)
                y[wi][t2 * rows[wi] + io->out_col0[j] + c] = an_f16_to_f32(out[j][t2 * io->out_width[j] + c]);
    }
    for (int i = 0; i < io->n_in; i++) free(in[i]);
    for (int j = 0; j < io->n_out; j++) free(out[j]);
    return ok && st == AN_OK;
}

static bool load_emitted(const an_mil_fn *fns, int n_fns, an_ane_family fam, an_mil_program *p, an_mil_ref **r) {
    an_err err;
    an_err_clear(&err);
    *r = NULL;
    if (an_mil_emit(fns, n_fns, fam, p, &err) != AN_OK) {
        T_FAIL("emit: %s", err.msg);
        return false;
    }
    if (an_mil_ref_load(r, p->text, p->text_len, p->blob, p->blob_len, &err) != AN_OK) {
        T_FAIL("the executor refuses the emitted program: %s", err.msg);
        return false;
    }
    return true;
}

/* Emitted LINEAR with Q/K/V in four formats (F16, Q8_0, Q4_0, LUT6 with row scales), at two
 * buckets in one bank (the weights stored once): each output against float math on the
 * GGUF-dequantized weights, NMSE bound 2e-6 (fp16 folding and output rounding only). */
static void emitted_linear_bank(void) {
    const int64_t K = 128;
    const uint32_t types[4] = {AN_TYPE_F16, AN_TYPE_Q8_0, AN_TYPE_Q4_0, AN_TYPE_LUT6};
    const int64_t rows[4] = {64, 32, 32, 48};
    ew w[4];
    for (int i = 0; i < 4; i++) w[i] = make_ew(types[i], rows[i], K, "w");
    an_mil_fn fns[2];
    for (int f = 0; f < 2; f++) {
        fns[f] = (an_mil_fn){.kind = AN_MIL_LINEAR, .n_w = 4, .n = 32 * (f + 1)};
        for (int i = 0; i < 4; i++) fns[f].w[i] = &w[i].m;
    }
    an_mil_program p;
    an_mil_ref *r;
    float *x = rand_vec(64 * K, 1.0f), *y[4];
    double *ref = malloc((size_t)(64 * 64) * 8);
    for (int i = 0; i < 4; i++) y[i] = malloc((size_t)(64 * rows[i]) * 4);
    if (load_emitted(fns, 2, AN_ANE_M4_PLUS, &p, &r)) {
        for (int f = 0; f < 2; f++) {
            if (!run_emitted(r, &p, f, x, K, y, rows)) continue;
            for (int i = 0; i < 4; i++) {
                matmul_ref(x, w[i].deq, fns[f].n, K, rows[i], ref);
                double e = nmse(y[i], ref, fns[f].n * rows[i]);
                t_note("fn %d (n = %d) %s: NMSE %.2e (bound 2e-6)", f, fns[f].n, an_type_name(types[i]), e);
                T_CHECK(e < 2e-6, "%g", e);
            }
        }
        an_mil_ref_free(r);
        an_mil_program_free(&p);
    }
    for (int i = 0; i < 4; i++) {
        free_ew(&w[i]);
        free(y[i]);
    }
    free(x);
    free(ref);
}

/* Emitted FFN (silu as sigmoid then mul) with LUT4 gate/up and Q8_0 down: against float math
 * with exact silu on the dequantized weights, NMSE bound 2e-5 (as the hand-written FFN). */
static void emitted_ffn(void) {
    const int64_t K = 64, F = 128;
    const int n = 32;
    ew g = make_ew(AN_TYPE_LUT4, F, K, "gate"), u = make_ew(AN_TYPE_LUT4, F, K, "up"),
       d = make_ew(AN_TYPE_Q8_0, K, F, "down");
    an_mil_fn fn = {.kind = AN_MIL_FFN, .w = {&g.m, &u.m, &d.m}, .n_w = 3, .n = n};
    an_mil_program p;
    an_mil_ref *r;
    float *x = rand_vec(n * K, 1.0f), *y = malloc((size_t)(n * K) * 4);
    double *gr = malloc((size_t)(n * F) * 8), *ur = malloc((size_t)(n * F) * 8), *ref = malloc((size_t)(n * K) * 8);
    const int64_t rows[1] = {K};
    if (load_emitted(&fn, 1, AN_ANE_M4_PLUS, &p, &r)) {
        if (run_emitted(r, &p, 0, x, K, &y, rows)) {
            matmul_ref(x, g.deq, n, K, F, gr);
            matmul_ref(x, u.deq, n, K, F, ur);
            for (int t = 0; t < n; t++)
                for (int64_t k = 0; k < K; k++) {
                    double acc = 0;
                    for (int64_t f = 0; f < F; f++)
                        acc += gr[t * F + f] / (1 + exp(-gr[t * F + f])) * ur[t * F + f] * d.deq[k * F + f];
                    ref[t * K + k] = acc;
                }
            double e = nmse(y, ref, n * K);
            t_note("emitted FFN: NMSE %.2e (bound 2e-5)", e);
            T_CHECK(e < 2e-5, "%g", e);
        }
        an_mil_ref_free(r);
        an_mil_program_free(&p);
    }
    free_ew(&g);
    free_ew(&u);
    free_ew(&d);
    free(x);
    free(y);
    free(gr);
    free(ur);
    free(ref);
}

/* Emitted programs tiled to the M1-M3 cap (16384): an LM-head-like weight with 20000 rows
 * (two output tiles) and one with K = 20000 (two inputs whose partial convs are added). The
 * K split rounds each partial sum to fp16 before the add: NMSE bound 2e-6 still holds. */
static void emitted_tiled(void) {
    const int n = 32;
    struct {
        int64_t rows, cols;
    } shapes[2] = {{20000, 64}, {48, 20000}};
    for (int s = 0; s < 2; s++) {
        const int64_t M = shapes[s].rows, K = shapes[s].cols;
        ew w = make_ew(AN_TYPE_F16, M, K, s ? "wide" : "head");
        an_mil_fn fn = {.kind = AN_MIL_LINEAR, .w = {&w.m}, .n_w = 1, .n = n};
        an_mil_program p;
        an_mil_ref *r;
        float *x = rand_vec(n * K, 1.0f), *y = malloc((size_t)(n * M) * 4);
        double *ref = malloc((size_t)(n * M) * 8);
        if (load_emitted(&fn, 1, AN_ANE_M1_M3, &p, &r)) {
            t_note("%s [%lld x %lld]: %d inputs, %d outputs", w.m.name, (long long)M, (long long)K, p.io[0].n_in,
                   p.io[0].n_out);
            T_CHECK(s ? p.io[0].n_in > 1 : p.io[0].n_out > 1, "not tiled");
            if (run_emitted(r, &p, 0, x, K, &y, &M)) {
                matmul_ref(x, w.deq, n, K, M, ref);
                double e = nmse(y, ref, n * M);
                t_note("%s: NMSE %.2e (bound 2e-6)", w.m.name, e);
                T_CHECK(e < 2e-6, "%g", e);
            }
            an_mil_ref_free(r);
            an_mil_program_free(&p);
        }
        free_ew(&w);
        free(x);
        free(y);
        free(ref);
    }
}

const t_case t_suite_ane_ref[] = {
    {"linear_formats", linear_formats},
    {"conv_fast_vs_scalar", conv_fast_vs_scalar},
    {"qkv_three_outputs", qkv_three_outputs},
    {"ffn_sigmoid_and_silu", ffn_sigmoid_and_silu},
    {"two_function_bank", two_function_bank},
    {"k_sliced_add", k_sliced_add},
    {"fp16_overflow_inf", fp16_overflow_inf},
    {"q8_0_q4_0_exact", q8_0_q4_0_exact},
    {"literals_and_shapes", literals_and_shapes},
    {"truncated_text", truncated_text},
    {"malformed_text", malformed_text},
    {"malformed_blob", malformed_blob},
    {"emitted_linear_bank", emitted_linear_bank},
    {"emitted_ffn", emitted_ffn},
    {"emitted_tiled", emitted_tiled},
    {0},
};
