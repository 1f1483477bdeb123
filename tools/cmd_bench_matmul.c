/* cmd_bench_matmul.c — `anelm bench --matmul`: GFLOPS of one M x K x N matmul per device and
 * weight format for N = 1, 2, 4, ... 512 (where a matrix engine starts to pay: the crossover
 * the scheduler's calibration also finds), and the cost of preparing weights for a matrix
 * engine cold (compile + store in the cache) against warm (verified cache hit). */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/amx/amx.h"
#include "backends/backend.h"
#include "cache/cache.h"
#include "cli.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort: keep removing the rest */
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A synthetic weight of type t (rows x K), quantized from a deterministic bell-ish pattern;
 * palettized types get random indices and one random fp16 table per 4 rows (*lut_out, freed by
 * the caller), which is all their kernels' speed depends on. */
static uint8_t *synth_weight(an_type t, int64_t rows, int64_t K, uint64_t *rb_out, uint16_t **lut_out) {
    const uint64_t rb = an_row_bytes(an_type_traits_get(t), (uint64_t)K);
    uint8_t *w = malloc(rb * (uint64_t)rows);
    float *row = malloc(sizeof(float) * (size_t)K);
    *lut_out = NULL;
    if (!w || !row) {
        free(w);
        free(row);
        return NULL;
    }
    uint32_t s = 777;
    if (an_lut_is_type(t)) {
        const int64_t ne = (int64_t)1 << an_lut_bits(t), nt = rows / 4 * ne;
        uint16_t *lut = malloc(sizeof *lut * (size_t)nt);
        if (!lut) {
            free(w);
            free(row);
            return NULL;
        }
        for (int64_t i = 0; i < nt; i++) s = s * 1664525u + 1013904223u, lut[i] = an_f32_to_f16((float)(s >> 9) / 8388608.0f * 0.04f - 0.02f);
        for (uint64_t i = 0; i < rb * (uint64_t)rows; i++) s = s * 1664525u + 1013904223u, w[i] = (uint8_t)(s >> 24);
        *lut_out = lut;
    } else {
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t k = 0; k < K; k++) {
                s = s * 1664525u + 1013904223u;
                row[k] = ((float)((s >> 9) & 0xffff) / 65536.0f - 0.5f) * 0.04f;
            }
            an_quant_row_ref(t, row, w + (uint64_t)r * rb, K);
        }
    }
    free(row);
    *rb_out = rb;
    return w;
}

/* The table (and the cold/warm line) for one weight type; returns an exit code. */
static int bench_type(an_type t, int M, int K, int reps, an_pool *pool, an_cache *cache, bool amx) {
    an_err err = {0};
    int rc = EXIT_OK;
    uint64_t rb = 0;
    uint16_t *lut = NULL;
    uint8_t *w = synth_weight(t, M, K, &rb, &lut);
    float *x = malloc(sizeof(float) * (size_t)K * 512), *y = malloc(sizeof(float) * (size_t)M * 512);
    an_device *dev[2] = {an_cpu_device_create(), amx ? an_amx_device_create(cache) : NULL};
    void *ws = NULL;
    if (!w || !x || !y || !dev[0] || (amx && !dev[1])) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    for (size_t i = 0; i < (size_t)K * 512; i++) x[i] = (float)((i * 2654435761u) >> 16 & 0xff) / 128.0f - 1.0f;
    an_mat m = {.type = t, .rows = M, .cols = K, .row_bytes = rb, .data = w, .name = "bench",
                .lut = lut, .lut_group = lut ? 4 : 0};
    const int ndev = dev[1] ? 2 : 1;
    size_t wsz = 0;
    for (int d = 0; d < ndev; d++) {
        size_t s = dev[d]->i->wsize(dev[d], K, 512, an_pool_size(pool));
        if (s > wsz) wsz = s;
    }
    if (!(ws = aligned_alloc(64, (wsz + 63) / 64 * 64))) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    /* cold vs warm: the first prepare compiles and stores; a fresh device then hits */
    double cold = 0, warm = 0;
    if (dev[1]) {
        double t0 = an_now();
        if (dev[1]->i->prepare(dev[1], &m, &err) != AN_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        cold = an_now() - t0;
        an_device *again = an_amx_device_create(cache);
        t0 = an_now();
        if (again && again->i->prepare(again, &m, &err) == AN_OK) warm = an_now() - t0;
        if (again) again->i->free(again);
    }
    printf("%s weights (%.1f MiB)%s\n", an_type_name(t), (double)rb * M / 1048576.0, dev[1] ? "" : ":");
    if (dev[1])
        printf("prepare for amx: cold (compile + store) %.0f ms, warm (cache hit) %.0f ms: %.1fx\n", cold * 1e3,
               warm * 1e3, warm > 0 ? cold / warm : 0);
    printf("| N | cpu GFLOPS |%s\n| ---: | ---: |%s\n", dev[1] ? " amx GFLOPS | amx/cpu |" : "",
           dev[1] ? " ---: | ---: |" : "");
    for (int n = 1; n <= 512; n *= 2) {
        double g[2] = {0, 0};
        double *ts = malloc(sizeof(double) * (size_t)reps * 2);
        an_op op = {.name = "bench", .w = {&m}, .n_w = 1, .n = n};
        an_mm_out o = {&m, y, M};
        for (int r = 0; r < reps; r++) /* alternate the devices run by run */
            for (int d = 0; d < ndev; d++) {
                double t0 = an_now();
                an_status st = dev[d]->i->run(dev[d], &op, &o, x, pool, ws, &err);
                ts[d * reps + r] = st == AN_OK ? an_now() - t0 : -1;
                an_err_clear(&err);
            }
        for (int d = 0; d < ndev; d++) {
            qsort(ts + d * reps, (size_t)reps, sizeof(double), cmp_d);
            double med = ts[d * reps + reps / 2];
            g[d] = med > 0 ? 2.0 * M * (double)K * n / med / 1e9 : 0;
        }
        free(ts);
        if (dev[1]) printf("| %d | %.1f | %.1f | %.2fx |\n", n, g[0], g[1], g[0] > 0 ? g[1] / g[0] : 0);
        else printf("| %d | %.1f |\n", n, g[0]);
    }
    printf("\n");
out:
    for (int d = 0; d < 2; d++)
        if (dev[d]) dev[d]->i->free(dev[d]);
    free(ws);
    free(w);
    free(lut);
    free(x);
    free(y);
    return rc;
}

int bench_matmul(int argc, char **argv) {
    const char *cmd = "bench --matmul";
    int threads = 0, M = 4096, K = 4096, reps = 3;
    const char *types_s = "f16,bf16,q8_0,q4_0,q4_k";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--matmul")) continue;
        if (!strcmp(a, "-t")) ok = cli_int(cmd, argc, argv, &i, 1, 256, &threads);
        else if (!strcmp(a, "-M")) ok = cli_int(cmd, argc, argv, &i, 16, 1 << 16, &M);
        else if (!strcmp(a, "-K")) ok = cli_int(cmd, argc, argv, &i, 256, 1 << 16, &K);
        else if (!strcmp(a, "-r")) ok = cli_int(cmd, argc, argv, &i, 1, 100, &reps);
        else if (!strcmp(a, "--types")) ok = cli_str(cmd, argc, argv, &i, &types_s);
        else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    if (K % 256) return cli_usage_error(cmd, "-K must be a multiple of 256 (K-quant blocks)");
    an_err err = {0};
    an_pool *pool = NULL;
    if (an_pool_create(&pool, threads ? threads : an_cpu_count(), &err) != AN_OK) return cli_fail(&err);
    const char *why = NULL;
    const bool amx = an_amx_available(&why);
    char cdir[] = "/tmp/anelm-bench-cache-XXXXXX";
    an_cache *cache = NULL;
    an_cache_params cp = {.dir = mkdtemp(cdir)};
    if (!cp.dir || an_cache_open(&cache, &cp, &err) != AN_OK) {
        an_pool_free(pool);
        return cli_fail(&err);
    }
    printf("M = %d, K = %d, %d threads; medians of %d; amx: %s\n\n", M, K, an_pool_size(pool), reps, why ? why : "-");
    int rc = EXIT_OK;
    char types[256];
    snprintf(types, sizeof types, "%s", types_s);
    for (char *tok = strtok(types, ","); tok; tok = strtok(NULL, ",")) {
        an_type t = AN_TYPE_COUNT;
        for (uint32_t id = 0; id < AN_TYPE_COUNT; id++)
            if (an_type_traits_get(id) && !strcasecmp(tok, an_type_name(id))) t = (an_type)id;
        for (uint32_t id = AN_TYPE_LUT4; id <= AN_TYPE_LUT8; id += 2) /* anelm's own, past ggml's ids */
            if (!strcasecmp(tok, an_type_name(id))) t = (an_type)id;
        if (t == AN_TYPE_COUNT || !(an_quant_is_weight_type(t) || an_lut_is_type(t))) {
            rc = cli_usage_error(cmd, "unknown weight type '%s'", tok);
            break;
        }
        rc = bench_type(t, M, K, reps, pool, cache, amx);
        if (rc) break;
    }
    an_cache_free(cache);
    nftw(cdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* a scratch cache: leave nothing behind */
    an_pool_free(pool);
    return rc;
}
