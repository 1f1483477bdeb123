/* sampler.c — next-token selection: repetition penalty, then greedy, or top-k → top-p → min-p
 * → temperature → a seeded draw (llama.cpp's default chain order). All buffers are allocated
 * at creation; sampling itself allocates nothing. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anelm.h"
#include "core/status.h"

typedef struct {
    int32_t id;
    float logit;
    float p;
} cand;

struct an_sampler {
    an_sampler_params p;
    int32_t n_vocab;
    cand *c;
    int32_t *hist; /* ring of the last repeat_last_n accepted tokens */
    int32_t hist_n, hist_pos;
    uint8_t *seen; /* n_vocab flags, to penalize each token once */
    uint64_t rng[4];
};

an_sampler_params an_sampler_default_params(void) {
    an_sampler_params p = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                           .repeat_last_n = 64, .seed = 0};
    return p;
}

/* splitmix64 seeds xoshiro256** (a small, well-known generator, written out here). */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t next_u64(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
/* uniform in [0, 1) with 53 random bits */
static double next_unit(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

an_status an_sampler_create(an_sampler **out, const an_sampler_params *p, int32_t n_vocab, an_err *err) {
    *out = NULL;
    if (n_vocab < 1) return an_err_set(err, AN_E_USAGE, "sampler: vocabulary size %d", n_vocab);
    if (p->repeat_last_n < 0 || p->repeat_last_n > 1 << 20)
        return an_err_set(err, AN_E_USAGE, "sampler: repeat-last-n %d out of range", p->repeat_last_n);
    an_sampler *s = calloc(1, sizeof *s);
    if (!s) return an_err_set(err, AN_E_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->seen = calloc((size_t)n_vocab, 1);
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->hist);
    if (!s->c || !s->seen || !s->hist) {
        an_sampler_free(s);
        return an_err_set(err, AN_E_NOMEM, "sampler: out of memory");
    }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix(&x);
    *out = s;
    return AN_OK;
}

void an_sampler_free(an_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->seen);
    free(s->hist);
    free(s);
}

void an_sampler_accept(an_sampler *s, int32_t id) {
    if (s->p.repeat_last_n == 0) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    return ((const cand *)a)->id - ((const cand *)b)->id; /* stable tie order: lower id first */
}

/* softmax of c[0..n) (sorted descending) into .p */
static void softmax(cand *c, int32_t n) {
    float mx = c[0].logit;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - mx);
        sum += c[i].p;
    }
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

int32_t an_sampler_sample(an_sampler *s, const float *logits) {
    const int32_t V = s->n_vocab;
    cand *c = s->c;
    for (int32_t i = 0; i < V; i++) c[i] = (cand){i, logits[i], 0};

    /* repetition penalty: each token in the window once (divide positive logits, multiply
     * negative ones, as llama.cpp does) */
    if (s->p.repeat_penalty != 1.0f && s->hist_n > 0) {
        for (int32_t i = 0; i < s->hist_n; i++) {
            int32_t id = s->hist[i];
            if (id < 0 || id >= V || s->seen[id]) continue;
            s->seen[id] = 1;
            float *l = &c[id].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
        for (int32_t i = 0; i < s->hist_n; i++)
            if (s->hist[i] >= 0 && s->hist[i] < V) s->seen[s->hist[i]] = 0;
    }

    if (s->p.temp <= 0) { /* greedy: first maximum wins */
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (c[i].logit > c[best].logit) best = i;
        return best;
    }

    int32_t n = V;
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    if (s->p.top_p < 1.0f) {
        softmax(c, n);
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) { /* keep logits within log(min_p) of the best */
        const float thr = c[0].logit + logf(s->p.min_p);
        int32_t k = 1;
        while (k < n && c[k].logit >= thr) k++;
        n = k;
    }
    for (int32_t i = 0; i < n; i++) c[i].logit /= s->p.temp;
    softmax(c, n);
    double r = next_unit(s->rng), cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}
