/* ppl_check.c — see ppl_check.h. */
#include "ppl_check.h"

#include <math.h>

#include "json.h"
#include "t.h"

void t_check_perplexity(const char *extra) {
    const char *mpath = t_shared_path("models/tinyscribe-28m-f16.gguf");
    const char *vpath = t_shared_path("data/val.txt");
    const char *refp = t_shared_path("reference/tinyscribe-28m-f16.json");
    if (!mpath || !vpath || !refp) {
        t_skip("needs ../shared (model, val.txt, reference)");
        return;
    }
    t_json *ref = t_json_parse_file(refp);
    const t_json *ppl = t_json_get(ref, "ppl");
    const double want = t_json_get(ppl, "ppl")->num;
    const int n_tok = (int)t_json_get(ppl, "n_tokens")->num, n_ctx = (int)t_json_get(ppl, "n_ctx")->num;
    t_run_result r = t_run("", "perplexity -m %s -f %s -c %d --max-tokens %d --kv-type f32 -t 2 --json %s", mpath,
                           vpath, n_ctx, n_tok, extra);
    T_CHECK(r.code == 0, "exit %d: %s", r.code, r.err);
    t_json *j = t_json_parse(r.out, r.out_len);
    T_CHECK(j && t_json_get(j, "ppl") && t_json_get(j, "mean_nll") && t_json_get(j, "n_tokens"), "json: %s", r.out);
    if (j && t_json_get(j, "ppl")) {
        const double got = t_json_get(j, "ppl")->num, rel = fabs(got - want) / want;
        t_note("perplexity%s%s %.4f vs llama.cpp %.4f (%.3f%%, bound 0.5%%), %d tokens", *extra ? " with " : "", extra,
               got, want, rel * 100, (int)t_json_get(j, "n_tokens")->num);
        T_CHECK(rel < 0.005, "perplexity %.4f is not within 0.5%% of %.4f", got, want);
        T_CHECK((int)t_json_get(j, "n_tokens")->num == n_tok, "scored %d tokens, want %d",
                (int)t_json_get(j, "n_tokens")->num, n_tok);
    }
    t_json_free(j);
    t_json_free(ref);
    t_run_free(&r);
}
