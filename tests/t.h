/* t.h — the tiny test harness: suites of cases, checks that count, SKIP that is loud.
 * Each suite file defines `const t_case t_suite_NAME[] = {{"case", fn}, ..., {0}};` and is
 * listed in tests/main.c. The runner ends with "N passed, N failed, N skipped". */
#ifndef AN_TEST_T_H
#define AN_TEST_T_H

#include <stdio.h>
#include <stdbool.h>

typedef struct t_case {
    const char *name;
    void (*fn)(void);
} t_case;

void t_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* printed under the case */

/* Record a failure (the case continues; use `return` after it if continuing is pointless). */
#define T_CHECK(cond, ...) \
    do { if (!(cond)) t_fail_at(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__); } while (0)
#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* Path of the shared folder (models, reference outputs): $ANELM_SHARED or ../shared; NULL if
 * it is absent (tests that need it then skip, saying so). */
const char *t_shared_dir(void);
/* Join t_shared_dir() and rel; NULL if shared is absent or the file is missing. The result
 * lives in one of 8 rotating static buffers, so up to 8 paths can be held at once. */
const char *t_shared_path(const char *rel);
/* The whole file, NUL-terminated (*len, if non-NULL, gets its size without the NUL); NULL
 * if it cannot be opened or read. Free with free(). */
char *t_read_file(const char *path, size_t *len);

/* Path of the repository's build dir (for the CLI binary): $ANELM_BUILD or build. */
const char *t_build_dir(void);

/* The anelm command as a user runs it: `ENV <build>/anelm ARGS` through the shell, stdin from
 * /dev/null; env is "" or shell assignments ("ANELM_CACHE='/tmp/x'"). Captures stdout (with
 * its length: it may hold NULs), stderr and the exit code (128 if it did not exit normally). */
typedef struct t_run_result {
    int code;
    char *out, *err; /* NUL-terminated */
    size_t out_len;
} t_run_result;
t_run_result t_run(const char *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void t_run_free(t_run_result *r);

#endif
