/* main.c — the test runner: `anelm_test [suite ...]` runs the named suites (all by default). */
#include "t.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITES(X) X(core) X(gguf) X(quant) X(kernels) X(matmul) X(amx) X(attention) X(sched) X(tokenizer) X(model) X(cli) X(bench) X(synth) X(cache) X(ane) X(ane_mil) X(ane_ref) X(ane_bridge) X(lut) X(palettize)

#define DECL(s) extern const t_case t_suite_##s[];
SUITES(DECL)
#undef DECL

static int g_case_failed, g_case_skipped;

void t_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    FAIL %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    g_case_failed++;
}

void t_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    SKIP: ");
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    g_case_skipped = 1;
}

void t_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    ");
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

const char *t_shared_dir(void) {
    const char *e = getenv("ANELM_SHARED");
    const char *d = e && *e ? e : "../shared";
    return access(d, R_OK) == 0 ? d : NULL;
}

const char *t_shared_path(const char *rel) {
    static char ring[8][4096]; /* several paths may be live at once (model, reference, data) */
    static int next;
    const char *d = t_shared_dir();
    if (!d) return NULL;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%s/%s", d, rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

const char *t_build_dir(void) {
    const char *e = getenv("ANELM_BUILD");
    return e && *e ? e : "build";
}

char *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

/* A command's captured output: the file's text, or "" when it could not be read. */
static char *slurp(const char *path, size_t *len) {
    char *b = t_read_file(path, len);
    if (!b && (b = calloc(1, 1)) && len) *len = 0;
    return b;
}

t_run_result t_run(const char *env, const char *fmt, ...) {
    char args[8192], cmd[9400], out[64], err[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    static int seq;
    snprintf(out, sizeof out, "/tmp/anelm_t_out.%d.%d", (int)getpid(), seq);
    snprintf(err, sizeof err, "/tmp/anelm_t_err.%d.%d", (int)getpid(), seq++);
    snprintf(cmd, sizeof cmd, "%s %s/anelm %s >%s 2>%s </dev/null", env ? env : "", t_build_dir(), args, out, err);
    int st = system(cmd);
    t_run_result r = {.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128};
    r.out = slurp(out, &r.out_len);
    r.err = slurp(err, NULL);
    unlink(out);
    unlink(err);
    return r;
}

void t_run_free(t_run_result *r) {
    free(r->out);
    free(r->err);
}

int main(int argc, char **argv) {
    struct { const char *name; const t_case *cases; } suites[] = {
#define ROW(s) {#s, t_suite_##s},
        SUITES(ROW)
#undef ROW
    };
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        if (argc > 1) {
            int want = 0;
            for (int i = 1; i < argc; i++) want |= strcmp(argv[i], suites[s].name) == 0;
            if (!want) continue;
        }
        printf("suite %s\n", suites[s].name);
        for (const t_case *c = suites[s].cases; c->name; c++) {
            g_case_failed = 0;
            g_case_skipped = 0;
            printf("  %s\n", c->name);
            c->fn();
            if (g_case_failed) failed++;
            else if (g_case_skipped) skipped++;
            else passed++;
            printf("  %s %s\n", g_case_failed ? "FAIL" : g_case_skipped ? "skip" : "ok  ", c->name);
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
