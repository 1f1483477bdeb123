/* cmd_bench.c — `anelm bench`: prefill (pp) and decode (tg) speed in the manner of llama-bench,
 * set against this machine's measured limits; `anelm bench --limits` measures and caches those. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/limits.h"
#include "cli.h"
#include "core/pool.h"
#include "core/timer.h"

static void help(void) {
    printf("usage: anelm bench [-m MODEL] [-p 512] [-n 128] [-r 5] [-o md|csv|json] [options]\n"
           "       anelm bench --limits [-t N] [-o md|json] [--refresh]\n"
           "       anelm bench --matmul [-M 4096] [-K 4096] [-t N] [-r 3] [--types f16,bf16,q8_0,q4_0,q4_k]\n"
           "\n"
           "Prefill (pp: N_PROMPT random tokens in one eval) and decode (tg: N_GEN single-token\n"
           "evals) speed, each from an empty cache, after one untimed warm-up run; tokens/s is the\n"
           "mean and sample stddev over the repetitions.\n"
           "  -p LIST          prompt sizes, comma-separated (default 512; 0 skips pp)\n"
           "  -n LIST          generation lengths, comma-separated (default 128; 0 skips tg)\n"
           "  -r N             repetitions (default 5)\n"
           "  -o FMT           md (default), csv or json\n"
           "  --seed S         seed of the random token ids (default 42)\n"
           "  --weights W      lut4, lut6 or lut8: palettize the weights at load time (compile cache)\n"
           "%s"
           "  (here -c defaults to the longest test, not the model's context)\n"
           "\n"
           "Effective rates, and what they are divided by for '%% of limit':\n"
           "  pp TFLOPS = 2 * n_params * tokens/s: the matrix work only (attention and the\n"
           "     embedding lookup are not counted; n_params includes the embedding table), over\n"
           "     the vector FP32 FMA peak (the AMX peak will apply when an AMX device exists).\n"
           "  tg GB/s = weight bytes read per token * tokens/s (every matrix once; an untied\n"
           "     embedding table counts one row; KV cache reads are not counted), over the\n"
           "     streaming memory read bandwidth.\n"
           "The limits are measured once per machine (~10 s) and cached in <cache>/limits.json\n"
           "(cache: $ANELM_CACHE, else $XDG_CACHE_HOME/anelm, else ~/.cache/anelm).\n"
           "\n"
           "--limits: print the limits (measuring them if the cache has none for this machine or\n"
           "  for this -t): memory read bandwidth (streaming 1 GiB), FP32 FMA peak (AVX-512, else\n"
           "  AVX2), AMX BF16 and INT8 peaks, each with 1 and N threads (default: all CPUs).\n"
           "  --refresh        measure again even if cached\n",
           cli_common_help);
}

/* ---- options ---------------------------------------------------------------------------------- */

#define MAX_LIST 16

/* "512" or "128,256,512" into out[]; every value in [0, 1<<20]. */
static bool parse_list(const char *cmd, int argc, char **argv, int *i, int *out, int *n) {
    const char *opt = argv[*i], *v;
    if (!cli_str(cmd, argc, argv, i, &v)) return false;
    *n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < 0 || x > (1 << 20) || (*end && *end != ',') || *n == MAX_LIST) {
            cli_usage_error(cmd, "option %s: '%s' is not a list of up to %d integers in [0, %d]", opt, v, MAX_LIST,
                            1 << 20);
            return false;
        }
        out[(*n)++] = (int)x;
        if (!*end) return true;
        p = end + 1;
    }
}

enum { FMT_MD, FMT_CSV, FMT_JSON };

/* ---- limits ----------------------------------------------------------------------------------- */

static void progress_line(void *ud, const char *what) {
    (void)ud;
    fprintf(stderr, "  %s...\n", what);
}

static an_status measure_verbose(an_limits *out, int n_threads, void *ud, an_err *err) {
    fprintf(stderr, "measuring this machine's limits (once)...\n");
    return an_limits_measure(out, n_threads, progress_line, ud, err);
}

/* Measured while other processes competed for the CPU (0: unknown, from an older cache). */
static bool busy(const an_limits *l) { return l->cpu_share > 0 && l->cpu_share < AN_LIMITS_BUSY_SHARE; }

/* The cached limits (measured now if the cache cannot serve them). A cache directory we cannot
 * use is no reason to fail: the figures are measured and simply not kept. */
static an_status get_limits(an_limits *l, int n_threads, bool refresh, char *path, size_t cap,
                            an_limits_source *src, an_err *err) {
    an_err pe = {0};
    if (an_limits_path(path, cap, 1, &pe) != AN_OK) {
        fprintf(stderr, "anelm bench: warning: %s; the limits will not be cached\n", pe.msg);
        snprintf(path, cap, "(not cached)");
        *src = AN_LIMITS_UNSAVED;
        return measure_verbose(l, n_threads > 0 ? n_threads : an_cpu_count(), NULL, err);
    }
    an_status s = an_limits_get(l, path, n_threads, refresh, measure_verbose, NULL, src, err);
    if (s == AN_OK && *src == AN_LIMITS_UNSAVED)
        fprintf(stderr, "anelm bench: warning: could not write %s; the limits will be measured again next time\n",
                path);
    if (s == AN_OK && *src != AN_LIMITS_CACHED && busy(l))
        fprintf(stderr,
                "anelm bench: warning: other processes took %.0f%% of the CPU while measuring, so the limits are "
                "likely low; re-measure on an idle machine with `anelm bench --limits --refresh`\n",
                100 * (1 - l->cpu_share));
    return s;
}

static void fmt_rate(char *buf, size_t cap, double v, const char *unit) {
    if (v > 0) snprintf(buf, cap, "%.3g %s", v, unit);
    else snprintf(buf, cap, "-");
}

static int print_limits(const an_limits *l, const char *path, an_limits_source src, int fmt) {
    if (fmt == FMT_JSON) {
        char buf[4096];
        an_limits_to_json(l, buf, sizeof buf);
        fputs(buf, stdout);
        return EXIT_OK;
    }
    char when[64] = "?";
    time_t t = (time_t)l->measured_at;
    struct tm tmv;
    if (localtime_r(&t, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tmv);
    printf("limits of %s\n", l->key);
    printf("measured %s in %.1f s; %s %s\n", when, l->seconds,
           src == AN_LIMITS_CACHED ? "read from" : src == AN_LIMITS_MEASURED ? "cached in" : "NOT cached in", path);
    if (l->cpu_share > 0)
        printf("the measuring threads got %.0f%% of their CPU time%s\n", 100 * l->cpu_share,
               busy(l) ? ": other processes were running, the figures are likely low (--refresh when idle)" : "");
    printf("\n");
    printf("| limit | 1 thread | %d threads |\n| --- | ---: | ---: |\n", l->n_threads);
    char a[32], b[32];
    fmt_rate(a, sizeof a, l->mem_gbps_1, "GB/s");
    fmt_rate(b, sizeof b, l->mem_gbps_n, "GB/s");
    printf("| memory read (streaming) | %s | %s |\n", a, b);
    fmt_rate(a, sizeof a, l->fma_gflops_1, "GFLOPS");
    fmt_rate(b, sizeof b, l->fma_gflops_n, "GFLOPS");
    printf("| FP32 FMA (%s) | %s | %s |\n", l->fma_isa, a, b);
    if (l->amx) {
        fmt_rate(a, sizeof a, l->amx_bf16_tflops_1, "TFLOPS");
        fmt_rate(b, sizeof b, l->amx_bf16_tflops_n, "TFLOPS");
        printf("| AMX BF16 (TDPBF16PS) | %s | %s |\n", a, b);
        fmt_rate(a, sizeof a, l->amx_int8_tops_1, "TOPS");
        fmt_rate(b, sizeof b, l->amx_int8_tops_n, "TOPS");
        printf("| AMX INT8 (TDPBSSD) | %s | %s |\n", a, b);
    } else {
        printf("\nAMX: absent (%s)\n", l->amx_note[0] ? l->amx_note : "unknown reason");
    }
    return EXIT_OK;
}

/* ---- model benchmark -------------------------------------------------------------------------- */

typedef struct result {
    bool pp;    /* prefill test, else decode */
    int n;      /* n_prompt or n_gen */
    double mean, sd; /* tokens/s */
    double rate;     /* TFLOPS (pp) or GB/s (tg) */
    double frac;     /* of the limit; < 0 when unknown */
} result;

typedef struct bench {
    const char *name, *type, *device;
    uint64_t params, bytes, bytes_per_token;
    bool on_amx; /* prefill runs on the AMX device (auto with AMX present, or forced) */
    int threads;
    int fmt;
    bool have_limits;
    an_limits lim;
} bench;

/* The dominant weight type: an_model_desc ends with the type of blk.0.attn_q. */
static const char *model_type(const char *desc) {
    const char *c = strrchr(desc, ',');
    if (!c) return "?";
    while (*++c == ' ') {}
    return *c ? c : "?";
}

static void fmt_size(char *buf, size_t cap, uint64_t bytes) {
    double b = (double)bytes;
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(buf, cap, "%.2f MiB", b / (1024.0 * 1024));
}

static void fmt_params(char *buf, size_t cap, uint64_t n) {
    double x = (double)n;
    if (x >= 1e9) snprintf(buf, cap, "%.2f B", x / 1e9);
    else snprintf(buf, cap, "%.2f M", x / 1e6);
}

static void md_header(void) {
    printf("| model | type | size | params | threads | device | test | t/s | TFLOPS or GB/s | %% of limit |\n"
           "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
}

static void md_row(const bench *b, const result *r) {
    char size[32], params[32], rate[32], frac[32], ts[64];
    fmt_size(size, sizeof size, b->bytes);
    fmt_params(params, sizeof params, b->params);
    if (r->pp) snprintf(rate, sizeof rate, "%.3g TFLOPS", r->rate);
    else snprintf(rate, sizeof rate, "%.3g GB/s", r->rate);
    if (r->frac >= 0) snprintf(frac, sizeof frac, "%.1f%%", r->frac * 100);
    else snprintf(frac, sizeof frac, "-");
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->mean, r->sd);
    printf("| %s | %s | %s | %s | %d | %s | %s%d | %s | %s | %s |\n", b->name, b->type, size, params, b->threads,
           b->device, r->pp ? "pp" : "tg", r->n, ts, rate, frac);
    fflush(stdout);
}

/* csv fields are the JSON fields; names and types are quoted when they need it. */
static void csv_field(const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, stdout);
        return;
    }
    fputc('"', stdout);
    for (; *s; s++) {
        if (*s == '"') fputc('"', stdout);
        fputc(*s, stdout);
    }
    fputc('"', stdout);
}

static void csv_header(void) {
    printf("model,type,n_prompt,n_gen,threads,device,tokens_per_s,stddev,tflops,gbps,fraction_of_limit\n");
}

static void csv_row(const bench *b, const result *r) {
    csv_field(b->name);
    fputc(',', stdout);
    csv_field(b->type);
    printf(",%d,%d,%d,%s,%.4f,%.4f,", r->pp ? r->n : 0, r->pp ? 0 : r->n, b->threads, b->device, r->mean, r->sd);
    if (r->pp) printf("%.6g,,", r->rate);
    else printf(",%.6g,", r->rate);
    if (r->frac >= 0) printf("%.6g", r->frac);
    printf("\n");
    fflush(stdout);
}

static void json_row(const bench *b, const result *r, bool first) {
    printf("%s  {\"model\": ", first ? "" : ",\n");
    cli_json_str(stdout, b->name, strlen(b->name));
    printf(", \"type\": ");
    cli_json_str(stdout, b->type, strlen(b->type));
    printf(", \"n_prompt\": %d, \"n_gen\": %d, \"threads\": %d, \"device\": \"%s\", \"tokens_per_s\": %.4f, "
           "\"stddev\": %.4f, ",
           r->pp ? r->n : 0, r->pp ? 0 : r->n, b->threads, b->device, r->mean, r->sd);
    printf(r->pp ? "\"tflops\": %.6g, " : "\"gbps\": %.6g, ", r->rate);
    if (r->frac >= 0) printf("\"fraction_of_limit\": %.6g}", r->frac);
    else printf("\"fraction_of_limit\": null}");
}

/* One timed run: fresh cache, then the whole prompt in one eval (pp) or n single-token evals
 * (tg). Returns the seconds taken, or < 0 with err set. */
static double run_once(an_ctx *c, const int32_t *toks, bool pp, int n, an_err *err) {
    an_ctx_reset(c);
    double t0 = an_now();
    if (pp) {
        if (an_ctx_eval(c, toks, n, err) != AN_OK) return -1;
    } else {
        for (int i = 0; i < n; i++)
            if (an_ctx_eval(c, toks + i, 1, err) != AN_OK) return -1;
    }
    return an_now() - t0;
}

static int run_test(const bench *b, an_ctx *c, const int32_t *toks, bool pp, int n, int reps, result *r) {
    an_err err = {0};
    if (run_once(c, toks, pp, n, &err) < 0) return cli_fail(&err); /* warm-up: caches, page-ins */
    double sum = 0, sq = 0;
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (!tps) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        return cli_fail(&err);
    }
    for (int i = 0; i < reps; i++) {
        double t = run_once(c, toks, pp, n, &err);
        if (t < 0) {
            free(tps);
            return cli_fail(&err);
        }
        tps[i] = n / (t > 0 ? t : 1e-9);
        sum += tps[i];
    }
    r->pp = pp;
    r->n = n;
    r->mean = sum / reps;
    for (int i = 0; i < reps; i++) sq += (tps[i] - r->mean) * (tps[i] - r->mean);
    r->sd = reps > 1 ? sqrt(sq / (reps - 1)) : 0;
    free(tps);
    /* the rates are linear in tokens/s, so the mean rate is the rate of the mean */
    if (pp) r->rate = 2.0 * (double)b->params * r->mean / 1e12;
    else r->rate = (double)b->bytes_per_token * r->mean / 1e9;
    r->frac = -1;
    if (b->have_limits) {
        double lim = an_limits_mem_gbps(&b->lim, b->threads);
        if (pp) {
            /* prefill on a matrix engine is measured against that engine's peak: BF16 tiles for
             * float weights, INT8 tiles for block-quantized ones; else the vector FMA peak */
            const bool nt = b->threads > 1;
            const bool flt = !strcmp(b->type, "F16") || !strcmp(b->type, "BF16") || !strcmp(b->type, "F32");
            if (b->on_amx) lim = flt ? (nt ? b->lim.amx_bf16_tflops_n : b->lim.amx_bf16_tflops_1)
                                     : (nt ? b->lim.amx_int8_tops_n : b->lim.amx_int8_tops_1);
            else lim = an_limits_fma_gflops(&b->lim, b->threads) / 1e3;
        }
        if (lim > 0) r->frac = r->rate / lim;
    }
    return EXIT_OK;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--matmul")) return bench_matmul(argc, argv);
    cli_common o;
    cli_common_init(&o);
    int pps[MAX_LIST] = {512}, n_pp = 1, tgs[MAX_LIST] = {128}, n_tg = 1, reps = 5, fmt = FMT_MD;
    bool limits_mode = false, refresh = false;
    uint64_t seed = 42;
    const char *weights = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_common_opt(cmd, argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        bool ok = true;
        if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) ok = parse_list(cmd, argc, argv, &i, pps, &n_pp);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) ok = parse_list(cmd, argc, argv, &i, tgs, &n_tg);
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) ok = cli_int(cmd, argc, argv, &i, 1, 1000, &reps);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            ok = cli_str(cmd, argc, argv, &i, &v);
            if (ok && !strcmp(v, "md")) fmt = FMT_MD;
            else if (ok && !strcmp(v, "csv")) fmt = FMT_CSV;
            else if (ok && !strcmp(v, "json")) fmt = FMT_JSON;
            else if (ok) return cli_usage_error(cmd, "output format '%s' (use md, csv or json)", v);
        } else if (!strcmp(a, "--seed")) {
            ok = cli_str(cmd, argc, argv, &i, &v);
            char *end;
            if (ok) seed = strtoull(v, &end, 10), ok = *v && !*end;
            if (!ok) return cli_usage_error(cmd, "--seed needs a non-negative integer");
        } else if (!strcmp(a, "--weights")) {
            ok = cli_str(cmd, argc, argv, &i, &weights) && cli_weights(cmd, weights);
        } else if (!strcmp(a, "--limits")) limits_mode = true;
        else if (!strcmp(a, "--refresh")) refresh = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return EXIT_OK;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    an_err err = {0};
    an_limits lim;
    char lpath[4096];
    an_limits_source src;

    if (limits_mode) {
        if (fmt == FMT_CSV) return cli_usage_error(cmd, "--limits prints md or json");
        if (get_limits(&lim, o.threads, refresh, lpath, sizeof lpath, &src, &err) != AN_OK) return cli_fail(&err);
        return print_limits(&lim, lpath, src, fmt);
    }

    int max_n = 0;
    for (int i = 0; i < n_pp; i++) max_n = pps[i] > max_n ? pps[i] : max_n;
    for (int i = 0; i < n_tg; i++) max_n = tgs[i] > max_n ? tgs[i] : max_n;
    if (max_n == 0) return cli_usage_error(cmd, "nothing to run: every -p and -n is 0");
    if (o.n_ctx && o.n_ctx < max_n)
        return cli_usage_error(cmd, "-c %d is smaller than the longest test (%d tokens)", o.n_ctx, max_n);

    const char *path = o.model ? o.model : cli_default_model();
    an_model *m = NULL;
    an_ctx *c = NULL;
    int32_t *toks = NULL;
    result *res = NULL;
    int n_res = 0;
    bench b = {0};
    int rc = cli_open_model_w(cmd, path, o.verbose, weights, o.threads, o.no_cache, &m);
    if (rc) return rc;
    if (!an_model_has_weights(m)) {
        an_err_set(&err, AN_E_UNSUPPORTED, "%s: has no weights (vocabulary only); nothing to benchmark", path);
        rc = cli_fail(&err);
        goto out;
    }
    const char *slash = strrchr(path, '/');
    b.name = slash ? slash + 1 : path;
    b.type = model_type(an_model_desc(m));
    /* "cpu" or "amx" when forced; with auto, the devices the scheduler chooses from */
    static char devbuf[80];
    snprintf(devbuf, sizeof devbuf, "%s", o.device ? o.device : "auto");
    b.params = an_model_n_params(m);
    b.bytes = an_model_weight_bytes(m);
    b.bytes_per_token = an_model_bytes_per_token(m);
    b.threads = o.threads ? o.threads : an_cpu_count();
    b.fmt = fmt;
    /* Limits first: measuring them while the model runs would disturb both. */
    /* Any cached thread count will do, unless the cache's N is below what this run uses (then
     * its N-thread figures would understate the machine: measure with this run's count). */
    an_status ls = get_limits(&lim, 0, false, lpath, sizeof lpath, &src, &err);
    int want = b.threads < an_cpu_count() ? b.threads : an_cpu_count();
    if (ls == AN_OK && src == AN_LIMITS_CACHED && lim.n_threads < want)
        ls = get_limits(&lim, want, true, lpath, sizeof lpath, &src, &err);
    if (ls == AN_OK) {
        b.have_limits = true;
        b.lim = lim;
    } else {
        fprintf(stderr, "anelm bench: warning: no limits (%s); %% of limit left out\n", err.msg);
        an_err_clear(&err);
    }
    /* the context holds exactly the longest test unless -c says otherwise */
    rc = cli_ctx(&o, m, false, max_n, &c);
    if (rc) goto out;
    if (!o.device || !strcmp(o.device, "auto")) snprintf(devbuf, sizeof devbuf, "auto:%s", an_ctx_devices(c));
    b.device = devbuf;
    b.on_amx = strstr(b.device, "amx") != NULL;
    toks = malloc((size_t)max_n * sizeof *toks);
    res = calloc((size_t)(n_pp + n_tg), sizeof *res);
    if (!toks || !res) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    uint64_t st = seed;
    int32_t n_vocab = an_model_n_vocab(m);
    for (int i = 0; i < max_n; i++) toks[i] = (int32_t)(splitmix(&st) % (uint64_t)n_vocab);

    if (fmt == FMT_MD) md_header();
    else if (fmt == FMT_CSV) csv_header();
    for (int k = 0; k < n_pp + n_tg; k++) {
        bool pp = k < n_pp;
        int n = pp ? pps[k] : tgs[k - n_pp];
        if (n == 0) continue;
        rc = run_test(&b, c, toks, pp, n, reps, &res[n_res]);
        if (rc) goto out;
        if (fmt == FMT_MD) md_row(&b, &res[n_res]);
        else if (fmt == FMT_CSV) csv_row(&b, &res[n_res]);
        n_res++;
    }
    if (fmt == FMT_JSON) {
        printf("[\n");
        for (int i = 0; i < n_res; i++) json_row(&b, &res[i], i == 0);
        printf("\n]\n");
    } else if (fmt == FMT_MD && b.have_limits) {
        printf("\nlimits (%d threads; %s): memory read %.3g GB/s, FP32 FMA (%s) %.3g GFLOPS\n", b.threads, lpath,
               an_limits_mem_gbps(&lim, b.threads), lim.fma_isa, an_limits_fma_gflops(&lim, b.threads));
        if (busy(&lim))
            printf("(measured while other processes took %.0f%% of the CPU: likely low; `anelm bench --limits "
                   "--refresh` when idle)\n",
                   100 * (1 - lim.cpu_share));
    }
out:
    free(res);
    free(toks);
    an_ctx_free(c);
    an_model_free(m);
    return rc;
}
