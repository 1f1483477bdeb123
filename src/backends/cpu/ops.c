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

/* One (token, head) pair: scores over positions 0..p, softmax (sum in double, as ggml), then
 * the probability-weighted sum of V rows. O(p) scratch; dots and axpys use the ISA kernels. */
static void attn_one(const an_attn_args *a, int t, int h, float *sc) {
    const int hd = a->hd, p = a->pos0 + t;
    const int kvh = h / (a->n_head / a->n_head_kv);
    const float *q = a->q + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    float qr[512], row[512];
    const float *qq = q;
    if (a->kv_f16) { /* llama.cpp converts q to the cache type for the K·q product */
        for (int i = 0; i < hd; i++) qr[i] = an_round_f16(q[i]);
        qq = qr;
    }
    float mx = -INFINITY;
    for (int j = 0; j <= p; j++) {
        const int64_t base = (int64_t)j * a->kv_stride + (int64_t)kvh * hd;
        float s;
        if (a->kv_f16) {
            an_cpu_f16_to_f32((const uint16_t *)a->k + base, row, hd);
            s = an_cpu_dot_f32(row, qq, hd);
        } else {
            s = an_cpu_dot_f32((const float *)a->k + base, qq, hd);
        }
        s *= a->scale;
        sc[j] = s;
        if (s > mx) mx = s;
    }
    double sum = 0;
    for (int j = 0; j <= p; j++) {
        float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    float *o = a->out + (int64_t)t * a->n_head * hd + (int64_t)h * hd;
    for (int i = 0; i < hd; i++) o[i] = 0;
    for (int j = 0; j <= p; j++) {
        float w = sc[j] * inv;
        if (a->kv_f16) w = an_round_f16(w); /* llama.cpp multiplies f16 V by f16 probabilities */
        const int64_t base = (int64_t)j * a->kv_stride + (int64_t)kvh * hd;
        if (a->kv_f16) {
            an_cpu_f16_to_f32((const uint16_t *)a->v + base, row, hd);
            an_cpu_axpy_f32(o, w, row, hd);
        } else {
            an_cpu_axpy_f32(o, w, (const float *)a->v + base, hd);
        }
    }
}

typedef struct {
    const an_attn_args *a;
} attn_job;

static void attn_worker(void *arg, int ith, int nth) {
    const an_attn_args *a = ((attn_job *)arg)->a;
    float *sc = a->scratch + (int64_t)ith * (a->pos0 + a->n);
    const int total = a->n * a->n_head;
    for (int i = ith; i < total; i += nth) attn_one(a, i / a->n_head, i % a->n_head, sc);
}

void an_cpu_attention(an_pool *pool, const an_attn_args *a) {
    attn_job j = {a};
    an_pool_run(pool, attn_worker, &j);
}
