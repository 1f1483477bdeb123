/* cmd_perplexity.c — `anelm perplexity`, with the protocol of shared/reference/README.md:
 * tokenize the whole file as plain text, cut the stream into windows of n_ctx - 1 tokens,
 * prepend BOS to each window when the model asks for it, evaluate each window from an empty
 * cache, and score every position by the log-probability of the window's next token.
 *
 * KL divergence (llama.cpp's --kl-divergence-base / --kl-divergence interface): with
 * --kl-divergence-base FILE alone, the next-token log-probabilities of every scored position
 * are saved to FILE; with --kl-divergence too, they are read back and the mean KL(base || this
 * model) is reported. FILE (host byte order, machine-local like the compile cache):
 *     "ANELMKL1", u32 n_vocab, u32 n_ctx, u64 n_scored, u64 n_tokens, u32 tokens[n_tokens],
 *     then n_scored rows of n_vocab fp16 log-probabilities (log-softmax of the logits).
 * fp16 keeps log p to 2^-11 relative: under 0.02 absolute even at p = e^-30, and positions
 * weigh by p in the KL sum, so the stored precision does not show in the figures. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/fp16.h"
#include "core/log.h"

#define KL_MAGIC "ANELMKL1"

typedef struct kl_file {
    FILE *f;
    const char *path;
    bool reading;
    uint16_t *row; /* n_vocab */
    double *lp;    /* n_vocab: the base log-probabilities */
    double sum, sum_sq, max;
    int64_t n, top_same;
} kl_file;

/* Opens FILE for writing (header written) or reading (header checked against this run). */
static bool kl_open(kl_file *k, const char *path, bool reading, int V, int n_ctx, uint64_t n_scored,
                    const int32_t *toks, uint64_t n_tok, an_err *err) {
    memset(k, 0, sizeof *k);
    k->path = path;
    k->reading = reading;
    k->row = malloc((size_t)V * sizeof *k->row);
    k->lp = malloc((size_t)V * sizeof *k->lp);
    if (!k->row || !k->lp) {
        an_err_set(err, AN_E_NOMEM, "out of memory");
        return false;
    }
    if (!(k->f = fopen(path, reading ? "rb" : "wb"))) {
        an_err_set(err, AN_E_IO, "%s: cannot open for %s", path, reading ? "reading" : "writing");
        return false;
    }
    if (!reading) {
        uint32_t hv[2] = {(uint32_t)V, (uint32_t)n_ctx};
        uint64_t hn[2] = {n_scored, n_tok};
        if (fwrite(KL_MAGIC, 1, 8, k->f) != 8 || fwrite(hv, 4, 2, k->f) != 2 || fwrite(hn, 8, 2, k->f) != 2) {
            an_err_set(err, AN_E_IO, "%s: write failed", path);
            return false;
        }
        for (uint64_t i = 0; i < n_tok; i++) {
            uint32_t t = (uint32_t)toks[i];
            if (fwrite(&t, 4, 1, k->f) != 1) {
                an_err_set(err, AN_E_IO, "%s: write failed", path);
                return false;
            }
        }
        return true;
    }
    char mg[8];
    uint32_t hv[2];
    uint64_t hn[2];
    if (fread(mg, 1, 8, k->f) != 8 || memcmp(mg, KL_MAGIC, 8) || fread(hv, 4, 2, k->f) != 2 ||
        fread(hn, 8, 2, k->f) != 2) {
        an_err_set(err, AN_E_FORMAT, "%s: not a KL base file (written by anelm perplexity --kl-divergence-base)", path);
        return false;
    }
    if (hv[0] != (uint32_t)V || hv[1] != (uint32_t)n_ctx || hn[0] != n_scored || hn[1] != n_tok) {
        an_err_set(err, AN_E_USAGE,
                   "%s: the base run differs (vocabulary %u, context %u, %llu scored of %llu tokens; this run: %d, %d, "
                   "%llu of %llu): use the same -f, -c and --max-tokens and a model with the same vocabulary",
                   path, hv[0], hv[1], (unsigned long long)hn[0], (unsigned long long)hn[1], V, n_ctx,
                   (unsigned long long)n_scored, (unsigned long long)n_tok);
        return false;
    }
    for (uint64_t i = 0; i < n_tok; i++) {
        uint32_t t;
        if (fread(&t, 4, 1, k->f) != 1 || t != (uint32_t)toks[i]) {
            an_err_set(err, AN_E_USAGE, "%s: token %llu differs from this run's text (same -f needed)", path,
                       (unsigned long long)i);
            return false;
        }
    }
    return true;
}

/* One scored position: row holds the logits; write its log-probabilities or compare them. */
static bool kl_row(kl_file *k, const float *row, int V, an_err *err) {
    double mx = row[0];
    int am = 0;
    for (int j = 1; j < V; j++)
        if (row[j] > mx) mx = row[j], am = j;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)row[j] - mx);
    const double lse = mx + log(sum);
    if (!k->reading) {
        for (int j = 0; j < V; j++) k->row[j] = an_f32_to_f16((float)((double)row[j] - lse));
        if (fwrite(k->row, 2, (size_t)V, k->f) != (size_t)V) {
            an_err_set(err, AN_E_IO, "%s: write failed", k->path);
            return false;
        }
        return true;
    }
    if (fread(k->row, 2, (size_t)V, k->f) != (size_t)V) {
        an_err_set(err, AN_E_FORMAT, "%s: truncated", k->path);
        return false;
    }
    /* the stored values are rounded: renormalize the base distribution before use */
    double bs = 0, bmx = -INFINITY;
    int bam = 0;
    for (int j = 0; j < V; j++) {
        k->lp[j] = an_f16_to_f32(k->row[j]);
        if (k->lp[j] > bmx) bmx = k->lp[j], bam = j;
    }
    for (int j = 0; j < V; j++) bs += exp(k->lp[j] - bmx);
    const double blse = bmx + log(bs);
    double kl = 0;
    for (int j = 0; j < V; j++) {
        double lpb = k->lp[j] - blse;
        kl += exp(lpb) * (lpb - ((double)row[j] - lse));
    }
    if (kl < 0) kl = 0;
    k->sum += kl, k->sum_sq += kl * kl;
    if (kl > k->max) k->max = kl;
    k->n++;
    k->top_same += am == bam;
    return true;
}

static bool kl_close(kl_file *k, an_err *err) {
    bool ok = true;
    if (k->f && !k->reading && fclose(k->f) != 0) {
        an_err_set(err, AN_E_IO, "%s: write failed", k->path);
        ok = false;
    } else if (k->f && k->reading) {
        fclose(k->f);
    }
    k->f = NULL;
    free(k->row);
    free(k->lp);
    k->row = NULL, k->lp = NULL;
    return ok;
}

int cmd_perplexity(int argc, char **argv) {
    const char *cmd = "perplexity", *file = NULL;
    cli_common o;
    cli_common_init(&o);
    int max_tokens = 0, json = 0, kl_mode = 0;
    const char *kl_base = NULL, *weights = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_opt(cmd, argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        bool ok = true;
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) ok = cli_str(cmd, argc, argv, &i, &file);
        else if (!strcmp(a, "--max-tokens")) ok = cli_int(cmd, argc, argv, &i, 1, 1 << 30, &max_tokens);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--kl-divergence-base")) ok = cli_str(cmd, argc, argv, &i, &kl_base);
        else if (!strcmp(a, "--kl-divergence")) kl_mode = 1;
        else if (!strcmp(a, "--weights")) ok = cli_str(cmd, argc, argv, &i, &weights);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm perplexity -m MODEL -f FILE [-c CTX] [--max-tokens N] [--json]\n"
                   "                        [--kl-divergence-base FILE [--kl-divergence]] [--weights lut6|lut4|lut8]\n"
                   "  -c defaults to 512 here; --max-tokens scores only the first N tokens of the file\n"
                   "  --kl-divergence-base FILE   save every scored position's log-probabilities to FILE\n"
                   "  --kl-divergence             instead, compare with FILE: mean KL(base || model), same top token\n"
                   "  --weights lut6|lut4|lut8    palettize the weights at load time (compile cache)\n%s",
                   cli_common_help);
            return EXIT_OK;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    if (!file) return cli_usage_error(cmd, "-f FILE is required");
    if (kl_mode && !kl_base) return cli_usage_error(cmd, "--kl-divergence needs --kl-divergence-base FILE");
    if (weights && !cli_weights(cmd, weights)) return EXIT_USAGE;
    const int n_ctx = o.n_ctx ? o.n_ctx : 512;
    if (n_ctx < 2) return cli_usage_error(cmd, "-c must be at least 2");
    o.n_ctx = n_ctx;
    o.n_ubatch = n_ctx; /* one window = one batch, so every position's logits are kept */

    an_err err = {0};
    size_t len;
    char *text = cli_read_file(file, &len, &err);
    if (!text) return cli_fail(&err);
    an_model *m = NULL;
    an_ctx *c = NULL;
    int32_t *toks = NULL, *win = NULL;
    kl_file kl = {0};
    int rc = cli_open_model_w(cmd, o.model, 1, weights, o.threads, o.no_cache, &m) /* progress: a user waits for this */;
    if (!rc) rc = cli_ctx(&o, m, true, n_ctx, &c);
    size_t n_tok = 0;
    if (!rc) rc = cli_tokenize(m, text, len, false, false, &toks, &n_tok);
    if (rc) goto out;
    if (max_tokens && (size_t)max_tokens < n_tok) n_tok = (size_t)max_tokens;
    const bool bos = an_token_add_bos(m) && an_token_bos(m) >= 0;
    const int V = an_model_n_vocab(m), W = n_ctx - 1; /* stream tokens per window */
    if (n_tok < (bos ? 1u : 2u)) {
        rc = cli_usage_error(cmd, "%s has too few tokens to score", file);
        goto out;
    }
    if (!(win = malloc((size_t)n_ctx * sizeof *win))) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    double nll = 0;
    int64_t scored = 0;
    size_t n_win = (n_tok + (size_t)W - 1) / (size_t)W;
    if (kl_base) {
        uint64_t n_scored = 0; /* positions the loop below scores */
        for (size_t w = 0; w < n_win; w++) {
            size_t start = w * (size_t)W, L = n_tok - start < (size_t)W ? n_tok - start : (size_t)W;
            size_t n = L + (bos ? 1 : 0);
            if (n >= 2) n_scored += n - 1;
        }
        if (!kl_open(&kl, kl_base, kl_mode, V, n_ctx, n_scored, toks, n_tok, &err)) {
            rc = cli_fail(&err);
            goto out;
        }
    }
    for (size_t w = 0; w < n_win; w++) {
        size_t start = w * (size_t)W, L = n_tok - start < (size_t)W ? n_tok - start : (size_t)W;
        int n = 0;
        if (bos) win[n++] = an_token_bos(m);
        for (size_t i = 0; i < L; i++) win[n++] = toks[start + i];
        an_ctx_reset(c);
        if (n < 2) continue;
        if (an_ctx_eval(c, win, n, &err) != AN_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        const float *lg = an_ctx_logits(c);
        for (int i = 0; i + 1 < n; i++) {
            const float *row = lg + (size_t)i * (size_t)V;
            float mx = row[0];
            for (int j = 1; j < V; j++)
                if (row[j] > mx) mx = row[j];
            double sum = 0;
            for (int j = 0; j < V; j++) sum += exp((double)row[j] - mx);
            nll += -((double)row[win[i + 1]] - mx - log(sum));
            scored++;
            if (kl_base && !kl_row(&kl, row, V, &err)) {
                rc = cli_fail(&err);
                goto out;
            }
        }
        an_progress("perplexity: windows", w + 1, n_win);
        if (o.verbose) fprintf(stderr, "  window %zu: running ppl %.4f\n", w + 1, exp(nll / (double)scored));
    }
    double mean = nll / (double)scored;
    if (kl_base && !kl_close(&kl, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    if (kl_mode) {
        double klm = kl.n ? kl.sum / (double)kl.n : 0, top = kl.n ? (double)kl.top_same / (double)kl.n : 0;
        double sd = kl.n > 1 ? sqrt(fmax(0, (kl.sum_sq - kl.sum * klm) / (double)(kl.n - 1))) : 0;
        if (json)
            printf("{\"ppl\": %.6f, \"mean_nll\": %.8f, \"n_tokens\": %lld, \"kl_mean\": %.8f, \"kl_sd\": %.8f, "
                   "\"kl_max\": %.6f, \"same_top\": %.6f}\n",
                   exp(mean), mean, (long long)scored, klm, sd, kl.max, top);
        else
            printf("perplexity %.4f (mean NLL %.6f over %lld tokens, context %d)\n"
                   "KL divergence from %s: mean %.6f (sd %.6f, max %.4f); same top token %.2f%%\n",
                   exp(mean), mean, (long long)scored, n_ctx, kl_base, klm, sd, kl.max, 100 * top);
    } else if (json) {
        printf("{\"ppl\": %.6f, \"mean_nll\": %.8f, \"n_tokens\": %lld}\n", exp(mean), mean, (long long)scored);
    } else {
        printf("perplexity %.4f (mean NLL %.6f over %lld tokens, context %d)\n", exp(mean), mean, (long long)scored,
               n_ctx);
    }
    if (kl_base && !kl_mode) fprintf(stderr, "saved log-probabilities of %lld positions to %s\n", (long long)scored, kl_base);
out:
    kl_close(&kl, &err);
    free(win);
    free(toks);
    free(text);
    an_ctx_free(c);
    an_model_free(m);
    return rc;
}
