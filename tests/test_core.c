/* test_core.c — thread pool, CPU probe and the samplers. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "anelm.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "t.h"

typedef struct {
    atomic_int hits[8];
    atomic_int calls;
} pool_probe;

static void probe_fn(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    if (ith >= 0 && ith < 8 && nth <= 8) atomic_fetch_add(&p->hits[ith], 1);
    atomic_fetch_add(&p->calls, 1);
}

static void pool_runs_every_thread_once(void) {
    for (int n = 1; n <= 4; n++) {
        an_pool *pool;
        an_err err = {0};
        T_CHECK(an_pool_create(&pool, n, &err) == AN_OK, "%s", err.msg);
        pool_probe p;
        memset(&p, 0, sizeof p);
        for (int r = 0; r < 1000; r++) an_pool_run(pool, probe_fn, &p);
        for (int i = 0; i < n; i++) T_CHECK(p.hits[i] == 1000, "%d threads: thread %d ran %d times", n, i, (int)p.hits[i]);
        T_CHECK(p.calls == 1000 * n, "%d threads: %d calls", n, (int)p.calls);
        an_pool_free(pool);
    }
}

static void cpu_probe(void) {
    const an_cpu_info *c = an_cpu();
    T_CHECK(c->active <= c->best || c->best == AN_ISA_NEON, "active level above what the machine supports");
    t_note("cpu: best %s, active %s%s%s; avx512 f/bw/vl/vnni/bf16/fp16 %d%d%d%d%d%d, amx tile/int8/bf16 %d%d%d",
           an_isa_name(c->best), an_isa_name(c->active), c->override ? ", ANELM_ISA=" : "",
           c->override ? c->override : "", c->avx512f, c->avx512bw, c->avx512vl, c->avx512vnni, c->avx512bf16,
           c->avx512fp16, c->amx_tile, c->amx_int8, c->amx_bf16);
}

/* ---- samplers ------------------------------------------------------------------------------ */

#define V 50

static void fill_logits(float *l, unsigned seed) {
    srand(seed);
    for (int i = 0; i < V; i++) l[i] = (float)(rand() % 1000) / 100.0f;
}

static an_sampler *mk(an_sampler_params p) {
    an_sampler *s = NULL;
    an_err err = {0};
    T_CHECK(an_sampler_create(&s, &p, V, &err) == AN_OK, "%s", err.msg);
    return s;
}

static int argmax(const float *l) {
    int b = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static void sampler_greedy_and_top_k_1(void) {
    float l[V];
    fill_logits(l, 7);
    an_sampler_params p = an_sampler_default_params();
    p.temp = 0;
    an_sampler *s = mk(p);
    T_CHECK(an_sampler_sample(s, l) == argmax(l), "greedy is not the argmax");
    an_sampler_free(s);
    p = an_sampler_default_params();
    p.top_k = 1;
    p.seed = 3;
    s = mk(p);
    for (int i = 0; i < 20; i++) T_CHECK(an_sampler_sample(s, l) == argmax(l), "top-k 1 drew a non-argmax token");
    an_sampler_free(s);
}

static void sampler_seed_reproducible(void) {
    float l[V];
    fill_logits(l, 11);
    an_sampler_params p = an_sampler_default_params();
    p.temp = 1.5f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = 1234;
    an_sampler *a = mk(p), *b = mk(p);
    p.seed = 4321;
    an_sampler *c = mk(p);
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < 200; i++) {
        int x = an_sampler_sample(a, l), y = an_sampler_sample(b, l), z = an_sampler_sample(c, l);
        same_ab += x == y;
        same_ac += x == z;
    }
    T_CHECK(same_ab == 200, "same seed, different draws (%d/200 equal)", same_ab);
    T_CHECK(same_ac < 200, "different seeds gave identical sequences");
    an_sampler_free(a);
    an_sampler_free(b);
    an_sampler_free(c);
}

/* The empirical distribution follows softmax(l / T) restricted by top-k / min-p. */
static void sampler_distribution(void) {
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -10;
    l[3] = 2.0f;
    l[7] = 1.0f;
    l[9] = 0.0f;
    an_sampler_params p = an_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 2; /* keeps 3 and 7 only */
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = 99;
    an_sampler *s = mk(p);
    int cnt[V] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[an_sampler_sample(s, l)]++;
    double want3 = exp(2.0) / (exp(2.0) + exp(1.0));
    T_CHECK(cnt[3] + cnt[7] == N, "top-k 2 drew other tokens (%d of %d)", N - cnt[3] - cnt[7], N);
    T_CHECK(fabs(cnt[3] / (double)N - want3) < 0.02, "P(3) = %.3f, want %.3f", cnt[3] / (double)N, want3);
    an_sampler_free(s);
    /* min-p 0.5: keeps tokens with p >= 0.5 * p_max, i.e. logit >= 2 + ln 0.5 = 1.31: only 3 */
    p.top_k = 0;
    p.min_p = 0.5f;
    s = mk(p);
    for (int i = 0; i < 200; i++) T_CHECK(an_sampler_sample(s, l) == 3, "min-p let a low token through");
    an_sampler_free(s);
    /* top-p 0.5: token 3 alone has p ~ 0.66 >= 0.5 */
    p.min_p = 0;
    p.top_p = 0.5f;
    s = mk(p);
    for (int i = 0; i < 200; i++) T_CHECK(an_sampler_sample(s, l) == 3, "top-p let a low token through");
    an_sampler_free(s);
}

static void sampler_repeat_penalty(void) {
    float l[V];
    for (int i = 0; i < V; i++) l[i] = 0;
    l[5] = 2.0f;
    l[6] = 1.5f;
    an_sampler_params p = an_sampler_default_params();
    p.temp = 0;
    p.repeat_penalty = 2.0f; /* 2.0 / 2 = 1.0 < 1.5 */
    an_sampler *s = mk(p);
    T_CHECK(an_sampler_sample(s, l) == 5, "without history the best token wins");
    an_sampler_accept(s, 5);
    T_CHECK(an_sampler_sample(s, l) == 6, "penalty did not demote a repeated token");
    an_sampler_free(s);
    p.repeat_last_n = 1; /* the window forgets 5 once another token is accepted */
    s = mk(p);
    an_sampler_accept(s, 5);
    an_sampler_accept(s, 9);
    T_CHECK(an_sampler_sample(s, l) == 5, "penalty outlived its window");
    an_sampler_free(s);
}

const t_case t_suite_core[] = {
    {"pool_runs_every_thread_once", pool_runs_every_thread_once},
    {"cpu_probe", cpu_probe},
    {"sampler_greedy_and_top_k_1", sampler_greedy_and_top_k_1},
    {"sampler_seed_reproducible", sampler_seed_reproducible},
    {"sampler_distribution", sampler_distribution},
    {"sampler_repeat_penalty", sampler_repeat_penalty},
    {0, 0},
};
