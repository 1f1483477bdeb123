/* cli.h — shared helpers of the anelm command: argument parsing, exit codes, JSON output. */
#ifndef AN_TOOLS_CLI_H
#define AN_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anelm.h"
#include "core/status.h"

/* Exit codes of every subcommand. */
enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_BAD_INPUT = 2, EXIT_RUNTIME = 3 };

/* Prints "anelm: <msg>" on stderr and returns the exit code for the status. */
int cli_fail(const an_err *err);
/* Prints "anelm CMD: msg" on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option parsing helpers: they consume argv[*i + 1]; false (with a message) on a bad value. */
bool cli_int(const char *cmd, int argc, char **argv, int *i, long lo, long hi, int *out);
bool cli_float(const char *cmd, int argc, char **argv, int *i, float *out);
bool cli_str(const char *cmd, int argc, char **argv, int *i, const char **out);

/* Reads a whole file into a NUL-terminated malloc'ed buffer (*len bytes); NULL + err on failure. */
char *cli_read_file(const char *path, size_t *len, an_err *err);

/* Writes s as a JSON string literal (with quotes); invalid UTF-8 bytes become U+FFFD. */
void cli_json_str(FILE *f, const char *s, size_t n);

/* The model to use when -m is absent: $ANELM_MODEL, else the embedded model shipped in the
 * repository (models/ next to the build dir of this executable), else NULL. */
const char *cli_default_model(void);

/* Opens the model (path or default) with the given verbosity; prints the error on failure and
 * returns the exit code (0 on success). */
int cli_open_model(const char *cmd, const char *path, int verbose, an_model **out);

/* Same, palettizing the weights at load time when weights is "lut4", "lut6" or "lut8" (NULL:
 * as stored) on `threads` threads (0: all), through the compile cache unless no_cache. */
int cli_open_model_w(const char *cmd, const char *path, int verbose, const char *weights, int threads,
                     int no_cache, an_model **out);
/* Checks a --weights value (lut4, lut6, lut8); prints the usage error. */
bool cli_weights(const char *cmd, const char *v);

/* Tokenizes text into a malloc'ed array (*ids, *n), growing the buffer as needed; prints the
 * error and returns its exit code on failure. */
int cli_tokenize(an_model *m, const char *text, size_t len, bool bos, bool special, int32_t **ids, size_t *n);

/* Checks a --device value names a known device (auto, cpu, amx). */
bool cli_device(const char *cmd, const char *v);

/* Options most commands share: -m, -t, -c, -ub, --kv-type (-ctk/-ctv), --device, -v. */
typedef struct cli_common {
    const char *model;
    const char *device; /* --device, NULL = auto */
    int threads, n_ctx, n_ubatch, verbose, no_cache;
    an_kv_type kv_type;
} cli_common;
void cli_common_init(cli_common *o);
/* 1: argv[*i] was a common option (consumed), 0: not one, -1: bad value (message printed). */
int cli_common_opt(const char *cmd, int argc, char **argv, int *i, cli_common *o);
/* Help text for the common options. */
extern const char *cli_common_help;
/* Creates a context from the common options; prints the error and returns its exit code. */
int cli_ctx(const cli_common *o, an_model *m, bool logits_all, int n_ctx_default, an_ctx **out);

int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_matmul(int argc, char **argv); /* `bench --matmul` (cmd_bench_matmul.c) */
int cmd_synth(int argc, char **argv);
int cmd_cache(int argc, char **argv);

#endif
