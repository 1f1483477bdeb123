/* main.c — `anelm <command> ...`: dispatch and the helpers every command shares. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"

int cli_fail(const an_err *err) {
    fprintf(stderr, "anelm: error: %s\n", err->msg[0] ? err->msg : an_status_str(err->code));
    switch (err->code) {
    case AN_OK: return EXIT_OK;
    case AN_E_USAGE:
    case AN_E_RANGE: return EXIT_USAGE;
    case AN_E_FORMAT:
    case AN_E_UNSUPPORTED:
    case AN_E_IO: return EXIT_BAD_INPUT;
    default: return EXIT_RUNTIME;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "anelm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see anelm help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

bool cli_str(const char *cmd, int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return false;
    }
    *out = argv[++*i];
    return true;
}

bool cli_int(const char *cmd, int argc, char **argv, int *i, long lo, long hi, int *out) {
    const char *opt = argv[*i], *v;
    if (!cli_str(cmd, argc, argv, i, &v)) return false;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        cli_usage_error(cmd, "option %s: '%s' is not an integer in [%ld, %ld]", opt, v, lo, hi);
        return false;
    }
    *out = (int)x;
    return true;
}

bool cli_float(const char *cmd, int argc, char **argv, int *i, float *out) {
    const char *opt = argv[*i], *v;
    if (!cli_str(cmd, argc, argv, i, &v)) return false;
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || *end || end == v || x != x) {
        cli_usage_error(cmd, "option %s: '%s' is not a number", opt, v);
        return false;
    }
    *out = x;
    return true;
}

bool cli_device(const char *cmd, const char *v) {
    /* the names a context may offer; whether this machine has one is checked when the context
     * is created (an unavailable device is an error there, with the reason) */
    if (!strcmp(v, "cpu") || !strcmp(v, "auto") || !strcmp(v, "amx") || !strcmp(v, "ane") || !strcmp(v, "ane-ref"))
        return true;
    cli_usage_error(cmd, "unknown device '%s' (devices: auto, cpu, amx, ane, ane-ref)", v);
    return false;
}

char *cli_read_file(const char *path, size_t *len, an_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        an_err_set(err, AN_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (!b) an_err_set(err, AN_E_NOMEM, "%s: out of memory reading the file", path);
    else if (ferror(f)) {
        an_err_set(err, AN_E_IO, "%s: read error", path);
        free(b);
        b = NULL;
    } else {
        b[n] = 0;
        *len = n;
    }
    fclose(f);
    return b;
}

/* Length of a valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

void cli_json_str(FILE *f, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t l = utf8_len(u + i, n - i);
        if (!l) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (l > 1) {
            fwrite(u + i, 1, l, f);
            i += l;
            continue;
        }
        i++;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc((int)c, f);
        }
    }
    fputc('"', f);
}

const char *cli_default_model(void) {
    static char buf[PATH_MAX + 64];
    const char *e = getenv("ANELM_MODEL");
    if (e && *e) return e;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0; /* build dir; the repository root is its parent */
            snprintf(buf, sizeof buf, "%s/../models/tinyscribe-28m-q8_0.gguf", exe);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
#ifdef ANELM_SOURCE_DIR
    snprintf(buf, sizeof buf, "%s/models/tinyscribe-28m-q8_0.gguf", ANELM_SOURCE_DIR);
    if (access(buf, R_OK) == 0) return buf;
#endif
    return NULL;
}

int cli_open_model(const char *cmd, const char *path, int verbose, an_model **out) {
    if (!path) path = cli_default_model();
    if (!path) return cli_usage_error(cmd, "no model given (-m) and the embedded model was not found");
    an_log_set_level(verbose);
    an_err err = {0};
    an_model_params mp = {.path = path, .verbose = verbose};
    if (an_model_open(out, &mp, &err) != AN_OK) return cli_fail(&err);
    return EXIT_OK;
}

int cli_open_model_w(const char *cmd, const char *path, int verbose, const char *weights, int threads,
                     int no_cache, an_model **out) {
    if (!path) path = cli_default_model();
    if (!path) return cli_usage_error(cmd, "no model given (-m) and the embedded model was not found");
    an_log_set_level(verbose);
    an_err err = {0};
    an_model_params mp = {.path = path, .verbose = verbose, .weights = weights, .n_threads = threads,
                          .no_cache = no_cache};
    if (an_model_open(out, &mp, &err) != AN_OK) return cli_fail(&err);
    return EXIT_OK;
}

bool cli_weights(const char *cmd, const char *v) {
    if (!strcasecmp(v, "lut4") || !strcasecmp(v, "lut6") || !strcasecmp(v, "lut8")) return true;
    cli_usage_error(cmd, "--weights '%s' (use lut4, lut6 or lut8)", v);
    return false;
}

void cli_common_init(cli_common *o) {
    memset(o, 0, sizeof *o);
    o->kv_type = AN_KV_F16;
}

const char *cli_common_help =
    "  -m FILE          model (GGUF); default: the embedded TinyScribe-28M Q8_0\n"
    "  -t N             threads (default: all CPUs)\n"
    "  -c N             context size in tokens (default: the model's)\n"
    "  -ub N            prefill chunk: tokens per matrix pass (default 512)\n"
    "  --kv-type T      KV cache type, f16 (default) or f32; also -ctk T / -ctv T\n"
    "  --device D       auto (default: each matmul where the measured cost model predicts it\n"
    "                   is fastest), cpu, or amx (forced where it can run an op); ane-ref:\n"
    "                   prefill matmuls as MIL programs through the reference ANE executor\n"
    "                   (ANE numerics, any machine); ane: the same on the Neural Engine (macOS)\n"
    "  --no-cache       do not read or write the compile cache of prepared weights\n"
    "  -v               progress and decisions on stderr\n";

static bool parse_kv(const char *cmd, const char *v, an_kv_type *out) {
    if (!strcmp(v, "f16")) *out = AN_KV_F16;
    else if (!strcmp(v, "f32")) *out = AN_KV_F32;
    else {
        cli_usage_error(cmd, "KV cache type '%s' (use f16 or f32)", v);
        return false;
    }
    return true;
}

int cli_common_opt(const char *cmd, int argc, char **argv, int *i, cli_common *o) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) return cli_str(cmd, argc, argv, i, &o->model) ? 1 : -1;
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) return cli_int(cmd, argc, argv, i, 1, 256, &o->threads) ? 1 : -1;
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) return cli_int(cmd, argc, argv, i, 0, 1 << 24, &o->n_ctx) ? 1 : -1;
    if (!strcmp(a, "-ub") || !strcmp(a, "--ubatch-size") || !strcmp(a, "-b") || !strcmp(a, "--batch-size"))
        return cli_int(cmd, argc, argv, i, 1, 1 << 16, &o->n_ubatch) ? 1 : -1;
    if (!strcmp(a, "--kv-type") || !strcmp(a, "-ctk") || !strcmp(a, "-ctv") || !strcmp(a, "--cache-type-k") ||
        !strcmp(a, "--cache-type-v"))
        return cli_str(cmd, argc, argv, i, &v) && parse_kv(cmd, v, &o->kv_type) ? 1 : -1;
    if (!strcmp(a, "--device")) return cli_str(cmd, argc, argv, i, &o->device) && cli_device(cmd, o->device) ? 1 : -1;
    if (!strcmp(a, "--no-cache")) {
        o->no_cache = 1;
        return 1;
    }
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        o->verbose = 1;
        return 1;
    }
    return 0;
}

int cli_ctx(const cli_common *o, an_model *m, bool logits_all, int n_ctx_default, an_ctx **out) {
    an_err err = {0};
    an_ctx_params cp = {.n_ctx = o->n_ctx ? o->n_ctx : n_ctx_default, .n_ubatch = o->n_ubatch,
                        .n_threads = o->threads, .kv_type = o->kv_type, .logits_all = logits_all,
                        .device = o->device, .no_cache = o->no_cache};
    if (an_ctx_create(out, m, &cp, &err) != AN_OK) return cli_fail(&err);
    return EXIT_OK;
}

int cli_tokenize(an_model *m, const char *text, size_t len, bool bos, bool special, int32_t **ids, size_t *n) {
    an_err err = {0};
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *b = realloc(*ids, cap * sizeof *b);
        if (!b) {
            an_err_set(&err, AN_E_NOMEM, "out of memory tokenizing %zu bytes", len);
            return cli_fail(&err);
        }
        *ids = b;
        an_status s = an_tokenize(m, text, len, bos, special, b, cap, n, &err);
        if (s == AN_OK) return EXIT_OK;
        if (s != AN_E_RANGE || *n <= cap) return cli_fail(&err);
        cap = *n; /* the tokenizer said how many it needs */
        an_err_clear(&err);
    }
    an_err_set(&err, AN_E_RUNTIME, "tokenizer needed more room twice");
    return cli_fail(&err);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: anelm <command> [options]\n"
            "\n"
            "commands:\n"
            "  run         generate text from a prompt (default model: the embedded TinyScribe-28M)\n"
            "  tokenize    print the token ids of a text as a JSON array\n"
            "  logits      print the top next-token logits after a prompt\n"
            "  perplexity  perplexity of a text file (llama.cpp's protocol)\n"
            "  inspect     print a GGUF file's metadata and tensor table\n"
            "  quantize    convert a model's matrices to Q8_0, Q4_0, ...\n"
            "  bench       prefill (pp) and decode (tg) speed, llama-bench style; --limits\n"
            "  synth       write a random-weight model with a real architecture's shapes\n"
            "  cache       ls, verify or clear the compile cache\n"
            "  help        this text\n"
            "\n"
            "Run `anelm <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *c = argv[1];
    if (!strcmp(c, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "logits")) return cmd_logits(argc - 1, argv + 1);
    if (!strcmp(c, "perplexity")) return cmd_perplexity(argc - 1, argv + 1);
    if (!strcmp(c, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(c, "quantize")) return cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(c, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(c, "synth")) return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(c, "cache")) return cmd_cache(argc - 1, argv + 1);
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "anelm: unknown command '%s'\n", c);
    usage(stderr);
    return EXIT_USAGE;
}
