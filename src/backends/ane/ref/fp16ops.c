/* fp16ops.c — the executor's kernels. Every result is computed in float and rounded once to
 * fp16 (nearest even; past ±65504 it becomes ±inf), as the ANE stores every op output:
 *   add, mul: exact results rounded once. A product of two fp16 values fits float exactly; a
 *     sum is rounded to float first, but float's 24 bits are >= 2*11 + 2, so rounding twice
 *     (to float, then to fp16) gives the same fp16 as rounding the exact sum once.
 *   sigmoid, silu: float expf, then one rounding (silu is one op: x * sigmoid(x) is not
 *     rounded in between, unlike the sigmoid-then-mul decomposition).
 *   conv: products summed in fp32, bias added, then one rounding.
 *   transpose, reshape, slice: copies. */
#include <math.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"
#include "core/fp16.h"

void ref_k_strided(const ref_op *op, const uint16_t *in, uint16_t *out) {
    const int64_t *d = op->odim, *s = op->stride[0];
    in += op->base;
    for (int64_t i0 = 0; i0 < d[0]; i0++)
        for (int64_t i1 = 0; i1 < d[1]; i1++)
            for (int64_t i2 = 0; i2 < d[2]; i2++)
                for (int64_t i3 = 0; i3 < d[3]; i3++) {
                    const uint16_t *p = in + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3];
                    if (s[4] == 1) {
                        memcpy(out, p, (size_t)d[4] * sizeof *out);
                        out += d[4];
                    } else {
                        for (int64_t i4 = 0; i4 < d[4]; i4++) *out++ = p[i4 * s[4]];
                    }
                }
}

void ref_k_binary(const ref_op *op, const uint16_t *x, const uint16_t *y, uint16_t *out) {
    const int64_t *d = op->odim, *sx = op->stride[0], *sy = op->stride[1];
    const bool mul = op->kind == OP_MUL;
    for (int64_t i0 = 0; i0 < d[0]; i0++)
        for (int64_t i1 = 0; i1 < d[1]; i1++)
            for (int64_t i2 = 0; i2 < d[2]; i2++)
                for (int64_t i3 = 0; i3 < d[3]; i3++) {
                    const uint16_t *px = x + i0 * sx[0] + i1 * sx[1] + i2 * sx[2] + i3 * sx[3];
                    const uint16_t *py = y + i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3];
                    for (int64_t i4 = 0; i4 < d[4]; i4++) {
                        const float a = an_f16_to_f32(px[i4 * sx[4]]), b = an_f16_to_f32(py[i4 * sy[4]]);
                        *out++ = an_f32_to_f16(mul ? a * b : a + b);
                    }
                }
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void ref_k_unary(ref_opk k, const uint16_t *x, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = an_f16_to_f32(x[i]), s = sigmoid(v);
        float y = s;
        if (k == OP_SILU) y = s == 0.0f ? (v < 0 ? -0.0f : 0.0f) : v * s; /* silu(-inf) = -0, not -inf * 0 */
        out[i] = an_f32_to_f16(y);
    }
}

void ref_k_conv_scalar(const ref_op *op, const uint16_t *x, const uint16_t *w, const uint16_t *bias,
                       uint16_t *out) {
    const int64_t K = op->K, S = op->S, M = op->M;
    for (int64_t b = 0; b < op->B; b++, x += K * S, out += M * S)
        for (int64_t m = 0; m < M; m++)
            for (int64_t s = 0; s < S; s++) {
                float acc = 0;
                for (int64_t k = 0; k < K; k++) acc += an_f16_to_f32(w[m * K + k]) * an_f16_to_f32(x[k * S + s]);
                if (bias) acc += an_f16_to_f32(bias[m]);
                out[m * S + s] = an_f32_to_f16(acc);
            }
}

/* The activation [K][S] (channels first, as MIL lays it out) becomes the matmul's S rows of K
 * floats, and its S rows of M come back as [M][S]. 32x32 blocks keep both sides of each
 * transpose in cache. */
#define TB 32

void ref_k_conv_fast(an_mil_ref *r, const ref_op *op, const uint16_t *x, const an_mat *w, const uint16_t *bias,
                     uint16_t *out, an_pool *pool) {
    const int64_t K = op->K, S = op->S, M = op->M;
    float *xf = r->xf, *yf = r->yf;
    for (int64_t b = 0; b < op->B; b++, x += K * S, out += M * S) {
        for (int64_t k0 = 0; k0 < K; k0 += TB)
            for (int64_t s0 = 0; s0 < S; s0 += TB)
                for (int64_t k = k0; k < K && k < k0 + TB; k++)
                    for (int64_t s = s0; s < S && s < s0 + TB; s++) xf[s * K + k] = an_f16_to_f32(x[k * S + s]);
        an_cpu_matmul(pool, w, xf, (int)S, yf, M, r->ws);
        for (int64_t m0 = 0; m0 < M; m0 += TB)
            for (int64_t s0 = 0; s0 < S; s0 += TB)
                for (int64_t m = m0; m < M && m < m0 + TB; m++) {
                    const float bm = bias ? an_f16_to_f32(bias[m]) : 0.0f;
                    for (int64_t s = s0; s < S && s < s0 + TB; s++) out[m * S + s] = an_f32_to_f16(yf[s * M + m] + bm);
                }
    }
}
