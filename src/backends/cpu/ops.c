/* ops.c — the per-token ops of a llama-family layer, in portable C. Their float arithmetic
 * follows ggml's CPU ops (order of operations, double where ggml uses ggml_float) so that our
 * logits track llama.cpp's to the last few bits. */
#include "backends/cpu/cpu.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "backends/cpu/attn.h"
#include "core/cpu.h"
#include "core/fp16.h"

/* ---- per-ISA attention block, exp and SwiGLU, chosen once (core/cpu.h) -------------------- */

typedef void (*ops_row_fn)(const float *x, float *y, int64_t n);
typedef void (*ops_swiglu_fn)(const float *g, const float *u, float *y, int64_t n);
static struct {
    an_attn_block_fn block;
    an_attn_f16_rows_fn f16_rows;
    an_attn_round_f16_fn round_f16;
    ops_row_fn exp;
    ops_swiglu_fn swiglu;
} g_ops;
static pthread_once_t g_ops_once = PTHREAD_ONCE_INIT;

static void f16_rows_portable(const uint16_t *src, int64_t stride, int rows, int hd, float *dst) {
    for (int j = 0; j < rows; j++) an_cpu_f16_to_f32(src + (int64_t)j * stride, dst + (size_t)j * hd, hd);
}

static void round_f16_portable(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = an_round_f16(x[i]);
}

static void ops_init(void) {
    g_ops.block = an_attn_block_scalar;
    g_ops.f16_rows = f16_rows_portable;
    g_ops.round_f16 = round_f16_portable;
    g_ops.exp = an_exp_row_scalar;
    g_ops.swiglu = an_swiglu_scalar;
#if defined(__x86_64__)
    const an_isa isa = an_cpu()->active;
    if (isa == AN_ISA_AVX512) {
        g_ops.block = an_attn_block_avx512;
        g_ops.f16_rows = an_attn_f16_rows_avx512;
        g_ops.round_f16 = an_attn_round_f16_avx512;
        g_ops.exp = an_exp_row_avx512;
        g_ops.swiglu = an_swiglu_avx512;
    } else if (isa == AN_ISA_AVX2) {
        g_ops.block = an_attn_block_avx2;
        g_ops.f16_rows = an_attn_f16_rows_avx2;
        g_ops.round_f16 = an_attn_round_f16_avx2;
        g_ops.exp = an_exp_row_avx2;
        g_ops.swiglu = an_swiglu_avx2;
    }
#endif
}

static void ops_ensure_init(void) { pthread_once(&g_ops_once, ops_init); }

void an_rms_norm(const float *x, const float *g, float *y, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * scale;
        y[i] = g ? v * g[i] : v;
    }
}

/* YaRN correction dimension for a number of rotations (ggml_rope_yarn_corr_dim). */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

void an_rope_cache(const an_rope_params *rp, int32_t pos, float *cs) {
    const int n_dims = rp->n_rot;
    const float theta_scale = powf(rp->freq_base, -2.0f / (float)n_dims);
    float corr0 = 0, corr1 = 0;
    if (rp->ext_factor != 0.0f) {
        float lo = floorf(yarn_corr_dim(n_dims, rp->n_ctx_orig, rp->beta_fast, rp->freq_base));
        float hi = ceilf(yarn_corr_dim(n_dims, rp->n_ctx_orig, rp->beta_slow, rp->freq_base));
        corr0 = lo > 0 ? lo : 0;
        corr1 = hi < (float)(n_dims - 1) ? hi : (float)(n_dims - 1);
    }
    /* theta advances by repeated multiplication, as ggml's cache does (not pow per index) */
    float theta = (float)pos;
    for (int k = 0; k < n_dims / 2; k++) {
        const float ff = rp->freq_factors ? rp->freq_factors[k] : 1.0f;
        const float theta_extrap = theta / ff;
        const float theta_interp = rp->freq_scale * theta_extrap;
        float th = theta_interp, mscale = rp->attn_factor;
        if (rp->ext_factor != 0.0f) {
            float y = ((float)(2 * k) / 2 - corr0) / fmaxf(0.001f, corr1 - corr0);
            float ramp = 1 - fminf(1, fmaxf(0, y));
            float mix = ramp * rp->ext_factor;
            th = theta_interp * (1 - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / rp->freq_scale);
        }
        cs[2 * k] = cosf(th) * mscale;
        cs[2 * k + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

void an_rope_apply(float *x, const float *cs, int n_rot, int neox) {
    const int half = n_rot / 2;
    for (int k = 0; k < half; k++) {
        const float c = cs[2 * k], s = cs[2 * k + 1];
        const int i0 = neox ? k : 2 * k, i1 = neox ? k + half : 2 * k + 1;
        const float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
    }
}

void an_exp_row_scalar(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = an_exp_approx(x[i]);
}

void an_cpu_exp_f32(const float *x, float *y, int64_t n) {
    ops_ensure_init();
    g_ops.exp(x, y, n);
}

void an_swiglu_scalar(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + an_exp_approx(-g[i])) * u[i];
}

void an_swiglu(const float *g, const float *u, float *y, int64_t n) {
    ops_ensure_init();
    g_ops.swiglu(g, u, y, n);
}

/* ---- attention ---------------------------------------------------------------------------- */

/* ---- reference attention: one (token, head) pair at a time, exact softmax ----------------- */

static void attn_ref_one(const an_attn_args *a, int t, int h, float *sc) {
    const int hd = a->hd, p = a->pos0 + t;
    const int kvh = h / (a->n_head / a->n_head_kv);
    const float *q = a->q + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    float mx = -INFINITY;
    for (int j = 0; j <= p; j++) {
        const int64_t base = (int64_t)j * a->kv_stride + (int64_t)kvh * hd;
        double s = 0;
        for (int i = 0; i < hd; i++) {
            float qi = a->kv_f16 ? an_round_f16(q[i]) : q[i];
            float ki = a->kv_f16 ? an_f16_to_f32(((const uint16_t *)a->k)[base + i]) : ((const float *)a->k)[base + i];
            s += (double)qi * ki;
        }
        sc[j] = (float)s * a->scale;
        if (sc[j] > mx) mx = sc[j];
    }
    double sum = 0;
    for (int j = 0; j <= p; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    float *o = a->out + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    for (int i = 0; i < hd; i++) {
        double acc = 0;
        for (int j = 0; j <= p; j++) {
            float w = (float)(sc[j] / sum);
            if (a->kv_f16) w = an_round_f16(w);
            const int64_t idx = (int64_t)j * a->kv_stride + (int64_t)kvh * hd + i;
            acc += (double)w * (a->kv_f16 ? an_f16_to_f32(((const uint16_t *)a->v)[idx]) : ((const float *)a->v)[idx]);
        }
        o[i] = (float)acc;
    }
}

void an_attention_ref(const an_attn_args *a) {
    for (int t = 0; t < a->n; t++)
        for (int h = 0; h < a->n_head; h++) attn_ref_one(a, t, h, a->scratch);
}

/* ---- blocked attention with online softmax ------------------------------------------------ */

#define RP_OF(R) (((R) + AN_ATTN_LANES - 1) / AN_ATTN_LANES * AN_ATTN_LANES)
#define A16(x) (((x) + 15) & ~(size_t)15) /* floats, to keep every array 64-byte aligned */
/* st: a block's scores; before the first block it also holds one rounded q row (hd floats) */
#define ST_FLOATS(rp, hd) A16((size_t)AN_ATTN_KB * (rp) > (size_t)(hd) ? (size_t)AN_ATTN_KB * (rp) : (size_t)(hd))

size_t an_attn_scratch_floats(int n_head, int n_head_kv, int hd, int n_ctx) {
    const size_t rp = RP_OF((size_t)(n_head / n_head_kv) * AN_ATTN_QB); /* queries per tile, padded */
    /* qt, ot, st, m, l, alpha, lim, K block, V block, and slack to align the start */
    size_t tile = 2 * A16(rp * (size_t)hd) + ST_FLOATS(rp, hd) + 4 * A16(rp) +
                  2 * A16((size_t)AN_ATTN_KB * (size_t)hd) + 16;
    size_t ref = A16((size_t)n_ctx); /* an_attention_ref's scores */
    return tile > ref ? tile : ref;
}

/* The portable block kernel (attn.h's contract), loops the compiler can vectorize over rows. */
void an_attn_block_scalar(const an_attn_blk *b) {
    const int rp = b->rp, hd = b->hd, kbn = b->kbn;
    float *c = b->alpha; /* a chunk's partial sums (attn_avx512.c: chunks of AN_ATTN_DC) */
    for (int j = 0; j < kbn; j++) {
        float *s = b->st + (size_t)j * rp;
        const float *k = b->k + (int64_t)j * b->ldk;
        for (int r = 0; r < rp; r++) s[r] = 0;
        for (int d0 = 0; d0 < hd; d0 += AN_ATTN_DC) {
            for (int r = 0; r < rp; r++) c[r] = 0;
            for (int d = d0; d < d0 + AN_ATTN_DC && d < hd; d++) {
                const float kd = k[d], *q = b->qt + (size_t)d * rp;
                for (int r = 0; r < rp; r++) c[r] += q[r] * kd;
            }
            for (int r = 0; r < rp; r++) s[r] += c[r];
        }
    }
    float *mx = b->alpha; /* block max first, then the rescale factor */
    for (int r = 0; r < rp; r++) mx[r] = -INFINITY;
    for (int j = 0; j < kbn; j++) {
        float *s = b->st + (size_t)j * rp;
        const float jf = (float)(b->j0 + j);
        for (int r = 0; r < rp; r++) {
            float v = s[r] * b->scale;
            if (b->mask && jf > b->lim[r]) v = -INFINITY;
            s[r] = v;
            mx[r] = v > mx[r] ? v : mx[r];
        }
    }
    for (int r = 0; r < rp; r++) {
        const float m1 = mx[r] > b->m[r] ? mx[r] : b->m[r];
        mx[r] = an_exp_approx(b->m[r] - m1);
        b->l[r] *= mx[r];
        b->m[r] = m1;
    }
    for (int j = 0; j < kbn; j++) {
        float *s = b->st + (size_t)j * rp;
        for (int r = 0; r < rp; r++) {
            s[r] = an_exp_approx(s[r] - b->m[r]);
            b->l[r] += s[r];
        }
    }
    for (int d = 0; d < hd; d++) {
        float *o = b->ot + (size_t)d * rp;
        for (int r = 0; r < rp; r++) o[r] *= b->alpha[r];
        for (int j = 0; j < kbn; j++) {
            const float vd = b->v[(int64_t)j * b->ldv + d], *p = b->st + (size_t)j * rp;
            for (int r = 0; r < rp; r++) o[r] += p[r] * vd;
        }
    }
}

/* One tile: KV head g, query tokens [t0, t1); queries r = token-major: r = (t - t0) * rep + i
 * for head g*rep + i. Key blocks of AN_ATTN_KB run through the ISA's block kernel. */
static void attn_tile(const an_attn_args *a, int g, int t0, int t1, float *ws) {
    const int hd = a->hd, rep = a->n_head / a->n_head_kv, nt = t1 - t0, R = rep * nt;
    const int rp = RP_OF(R), rp_max = RP_OF(rep * AN_ATTN_QB);
    float *base = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *qt = base, *ot = qt + A16((size_t)rp_max * hd), *st = ot + A16((size_t)rp_max * hd);
    float *m = st + ST_FLOATS(rp_max, hd), *l = m + A16(rp_max), *al = l + A16(rp_max);
    float *lim = al + A16(rp_max), *kb = lim + A16(rp_max), *vb = kb + A16((size_t)AN_ATTN_KB * hd);
    for (int r = 0; r < rp; r++) {
        if (r < R) {
            const int t = r / rep, h = g * rep + r % rep;
            const float *q = a->q + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
            if (a->kv_f16) { /* st is free until the first key block */
                g_ops.round_f16(q, st, hd);
                q = st;
            }
            for (int d = 0; d < hd; d++) qt[(size_t)d * rp + r] = q[d];
            lim[r] = (float)(a->pos0 + t0 + t);
        } else { /* padding: a zero query that sees every key (finite, discarded) */
            for (int d = 0; d < hd; d++) qt[(size_t)d * rp + r] = 0;
            lim[r] = FLT_MAX;
        }
        m[r] = -INFINITY;
        l[r] = 0;
    }
    memset(ot, 0, sizeof(float) * (size_t)rp * hd);
    an_attn_blk b = {.qt = qt, .ot = ot, .st = st, .m = m, .l = l, .alpha = al, .lim = lim,
                     .hd = hd, .rp = rp, .scale = a->scale};
    const int nk = a->pos0 + t1, first_lim = a->pos0 + t0; /* keys 0 .. nk-1 */
    for (int j0 = 0; j0 < nk; j0 += AN_ATTN_KB) {
        const int kbn = nk - j0 < AN_ATTN_KB ? nk - j0 : AN_ATTN_KB;
        const int64_t off = (int64_t)j0 * a->kv_stride + (int64_t)g * hd;
        if (a->kv_f16) {
            g_ops.f16_rows((const uint16_t *)a->k + off, a->kv_stride, kbn, hd, kb);
            g_ops.f16_rows((const uint16_t *)a->v + off, a->kv_stride, kbn, hd, vb);
            b.k = kb;
            b.v = vb;
            b.ldk = b.ldv = hd;
        } else {
            b.k = (const float *)a->k + off;
            b.v = (const float *)a->v + off;
            b.ldk = b.ldv = a->kv_stride;
        }
        b.j0 = j0;
        b.kbn = kbn;
        b.mask = j0 + kbn - 1 > first_lim;
        g_ops.block(&b);
    }
    for (int r = 0; r < R; r++) {
        const int t = r / rep, h = g * rep + r % rep;
        float *out = a->out + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
        const float inv = 1.0f / l[r];
        for (int d = 0; d < hd; d++) out[d] = ot[(size_t)d * rp + r] * inv;
    }
}

typedef struct {
    const an_attn_args *a;
    size_t ws_floats;
} attn_job;

static void attn_worker(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    const an_attn_args *a = j->a;
    float *ws = a->scratch + (size_t)ith * j->ws_floats;
    const int blocks = (a->n + AN_ATTN_QB - 1) / AN_ATTN_QB, items = blocks * a->n_head_kv;
    /* head-major: consecutive items (one per thread) share the head's K/V rows in cache */
    for (int it = ith; it < items; it += nth) {
        const int g = it / blocks, b = it % blocks;
        const int t0 = b * AN_ATTN_QB, t1 = t0 + AN_ATTN_QB < a->n ? t0 + AN_ATTN_QB : a->n;
        attn_tile(a, g, t0, t1, ws);
    }
}

void an_cpu_attention(an_pool *pool, const an_attn_args *a) {
    ops_ensure_init();
    attn_job j = {a, an_attn_scratch_floats(a->n_head, a->n_head_kv, a->hd, 0)};
    an_pool_run(pool, attn_worker, &j);
}
