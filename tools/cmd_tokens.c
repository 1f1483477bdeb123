/* cmd_tokens.c — `anelm tokenize` and `anelm logits`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *file = NULL, *text = NULL;
    int bos = 0, special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = cli_str(cmd, argc, argv, &i, &model);
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) ok = cli_str(cmd, argc, argv, &i, &file);
        else if (!strcmp(a, "--bos")) bos = 1;
        else if (!strcmp(a, "--special")) special = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm tokenize -m MODEL [--bos] [--special] (TEXT | -f FILE)\n"
                   "  prints the token ids as one JSON array; by default no BOS and special-token\n"
                   "  text is plain text; --bos prepends BOS, --special parses special tokens\n");
            return EXIT_OK;
        } else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option '%s'", a);
        else if (text) return cli_usage_error(cmd, "more than one TEXT argument");
        else text = a;
        if (!ok) return EXIT_USAGE;
    }
    if (!!text == !!file) return cli_usage_error(cmd, "give either TEXT or -f FILE");
    an_err err = {0};
    char *buf = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && !(buf = cli_read_file(file, &len, &err))) return cli_fail(&err);
    an_model *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = cli_open_model(cmd, model, 0, &m);
    if (!rc) rc = cli_tokenize(m, file ? buf : text, len, bos, special, &ids, &n);
    if (!rc) {
        printf("[");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("]\n");
    }
    free(ids);
    free(buf);
    an_model_free(m);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    const char *cmd = "logits", *prompt = NULL;
    cli_common o;
    cli_common_init(&o);
    int top = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_opt(cmd, argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        bool ok = true;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) ok = cli_str(cmd, argc, argv, &i, &prompt);
        else if (!strcmp(a, "--top")) ok = cli_int(cmd, argc, argv, &i, 1, 1 << 24, &top);
        else if (!strcmp(a, "--json")) { /* the output is JSON already */ }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm logits -m MODEL -p PROMPT [--top K]\n"
                   "  prints [[id, logit], ...] for the K (default 10) largest next-token logits\n"
                   "  after the prompt (BOS-prefixed when the model asks for it)\n%s",
                   cli_common_help);
            return EXIT_OK;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    if (!prompt) return cli_usage_error(cmd, "-p PROMPT is required");
    an_model *m = NULL;
    an_ctx *c = NULL;
    int32_t *ids = NULL;
    int *order = NULL;
    size_t n = 0;
    an_err err = {0};
    int rc = cli_open_model(cmd, o.model, o.verbose, &m);
    if (!rc) rc = cli_ctx(&o, m, false, 0, &c);
    if (!rc) rc = cli_tokenize(m, prompt, strlen(prompt), an_token_add_bos(m), false, &ids, &n);
    if (!rc && n == 0) rc = cli_usage_error(cmd, "the prompt gives no tokens");
    if (!rc && an_ctx_eval(c, ids, (int)n, &err) != AN_OK) rc = cli_fail(&err);
    if (!rc) {
        const float *lg = an_ctx_logits(c);
        int V = an_model_n_vocab(m);
        if (top > V) top = V;
        /* partial selection of the top K (K is small) */
        order = malloc((size_t)top * sizeof *order);
        int k = 0;
        for (int id = 0; id < V && order; id++) {
            int j = k < top ? k++ : top;
            if (j == top && !(lg[id] > lg[order[top - 1]])) continue;
            if (j == top) j = top - 1;
            while (j > 0 && lg[id] > lg[order[j - 1]]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = id;
        }
        printf("[");
        for (int i = 0; i < k; i++) printf("%s[%d, %.9g]", i ? ", " : "", order[i], (double)lg[order[i]]);
        printf("]\n");
    }
    free(order);
    free(ids);
    an_ctx_free(c);
    an_model_free(m);
    return rc;
}
