/* test_palettize.c — the k-means palettizer (src/quant/palettize.c) and the LUT files and
 * load-time option built on it: clustering quality on known data and against the exact 1-D
 * optimum, byte-identical output for any thread count, nearest-entry assignment against the
 * rounded fp16 tables, quantize -> load -> run of a LUT6 TinyScribe, --weights through the
 * compile cache, KL against a saved base, and the error messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anelm.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "gguf/gguf.h"
#include "json.h"
#include "quant/lut.h"
#include "quant/palettize.h"
#include "t.h"

/* deterministic pseudo-random numbers for the test data */
static uint64_t rs = 0x1234567;
static double urand(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}
static float grand(void) { /* Box-Muller */
    double a = urand(), b = urand();
    return (float)(sqrt(-2 * log(a + 1e-300)) * cos(6.283185307179586 * b));
}

/* ---- the 1-D k-means core ------------------------------------------------------------------ */

static void kmeans_recovers_known_clusters(void) {
    const int k = 8, per = 500;
    float *x = malloc(sizeof(float) * k * per), c[8];
    const float centers[8] = {-3.5f, -2.0f, -1.25f, -0.5f, 0.1f, 0.9f, 2.2f, 4.0f};
    for (int i = 0; i < k * per; i++) x[i] = centers[i % k] + 0.02f * (float)(urand() - 0.5);
    double cost = an_kmeans_1d(x, NULL, k * per, k, 0, 1, c);
    double maxd = 0;
    for (int j = 0; j < k; j++) { /* not fmax: aarch64 gcc 12 -O2 ICEs vectorizing that reduction */
        const double d = fabs(c[j] - centers[j]);
        if (d > maxd) maxd = d;
    }
    t_note("8 clusters of 500 (noise +-0.01): max centroid error %.2e, cost %.3e", maxd, cost);
    T_CHECK(maxd < 0.005, "centroid off by %g", maxd);
    for (int j = 1; j < k; j++) T_CHECK(c[j] > c[j - 1], "centroids not ascending at %d", j);
    free(x);
}

/* Exact 1-D k-means by dynamic programming over sorted values, O(k n^2). */
static double kmeans_optimal(const float *x0, int n, int k) {
    double *x = malloc(sizeof(double) * n), *p1 = calloc(n + 1, 8), *p2 = calloc(n + 1, 8);
    double *D = malloc(sizeof(double) * (size_t)(k + 1) * (n + 1));
    for (int i = 0; i < n; i++) x[i] = x0[i];
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
    for (int i = 0; i < n; i++) p1[i + 1] = p1[i] + x[i], p2[i + 1] = p2[i] + x[i] * x[i];
#define SEG(a, b) ((p2[b] - p2[a]) - (p1[b] - p1[a]) * (p1[b] - p1[a]) / (double)((b) - (a)))
    for (int i = 0; i <= n; i++) D[i] = i ? INFINITY : 0;
    for (int m = 1; m <= k; m++)
        for (int i = 0; i <= n; i++) {
            double best = i ? INFINITY : 0;
            for (int j = 0; j < i; j++) {
                double v = D[(m - 1) * (n + 1) + j] + SEG(j, i);
                if (v < best) best = v;
            }
            D[m * (n + 1) + i] = best;
        }
#undef SEG
    double r = D[k * (n + 1) + n];
    free(x), free(p1), free(p2), free(D);
    return r;
}

/* Lloyd from k-means++ finds a local optimum; with the values per cluster of real groups (32+)
 * it stays within a few percent of the exact one. */
static void kmeans_near_the_exact_optimum(void) {
    const int n = 2048;
    float *x = malloc(sizeof(float) * n), c[64];
    double worst[2] = {1, 1};
    for (int trial = 0; trial < 4; trial++) {
        for (int i = 0; i < n; i++)
            x[i] = trial % 2 ? grand() * (urand() < 0.01 ? 6.0f : 1.0f)
                             : (float)pow(urand(), 3) * (urand() < 0.5 ? -1 : 1);
        const int k = trial < 2 ? 16 : 64;
        double got = an_kmeans_1d(x, NULL, n, k, 0, (uint64_t)trial, c), opt = kmeans_optimal(x, n, k);
        double ratio = opt > 0 ? got / opt : 1, bound = 1.10;
        if (ratio > worst[k == 64]) worst[k == 64] = ratio;
        T_CHECK(got >= opt * (1 - 1e-9), "cost %g below the optimum %g?", got, opt);
        T_CHECK(ratio < bound, "k=%d: cost %g is %.3fx the optimum %g", k, got, ratio, opt);
    }
    t_note("n = 2048 (Gaussian with outliers, cubed uniform): worst cost / exact optimum %.4f at k = 16 (bound 1.10), "
           "%.4f at k = 64 (bound 1.10)", worst[0], worst[1]);
    free(x);
}

static void kmeans_weights_and_degenerate_input(void) {
    /* weight 0 values do not pull the centroid */
    float x[6] = {1, 2, 3, 100, 200, 300}, w[6] = {1, 1, 1, 0, 0, 0}, c[16];
    double cost = an_kmeans_1d(x, w, 6, 1, 0, 0, c);
    T_CHECK(fabsf(c[0] - 2.0f) < 1e-6f, "weighted mean %g, want 2", c[0]);
    T_CHECK(fabs(cost - 2.0) < 1e-9, "cost %g, want 2", cost);
    /* fewer distinct values than clusters: every value is a centroid, cost 0, list ascending */
    float y[9] = {0.5f, -1, 0.5f, 2, -1, 2, 2, 0.5f, -1};
    cost = an_kmeans_1d(y, NULL, 9, 16, 0, 3, c);
    T_CHECK(cost == 0, "cost %g, want 0", cost);
    T_CHECK(c[0] == -1 && c[1] == 0.5f && c[2] == 2 && c[15] == 2, "centroids %g %g %g .. %g", c[0], c[1], c[2], c[15]);
    for (int j = 1; j < 16; j++) T_CHECK(c[j] >= c[j - 1], "not ascending at %d", j);
    /* one value */
    cost = an_kmeans_1d(y, NULL, 1, 4, 0, 0, c);
    T_CHECK(cost == 0 && c[0] == 0.5f && c[3] == 0.5f, "single value: cost %g, c %g", cost, c[0]);
}

/* ---- whole matrices ------------------------------------------------------------------------ */

typedef struct palres {
    uint8_t *idx;
    uint16_t *lut, *scale;
    size_t idx_b, lut_n;
    double sse, ssw;
} palres;

static an_status pal_run(int nth, int bits, int group, bool rs_on, uint64_t seed, const float *w, int64_t rows,
                         int64_t cols, palres *r, an_err *err) {
    an_pool *pool;
    if (an_pool_create(&pool, nth, err) != AN_OK) return err->code;
    an_pal_params p = an_pal_defaults(bits);
    p.group = group, p.row_scale = rs_on, p.seed = seed;
    const int64_t g = an_pal_group(rows, group);
    r->idx_b = (size_t)an_lut_row_bytes(bits, cols) * (size_t)rows;
    r->lut_n = (size_t)(rows / g) << bits;
    r->idx = malloc(r->idx_b);
    r->lut = malloc(r->lut_n * 2);
    r->scale = malloc((size_t)rows * 2);
    an_status s = an_palettize(pool, AN_TYPE_F32, w, rows, cols, &p, 42, r->idx, r->lut, r->scale, "test.weight",
                               &r->sse, &r->ssw, err);
    an_pool_free(pool);
    return s;
}

static void palres_free(palres *r) {
    free(r->idx), free(r->lut), free(r->scale);
    memset(r, 0, sizeof *r);
}

static float *gauss_matrix(int64_t rows, int64_t cols) {
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++) {
        float s = 0.01f * (1.0f + (float)(r % 7)); /* rows of different magnitude */
        for (int64_t c = 0; c < cols; c++) w[r * cols + c] = s * grand() * (urand() < 0.01 ? 8.0f : 1.0f);
    }
    return w;
}

static void same_bytes_for_any_thread_count(void) {
    const int64_t rows = 96, cols = 256;
    float *w = gauss_matrix(rows, cols);
    for (int rs_on = 0; rs_on < 2; rs_on++) {
        palres a, b, c, d;
        an_err err = {0};
        T_CHECK(pal_run(1, 6, 4, rs_on, 7, w, rows, cols, &a, &err) == AN_OK, "%s", err.msg);
        T_CHECK(pal_run(2, 6, 4, rs_on, 7, w, rows, cols, &b, &err) == AN_OK, "%s", err.msg);
        T_CHECK(pal_run(3, 6, 4, rs_on, 7, w, rows, cols, &c, &err) == AN_OK, "%s", err.msg);
        T_CHECK(pal_run(2, 6, 4, rs_on, 8, w, rows, cols, &d, &err) == AN_OK, "%s", err.msg);
        T_CHECK(!memcmp(a.idx, b.idx, a.idx_b) && !memcmp(a.idx, c.idx, a.idx_b), "indices differ by thread count");
        T_CHECK(!memcmp(a.lut, b.lut, a.lut_n * 2) && !memcmp(a.lut, c.lut, a.lut_n * 2), "tables differ by thread count");
        if (rs_on) T_CHECK(!memcmp(a.scale, b.scale, rows * 2) && !memcmp(a.scale, c.scale, rows * 2), "scales differ");
        T_CHECK(memcmp(a.lut, d.lut, a.lut_n * 2) != 0, "another seed gives the same tables");
        palres_free(&a), palres_free(&b), palres_free(&c), palres_free(&d);
    }
    t_note("96 x 256, LUT6, groups of 4, with and without row scale: 1, 2 and 3 threads give identical bytes");
    free(w);
}

/* Every index is the nearest entry of the rounded table, the tables ascend, the reported error
 * matches the reference dequantization, and more bits means less error. */
static void assignment_tables_and_error(void) {
    const int64_t rows = 64, cols = 512;
    float *w = gauss_matrix(rows, cols), *y = malloc(sizeof(float) * cols);
    double prev_rel = 1;
    for (int bits = 4; bits <= 8; bits += 2)
        for (int rs_on = 0; rs_on < 2; rs_on++) {
            palres r;
            an_err err = {0};
            if (pal_run(2, bits, 8, rs_on, 1, w, rows, cols, &r, &err) != AN_OK) {
                T_FAIL("%s", err.msg);
                continue;
            }
            an_mat m = {.type = an_pal_type(bits), .rows = rows, .cols = cols,
                        .row_bytes = an_lut_row_bytes(bits, cols), .data = r.idx, .lut = r.lut, .lut_group = 8,
                        .row_scale = rs_on ? r.scale : NULL};
            T_CHECK(an_lut_check(&m, &err) == AN_OK, "%s", err.msg);
            const int k = 1 << bits;
            int not_nearest = 0, unsorted = 0;
            double sse = 0;
            for (int64_t row = 0; row < rows; row++) {
                const uint16_t *t = an_lut_table(&m, row);
                const float s = an_lut_row_scale(&m, row);
                for (int j = 1; j < k; j++) unsorted += an_f16_to_f32(t[j]) < an_f16_to_f32(t[j - 1]);
                an_lut_dequant_row(&m, row, y);
                for (int64_t c = 0; c < cols; c++) {
                    double x = w[row * cols + c], e = x - y[c];
                    sse += e * e;
                    const double xn = s > 0 ? x / s : 0;
                    const double d0 = fabs(xn - an_f16_to_f32(t[an_lut_index(r.idx + row * m.row_bytes, c, bits)]));
                    for (int j = 0; j < k; j++)
                        if (fabs(xn - an_f16_to_f32(t[j])) < d0 - 1e-7 * fabs(xn)) {
                            not_nearest++;
                            break;
                        }
                }
            }
            const double rel = sse / r.ssw;
            t_note("LUT%d%s, groups of 8: relative squared error %.3e (palettizer reported %.3e)", bits,
                   rs_on ? " + row scale" : "", rel, r.sse / r.ssw);
            T_CHECK(!not_nearest, "%d weights not at their nearest table entry", not_nearest);
            T_CHECK(!unsorted, "%d table entries out of order", unsorted);
            T_CHECK(fabs(rel - r.sse / r.ssw) < 0.02 * rel + 1e-9, "reported error %g vs %g", r.sse / r.ssw, rel);
            const double bound = bits == 4 ? 3e-2 : bits == 6 ? 1.5e-3 : 2e-4;
            T_CHECK(rel < bound, "LUT%d relative error %g above %g", bits, rel, bound);
            if (!rs_on) {
                T_CHECK(rel < prev_rel, "LUT%d (%g) is not better than fewer bits (%g)", bits, rel, prev_rel);
                prev_rel = rel;
            }
            palres_free(&r);
        }
    free(w), free(y);
}

static void errors_and_groups(void) {
    T_CHECK(an_pal_group(1408, 32) == 32 && an_pal_group(10, 4) == 2 && an_pal_group(7, 4) == 1 &&
                an_pal_group(3, 8) == 3 && an_pal_group(5, 0) == 1,
            "an_pal_group");
    T_CHECK(an_pal_parse("LUT6") == 6 && an_pal_parse("lut4") == 4 && an_pal_parse("lut5") == 0 && !an_pal_parse(NULL),
            "an_pal_parse");
    const int64_t rows = 8, cols = 64;
    float *w = gauss_matrix(rows, cols);
    w[5 * cols + 3] = NAN;
    palres r;
    an_err err = {0};
    an_status s = pal_run(2, 6, 4, false, 0, w, rows, cols, &r, &err);
    T_CHECK(s == AN_E_FORMAT && strstr(err.msg, "test.weight") && strstr(err.msg, "row 5"), "NaN: %d %s", s, err.msg);
    palres_free(&r);
    an_err_clear(&err);
    s = pal_run(1, 5, 4, false, 0, w, rows, cols, &r, &err);
    T_CHECK(s == AN_E_USAGE && strstr(err.msg, "5 bits"), "5 bits: %d %s", s, err.msg);
    palres_free(&r);
    free(w);
}

/* ---- files, the CLI and load-time palettization --------------------------------------------- */

static const char *tmp_path(const char *tag) {
    static char b[4][256];
    static int i;
    char *p = b[i++ % 4];
    snprintf(p, 256, "/tmp/anelm_pal_%d_%s", (int)getpid(), tag);
    return p;
}

static double ppl_of(t_run_result *r) {
    t_json *j = t_json_parse(r->out, r->out_len);
    double v = j && t_json_get(j, "ppl") ? t_json_get(j, "ppl")->num : -1;
    t_json_free(j);
    return v;
}

static void lut6_tinyscribe_end_to_end(void) {
    const char *f16 = t_shared_path("models/tinyscribe-28m-f16.gguf"), *val = t_shared_path("data/val.txt");
    if (!f16 || !val) {
        t_skip("SKIP: needs ../shared (models/tinyscribe-28m-f16.gguf, data/val.txt)");
        return;
    }
    const char *out = tmp_path("ts-lut6.gguf"), *cache = tmp_path("cache"), *base = tmp_path("f16.kl");
    char env[300];
    /* CPU only: one numeric path for every run compared here (the AMX device rounds LUT
     * activations to bf16), and a fresh cache directory of our own */
    snprintf(env, sizeof env, "ANELM_AMX=0 ANELM_CACHE='%s'", cache);
    t_run_result r = t_run("", "quantize %s %s lut6 -t 2", f16, out);
    T_CHECK(r.code == 0, "quantize exit %d: %s", r.code, r.err);
    t_run_free(&r);
    /* the file: LUT6 matrices with F16 companions and the metadata */
    an_err err = {0};
    an_gguf *g = NULL;
    if (an_gguf_open(&g, out, &err) != AN_OK) {
        T_FAIL("open %s: %s", out, err.msg);
        return;
    }
    const an_gguf_tensor *q = an_gguf_tensor_find(g, "blk.0.attn_q.weight");
    const an_gguf_tensor *ql = an_gguf_tensor_find(g, "blk.0.attn_q.weight.lut");
    T_CHECK(q && q->type == AN_TYPE_LUT6 && ql && ql->type == AN_TYPE_F16 && ql->ne[0] == 64 &&
                ql->ne[1] == 512 / AN_PAL_GROUP_DEFAULT,
            "blk.0.attn_q.weight and its table");
    uint32_t ver = 0, bits = 0, grp = 0;
    an_gguf_get_u32(g, "anelm.lut.version", &ver, NULL, &err);
    an_gguf_get_u32(g, "anelm.lut.bits", &bits, NULL, &err);
    an_gguf_get_u32(g, "anelm.lut.group", &grp, NULL, &err);
    T_CHECK(ver == 1 && bits == 6 && grp == AN_PAL_GROUP_DEFAULT, "metadata %u %u %u: %s", ver, bits, grp, err.msg);
    const an_gguf_tensor *te = an_gguf_tensor_find(g, "token_embd.weight");
    T_CHECK(te && te->type == AN_TYPE_Q8_0 && !an_gguf_tensor_find(g, "token_embd.weight.lut"),
            "the token embedding of a LUT6 file is Q8_0");
    an_gguf_free(g);

    /* run it */
    r = t_run(env, "run -m %s -p 'The king of Israel' -n 24 --temp 0 -t 2 --json", out);
    T_CHECK(r.code == 0 && strstr(r.out, "\"ids\""), "run exit %d: %s", r.code, r.err);
    t_run_free(&r);

    /* perplexity and KL against F16 on the first 2048 tokens */
    const char *pfmt = "perplexity -m %s -f %s -c 512 --max-tokens 2048 -t 2 --json --kl-divergence-base %s %s %s";
    r = t_run(env, pfmt, f16, val, base, "", "");
    double p16 = ppl_of(&r);
    T_CHECK(r.code == 0 && p16 > 0, "F16 perplexity exit %d: %s", r.code, r.err);
    t_run_free(&r);
    r = t_run(env, pfmt, out, val, base, "--kl-divergence", "");
    double p6 = ppl_of(&r);
    t_json *j = t_json_parse(r.out, r.out_len);
    double kl = j && t_json_get(j, "kl_mean") ? t_json_get(j, "kl_mean")->num : -1;
    t_json_free(j);
    T_CHECK(r.code == 0 && p6 > 0, "LUT6 perplexity exit %d: %s", r.code, r.err);
    t_run_free(&r);
    t_note("2048 tokens: F16 perplexity %.4f, LUT6 file %.4f (%+.3f%%), mean KL %.5f", p16, p6,
           100 * (p6 / p16 - 1), kl);
    T_CHECK(fabs(p6 / p16 - 1) < 0.01, "LUT6 perplexity %.4f not within 1%% of F16 %.4f", p6, p16);
    T_CHECK(kl >= 0 && kl < 0.01, "mean KL %g", kl);

    /* --weights lut6 on the F16 file: the same bytes as the file, so the same perplexity; the
     * second load reads them from the compile cache */
    r = t_run(env, pfmt, f16, val, base, "--kl-divergence", "--weights lut6 -v");
    double pw = ppl_of(&r);
    T_CHECK(r.code == 0 && strstr(r.err, "(0 from the compile cache)"), "first --weights load: %s", r.err);
    t_run_free(&r);
    r = t_run(env, pfmt, f16, val, base, "--kl-divergence", "--weights lut6 -v");
    double pw2 = ppl_of(&r);
    T_CHECK(r.code == 0 && strstr(r.err, "(56 from the compile cache)"), "second --weights load: %s", r.err);
    t_run_free(&r);
    t_note("--weights lut6: perplexity %.4f (cold), %.4f (from the cache); file %.4f", pw, pw2, p6);
    T_CHECK(pw == p6 && pw2 == p6, "--weights lut6 %.6f / %.6f differs from the LUT6 file %.6f", pw, pw2, p6);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", out, cache, base);
    T_CHECK(system(cmd) == 0, "cleanup");
}

/* A model with a broken companion tensor fails to load, naming it. */
static void broken_companions_are_named(void) {
    const char *syn = tmp_path("syn.gguf"), *lut = tmp_path("syn-lut6.gguf"), *bad = tmp_path("bad.gguf");
    t_run_result r = t_run("", "synth --arch llama --preset tiny --type f16 -o %s", syn);
    T_CHECK(r.code == 0, "synth: %s", r.err);
    t_run_free(&r);
    r = t_run("", "quantize %s %s lut6 --lut-group 2 --row-scale -t 2", syn, lut);
    T_CHECK(r.code == 0, "quantize: %s", r.err);
    t_run_free(&r);
    an_err err = {0};
    an_model *m = NULL;
    an_model_params mp = {.path = lut};
    T_CHECK(an_model_open(&m, &mp, &err) == AN_OK, "LUT6 + row scale model: %s", err.msg);
    an_model_free(m);
    /* drop one table / one scale / make a table the wrong shape */
    const char *drop[3] = {"blk.0.attn_k.weight.lut", "blk.1.ffn_up.weight.lut_scale", NULL};
    for (int v = 0; v < 3; v++) {
        an_gguf *g = NULL;
        an_gguf_writer *w = NULL;
        an_err_clear(&err);
        if (an_gguf_open(&g, lut, &err) != AN_OK || an_gguf_writer_create(&w, &err) != AN_OK) {
            T_FAIL("%s", err.msg);
            an_gguf_free(g);
            return;
        }
        for (int64_t i = 0; i < an_gguf_n_kv(g); i++) an_gguf_writer_kv_copy(w, an_gguf_kv_at(g, i));
        for (int64_t i = 0; i < an_gguf_n_tensors(g); i++) {
            const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
            if (drop[v] && !strcmp(t->name, drop[v])) continue;
            int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
            if (!drop[v] && !strcmp(t->name, "blk.0.ffn_down.weight.lut")) ne[0] = 32, ne[1] *= 2; /* wrong shape */
            an_gguf_writer_tensor(w, t->name, t->type, t->n_dims, ne, t->data, t->nbytes);
        }
        T_CHECK(an_gguf_writer_write(w, bad, &err) == AN_OK, "%s", err.msg);
        an_gguf_writer_free(w);
        an_gguf_free(g);
        an_err_clear(&err);
        mp.path = bad;
        an_status s = an_model_open(&m, &mp, &err);
        const char *want = v == 0 ? "blk.0.attn_k.weight.lut" : v == 1 ? "blk.1.ffn_up.weight.lut_scale" : "blk.0.ffn_down.weight.lut";
        if (v == 1) {
            /* row scales are optional per tensor: without one the matrix loads unscaled */
            T_CHECK(s == AN_OK, "a missing row-scale tensor is allowed: %s", err.msg);
            an_model_free(m);
            continue;
        }
        T_CHECK(s == AN_E_FORMAT && strstr(err.msg, want), "variant %d: status %d, message: %s", v, s, err.msg);
        if (s == AN_OK) an_model_free(m);
        else t_note("%s", err.msg);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s' '%s'", syn, lut, bad);
    T_CHECK(system(cmd) == 0, "cleanup");
}

static void cli_errors(void) {
    const char *syn = tmp_path("syn2.gguf"), *lut = tmp_path("syn2-lut4.gguf"), *o = tmp_path("o.gguf");
    t_run_result r = t_run("", "synth --arch qwen2 --preset tiny --type f16 -o %s", syn);
    T_CHECK(r.code == 0, "synth: %s", r.err);
    t_run_free(&r);
    const char *txt = tmp_path("text.txt");
    FILE *f = fopen(txt, "w");
    if (f) {
        for (int i = 0; i < 40; i++) fputs("the quick brown fox jumps over the lazy dog. ", f);
        fclose(f);
    }
    /* {S}: the F16 model, {L}: its LUT4 file, {O}: an output path, {T}: a text file */
    struct {
        const char *args;
        int code;
        const char *msg;
    } cases[] = {
        {"quantize {S} {O} lut5", 1, "unknown type 'lut5'"},
        {"quantize {S} {O} lut6 --lut-group 0", 1, "--lut-group"},
        {"quantize {S} {O} q8_0 --row-scale", 1, "apply to lut4, lut6 and lut8 only"},
        {"quantize {S} {O} lut6 --token-embedding-type q9", 1, "unknown --token-embedding-type"},
        {"quantize {L} {O} q8_0", 2, "already palettized"},
        {"run -m {S} --weights lut3 -n 1", 1, "--weights 'lut3'"},
        {"perplexity -m {S} -f {T} --kl-divergence", 1, "needs --kl-divergence-base"},
        {"perplexity -m {S} -f {T} -c 64 --kl-divergence-base /nonexistent/x.kl --kl-divergence", 2, "/nonexistent/x.kl"},
    };
    r = t_run("", "quantize %s %s lut4 -t 2", syn, lut);
    T_CHECK(r.code == 0, "quantize lut4: %s", r.err);
    t_run_free(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        int o_ = 0;
        for (const char *a = cases[i].args; *a && o_ < (int)sizeof args - 300; a++) {
            const char *sub = !strncmp(a, "{S}", 3) ? syn : !strncmp(a, "{L}", 3) ? lut : !strncmp(a, "{O}", 3) ? o
                            : !strncmp(a, "{T}", 3) ? txt : NULL;
            if (sub) o_ += snprintf(args + o_, sizeof args - (size_t)o_, "%s", sub), a += 2;
            else args[o_++] = *a;
        }
        args[o_] = 0;
        r = t_run("", "%s", args);
        const int want = cases[i].code; /* 1 usage, 2 bad input or I/O */
        T_CHECK(r.code == want && strstr(r.err, cases[i].msg), "`anelm %s`: exit %d (want %d), stderr: %s", args,
                r.code, want, r.err);
        t_run_free(&r);
    }
    remove(txt);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s' '%s'", syn, lut, o);
    T_CHECK(system(cmd) == 0, "cleanup");
}

const t_case t_suite_palettize[] = {
    {"kmeans_recovers_known_clusters", kmeans_recovers_known_clusters},
    {"kmeans_near_the_exact_optimum", kmeans_near_the_exact_optimum},
    {"kmeans_weights_and_degenerate_input", kmeans_weights_and_degenerate_input},
    {"same_bytes_for_any_thread_count", same_bytes_for_any_thread_count},
    {"assignment_tables_and_error", assignment_tables_and_error},
    {"errors_and_groups", errors_and_groups},
    {"broken_companions_are_named", broken_companions_are_named},
    {"cli_errors", cli_errors},
    {"lut6_tinyscribe_end_to_end", lut6_tinyscribe_end_to_end},
    {0},
};
