/* test_bench.c — the limits cache (JSON round trip, re-measuring on a key mismatch) and
 * `anelm bench` output (fields and types). No timing is asserted: the machine is noisy. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/limits.h"
#include "json.h"
#include "t.h"

#define MODEL "models/tinyscribe-28m-q8_0.gguf"

static bool near(double a, double b) { return fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)); }

static an_limits sample_limits(void) {
    an_limits l;
    memset(&l, 0, sizeof l);
    an_limits_machine_key(l.key, sizeof l.key);
    l.n_threads = 2;
    l.measured_at = 1763745000;
    l.seconds = 8.25;
    l.cpu_share = 0.985;
    l.mem_gbps_1 = 9.75;
    l.mem_gbps_n = 11.5;
    snprintf(l.fma_isa, sizeof l.fma_isa, "avx512");
    l.fma_gflops_1 = 136.25;
    l.fma_gflops_n = 230.5;
    l.amx = true;
    l.amx_bf16_tflops_1 = 1.89;
    l.amx_bf16_tflops_n = 1.55;
    l.amx_int8_tops_1 = 2.64;
    l.amx_int8_tops_n = 3.23;
    return l;
}

static bool same_limits(const an_limits *a, const an_limits *b) {
    return !strcmp(a->key, b->key) && a->n_threads == b->n_threads && near(a->measured_at, b->measured_at) &&
           near(a->seconds, b->seconds) && near(a->cpu_share, b->cpu_share) && near(a->mem_gbps_1, b->mem_gbps_1) && near(a->mem_gbps_n, b->mem_gbps_n) &&
           !strcmp(a->fma_isa, b->fma_isa) && near(a->fma_gflops_1, b->fma_gflops_1) &&
           near(a->fma_gflops_n, b->fma_gflops_n) && a->amx == b->amx && !strcmp(a->amx_note, b->amx_note) &&
           near(a->amx_bf16_tflops_1, b->amx_bf16_tflops_1) && near(a->amx_bf16_tflops_n, b->amx_bf16_tflops_n) &&
           near(a->amx_int8_tops_1, b->amx_int8_tops_1) && near(a->amx_int8_tops_n, b->amx_int8_tops_n);
}

static void limits_key(void) {
    char k[192];
    an_limits_machine_key(k, sizeof k);
    t_note("machine key: %s", k);
    T_CHECK(strstr(k, " cpus | limits v") != NULL, "%s", k);
    char small[8];
    an_limits_machine_key(small, sizeof small); /* truncates, never overflows */
    T_CHECK(strlen(small) == 7, "%s", small);
}

static void limits_json_roundtrip(void) {
    an_limits a = sample_limits(), b;
    char buf[4096];
    size_t n = an_limits_to_json(&a, buf, sizeof buf);
    T_CHECK(n > 0 && n < sizeof buf && strlen(buf) == n, "length %zu", n);
    an_err err = {0};
    T_CHECK(an_limits_from_json(&b, buf, n, &err) == AN_OK, "%s", err.msg);
    T_CHECK(same_limits(&a, &b), "round trip changed the limits:\n%s", buf);
    /* the test parser agrees that it is JSON */
    t_json *j = t_json_parse(buf, n);
    T_CHECK(j && t_json_get(j, "mem_gbps_n") && t_json_get(j, "mem_gbps_n")->num == 11.5, "%s", buf);
    t_json_free(j);

    /* strings that need escaping, and AMX absent */
    a.amx = false;
    snprintf(a.amx_note, sizeof a.amx_note, "refused: \"quoted\" \\ and\ttab");
    n = an_limits_to_json(&a, buf, sizeof buf);
    an_err_clear(&err);
    T_CHECK(an_limits_from_json(&b, buf, n, &err) == AN_OK, "%s", err.msg);
    T_CHECK(same_limits(&a, &b), "escapes did not round-trip:\n%s", buf);

    /* a short buffer: truncated but NUL-terminated, and the full length is reported */
    char tiny[16];
    size_t need = an_limits_to_json(&a, tiny, sizeof tiny);
    T_CHECK(need == n && strlen(tiny) == sizeof tiny - 1, "need %zu of %zu", need, n);
}

static void limits_json_rejects(void) {
    an_limits a = sample_limits(), b;
    char buf[4096];
    size_t n = an_limits_to_json(&a, buf, sizeof buf);
    const char *bad[] = {
        "",
        "[]",
        "{",
        "{\"version\": 1}",                                  /* fields missing */
        "{\"version\": 1, \"key\": \"x\", \"n_threads\": 2, \"mem_gbps_1\": 1, \"mem_gbps_n\": 1, "
        "\"fma_gflops_1\": 1, \"fma_gflops_n\": 0}",        /* a limit that is not positive */
        "{\"version\": 99, \"key\": \"x\", \"n_threads\": 2, \"mem_gbps_1\": 1, \"mem_gbps_n\": 1, "
        "\"fma_gflops_1\": 1, \"fma_gflops_n\": 1}",        /* another format version */
        "{\"version\": 1, \"key\": 3}",                      /* wrong type */
        "{\"version\": 1, \"nested\": {}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        an_err err = {0};
        T_CHECK(an_limits_from_json(&b, bad[i], strlen(bad[i]), &err) == AN_E_FORMAT, "accepted: %s", bad[i]);
        T_CHECK(err.msg[0], "no message for %s", bad[i]);
    }
    /* every proper prefix of a valid file is rejected */
    for (size_t k = 0; k + 1 < n; k++) {
        an_err err = {0};
        if (an_limits_from_json(&b, buf, k, &err) != AN_E_FORMAT) {
            T_FAIL("prefix of %zu bytes accepted", k);
            break;
        }
    }
    /* unknown keys are ignored (a newer writer), trailing garbage is not */
    char ext[4200];
    snprintf(ext, sizeof ext, "{\"future\": [1, 2]%s", buf + 1);
    an_err err = {0};
    T_CHECK(an_limits_from_json(&b, ext, strlen(ext), &err) == AN_E_FORMAT, "nested arrays are not ours");
    snprintf(ext, sizeof ext, "{\"future\": \"x\", %s", buf + 1);
    an_err_clear(&err);
    T_CHECK(an_limits_from_json(&b, ext, strlen(ext), &err) == AN_OK, "%s", err.msg);
    snprintf(ext, sizeof ext, "%s x", buf);
    an_err_clear(&err);
    T_CHECK(an_limits_from_json(&b, ext, strlen(ext), &err) == AN_E_FORMAT, "trailing garbage accepted");
}

/* A measurement that counts its calls and returns sample_limits() with the thread count asked. */
static an_status fake_measure(an_limits *out, int n_threads, void *ud, an_err *err) {
    (void)err;
    ++*(int *)ud;
    *out = sample_limits();
    out->n_threads = n_threads;
    out->mem_gbps_n += *(int *)ud; /* tells measurements apart */
    return AN_OK;
}

static an_status failing_measure(an_limits *out, int n_threads, void *ud, an_err *err) {
    (void)out, (void)n_threads, (void)ud;
    return an_err_set(err, AN_E_RUNTIME, "no measuring in this test");
}

static void tmp_dir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/anelm_t_%s.%d", tag, (int)getpid());
    mkdir(buf, 0755);
}

static void limits_cache(void) {
    char dir[256], path[320];
    tmp_dir(dir, sizeof dir, "limits");
    snprintf(path, sizeof path, "%s/limits.json", dir);
    unlink(path);
    int calls = 0;
    an_limits l, l2;
    an_limits_source src;
    an_err err = {0};

    /* no file: measured and saved */
    T_CHECK(an_limits_get(&l, path, 0, false, fake_measure, &calls, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(calls == 1 && src == AN_LIMITS_MEASURED, "calls %d src %d", calls, (int)src);
    T_CHECK(access(path, R_OK) == 0, "cache not written");
    /* the file read back is what was measured */
    T_CHECK(an_limits_load(&l2, path, &err) == AN_OK && same_limits(&l, &l2), "%s", err.msg);
    /* no stray temporary files next to it */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    T_CHECK(access(tmp, F_OK) != 0, "temporary file left behind");

    /* same key: served from the cache (a measurement now would fail the call) */
    T_CHECK(an_limits_get(&l2, path, 0, false, failing_measure, NULL, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(src == AN_LIMITS_CACHED && same_limits(&l, &l2), "cache not used");
    /* a thread count that matches the cache is served too; another one is measured */
    T_CHECK(an_limits_get(&l2, path, l.n_threads, false, failing_measure, NULL, &src, &err) == AN_OK, "%s",
            err.msg);
    T_CHECK(an_limits_get(&l2, path, l.n_threads + 1, false, fake_measure, &calls, &src, &err) == AN_OK, "%s",
            err.msg);
    T_CHECK(calls == 2 && src == AN_LIMITS_MEASURED && l2.n_threads == l.n_threads + 1, "calls %d", calls);

    /* another machine's key: measured again, and the cache now holds this machine's key */
    an_limits other = sample_limits();
    snprintf(other.key, sizeof other.key, "Some Other CPU | 64 cpus | limits v%d", AN_LIMITS_VERSION);
    T_CHECK(an_limits_save(&other, path, &err) == AN_OK, "%s", err.msg);
    T_CHECK(an_limits_get(&l2, path, 0, false, fake_measure, &calls, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(calls == 3 && src == AN_LIMITS_MEASURED, "key mismatch did not re-measure (calls %d)", calls);
    T_CHECK(an_limits_load(&l, path, &err) == AN_OK && !strcmp(l.key, l2.key) && strcmp(l.key, other.key),
            "cache key not replaced");

    /* --refresh: measured even though the cache is good */
    T_CHECK(an_limits_get(&l2, path, 0, true, fake_measure, &calls, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(calls == 4 && src == AN_LIMITS_MEASURED, "refresh did not re-measure (calls %d)", calls);

    /* a corrupt cache: measured and overwritten */
    FILE *f = fopen(path, "w");
    fputs("{\"version\": 1, \"key\": ", f);
    fclose(f);
    T_CHECK(an_limits_get(&l2, path, 0, false, fake_measure, &calls, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(calls == 5 && src == AN_LIMITS_MEASURED, "corrupt cache not replaced (calls %d)", calls);
    T_CHECK(an_limits_load(&l, path, &err) == AN_OK, "%s", err.msg);

    /* a failing measurement fails the call */
    unlink(path);
    T_CHECK(an_limits_get(&l2, path, 0, false, failing_measure, NULL, &src, &err) == AN_E_RUNTIME, "no error");

    /* an unwritable place: the figures still come back, flagged unsaved */
    char nodir[400];
    snprintf(nodir, sizeof nodir, "%s/missing/limits.json", dir);
    an_err_clear(&err);
    T_CHECK(an_limits_get(&l2, nodir, 0, false, fake_measure, &calls, &src, &err) == AN_OK, "%s", err.msg);
    T_CHECK(src == AN_LIMITS_UNSAVED, "src %d", (int)src);
    unlink(path);
    rmdir(dir);
}

/* ---- the command --------------------------------------------------------------------------- */

typedef t_run_result run_result;
#define run_free t_run_free

/* Runs `ANELM_CACHE=cache build/anelm ARGS`. */
static run_result run_bench(const char *cache, const char *args) {
    char env[600];
    snprintf(env, sizeof env, "ANELM_CACHE='%s'", cache);
    return t_run(env, "%s", args);
}

/* A cache holding sample limits for this machine, so the command measures nothing. */
static bool fake_cache(char *dir, size_t cap) {
    tmp_dir(dir, cap, "bcache");
    char path[400];
    snprintf(path, sizeof path, "%s/limits.json", dir);
    an_limits l = sample_limits();
    an_err err = {0};
    if (an_limits_save(&l, path, &err) != AN_OK) {
        T_FAIL("%s", err.msg);
        return false;
    }
    return true;
}

static void drop_cache(const char *dir) {
    char path[400];
    snprintf(path, sizeof path, "%s/limits.json", dir);
    unlink(path);
    rmdir(dir);
}

static void bench_json_fields(void) {
    if (access(MODEL, R_OK) != 0) {
        t_skip("needs %s (run from the repository root)", MODEL);
        return;
    }
    char cache[256];
    if (!fake_cache(cache, sizeof cache)) return;
    run_result r = run_bench(cache, "bench -m " MODEL " -p 16 -n 4 -r 2 -t 2 -o json --device cpu");
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    T_CHECK(!strstr(r.err, "measuring"), "measured despite the cache: %s", r.err);
    t_json *j = t_json_parse(r.out, r.out_len);
    T_CHECK(j && j->kind == TJ_ARR && j->len == 2, "not a 2-element array: %s", r.out);
    an_limits l = sample_limits();
    for (size_t i = 0; j && j->kind == TJ_ARR && i < j->len; i++) {
        const t_json *o = t_json_at(j, i);
        bool pp = i == 0;
        const char *want[] = {"model", "type", "n_prompt", "n_gen", "threads", "device",
                              "tokens_per_s", "stddev", pp ? "tflops" : "gbps", "fraction_of_limit"};
        size_t nw = sizeof want / sizeof want[0];
        T_CHECK(o && o->kind == TJ_OBJ && o->len == nw, "object %zu has %zu fields", i, o ? o->len : 0);
        if (!o || o->kind != TJ_OBJ) continue;
        for (size_t k = 0; k < nw; k++) T_CHECK(t_json_get(o, want[k]) != NULL, "object %zu lacks %s", i, want[k]);
        for (size_t k = 0; k < nw; k++)
            if (!t_json_get(o, want[k])) return;
        const t_json *model = t_json_get(o, "model"), *type = t_json_get(o, "type"), *dev = t_json_get(o, "device");
        T_CHECK(model->kind == TJ_STR && !strcmp(model->str, "tinyscribe-28m-q8_0.gguf"), "model");
        T_CHECK(type->kind == TJ_STR && !strcmp(type->str, "Q8_0"), "type %s", type->str ? type->str : "?");
        T_CHECK(dev->kind == TJ_STR && !strcmp(dev->str, "cpu"), "device");
        T_CHECK(t_json_get(o, "n_prompt")->num == (pp ? 16 : 0), "n_prompt");
        T_CHECK(t_json_get(o, "n_gen")->num == (pp ? 0 : 4), "n_gen");
        T_CHECK(t_json_get(o, "threads")->num == 2, "threads");
        double tps = t_json_get(o, "tokens_per_s")->num, sd = t_json_get(o, "stddev")->num;
        double rate = t_json_get(o, pp ? "tflops" : "gbps")->num, frac = t_json_get(o, "fraction_of_limit")->num;
        T_CHECK(tps > 0 && sd >= 0 && rate > 0 && frac > 0, "tps %g sd %g rate %g frac %g", tps, sd, rate, frac);
        /* the fraction is taken against the cached (fake) 2-thread limits */
        double lim = pp ? l.fma_gflops_n / 1e3 : l.mem_gbps_n;
        T_CHECK(fabs(frac - rate / lim) <= 1e-3 * frac, "fraction %g, rate/limit %g", frac, rate / lim);
    }
    t_json_free(j);
    run_free(&r);

    /* -n 0 skips tg; csv has the JSON fields as its header */
    r = run_bench(cache, "bench -m " MODEL " -p 8 -n 0 -r 1 -t 1 -o csv --device cpu");
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    T_CHECK(!strncmp(r.out,
                     "model,type,n_prompt,n_gen,threads,device,tokens_per_s,stddev,tflops,gbps,fraction_of_limit\n"
                     "tinyscribe-28m-q8_0.gguf,Q8_0,8,0,1,cpu,",
                     strlen("model,type,n_prompt,n_gen,threads,device,tokens_per_s,stddev,tflops,gbps,fraction_of_"
                            "limit\ntinyscribe-28m-q8_0.gguf,Q8_0,8,0,1,cpu,")),
            "%s", r.out);
    int lines = 0;
    for (const char *p = r.out; *p; p++) lines += *p == '\n';
    T_CHECK(lines == 2, "%d lines: %s", lines, r.out);
    run_free(&r);

    /* md: a table with the pp and tg rows */
    r = run_bench(cache, "bench -m " MODEL " -p 8 -n 2 -r 1 -t 1 --device cpu");
    T_CHECK(r.code == 0 && strstr(r.out, "| model | type |") && strstr(r.out, "| pp8 |") && strstr(r.out, "| tg2 |"),
            "exit %d: %s%s", r.code, r.out, r.err);
    run_free(&r);
    drop_cache(cache);
}

static void bench_limits_cached(void) {
    char cache[256];
    if (!fake_cache(cache, sizeof cache)) return;
    run_result r = run_bench(cache, "bench --limits -o json");
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    T_CHECK(!strstr(r.err, "measuring"), "measured despite the cache: %s", r.err);
    an_limits l, want = sample_limits();
    an_err err = {0};
    T_CHECK(an_limits_from_json(&l, r.out, r.out_len, &err) == AN_OK, "%s: %s", err.msg, r.out);
    T_CHECK(same_limits(&l, &want), "printed limits differ from the cache: %s", r.out);
    run_free(&r);
    r = run_bench(cache, "bench --limits");
    T_CHECK(r.code == 0 && strstr(r.out, "| memory read (streaming) | 9.75 GB/s | 11.5 GB/s |") &&
                strstr(r.out, "AMX BF16"),
            "exit %d: %s", r.code, r.out);
    run_free(&r);
    drop_cache(cache);
}

static void bench_usage_errors(void) {
    const char *cases[] = {"bench -o xml", "bench -p 0 -n 0", "bench -r 0", "bench -p 1,x", "bench --limits -o csv",
                           "bench --bogus", "bench -c 4 -p 8"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = run_bench("/nonexistent/anelm-cache", cases[i]);
        T_CHECK(r.code == 1, "'%s' exited %d: %s", cases[i], r.code, r.err);
        run_free(&r);
    }
    run_result r = run_bench("/nonexistent/anelm-cache", "bench --help");
    T_CHECK(r.code == 0 && strstr(r.out, "--limits"), "help: %d", r.code);
    run_free(&r);
}

const t_case t_suite_bench[] = {
    {"limits_key", limits_key},
    {"limits_json_roundtrip", limits_json_roundtrip},
    {"limits_json_rejects", limits_json_rejects},
    {"limits_cache", limits_cache},
    {"bench_json_fields", bench_json_fields},
    {"bench_limits_cached", bench_limits_cached},
    {"bench_usage_errors", bench_usage_errors},
    {0, 0},
};
