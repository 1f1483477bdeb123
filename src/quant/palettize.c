/* palettize.c — k-means palettization of weight matrices (see palettize.h for the method). */
#include "quant/palettize.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"

#define KMAX 256

int an_pal_default_group(int bits) { return bits == 4 ? 1 : AN_PAL_GROUP_DEFAULT; }

an_pal_params an_pal_defaults(int bits) {
    an_pal_params p = {.bits = bits, .group = an_pal_default_group(bits), .row_scale = false, .iters = AN_PAL_ITERS,
                       .seed = 0};
    return p;
}

uint32_t an_pal_embd_type(int bits, int64_t cols) {
    if (bits == 4 && cols % AN_QK_K == 0) return AN_TYPE_Q6_K;
    if (cols % AN_QK == 0) return AN_TYPE_Q8_0;
    return 0;
}

uint32_t an_pal_type(int bits) {
    switch (bits) {
    case 4: return AN_TYPE_LUT4;
    case 6: return AN_TYPE_LUT6;
    case 8: return AN_TYPE_LUT8;
    default: return 0;
    }
}

int64_t an_pal_group(int64_t rows, int group) {
    int64_t g = group < 1 ? 1 : group;
    if (g > rows) g = rows;
    while (g > 1 && rows % g) g--;
    return g < 1 ? 1 : g;
}

int an_pal_parse(const char *s) {
    if (!s) return 0;
    if (!strcasecmp(s, "lut4")) return 4;
    if (!strcasecmp(s, "lut6")) return 6;
    if (!strcasecmp(s, "lut8")) return 8;
    return 0;
}

/* ---- random numbers: splitmix64 ----------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s) { return mix64(*s += 0x9e3779b97f4a7c15ull); }

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- sorted, weighted 1-D data ------------------------------------------------------------ */

/* Values x[0..n) ascending with prefix sums of the weights (p0), weight * x (p1) and
 * weight * x^2 (p2), each [n + 1] with p[0] = 0. */
typedef struct sorted1d {
    const float *x;
    const double *p0, *p1, *p2;
    int64_t n;
} sorted1d;

/* Weighted sum of squared distances of x[lo..hi) to c. */
static double seg_cost(const sorted1d *d, int64_t lo, int64_t hi, double c) {
    if (hi <= lo) return 0;
    double w = d->p0[hi] - d->p0[lo], s1 = d->p1[hi] - d->p1[lo], s2 = d->p2[hi] - d->p2[lo];
    double v = s2 - 2 * c * s1 + c * c * w;
    return v > 0 ? v : 0;
}

/* First index i in [lo, hi) with x[i] > v (hi if none): values <= a midpoint go to the lower
 * centroid, the same tie rule as the final assignment. */
static int64_t upper_bound(const float *x, int64_t lo, int64_t hi, double v) {
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((double)x[mid] > v) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* upper_bound near a guess h in [lo, hi]: gallops outward from h, then bisects the bracket.
 * Lloyd's boundaries move by a few values per iteration, so this costs O(log shift). */
static int64_t upper_bound_near(const float *x, int64_t lo, int64_t hi, double v, int64_t h) {
    if (h < lo) h = lo;
    if (h > hi) h = hi;
    int64_t a, b, step = 1;
    if (h > lo && (double)x[h - 1] > v) { /* answer is below h */
        b = h - 1;
        a = b - step;
        while (a > lo && (double)x[a] > v) b = a, step *= 2, a = b - step;
        if (a < lo) a = lo;
    } else { /* answer is at or above h */
        a = h;
        b = a + step;
        while (b < hi && (double)x[b - 1] <= v) a = b, step *= 2, b = a + step;
        if (b > hi) b = hi;
    }
    return upper_bound(x, a, b, v);
}

/* Cost of the points x[lo..hi) against the ascending centroids cs[0..nc), assuming each of those
 * points is nearest to one of them; bnd (may be NULL) receives the nc - 1 inner boundaries. */
static double range_cost(const sorted1d *d, int64_t lo, int64_t hi, const double *cs, int nc, int64_t *bnd) {
    double cost = 0;
    int64_t a = lo;
    for (int j = 0; j < nc; j++) {
        int64_t b = j + 1 < nc ? upper_bound(d->x, a, hi, 0.5 * (cs[j] + cs[j + 1])) : hi;
        if (bnd && j + 1 < nc) bnd[j] = b;
        cost += seg_cost(d, a, b, cs[j]);
        a = b;
    }
    return cost;
}

/* State of the clustering: m ascending centroids c, segment j = x[bnd[j] .. bnd[j+1]). */
typedef struct kstate {
    double c[KMAX], cost[KMAX];
    int64_t bnd[KMAX + 1];
    int m;
} kstate;

/* The index of the value a draw u in [0, total) of the D^2 distribution lands on, within
 * segment j (u already reduced to that segment). */
static int64_t draw_in_segment(const sorted1d *d, const kstate *s, int j, double u) {
    int64_t lo = s->bnd[j], hi = s->bnd[j + 1];
    /* smallest i in [lo, hi) with seg_cost(lo, i + 1) > u */
    int64_t a = lo, b = hi - 1;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (seg_cost(d, lo, mid + 1, s->c[j]) > u) b = mid;
        else a = mid + 1;
    }
    return a;
}

/* Potential after adding v (a value in segment j): only segments j-1..j+1 can change. Writes
 * the insertion position. */
static double trial_cost(const sorted1d *d, const kstate *s, int j, double v, double total, int *pos) {
    double cs[3];
    int nc = 0, first;
    if (v < s->c[j]) {
        first = j > 0 ? j - 1 : j;
        if (j > 0) cs[nc++] = s->c[j - 1];
        *pos = j;
        cs[nc++] = v;
        cs[nc++] = s->c[j];
    } else {
        first = j;
        cs[nc++] = s->c[j];
        *pos = j + 1;
        cs[nc++] = v;
        if (j + 1 < s->m) cs[nc++] = s->c[j + 1];
    }
    int last = first + nc - 2; /* old segments first..last are replaced */
    double old = 0;
    for (int t = first; t <= last; t++) old += s->cost[t];
    double nw = range_cost(d, s->bnd[first], s->bnd[last + 1], cs, nc, NULL);
    return total - old + nw;
}

static void insert_centroid(const sorted1d *d, kstate *s, int p, double v) {
    for (int t = s->m; t > p; t--) {
        s->c[t] = s->c[t - 1];
        s->cost[t] = s->cost[t - 1];
    }
    for (int t = s->m + 1; t > p + 1; t--) s->bnd[t] = s->bnd[t - 1];
    s->bnd[s->m + 1] = d->n; /* the end (not moved by the loop when v goes last) */
    s->c[p] = v;
    s->m++;
    /* boundaries p and p+1 moved; segments p-1 .. p+1 changed */
    int first = p > 0 ? p - 1 : 0, last = p + 1 < s->m ? p + 1 : p;
    double cs[3];
    int nc = 0;
    for (int t = first; t <= last; t++) cs[nc++] = s->c[t];
    int64_t inner[2];
    range_cost(d, s->bnd[first], s->bnd[last + 1], cs, nc, inner);
    for (int t = first + 1; t <= last; t++) s->bnd[t] = inner[t - first - 1];
    for (int t = first; t <= last; t++) s->cost[t] = seg_cost(d, s->bnd[t], s->bnd[t + 1], s->c[t]);
}

static double total_cost(const kstate *s) {
    double t = 0;
    for (int j = 0; j < s->m; j++) t += s->cost[j];
    return t;
}

/* Greedy k-means++: the first centroid is a value drawn by weight, each next one the best of
 * n_cand values drawn with probability proportional to weight * D^2. */
static void init_kpp(const sorted1d *d, int k, uint64_t seed, kstate *s) {
    uint64_t rng = seed;
    double u = rng_unit(&rng) * d->p0[d->n];
    int64_t a = 0, b = d->n - 1;
    while (a < b) { /* smallest i with p0[i + 1] > u */
        int64_t mid = a + (b - a) / 2;
        if (d->p0[mid + 1] > u) b = mid;
        else a = mid + 1;
    }
    s->m = 1;
    s->c[0] = d->x[a];
    s->bnd[0] = 0;
    s->bnd[1] = d->n;
    s->cost[0] = seg_cost(d, 0, d->n, s->c[0]);
    const int n_cand = 2 + (int)log((double)k);
    while (s->m < k) {
        double total = total_cost(s);
        if (!(total > 0)) break; /* every value is a centroid already */
        double best = INFINITY, best_v = 0;
        int best_pos = -1;
        for (int t = 0; t < n_cand; t++) {
            double r = rng_unit(&rng) * total;
            int j = 0;
            while (j < s->m - 1 && r >= s->cost[j]) r -= s->cost[j++];
            if (!(s->cost[j] > 0)) { /* rounding walked past the end: take the last costly one */
                for (j = s->m - 1; j > 0 && !(s->cost[j] > 0); j--) {}
                r = 0.5 * s->cost[j];
            }
            int64_t i = draw_in_segment(d, s, j, r);
            double v = d->x[i];
            if (v == s->c[j]) continue;
            int pos;
            double tc = trial_cost(d, s, j, v, total, &pos);
            if (tc < best) best = tc, best_v = v, best_pos = pos;
        }
        if (best_pos < 0) { /* all candidates hit existing centroids: take the farthest value */
            int jm = 0;
            for (int j = 1; j < s->m; j++)
                if (s->cost[j] > s->cost[jm]) jm = j;
            double lo = d->x[s->bnd[jm]], hi = d->x[s->bnd[jm + 1] - 1];
            best_v = fabs(lo - s->c[jm]) >= fabs(hi - s->c[jm]) ? lo : hi;
            if (best_v == s->c[jm]) break;
            best_pos = best_v < s->c[jm] ? jm : jm + 1;
        }
        insert_centroid(d, s, best_pos, best_v);
    }
}

/* Lloyd: boundaries at midpoints, centroids at weighted means, until no boundary moves. */
static double lloyd(const sorted1d *d, kstate *s, int iters) {
    int64_t prev[KMAX + 1];
    for (int it = 0; it < iters; it++) {
        memcpy(prev, s->bnd, (size_t)(s->m + 1) * sizeof prev[0]);
        for (int j = 0; j < s->m; j++) {
            int64_t lo = s->bnd[j], hi = s->bnd[j + 1];
            double w = d->p0[hi] - d->p0[lo];
            if (hi > lo && w > 0) s->c[j] = (d->p1[hi] - d->p1[lo]) / w;
        }
        /* an empty segment can leave its centroid out of order; keep the list sorted */
        for (int j = 1; j < s->m; j++)
            for (int t = j; t > 0 && s->c[t] < s->c[t - 1]; t--) {
                double tmp = s->c[t];
                s->c[t] = s->c[t - 1];
                s->c[t - 1] = tmp;
            }
        int64_t a = 0;
        for (int j = 0; j + 1 < s->m; j++) /* the new boundaries, searched from the old ones */
            a = s->bnd[j + 1] = upper_bound_near(d->x, a, d->n, 0.5 * (s->c[j] + s->c[j + 1]), prev[j + 1]);
        if (!memcmp(prev, s->bnd, (size_t)(s->m + 1) * sizeof prev[0])) break;
    }
    for (int j = 0; j < s->m; j++) s->cost[j] = seg_cost(d, s->bnd[j], s->bnd[j + 1], s->c[j]);
    return total_cost(s);
}

/* k-means from AN_PAL_STARTS greedy k-means++ starts (seeds derived from seed), each refined by
 * Lloyd; c receives the k ascending centroids of the best. Returns its cost. */
static double kmeans_sorted(const sorted1d *d, int k, int iters, uint64_t seed, double *c_out) {
    const int starts = AN_PAL_STARTS;
    kstate s, best = {.m = 0};
    double bc = INFINITY;
    for (int r = 0; r < starts; r++) {
        init_kpp(d, k, mix64(seed + (uint64_t)r), &s);
        double v = lloyd(d, &s, iters);
        if (v < bc) bc = v, best = s;
    }
    for (int j = 0; j < k; j++) c_out[j] = best.c[j < best.m ? j : best.m - 1];
    return bc;
}

/* ---- sorting: floats as order-preserving u32 keys, radix sorted with a 32-bit payload ---- */

static uint32_t f2key(float f) {
    uint32_t u = an_f32_bits(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static float key2f(uint32_t k) { return an_bits_f32((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

/* Sorts a[0..n) (key in the high 32 bits) by key, stable, using tmp[n]; result in a. */
static void radix_sort_hi32(uint64_t *a, uint64_t *tmp, int64_t n) {
    static const int shifts[3] = {32, 43, 54};
    static const int widths[3] = {11, 11, 10};
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < 3; p++) {
        int64_t cnt[2048];
        const int sh = shifts[p];
        const uint64_t mask = (1u << widths[p]) - 1;
        memset(cnt, 0, sizeof cnt);
        for (int64_t i = 0; i < n; i++) cnt[(src[i] >> sh) & mask]++;
        int64_t sum = 0;
        for (int b = 0; b < 2048; b++) {
            int64_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[cnt[(src[i] >> sh) & mask]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

/* ---- workspace ---------------------------------------------------------------------------- */

typedef struct kws {
    uint64_t *keys, *tmp;
    float *x, *vals, *roww;
    double *p0, *p1, *p2;
    uint8_t *ix;
    int64_t cap;
} kws;

static void kws_free(kws *w) {
    free(w->keys), free(w->tmp), free(w->x), free(w->vals), free(w->roww);
    free(w->p0), free(w->p1), free(w->p2), free(w->ix);
    memset(w, 0, sizeof *w);
}

static bool kws_alloc(kws *w, int64_t n, int64_t rows) {
    memset(w, 0, sizeof *w);
    size_t un = (size_t)n;
    w->keys = malloc(un * sizeof *w->keys);
    w->tmp = malloc(un * sizeof *w->tmp);
    w->x = malloc(un * sizeof *w->x);
    w->vals = malloc(un * sizeof *w->vals);
    w->roww = malloc((size_t)rows * sizeof *w->roww);
    w->p0 = malloc((un + 1) * sizeof(double));
    w->p1 = malloc((un + 1) * sizeof(double));
    w->p2 = malloc((un + 1) * sizeof(double));
    w->ix = malloc(un);
    w->cap = n;
    if (!w->keys || !w->tmp || !w->x || !w->vals || !w->roww || !w->p0 || !w->p1 || !w->p2 || !w->ix) {
        kws_free(w);
        return false;
    }
    return true;
}

/* Sorts vals[0..n) (row r = i / cols has weight roww[r]) into w->x with prefix sums. */
static sorted1d sort_values(kws *w, const float *vals, const float *roww, int64_t n, int64_t cols) {
    for (int64_t i = 0; i < n; i++) w->keys[i] = (uint64_t)f2key(vals[i]) << 32 | (uint64_t)(i / cols);
    radix_sort_hi32(w->keys, w->tmp, n);
    double s0 = 0, s1 = 0, s2 = 0;
    w->p0[0] = w->p1[0] = w->p2[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = key2f((uint32_t)(w->keys[i] >> 32));
        double wt = roww ? roww[(uint32_t)w->keys[i]] : 1.0, dv = v;
        w->x[i] = v;
        s0 += wt, s1 += wt * dv, s2 += wt * dv * dv;
        w->p0[i + 1] = s0, w->p1[i + 1] = s1, w->p2[i + 1] = s2;
    }
    sorted1d d = {w->x, w->p0, w->p1, w->p2, n};
    return d;
}

double an_kmeans_1d(const float *x, const float *wt, int64_t n, int k, int iters, uint64_t seed, float *c) {
    if (n < 1 || k < 1 || k > KMAX) return -1;
    kws w;
    /* one "row" per value so that each value carries its own weight */
    if (!kws_alloc(&w, n, 1)) return -1;
    for (int64_t i = 0; i < n; i++) w.keys[i] = (uint64_t)f2key(x[i]) << 32 | (uint64_t)i;
    radix_sort_hi32(w.keys, w.tmp, n);
    double s0 = 0, s1 = 0, s2 = 0;
    w.p0[0] = w.p1[0] = w.p2[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = key2f((uint32_t)(w.keys[i] >> 32));
        double q = wt ? wt[(uint32_t)w.keys[i]] : 1.0, dv = v;
        w.x[i] = v;
        s0 += q, s1 += q * dv, s2 += q * dv * dv;
        w.p0[i + 1] = s0, w.p1[i + 1] = s1, w.p2[i + 1] = s2;
    }
    sorted1d d = {w.x, w.p0, w.p1, w.p2, n};
    double cd[KMAX], cost = -1;
    if (s0 > 0) {
        cost = kmeans_sorted(&d, k, iters > 0 ? iters : AN_PAL_ITERS, mix64(seed), cd);
        for (int j = 0; j < k; j++) c[j] = (float)cd[j];
    }
    kws_free(&w);
    return cost;
}

/* ---- a whole matrix ----------------------------------------------------------------------- */

typedef struct pjob {
    uint32_t src_type;
    const uint8_t *src;
    uint64_t src_rb, out_rb;
    int64_t rows, cols, g, n_groups;
    an_pal_params p;
    uint64_t salt;
    uint8_t *idx;
    uint16_t *lut, *scale;
    atomic_llong next;
    atomic_int failed;      /* 1: out of memory, 2: non-finite weight */
    atomic_llong bad_row;
    double *sse, *ssw; /* [threads] */
} pjob;

static void pal_worker(void *arg, int ith, int nth) {
    pjob *J = arg;
    const int64_t cols = J->cols, g = J->g, n = g * cols;
    const int k = 1 << J->p.bits;
    kws w;
    if (!kws_alloc(&w, n, g)) {
        atomic_store(&J->failed, 1);
        return;
    }
    double sse = 0, ssw = 0;
    for (;;) {
        int64_t gi = atomic_fetch_add(&J->next, 1);
        if (gi >= J->n_groups || atomic_load(&J->failed)) break;
        const int64_t r0 = gi * g;
        bool bad = false;
        for (int64_t r = 0; r < g && !bad; r++) {
            float *v = w.vals + r * cols;
            an_dequant_row((an_type)J->src_type, J->src + (uint64_t)(r0 + r) * J->src_rb, v, cols);
            float amax = 0;
            for (int64_t c = 0; c < cols; c++) {
                if (!isfinite(v[c])) {
                    bad = true;
                    atomic_store(&J->bad_row, r0 + r);
                    break;
                }
                float a = fabsf(v[c]);
                if (a > amax) amax = a;
            }
            for (int64_t c = 0; c < cols && !bad; c++) ssw += (double)v[c] * v[c];
            if (J->p.row_scale && !bad) {
                an_f16 h = an_f32_to_f16(amax > 65504.0f ? 65504.0f : amax);
                float s = an_f16_to_f32(h);
                if (s > 0 && s < amax) { /* rounded down: the next fp16 up keeps |w / s| <= 1 */
                    h++;
                    s = an_f16_to_f32(h);
                }
                J->scale[r0 + r] = s > 0 ? h : 0;
                for (int64_t c = 0; c < cols; c++) v[c] = s > 0 ? v[c] / s : 0.0f;
                w.roww[r] = s * s;
            }
        }
        if (bad) {
            atomic_store(&J->failed, 2);
            break;
        }
        const float *roww = J->p.row_scale ? w.roww : NULL;
        if (roww) { /* all-zero group: weights all 0, cluster unweighted (any table works) */
            float tot = 0;
            for (int64_t r = 0; r < g; r++) tot += roww[r];
            if (!(tot > 0)) roww = NULL;
        }
        sorted1d d = sort_values(&w, w.vals, roww, n, cols);
        double cent[KMAX];
        uint64_t seed = mix64(J->p.seed ^ mix64(J->salt + 0x51ed27u) ^ mix64((uint64_t)gi * 0x2545f4914f6cdd1dull));
        kmeans_sorted(&d, k, J->p.iters > 0 ? J->p.iters : AN_PAL_ITERS, seed, cent);
        /* the stored table: centroids rounded to fp16 (monotone, so still ascending) */
        uint16_t *tbl = J->lut + gi * k;
        float tv[KMAX];
        double mids[KMAX];
        for (int j = 0; j < k; j++) {
            double cv = cent[j] > 65504.0 ? 65504.0 : cent[j] < -65504.0 ? -65504.0 : cent[j];
            tbl[j] = an_f32_to_f16((float)cv);
            tv[j] = an_f16_to_f32(tbl[j]);
        }
        for (int j = 0; j + 1 < k; j++) mids[j] = 0.5 * ((double)tv[j] + (double)tv[j + 1]); /* exact */
        /* assignment against the rounded table: index = number of midpoints below the value */
        for (int64_t i = 0; i < n; i++) {
            double x = w.vals[i];
            int lo = 0;
            for (int step = k >> 1; step > 0; step >>= 1)
                if (x > mids[lo + step - 1]) lo += step; /* lo + step - 1 <= k - 2 */
            w.ix[i] = (uint8_t)lo;
        }
        for (int64_t r = 0; r < g; r++) {
            an_lut_pack_row(w.ix + r * cols, cols, J->p.bits, J->idx + (uint64_t)(r0 + r) * J->out_rb);
            const float s = J->p.row_scale ? an_f16_to_f32(J->scale[r0 + r]) : 1.0f;
            /* error of the reconstruction, in the original units */
            float *orig = w.vals + r * cols;
            for (int64_t c = 0; c < cols; c++) {
                double e = ((double)orig[c] - tv[w.ix[r * cols + c]]) * s;
                sse += e * e;
            }
        }
    }
    J->sse[ith] = sse, J->ssw[ith] = ssw;
    (void)nth;
    kws_free(&w);
}

an_status an_palettize(an_pool *pool, uint32_t src_type, const void *src, int64_t rows, int64_t cols,
                       const an_pal_params *p, uint64_t salt, void *idx, uint16_t *lut, uint16_t *scale,
                       const char *label, double *sse, double *ssw, an_err *err) {
    if (!label) label = "matrix";
    const uint32_t lt = an_pal_type(p->bits);
    const an_type_traits *st = an_type_traits_get(src_type), *ot = an_type_traits_get(lt);
    if (!lt || !ot) return an_err_set(err, AN_E_USAGE, "%s: palettization to %d bits is not supported (4, 6 or 8)", label, p->bits);
    if (!st || an_lut_is_type(src_type) || !(src_type == AN_TYPE_F32 || an_quant_is_weight_type(src_type)))
        return an_err_set(err, AN_E_UNSUPPORTED, "%s: cannot palettize a tensor of type %s", label, an_type_name(src_type));
    if (rows < 1 || cols < 1 || cols % st->blck || cols % ot->blck)
        return an_err_set(err, AN_E_USAGE, "%s: cannot palettize a %lld x %lld matrix of type %s (row length must be a multiple of %u and %u)",
                          label, (long long)rows, (long long)cols, an_type_name(src_type), st->blck, ot->blck);
    if (p->row_scale && !scale) return an_err_set(err, AN_E_USAGE, "%s: row scales requested without a buffer", label);
    const int64_t g = an_pal_group(rows, p->group);
    if (g * cols > (int64_t)1 << 31)
        return an_err_set(err, AN_E_USAGE, "%s: a group of %lld rows of %lld values is too large", label, (long long)g,
                          (long long)cols);
    const int nth = an_pool_size(pool);
    pjob *J = calloc(1, sizeof *J);
    double *acc = calloc(2 * (size_t)nth, sizeof *acc);
    if (!J || !acc) {
        free(J), free(acc);
        return an_err_set(err, AN_E_NOMEM, "out of memory palettizing %s", label);
    }
    J->sse = acc, J->ssw = acc + nth;
    J->src_type = src_type;
    J->src = src;
    J->src_rb = an_row_bytes(st, (uint64_t)cols);
    J->out_rb = an_row_bytes(ot, (uint64_t)cols);
    J->rows = rows, J->cols = cols, J->g = g, J->n_groups = rows / g;
    J->p = *p;
    J->salt = salt;
    J->idx = idx, J->lut = lut, J->scale = scale;
    atomic_init(&J->next, 0);
    atomic_init(&J->failed, 0);
    atomic_init(&J->bad_row, -1);
    an_pool_run(pool, pal_worker, J);
    an_status s = AN_OK;
    int f = atomic_load(&J->failed);
    if (f == 1) s = an_err_set(err, AN_E_NOMEM, "out of memory palettizing %s", label);
    else if (f == 2)
        s = an_err_set(err, AN_E_FORMAT, "%s: row %lld holds a non-finite weight; cannot palettize", label,
                       (long long)atomic_load(&J->bad_row));
    if (s == AN_OK) {
        double a = 0, b = 0;
        for (int t = 0; t < nth; t++) a += J->sse[t], b += J->ssw[t];
        if (sse) *sse = a;
        if (ssw) *ssw = b;
    }
    free(acc);
    free(J);
    return s;
}
