/* test_ane_bridge.c — the ANE bridge (backends/ane/bridge/): off macOS every entry point answers
 * AN_E_UNSUPPORTED with the reason "not macOS" and nothing crashes; everywhere, the portable
 * parts bridge.m relies on: the compile budget, bounded waits on the worker (a job that
 * outlives its deadline wedges the worker, which still releases the job's argument when it
 * ends), stride/layout rules, strided surface copies, the known-answer comparison, description
 * checks, cache paths, staging files and the flock with a bounded wait. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/ane/bridge/bridge.h"
#include "backends/ane/bridge/internal.h"
#include "core/fp16.h"
#include "t.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A one-function program description with a known answer, used by the stub and check cases. */
typedef struct desc_fixture {
    struct an_mil_io io;
    uint16_t x[32 * 64], y[32 * 64];
    const uint16_t *in_ptrs[1], *out_ptrs[1];
    const uint16_t *const *in_fn[1], *const *out_fn[1];
    an_ane_prog_desc d;
} desc_fixture;

static void fixture_init(desc_fixture *f) {
    memset(f, 0, sizeof *f);
    f->io.n_in = 1, f->io.n_out = 1, f->io.n = 32, f->io.in_width[0] = 64, f->io.out_width[0] = 64;
    for (int i = 0; i < 32 * 64; i++) f->x[i] = f->y[i] = an_f32_to_f16((float)(i % 17) - 8.0f);
    f->in_ptrs[0] = f->x, f->out_ptrs[0] = f->y;
    f->in_fn[0] = f->in_ptrs, f->out_fn[0] = f->out_ptrs;
    static const char mil[] = "program(1.3)\n{\n}\n";
    f->d.mil = mil, f->d.mil_len = sizeof mil - 1;
    f->d.n_fns = 1, f->d.io = &f->io;
    f->d.ref_in = f->in_fn, f->d.ref_out = f->out_fn;
    f->d.tol_abs = 1e-2f, f->d.tol_rel = 1e-2f;
}

static void test_unavailable(void) {
    const char *why = NULL;
    bool avail = an_ane_bridge_available(&why);
#ifndef __APPLE__
    T_CHECK(!avail, "the bridge claims to be available off macOS");
    T_CHECK(why && !strcmp(why, "not macOS"), "reason \"%s\"", why ? why : "(null)");
#endif
    T_CHECK(an_ane_bridge_available(NULL) == avail, "answer changes with why == NULL");
    char line[256];
    an_ane_bridge_describe(line, sizeof line);
    t_note("%s", line);
    T_CHECK(line[0] != 0, "empty description");
    if (avail) {
        t_skip("the ANE bridge is available here: the unavailable paths do not apply");
        return;
    }
    T_CHECK(why && why[0], "no reason given");
    T_CHECK(an_ane_bridge_compiles() == 0, "compiles %d", an_ane_bridge_compiles());

    desc_fixture *f = malloc(sizeof *f);
    fixture_init(f);
    an_err err = {0};
    an_ane_prog *p = (an_ane_prog *)(uintptr_t)1;
    T_CHECK(an_ane_prog_load(&p, &f->d, &err) == AN_E_UNSUPPORTED, "load: %s", err.msg);
    T_CHECK(p == NULL, "out not cleared");
    T_CHECK(strstr(err.msg, why) != NULL, "message \"%s\" lacks the reason", err.msg);
    an_err_clear(&err);
    T_CHECK(an_ane_prog_load(&p, NULL, &err) == AN_E_UNSUPPORTED, "load(NULL desc)");
    T_CHECK(an_ane_prog_load(NULL, NULL, NULL) == AN_E_UNSUPPORTED, "load(NULL, NULL, NULL)");
    uint16_t o[1];
    const uint16_t *ins[1] = {f->x};
    uint16_t *outs[1] = {o};
    an_err_clear(&err);
    T_CHECK(an_ane_prog_eval(NULL, 0, ins, outs, &err) == AN_E_UNSUPPORTED, "eval");
    T_CHECK(err.code == AN_E_UNSUPPORTED && err.msg[0], "eval message");
    T_CHECK(an_ane_prog_eval(NULL, -1, NULL, NULL, NULL) == AN_E_UNSUPPORTED, "eval(NULL...)");
    an_ane_prog_free(NULL);
    T_CHECK(an_ane_prog_info(NULL) != NULL, "info(NULL)");
    T_CHECK(an_ane_bridge_compiles() == 0, "a refused load counted a compile");
    free(f);
}

static void test_budget(void) {
    int c = 0;
    for (int i = 0; i < AN_ANE_COMPILE_BUDGET; i++)
        if (!an_ane_budget_take(&c, AN_ANE_COMPILE_BUDGET)) {
            T_FAIL("compile %d refused below the budget", i + 1);
            return;
        }
    T_CHECK(c == AN_ANE_COMPILE_BUDGET, "counter %d", c);
    T_CHECK(!an_ane_budget_take(&c, AN_ANE_COMPILE_BUDGET), "compile %d allowed", c + 1);
    T_CHECK(!an_ane_budget_take(&c, AN_ANE_COMPILE_BUDGET), "refusal is not sticky");
    T_CHECK(c == AN_ANE_COMPILE_BUDGET, "a refusal moved the counter to %d", c);
    int z = 0;
    T_CHECK(!an_ane_budget_take(&z, 0) && z == 0, "budget 0 allowed a compile");
    int neg = -5;
    T_CHECK(!an_ane_budget_take(&neg, 10) && neg == -5, "negative counter accepted");
    T_CHECK(!an_ane_budget_take(NULL, 10), "NULL counter accepted");
    T_CHECK(AN_ANE_COMPILE_BUDGET == 100, "budget %d (research/ane.md §6.3 says about 100)", AN_ANE_COMPILE_BUDGET);
}

/* ---- worker ------------------------------------------------------------------------------ */

typedef struct wjob {
    int sleep_ms;
    atomic_int ran, released;
} wjob;

static void wjob_fn(void *arg) {
    wjob *j = arg;
    sleep_ms(j->sleep_ms);
    atomic_fetch_add(&j->ran, 1);
}

static void wjob_release(void *arg) {
    wjob *j = arg;
    atomic_fetch_add(&j->released, 1);
}

static void test_worker(void) {
    an_ane_worker *w = NULL;
    an_err err = {0};
    if (an_ane_worker_start(&w, &err) != AN_OK) {
        T_FAIL("start: %s", err.msg);
        return;
    }
    wjob quick = {.sleep_ms = 5};
    for (int i = 0; i < 20; i++) {
        an_err_clear(&err);
        T_CHECK(an_ane_worker_run(w, wjob_fn, &quick, wjob_release, 5000, "quick", &err) == AN_OK, "run %d: %s", i,
                err.msg);
    }
    T_CHECK(atomic_load(&quick.ran) == 20, "ran %d times", atomic_load(&quick.ran));
    T_CHECK(atomic_load(&quick.released) == 0, "release called on success");
    T_CHECK(!an_ane_worker_wedged(w), "wedged after quick jobs");

    an_err_clear(&err);
    T_CHECK(an_ane_worker_run(w, wjob_fn, &quick, wjob_release, 0, "zero", &err) == AN_E_USAGE, "timeout 0 accepted");
    T_CHECK(atomic_load(&quick.released) == 1, "a refused job's argument was not released");

    /* a job that outlives its deadline */
    static wjob slow = {.sleep_ms = 400};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    an_err_clear(&err);
    an_status s = an_ane_worker_run(w, wjob_fn, &slow, wjob_release, 50, "compile", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    T_CHECK(s == AN_E_RUNTIME, "timeout gave %d", (int)s);
    T_CHECK(strstr(err.msg, "compile") && strstr(err.msg, "did not finish"), "message: %s", err.msg);
    T_CHECK(waited < 350, "waited %.0f ms for a 50 ms deadline", waited);
    T_CHECK(an_ane_worker_wedged(w), "not wedged after a timeout");
    T_CHECK(atomic_load(&slow.released) == 0, "released while the job still runs");

    /* later jobs are refused at once, their arguments released */
    wjob later = {.sleep_ms = 0};
    an_err_clear(&err);
    T_CHECK(an_ane_worker_run(w, wjob_fn, &later, wjob_release, 5000, "evaluation", &err) == AN_E_RUNTIME,
            "a wedged worker ran a job");
    T_CHECK(strstr(err.msg, "earlier compile") != NULL, "message: %s", err.msg);
    T_CHECK(atomic_load(&later.ran) == 0 && atomic_load(&later.released) == 1, "ran %d released %d",
            atomic_load(&later.ran), atomic_load(&later.released));

    /* the abandoned job ends: the worker releases its argument */
    for (int i = 0; i < 200 && !atomic_load(&slow.released); i++) sleep_ms(10);
    T_CHECK(atomic_load(&slow.ran) == 1 && atomic_load(&slow.released) == 1, "abandoned job: ran %d released %d",
            atomic_load(&slow.ran), atomic_load(&slow.released));
    an_ane_worker_stop(w);
    an_ane_worker_stop(NULL);

    /* stopping while an abandoned job still runs detaches the thread, which frees the worker */
    if (an_ane_worker_start(&w, &err) != AN_OK) {
        T_FAIL("start: %s", err.msg);
        return;
    }
    static wjob slow2 = {.sleep_ms = 200};
    an_err_clear(&err);
    T_CHECK(an_ane_worker_run(w, wjob_fn, &slow2, wjob_release, 20, "load", &err) == AN_E_RUNTIME, "no timeout");
    an_ane_worker_stop(w);
    for (int i = 0; i < 200 && !atomic_load(&slow2.released); i++) sleep_ms(10);
    T_CHECK(atomic_load(&slow2.released) == 1, "detached worker did not release its job");
    sleep_ms(20); /* let the detached thread finish freeing */
}

/* ---- layouts and copies ---------------------------------------------------------------------- */

static void test_layout(void) {
    T_CHECK(an_ane_default_stride(1) == 64, "width 1: %lld", (long long)an_ane_default_stride(1));
    T_CHECK(an_ane_default_stride(32) == 64, "width 32");
    T_CHECK(an_ane_default_stride(33) == 128, "width 33");
    T_CHECK(an_ane_default_stride(4096) == 8192, "width 4096");
    T_CHECK(an_ane_default_stride(4095) == 8192, "width 4095");

    int64_t st = 0;
    an_err err = {0};
    T_CHECK(an_ane_layout_stride(32, 64, 1, 128, 128, &st, &err) == AN_OK && st == 128, "plain: %s", err.msg);
    T_CHECK(an_ane_layout_stride(32, 64, 0, 192, 0, &st, &err) == AN_OK && st == 192, "no plane stride");
    T_CHECK(an_ane_layout_stride(32, 64, 1, 128, 256, &st, &err) == AN_OK && st == 256, "plane stride wins");
    T_CHECK(an_ane_layout_stride(32, 16, 1, 32, 32, &st, &err) == AN_OK && st == 32,
            "packed 32-byte rows (Orion #14) must be accepted, the self-test judges them");
    an_err_clear(&err);
    T_CHECK(an_ane_layout_stride(32, 64, 2, 128, 256, &st, &err) == AN_E_UNSUPPORTED, "height 2 accepted");
    T_CHECK(strstr(err.msg, "Height 2") != NULL, "message: %s", err.msg);
    an_err_clear(&err);
    T_CHECK(an_ane_layout_stride(32, 64, 1, 64, 0, &st, &err) == AN_E_UNSUPPORTED, "stride below width*2 accepted");
    an_err_clear(&err);
    T_CHECK(an_ane_layout_stride(32, 64, 1, 129, 0, &st, &err) == AN_E_UNSUPPORTED, "odd stride accepted");
    an_err_clear(&err);
    T_CHECK(an_ane_layout_stride(32, 64, 1, 256, 128, &st, &err) == AN_E_UNSUPPORTED, "plane < row accepted");

    T_CHECK(an_ane_surface_bytes(1, 64) == 65536, "tiny surface %zu", an_ane_surface_bytes(1, 64));
    T_CHECK(an_ane_surface_bytes(0, 0) == 65536, "empty surface");
    T_CHECK(an_ane_surface_bytes(512, 128) == 65536, "exactly 64 KiB");
    T_CHECK(an_ane_surface_bytes(513, 128) == 131072, "just over 64 KiB");
    T_CHECK(an_ane_surface_bytes(2048, 8192) == 2048u * 8192u, "16 MiB");

    /* strided round trip; the gaps stay as they were */
    enum { R = 5, W = 7, S = 64 };
    uint16_t src[R * W], back[R * W];
    uint8_t surf[R * S];
    memset(surf, 0xAB, sizeof surf);
    for (int i = 0; i < R * W; i++) src[i] = (uint16_t)(i * 31 + 1);
    an_ane_copy_in(surf, S, src, R, W);
    bool gaps = true;
    for (int r = 0; r < R; r++)
        for (int b = W * 2; b < S; b++) gaps &= surf[r * S + b] == 0xAB;
    T_CHECK(gaps, "copy_in wrote into the row padding");
    uint16_t v;
    memcpy(&v, surf + 3 * S + 2 * 2, 2);
    T_CHECK(v == src[3 * W + 2], "element (3,2) at 3*stride + 2*2: %u", v);
    memset(back, 0, sizeof back);
    an_ane_copy_out(back, surf, S, R, W);
    T_CHECK(!memcmp(back, src, sizeof src), "round trip differs");
}

/* ---- self-test comparison ------------------------------------------------------------------- */

static void test_compare(void) {
    uint16_t a[6], b[6];
    const float vals[6] = {0.0f, 1.0f, -2.5f, 100.0f, -0.001f, 65504.0f};
    for (int i = 0; i < 6; i++) a[i] = b[i] = an_f32_to_f16(vals[i]);
    size_t bad = 99;
    T_CHECK(an_ane_fp16_close(a, b, 6, 0, 0, &bad), "identical arrays differ at %zu", bad);
    b[3] = an_f32_to_f16(100.5f);
    T_CHECK(!an_ane_fp16_close(a, b, 6, 0, 0, &bad) && bad == 3, "exact compare missed index 3 (%zu)", bad);
    T_CHECK(an_ane_fp16_close(a, b, 6, 0.5f, 0, &bad), "absolute tolerance 0.5");
    T_CHECK(an_ane_fp16_close(a, b, 6, 0, 0.01f, &bad), "relative tolerance 1%%");
    T_CHECK(!an_ane_fp16_close(a, b, 6, 0.1f, 0.001f, &bad) && bad == 3, "tolerance too loose");
    b[3] = a[3];
    uint16_t nan = 0x7E00, pinf = 0x7C00, ninf = 0xFC00;
    b[1] = nan;
    T_CHECK(!an_ane_fp16_close(a, b, 6, 1e9f, 1e9f, &bad) && bad == 1, "NaN reference matched a number");
    T_CHECK(!an_ane_fp16_close(b, a, 6, 1e9f, 1e9f, &bad) && bad == 1, "NaN output matched a number");
    a[1] = nan;
    T_CHECK(an_ane_fp16_close(a, b, 6, 0, 0, &bad), "NaN against NaN");
    a[0] = b[0] = pinf;
    T_CHECK(an_ane_fp16_close(a, b, 6, 0, 0, &bad), "+inf against +inf");
    b[0] = ninf;
    T_CHECK(!an_ane_fp16_close(a, b, 6, 1e9f, 1e9f, &bad) && bad == 0, "+inf matched -inf");
    b[0] = an_f32_to_f16(65504.0f);
    T_CHECK(!an_ane_fp16_close(a, b, 6, 1e9f, 1e9f, &bad) && bad == 0, "inf matched a finite value");

    /* the whole-function check names function, output, row and column */
    struct an_mil_io io = {.n_in = 1, .n_out = 2, .n = 4, .in_width = {8}, .out_width = {3, 5}};
    uint16_t w0[12], w1[20], g0[12], g1[20];
    for (int i = 0; i < 12; i++) w0[i] = g0[i] = an_f32_to_f16((float)i);
    for (int i = 0; i < 20; i++) w1[i] = g1[i] = an_f32_to_f16((float)-i);
    const uint16_t *want[2] = {w0, w1}, *got[2] = {g0, g1};
    an_err err = {0};
    T_CHECK(an_ane_selftest_check(&io, 7, got, want, 0, 0, &err) == AN_OK, "%s", err.msg);
    g1[2 * 5 + 4] = an_f32_to_f16(3.0f);
    T_CHECK(an_ane_selftest_check(&io, 7, got, want, 0.01f, 0.01f, &err) == AN_E_RUNTIME, "mismatch not found");
    T_CHECK(strstr(err.msg, "function 7 output 1") && strstr(err.msg, "row 2 column 4") && strstr(err.msg, "got 3") &&
                strstr(err.msg, "expected -14"),
            "message: %s", err.msg);
}

static void test_desc_check(void) {
    desc_fixture *f = malloc(sizeof *f);
    fixture_init(f);
    an_err err = {0};
    T_CHECK(an_ane_desc_check(&f->d, &err) == AN_OK, "%s", err.msg);
#define BAD(field_change, what)                                                     \
    do {                                                                            \
        fixture_init(f);                                                            \
        field_change;                                                               \
        an_err_clear(&err);                                                         \
        T_CHECK(an_ane_desc_check(&f->d, &err) == AN_E_USAGE, "accepted: %s", what); \
        T_CHECK(err.msg[0] != 0, "no message for %s", what);                       \
    } while (0)
    BAD(f->d.mil = NULL, "no MIL");
    BAD(f->d.mil_len = 0, "empty MIL");
    BAD(f->d.blob_len = 10, "blob_len without blob");
    BAD(f->d.n_fns = 0, "0 functions");
    BAD(f->d.n_fns = AN_ANE_BANK_MAX_FNS + 1, "too many functions");
    BAD(f->d.io = NULL, "no io");
    BAD(f->d.ref_in = NULL, "no ref_in");
    BAD(f->d.ref_out = NULL, "no ref_out");
    BAD(f->d.tol_abs = -1, "negative tolerance");
    BAD(f->d.tol_rel = NAN, "NaN tolerance");
    BAD(f->d.tol_abs = INFINITY, "infinite tolerance");
    BAD(f->io.n_in = 0, "0 inputs");
    BAD(f->io.n_in = 5, "5 inputs");
    BAD(f->io.n_out = 17, "17 outputs");
    BAD(f->io.n = 0, "0 rows");
    BAD(f->io.in_width[0] = 0, "width 0");
    BAD(f->io.out_width[0] = AN_ANE_MAX_EXTENT + 1, "width past the cap");
    BAD(f->in_ptrs[0] = NULL, "NULL reference input");
    BAD(f->out_ptrs[0] = NULL, "NULL reference output");
    BAD(f->in_fn[0] = NULL, "NULL reference array");
#undef BAD
    T_CHECK(an_ane_desc_check(NULL, &err) == AN_E_USAGE, "NULL desc");
    free(f);
}

/* ---- files ---------------------------------------------------------------------------------- */

static void test_cache_path(void) {
    char buf[256];
    an_err err = {0};
    const char *id = "4f2a_9e1c_e3b0c442";
    T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", "24B83", id, &err) == AN_OK, "%s", err.msg);
    T_CHECK(!strcmp(buf, "/c/ane/24B83/4f2a_9e1c_e3b0c442"), "%s", buf);
    T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", NULL, id, &err) == AN_OK && !strcmp(buf, "/c/ane/unknown/4f2a_9e1c_e3b0c442"),
            "%s", buf);
    T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", "../x", id, &err) == AN_OK && strstr(buf, "/unknown/"),
            "os build with a slash used: %s", buf);
    T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", "..", id, &err) == AN_OK && strstr(buf, "/unknown/"), "'..' build");
    const char *bad_ids[] = {"", "a/b", "..", "a.b", "x y", NULL};
    for (int i = 0; bad_ids[i]; i++) {
        an_err_clear(&err);
        T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", "24B83", bad_ids[i], &err) == AN_E_USAGE, "id \"%s\" accepted",
                bad_ids[i]);
    }
    an_err_clear(&err);
    T_CHECK(an_ane_cache_path(buf, sizeof buf, "/c", "b", NULL, &err) == AN_E_USAGE, "NULL id");
    char long_id[260];
    memset(long_id, 'a', 259);
    long_id[259] = 0;
    T_CHECK(!an_ane_ident_ok(long_id), "259-character id accepted");
    long_id[200] = 0;
    T_CHECK(an_ane_ident_ok(long_id), "200-character id refused");
    an_err_clear(&err);
    T_CHECK(an_ane_cache_path(buf, 16, "/c", "b", id, &err) == AN_E_RANGE, "overflow not reported");
    an_err_clear(&err);
    T_CHECK(an_ane_cache_path(buf, sizeof buf, NULL, "b", id, &err) == AN_E_USAGE, "NULL cache dir");
}

static void test_files(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/anelm_bridge_t.XXXXXX");
    if (!mkdtemp(dir)) {
        T_FAIL("mkdtemp failed");
        return;
    }
    char path[256], lock[256];
    an_err err = {0};
    snprintf(path, sizeof path, "%s/stage/id_1/weights", dir);
    T_CHECK(an_ane_mkdir_p(path, &err) == AN_OK, "%s", err.msg);
    T_CHECK(an_ane_mkdir_p(path, &err) == AN_OK, "mkdir -p of an existing tree: %s", err.msg);
    struct stat st;
    T_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700, "mode %o", st.st_mode & 0777);
    snprintf(path, sizeof path, "%s/stage/id_1/weights/weight.bin", dir);
    uint8_t data[3000];
    for (int i = 0; i < 3000; i++) data[i] = (uint8_t)(i * 7);
    T_CHECK(an_ane_write_file(path, data, sizeof data, &err) == AN_OK, "%s", err.msg);
    FILE *fp = fopen(path, "rb");
    uint8_t back[4000];
    size_t n = fp ? fread(back, 1, sizeof back, fp) : 0;
    if (fp) fclose(fp);
    T_CHECK(n == sizeof data && !memcmp(back, data, n), "read back %zu bytes", n);
    T_CHECK(an_ane_write_file(path, "ab", 2, &err) == AN_OK && stat(path, &st) == 0 && st.st_size == 2,
            "rewrite did not truncate");
    an_err_clear(&err);
    snprintf(path, sizeof path, "%s/stage/id_1/weights/weight.bin/x", dir);
    T_CHECK(an_ane_mkdir_p(path, &err) == AN_E_IO, "mkdir through a file");

    /* flock with a bounded wait: a second holder (another descriptor) times out, then gets it */
    snprintf(lock, sizeof lock, "%s/entry.lock", dir);
    int fd1 = -1, fd2 = -1;
    an_err_clear(&err);
    T_CHECK(an_ane_lock_file(lock, 1000, &fd1, &err) == AN_OK && fd1 >= 0, "%s", err.msg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    T_CHECK(an_ane_lock_file(lock, 100, &fd2, &err) == AN_E_RUNTIME && fd2 == -1, "second lock taken");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    T_CHECK(waited >= 90 && waited < 1000, "waited %.0f ms for a 100 ms bound", waited);
    T_CHECK(strstr(err.msg, "still held") != NULL, "message: %s", err.msg);
    an_ane_unlock_file(fd1);
    an_err_clear(&err);
    T_CHECK(an_ane_lock_file(lock, 100, &fd2, &err) == AN_OK, "lock after unlock: %s", err.msg);
    an_ane_unlock_file(fd2);
    an_ane_unlock_file(-1);

    /* tree deletion: files, nested directories, a symlink that must not be followed */
    char keep[256], link_path[256];
    snprintf(keep, sizeof keep, "%s/keep.txt", dir);
    T_CHECK(an_ane_write_file(keep, "k", 1, &err) == AN_OK, "%s", err.msg);
    snprintf(link_path, sizeof link_path, "%s/stage/id_1/link", dir);
    T_CHECK(symlink(keep, link_path) == 0, "symlink");
    snprintf(path, sizeof path, "%s/stage", dir);
    T_CHECK(an_ane_rm_tree(path, &err) == AN_OK, "%s", err.msg);
    T_CHECK(stat(path, &st) != 0, "tree still there");
    T_CHECK(stat(keep, &st) == 0, "deletion followed the symlink");
    T_CHECK(an_ane_rm_tree(path, &err) == AN_OK, "deleting a missing tree failed: %s", err.msg);
    T_CHECK(an_ane_rm_tree(dir, &err) == AN_OK && stat(dir, &st) != 0, "cleanup");
}

const t_case t_suite_ane_bridge[] = {
    {"unavailable", test_unavailable},
    {"budget", test_budget},
    {"worker", test_worker},
    {"layout", test_layout},
    {"compare", test_compare},
    {"desc_check", test_desc_check},
    {"cache_path", test_cache_path},
    {"files", test_files},
    {0},
};
