/* ops.c — the per-token ops of a llama-family layer, in portable C. Their float arithmetic
 * follows ggml's CPU ops (order of operations, double where ggml uses ggml_float) so that our
 * logits track llama.cpp's to the last few bits. */
#include "backends/cpu/cpu.h"

#include <math.h>
#include <string.h>

#include "core/fp16.h"

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

void an_swiglu(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
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

/* ---- tiled attention with online softmax --------------------------------------------------- */

size_t an_attn_scratch_floats(int n_head, int n_head_kv, int hd, int n_ctx) {
    size_t R = (size_t)(n_head / n_head_kv) * AN_ATTN_QB; /* queries per tile */
    size_t tile = R * (size_t)hd * 2 + R * 2 + 2 * (size_t)hd; /* q, o, max, sum, k row, v row */
    size_t ref = (size_t)n_ctx;                                 /* an_attention_ref's scores */
    return tile > ref ? tile : ref;
}

/* One tile: KV head g, query tokens [t0, t1). */
static void attn_tile(const an_attn_args *a, int g, int t0, int t1, float *ws) {
    const int hd = a->hd, rep = a->n_head / a->n_head_kv, nt = t1 - t0, R = rep * nt;
    float *Q = ws, *O = Q + (size_t)R * hd, *M = O + (size_t)R * hd, *L = M + R, *krow = L + R, *vrow = krow + hd;
    /* queries r = token-major: r = (t - t0) * rep + (h - g*rep) */
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < rep; i++) {
            const int r = t * rep + i, h = g * rep + i;
            const float *q = a->q + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
            for (int d = 0; d < hd; d++) Q[(size_t)r * hd + d] = a->kv_f16 ? an_round_f16(q[d]) : q[d];
            memset(O + (size_t)r * hd, 0, (size_t)hd * sizeof(float));
            M[r] = -INFINITY;
            L[r] = 0;
        }
    const int jmax = a->pos0 + t1 - 1;
    for (int j = 0; j <= jmax; j++) {
        const int64_t base = (int64_t)j * a->kv_stride + (int64_t)g * hd;
        const float *kr, *vr;
        if (a->kv_f16) {
            an_cpu_f16_to_f32((const uint16_t *)a->k + base, krow, hd);
            an_cpu_f16_to_f32((const uint16_t *)a->v + base, vrow, hd);
            kr = krow;
            vr = vrow;
        } else {
            kr = (const float *)a->k + base;
            vr = (const float *)a->v + base;
        }
        /* token t sees positions <= pos0 + t: the first token of this tile that sees key j */
        const int tfirst = j - a->pos0 - t0 > 0 ? j - a->pos0 - t0 : 0;
        for (int r = tfirst * rep; r < R; r++) {
            const float s = an_cpu_dot_f32(Q + (size_t)r * hd, kr, hd) * a->scale;
            float *o = O + (size_t)r * hd;
            if (s > M[r]) { /* new running max: rescale what was accumulated */
                const float c = expf(M[r] - s);
                if (L[r] > 0) {
                    L[r] *= c;
                    for (int d = 0; d < hd; d++) o[d] *= c;
                }
                M[r] = s;
            }
            const float pexp = expf(s - M[r]);
            L[r] += pexp;
            an_cpu_axpy_f32(o, pexp, vr, hd);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < rep; i++) {
            const int r = t * rep + i, h = g * rep + i;
            float *out = a->out + (int64_t)(t0 + t) * a->n_head * hd + (int64_t)h * hd;
            const float inv = 1.0f / L[r];
            for (int d = 0; d < hd; d++) out[d] = O[(size_t)r * hd + d] * inv;
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
    for (int it = ith; it < items; it += nth) {
        const int g = it % a->n_head_kv, b = it / a->n_head_kv;
        const int t0 = b * AN_ATTN_QB, t1 = t0 + AN_ATTN_QB < a->n ? t0 + AN_ATTN_QB : a->n;
        attn_tile(a, g, t0, t1, ws);
    }
}

void an_cpu_attention(an_pool *pool, const an_attn_args *a) {
    attn_job j = {a, an_attn_scratch_floats(a->n_head, a->n_head_kv, a->hd, 0)};
    an_pool_run(pool, attn_worker, &j);
}
