/* cmd_perplexity.c — `anelm perplexity`, with the protocol of shared/reference/README.md:
 * tokenize the whole file as plain text, cut the stream into windows of n_ctx - 1 tokens,
 * prepend BOS to each window when the model asks for it, evaluate each window from an empty
 * cache, and score every position by the log-probability of the window's next token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/log.h"

int cmd_perplexity(int argc, char **argv) {
    const char *cmd = "perplexity", *file = NULL;
    cli_common o;
    cli_common_init(&o);
    int max_tokens = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_opt(cmd, argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        bool ok = true;
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) ok = cli_str(cmd, argc, argv, &i, &file);
        else if (!strcmp(a, "--max-tokens")) ok = cli_int(cmd, argc, argv, &i, 1, 1 << 30, &max_tokens);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm perplexity -m MODEL -f FILE [-c CTX] [--max-tokens N] [--json]\n"
                   "  -c defaults to 512 here; --max-tokens scores only the first N tokens of the file\n%s",
                   cli_common_help);
            return EXIT_OK;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    if (!file) return cli_usage_error(cmd, "-f FILE is required");
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
    int rc = cli_open_model(cmd, o.model, 1, &m) /* progress: a user waits for this */;
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
        }
        an_progress("perplexity: windows", w + 1, n_win);
        if (o.verbose) fprintf(stderr, "  window %zu: running ppl %.4f\n", w + 1, exp(nll / (double)scored));
    }
    double mean = nll / (double)scored;
    if (json) printf("{\"ppl\": %.6f, \"mean_nll\": %.8f, \"n_tokens\": %lld}\n", exp(mean), mean, (long long)scored);
    else printf("perplexity %.4f (mean NLL %.6f over %lld tokens, context %d)\n", exp(mean), mean, (long long)scored,
                n_ctx);
out:
    free(win);
    free(toks);
    free(text);
    an_ctx_free(c);
    an_model_free(m);
    return rc;
}
