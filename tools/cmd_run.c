/* cmd_run.c — `anelm run`: prefill the prompt, then sample and stream tokens. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void help(void) {
    printf("usage: anelm run [-m MODEL] [-p PROMPT | -f FILE] [options]\n"
           "  -p TEXT          prompt (default: \"Once upon a time\")\n"
           "  -f FILE          read the prompt from a file\n"
           "  -n N             tokens to generate (default 128; -1: until end of text or context)\n"
           "  --temp T         temperature (default 0.8; 0 = greedy)\n"
           "  --top-k K        (default 40; 0 = off)\n"
           "  --top-p P        (default 0.95; 1 = off)\n"
           "  --min-p P        (default 0.05; 0 = off)\n"
           "  --repeat-penalty R  (default 1.0 = off)   --repeat-last-n N (default 64)\n"
           "  --seed S         random seed (default: from the clock)\n"
           "  --special        parse special-token text (e.g. <s>) in the prompt\n"
           "  --json           print one JSON object instead of streaming text\n"
           "  --plan           print where every matmul runs (prefill and decode) and why, on stderr\n"
           "  --weights W      lut4, lut6 or lut8: palettize the weights at load time (compile cache)\n"
           "%s",
           cli_common_help);
}

int cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    cli_common o;
    cli_common_init(&o);
    const char *prompt = NULL, *pfile = NULL, *weights = NULL;
    int n_gen = 128, json = 0, special = 0, seed_set = 0, plan = 0;
    an_sampler_params sp = an_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_opt(cmd, argc, argv, &i, &o);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        bool ok = true;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) ok = cli_str(cmd, argc, argv, &i, &prompt);
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) ok = cli_str(cmd, argc, argv, &i, &pfile);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) ok = cli_int(cmd, argc, argv, &i, -1, 1 << 24, &n_gen);
        else if (!strcmp(a, "--temp")) ok = cli_float(cmd, argc, argv, &i, &sp.temp);
        else if (!strcmp(a, "--top-k")) ok = cli_int(cmd, argc, argv, &i, 0, 1 << 30, &sp.top_k);
        else if (!strcmp(a, "--top-p")) ok = cli_float(cmd, argc, argv, &i, &sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = cli_float(cmd, argc, argv, &i, &sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) ok = cli_float(cmd, argc, argv, &i, &sp.repeat_penalty);
        else if (!strcmp(a, "--repeat-last-n")) ok = cli_int(cmd, argc, argv, &i, 0, 1 << 20, &sp.repeat_last_n);
        else if (!strcmp(a, "--seed")) {
            const char *v;
            ok = cli_str(cmd, argc, argv, &i, &v);
            char *end;
            if (ok) sp.seed = strtoull(v, &end, 10), ok = *v && !*end, seed_set = 1;
            if (!ok) return cli_usage_error(cmd, "--seed needs a non-negative integer");
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--plan")) plan = 1;
        else if (!strcmp(a, "--weights")) ok = cli_str(cmd, argc, argv, &i, &weights) && cli_weights(cmd, weights);
        else if (!strcmp(a, "--special")) special = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return EXIT_OK;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!ok) return EXIT_USAGE;
    }
    if (prompt && pfile) return cli_usage_error(cmd, "-p and -f are exclusive");
    if (sp.repeat_penalty <= 0) return cli_usage_error(cmd, "--repeat-penalty must be positive");
    if (!seed_set) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);

    an_err err = {0};
    char *pbuf = NULL;
    size_t plen;
    if (pfile) {
        if (!(pbuf = cli_read_file(pfile, &plen, &err))) return cli_fail(&err);
        prompt = pbuf;
    } else {
        if (!prompt) prompt = "Once upon a time";
        plen = strlen(prompt);
    }
    an_model *m = NULL;
    an_ctx *c = NULL;
    an_sampler *s = NULL;
    int32_t *ptoks = NULL, *gen = NULL;
    int rc = cli_open_model_w(cmd, o.model, o.verbose, weights, o.threads, o.no_cache, &m);
    if (rc) goto out;
    rc = cli_ctx(&o, m, false, 0, &c);
    if (rc) goto out;
    const int n_ctx = an_ctx_n_ctx(c);
    size_t n_p = 0;
    rc = cli_tokenize(m, prompt, plen, an_token_add_bos(m), special, &ptoks, &n_p);
    if (rc) goto out;
    if (n_p == 0) {
        rc = cli_usage_error(cmd, "the prompt is empty and the model adds no BOS token");
        goto out;
    }
    if ((int64_t)n_p >= n_ctx) {
        an_err_set(&err, AN_E_RANGE, "the prompt has %zu tokens but the context holds %d (raise -c or shorten the prompt)",
                   n_p, n_ctx);
        rc = cli_fail(&err);
        goto out;
    }
    int max_gen = n_gen < 0 || n_gen > n_ctx - (int)n_p ? n_ctx - (int)n_p : n_gen;
    gen = malloc(((size_t)max_gen + 1) * sizeof *gen);
    if (!gen || an_sampler_create(&s, &sp, an_model_n_vocab(m), &err) != AN_OK) {
        if (!err.code) an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    if (plan && an_ctx_print_plan(c, (int)n_p, stderr, &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    for (size_t i = 0; i < n_p; i++) an_sampler_accept(s, ptoks[i]);
    if (!json) {
        fwrite(prompt, 1, plen, stdout);
        fflush(stdout);
    }
    if (an_ctx_eval(c, ptoks, (int)n_p, &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    an_detok dt = {0};
    char piece[256];
    int n_out = 0;
    while (n_out < max_gen) {
        int32_t id = an_sampler_sample(s, an_ctx_logits(c));
        gen[n_out++] = id; /* an end-of-generation token is reported in ids, as llama.cpp does */
        if (an_token_is_eog(m, id)) break;
        an_sampler_accept(s, id);
        if (!json) {
            size_t k = an_detok_push(m, &dt, id, piece, sizeof piece);
            fwrite(piece, 1, k, stdout);
            fflush(stdout);
        }
        if (n_out == max_gen || an_ctx_pos(c) >= n_ctx) break;
        if (an_ctx_eval(c, &id, 1, &err) != AN_OK) {
            rc = cli_fail(&err);
            goto out;
        }
    }
    an_timings tm = an_ctx_timings(c);
    double pps = tm.prompt_s > 0 ? (double)tm.prompt_tokens / tm.prompt_s : 0;
    double gps = tm.gen_s > 0 ? (double)tm.gen_tokens / tm.gen_s : 0;
    if (json) {
        size_t need = an_detokenize(m, gen, (size_t)n_out, NULL, 0);
        char *text = malloc(need + 1);
        if (text) an_detokenize(m, gen, (size_t)n_out, text, need + 1);
        printf("{\"prompt_ids\": [");
        for (size_t i = 0; i < n_p; i++) printf("%s%d", i ? ", " : "", ptoks[i]);
        printf("], \"ids\": [");
        for (int i = 0; i < n_out; i++) printf("%s%d", i ? ", " : "", gen[i]);
        printf("], \"text\": ");
        cli_json_str(stdout, text ? text : "", text ? need : 0);
        printf(", \"timings\": {\"prompt_tokens_per_s\": %.3f, \"gen_tokens_per_s\": %.3f}}\n", pps, gps);
        free(text);
    } else {
        size_t k = an_detok_flush(&dt, piece, sizeof piece);
        fwrite(piece, 1, k, stdout);
        printf("\n");
        fprintf(stderr, "\nprompt: %lld tokens, %.1f tok/s; generated: %lld tokens, %.1f tok/s\n",
                (long long)tm.prompt_tokens, pps, (long long)tm.gen_tokens, gps);
    }
out:
    an_sampler_free(s);
    an_ctx_free(c);
    an_model_free(m);
    free(gen);
    free(ptoks);
    free(pbuf);
    return rc;
}
