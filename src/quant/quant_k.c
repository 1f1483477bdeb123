/* quant_k.c — K-quants (256-element super-blocks): dequantization, ggml's reference
 * quantizers (quantize_row_qN_K_ref) and the Q8_K dot products.
 *
 * Element numbering below: e = 0..255 within a super-block, "sub-block" = e/16 (Q2_K, Q3_K,
 * Q6_K: 16 scales) or e/32 (Q4_K, Q5_K: 8 scale/min pairs).
 *
 * Q2_K (84 B)  | scales[16] | qs[64] | d:f16 | dmin:f16 |
 *   scales[s] = sc (low nibble) | m << 4 (high nibble), s = e/16
 *   e = 128h + 32j + l (h 0..1, j 0..3, l 0..31):  q = (qs[32h + l] >> 2j) & 3      (0..3)
 *   x[e] = (d*sc) * q - (dmin*m)
 *
 * Q3_K (110 B) | hmask[32] | qs[64] | scales[12] | d:f16 |
 *   e = 128h + 32j + l: low = (qs[32h + l] >> 2j) & 3, high = bit (e/32 = 4h+j) of hmask[l]
 *   q = low - (high ? 0 : 4)                                                        (-4..3)
 *   16 6-bit scales u (stored biased, sc = u - 32 in -32..31), s = e/16:
 *     bytes 0..7 : low nibble = u[0..7] bits 0-3,  high nibble = u[8..15] bits 0-3
 *     bytes 8..11: byte 8+k bits 2t..2t+1 = u[k + 4t] bits 4-5   (k 0..3, t 0..3)
 *   x[e] = (d*sc) * q
 *
 * Q4_K (144 B) | d:f16 | dmin:f16 | scales[12] | qs[128] |
 * Q5_K (176 B) | d:f16 | dmin:f16 | scales[12] | qh[32] | qs[128] |
 *   8 6-bit scales sc[s] and mins m[s], s = e/32:
 *     bytes 0..3 : sc[0..3] bits 0-5 | sc[4..7] bits 4-5 in bits 6-7
 *     bytes 4..7 : m[0..3]  bits 0-5 | m[4..7]  bits 4-5 in bits 6-7
 *     bytes 8..11: low nibble = sc[4..7] bits 0-3, high nibble = m[4..7] bits 0-3
 *   e = 64c + 32k + l (c 0..3, k 0..1, l 0..31): nibble = k ? qs[32c+l] >> 4 : qs[32c+l] & 15
 *   Q5_K adds bit 4 = bit (2c + k) = bit e/32 of qh[l].
 *   x[e] = (d*sc) * q - (dmin*m)
 *
 * Q6_K (210 B) | ql[128] | qh[64] | scales[16]:i8 | d:f16 |
 *   e = 128h + 32t + l (h 0..1, t 0..3, l 0..31):
 *     low 4 bits  = byte ql[64h + 32*(t%2) + l]: its low nibble if t < 2, high nibble if t >= 2
 *                   (so ql[64h + l] holds t=0 | t=2, ql[64h + 32 + l] holds t=1 | t=3)
 *     high 2 bits = (qh[32h + l] >> 2t) & 3
 *   q = value - 32 (-32..31), sc = scales[e/16] (signed)
 *   x[e] = (d*sc) * q
 *
 * Q8_K (292 B) | d:f32 | qs[256]:i8 | bsums[16]:i16 |    x[e] = d * qs[e], bsums[g] = sum qs[16g..]
 */
#include "quant/quant_internal.h"

#define GROUP_MAX_EPS 1e-15f /* ggml's threshold for an all-zero group */

/* ------------------------------------------------------------------------------------------ */
/* Field decoding shared by dequantization and the dot products                                */

static void q2K_decode(const an_block_q2_K *b, int8_t q[256]) {
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * j + l] = (int8_t)((b->qs[32 * h + l] >> (2 * j)) & 3);
}

/* The 16 biased 6-bit Q3_K scale codes (0..63; the scale is code - 32). */
static void q3K_scales(const uint8_t s[12], int u[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        u[j] = lo | hi << 4;
    }
}

static void q3K_decode(const an_block_q3_K *b, int8_t q[256]) {
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int e = 128 * h + 32 * j + l;
                int low = (b->qs[32 * h + l] >> (2 * j)) & 3;
                int high = (b->hmask[l] >> (e / 32)) & 1;
                q[e] = (int8_t)(low - (high ? 0 : 4));
            }
}

/* 6-bit scale/min pair s (0..7) of Q4_K/Q5_K. */
static void k4_scale_min(const uint8_t s[12], int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

static void q4K_decode(const uint8_t qs[128], int8_t q[256]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)(qs[32 * c + l] & 0x0F);
            q[64 * c + 32 + l] = (int8_t)(qs[32 * c + l] >> 4);
        }
}

static void q5K_decode(const an_block_q5_K *b, int8_t q[256]) {
    q4K_decode(b->qs, q);
    for (int e = 0; e < 256; e++) q[e] = (int8_t)(q[e] + (((b->qh[e % 32] >> (e / 32)) & 1) << 4));
}

static void q6K_decode(const an_block_q6_K *b, int8_t q[256]) {
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 4; t++)
            for (int l = 0; l < 32; l++) {
                uint8_t lb = b->ql[64 * h + 32 * (t & 1) + l];
                int low = t < 2 ? (lb & 0x0F) : (lb >> 4);
                int high = (b->qh[32 * h + l] >> (2 * t)) & 3;
                q[128 * h + 32 * t + l] = (int8_t)((low | high << 4) - 32);
            }
}

#define LOAD_BLOCK(type, var, base, i) \
    type var;                          \
    memcpy(&var, (const unsigned char *)(base) + (size_t)(i) * sizeof var, sizeof var)

/* ------------------------------------------------------------------------------------------ */
/* Dequantization (float association as ggml's dequantize_row_*: (d*sc) first, then *q)       */

void an_dequant_q2_K(const void *x, float *y, int64_t nb) {
    int8_t q[256];
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q2_K, b, x, i);
        const float d = an_q_h2f(b.d), dmin = an_q_h2f(b.dmin);
        q2K_decode(&b, q);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)(b.scales[s] & 0x0F);
            const float ml = dmin * (float)(b.scales[s] >> 4);
            for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q[16 * s + l] - ml;
        }
    }
}

void an_dequant_q3_K(const void *x, float *y, int64_t nb) {
    int8_t q[256];
    int u[16];
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q3_K, b, x, i);
        const float d = an_q_h2f(b.d);
        q3K_scales(b.scales, u);
        q3K_decode(&b, q);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)(u[s] - 32);
            for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q[16 * s + l];
        }
    }
}

void an_dequant_q4_K(const void *x, float *y, int64_t nb) {
    int8_t q[256];
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q4_K, b, x, i);
        const float d = an_q_h2f(b.d), dmin = an_q_h2f(b.dmin);
        q4K_decode(b.qs, q);
        for (int s = 0; s < 8; s++) {
            int sc, m;
            k4_scale_min(b.scales, s, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[32 * s + l] = dl * (float)q[32 * s + l] - ml;
        }
    }
}

void an_dequant_q5_K(const void *x, float *y, int64_t nb) {
    int8_t q[256];
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q5_K, b, x, i);
        const float d = an_q_h2f(b.d), dmin = an_q_h2f(b.dmin);
        q5K_decode(&b, q);
        for (int s = 0; s < 8; s++) {
            int sc, m;
            k4_scale_min(b.scales, s, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[32 * s + l] = dl * (float)q[32 * s + l] - ml;
        }
    }
}

void an_dequant_q6_K(const void *x, float *y, int64_t nb) {
    int8_t q[256];
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q6_K, b, x, i);
        const float d = an_q_h2f(b.d);
        q6K_decode(&b, q);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)b.scales[s];
            for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q[16 * s + l];
        }
    }
}

void an_dequant_q8_K(const void *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 256) {
        LOAD_BLOCK(an_block_q8_K, b, x, i);
        for (int e = 0; e < 256; e++) y[e] = b.d * (float)b.qs[e];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Scale searches of the reference K-quantizers. The searches themselves (which grids are
 * tried, how a candidate is judged) follow the published reference quantization of these
 * formats, and every float operation is kept in the reference order, so the chosen codes,
 * and hence the bytes we write, are pinned by tests/test_quant.c (ref_quantizers_pinned).
 * The code is ours: a grid, its codes, and the least-squares fit of the codes are separate
 * steps here. x86-64 builds have no FMA contraction in this file (quant_internal.h). */

static inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* codes[i] = clamp(round(inv * (x[i] - lo)), 0, top): x on the grid of step 1/inv from lo */
static void affine_codes(int n, const float *x, float inv, float lo, int top, uint8_t *codes) {
    for (int i = 0; i < n; i++) codes[i] = (uint8_t)clamp_int(an_q_nearest_int(inv * (x[i] - lo)), 0, top);
}

/* Σ w[i]·|a·codes[i] + b − x[i]| (mad) or Σ w[i]·(a·codes[i] + b − x[i])² */
static float affine_error(int n, const float *x, const float *w, const uint8_t *codes, float a, float b,
                          bool mad) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        float d = a * (float)codes[i] + b - x[i];
        e += w[i] * (mad ? fabsf(d) : d * d);
    }
    return e;
}

/* Fit x ≈ a·code + b, codes 0..top, b <= 0. The first candidate is the grid spanning
 * [min(x, 0), max(x)]; then for k = 0..nstep the grid of (top + rmin + k·rdelta) steps from
 * the current best offset b up to max(x) gives codes, and the weighted least-squares (a, b)
 * for those codes (b forced to 0, a refitted, when it comes out positive) replaces the best
 * fit if its weighted error is smaller, moving the origin of the grids that follow.
 * Returns a; *neg_b receives −b. scratch: n bytes. */
static float fit_scale_min(int n, int top, const float *x, const float *w, uint8_t *codes, float *neg_b,
                           uint8_t *scratch, float rmin, float rdelta, int nstep, bool mad) {
    float lo = x[0], hi = x[0];
    float sw = w[0], swx = sw * x[0]; /* Σw and Σw·x */
    for (int i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sw += w[i];
        swx += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) { /* a constant group: all codes 0, the offset carries it */
        memset(codes, 0, (size_t)n);
        *neg_b = -lo;
        return 0.f;
    }
    float inv = (float)top / (hi - lo);
    float a = 1 / inv, b = lo;
    affine_codes(n, x, inv, b, top, codes);
    float err = affine_error(n, x, w, codes, a, b, mad);
    for (int k = 0; nstep >= 1 && k <= nstep; k++) {
        affine_codes(n, x, (rmin + rdelta * (float)k + (float)top) / (hi - b), b, top, scratch);
        float sc = 0, scc = 0, scx = 0; /* Σw·c, Σw·c², Σw·c·x */
        for (int i = 0; i < n; i++) {
            const float c = (float)scratch[i];
            sc += w[i] * c;
            scc += w[i] * c * c;
            scx += w[i] * c * x[i];
        }
        const float det = sw * scc - sc * sc; /* the normal equations' determinant */
        if (!(det > 0)) continue;
        float a2 = (sw * scx - swx * sc) / det, b2 = (scc * swx - sc * scx) / det;
        if (b2 > 0) {
            b2 = 0;
            a2 = scx / scc;
        }
        const float err2 = affine_error(n, x, w, scratch, a2, b2, mad);
        if (err2 < err) {
            memcpy(codes, scratch, (size_t)n);
            err = err2;
            a = a2;
            b = b2;
        }
    }
    *neg_b = -b;
    return a;
}

/* The element of largest magnitude (with its sign) and that magnitude. */
static float peak(int n, const float *x, float *mag) {
    float p = 0, m = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > m) {
            m = fabsf(x[i]);
            p = x[i];
        }
    *mag = m;
    return p;
}

/* Symmetric codes of x on the grid of step 1/inv, clamped to −top..top−1, and the x²-weighted
 * sums Σw·x·c and Σw·c² a least-squares scale needs. codes (stored + bias) if non-NULL. */
static void sym_codes(int n, int top, const float *x, float inv, int8_t *codes, int bias, float *sxc,
                      float *scc) {
    float s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        const int c = clamp_int(an_q_nearest_int(inv * x[i]), -top, top - 1);
        if (codes) codes[i] = (int8_t)(c + bias);
        const float w = x[i] * x[i];
        s1 += w * x[i] * (float)c;
        s2 += w * (float)c * (float)c;
    }
    *sxc = s1;
    *scc = s2;
}

/* Symmetric fit, codes −top..top−1 stored + top, weights x²: the grid that puts the peak
 * element at −top, then grids of top + 0.1·k steps (k = ±1..±9); a grid wins when its
 * least-squares fit explains more, i.e. (Σw·x·c)² / Σw·c² is larger. Returns the scale.
 * Q6_K (top 32). */
static float fit_scale_sym(int n, int top, const float *x, int8_t *codes) {
    float mag;
    const float pk = peak(n, x, &mag);
    if (mag < GROUP_MAX_EPS) {
        memset(codes, 0, (size_t)n);
        return 0.f;
    }
    float sxc, scc;
    sym_codes(n, top, x, (float)(-top) / pk, codes, top, &sxc, &scc);
    float scale = scc != 0.f ? sxc / scc : 0.0f;
    float explained = scale * sxc;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        const float inv = -((float)top + 0.1f * (float)k) / pk;
        sym_codes(n, top, x, inv, NULL, 0, &sxc, &scc);
        if (scc > 0 && sxc * sxc > explained * scc) {
            sym_codes(n, top, x, inv, codes, top, &sxc, &scc);
            scale = sxc / scc;
            explained = scale * sxc;
        }
    }
    return scale;
}

/* Q3_K's symmetric fit (codes −top..top−1 stored + top, weights x²): the peak-anchored grid,
 * then up to 5 sweeps that move one code at a time to where the least-squares scale of the
 * other codes puts it, when that raises (Σw·x·c)² / Σw·c². Returns the scale. */
static float fit_scale_q3(int n, int top, const float *x, int8_t *codes) {
    float mag;
    const float pk = peak(n, x, &mag);
    if (mag < GROUP_MAX_EPS) {
        memset(codes, 0, (size_t)n);
        return 0.f;
    }
    float sxc, scc;
    sym_codes(n, top, x, (float)(-top) / pk, codes, 0, &sxc, &scc);
    for (int sweep = 0; sweep < 5; sweep++) {
        bool moved = false;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float sxc_i = sxc - w * x[i] * (float)codes[i]; /* the sums without element i */
            if (!(sxc_i > 0)) continue;
            float scc_i = scc - w * (float)codes[i] * (float)codes[i];
            const int c = clamp_int(an_q_nearest_int(x[i] * scc_i / sxc_i), -top, top - 1);
            if (c == codes[i]) continue;
            sxc_i += w * x[i] * (float)c;
            scc_i += w * (float)c * (float)c;
            if (scc_i > 0 && sxc_i * sxc_i * scc > sxc * sxc * scc_i) {
                codes[i] = (int8_t)c;
                sxc = sxc_i;
                scc = scc_i;
                moved = true;
            }
        }
        if (!moved) break;
    }
    for (int i = 0; i < n; i++) codes[i] = (int8_t)(codes[i] + top);
    return scc > 0.0f ? sxc / scc : 0.0f;
}

/* Pack 2-bit codes L[256] (0..3) into Q2_K/Q3_K qs[64] (layout in the header comment). */
static void pack_2bit(const uint8_t L[256], uint8_t qs[64]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
        }
}

/* Pack 8 6-bit (sc, m) pairs into the 12-byte Q4_K/Q5_K layout. */
static void pack_k4_scales(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0x0F) | (lm[j] & 0x0F) << 4);
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Reference quantizers                                                                        */

void an_quantize_q2_K(const float *x, void *y, int64_t nb) {
    uint8_t L[256], Laux[16];
    float w[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q2_K b;
        memset(&b, 0, sizeof b);
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; j++) b.scales[j] = (uint8_t)an_q_nearest_int(iscale * scales[j]);
            b.d = an_f32_to_f16(max_scale / q4scale);
        } else {
            b.d = an_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < 16; j++) b.scales[j] |= (uint8_t)((unsigned)an_q_nearest_int(iscale * mins[j]) << 4);
            b.dmin = an_f32_to_f16(max_min / q4scale);
        } else {
            b.dmin = an_f32_to_f16(0.f);
        }
        /* Requantize against the scales as stored (fp16 d, 4-bit codes). */
        for (int j = 0; j < 16; j++) {
            const float d = an_q_h2f(b.d) * (float)(b.scales[j] & 0x0F);
            if (d == 0.f) continue;
            const float dm = an_q_h2f(b.dmin) * (float)(b.scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clamp_int(an_q_nearest_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, b.qs);
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

void an_quantize_q3_K(const float *x, void *y, int64_t nb) {
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q3_K b;
        memset(&b, 0, sizeof b);
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > amax) { amax = a; max_scale = scales[j]; }
        }
        if (max_scale != 0.f) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int u = clamp_int(an_q_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) b.scales[j] = (uint8_t)(u & 0x0F);
                else b.scales[j - 8] |= (uint8_t)((u & 0x0F) << 4);
                b.scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
            }
            b.d = an_f32_to_f16(1 / iscale);
        } else {
            b.d = an_f32_to_f16(0.f);
        }
        int u[16];
        q3K_scales(b.scales, u);
        for (int j = 0; j < 16; j++) {
            const float d = an_q_h2f(b.d) * (float)(u[j] - 32);
            if (d == 0.f) continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clamp_int(an_q_nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        /* codes 0..7: bit 2 goes to hmask (element e -> hmask[e%32] bit e/32), bits 0-1 to qs */
        uint8_t low[256];
        for (int e = 0; e < 256; e++) {
            int c = L[e];
            if (c > 3) {
                b.hmask[e % 32] |= (uint8_t)(1u << (e / 32));
                c -= 4;
            }
            low[e] = (uint8_t)c;
        }
        pack_2bit(low, b.qs);
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* Q4_K and Q5_K share everything but the code width (nmax 15 / 31) and the search grid. */
static void quantize_k4(const float *x, int nmax, float rmin, int nstep, uint8_t scales_out[12],
                        an_f16 *d_out, an_f16 *dmin_out, uint8_t L[256]) {
    uint8_t Laux[32];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        /* ggml stores the int into a uint8_t before MIN(63, .) (wraps if negative) */
        uint8_t a = (uint8_t)an_q_nearest_int(inv_scale * scales[j]);
        uint8_t m = (uint8_t)an_q_nearest_int(inv_min * mins[j]);
        ls[j] = a < 63 ? a : 63;
        lm[j] = m < 63 ? m : 63;
    }
    pack_k4_scales(ls, lm, scales_out);
    *d_out = an_f32_to_f16(max_scale / 63.f);
    *dmin_out = an_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k4_scale_min(scales_out, j, &sc, &m);
        const float d = an_q_h2f(*d_out) * (float)sc;
        if (d == 0.f) continue;
        const float dm = an_q_h2f(*dmin_out) * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clamp_int(an_q_nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void an_quantize_q4_K(const float *x, void *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q4_K b;
        memset(&b, 0, sizeof b);
        quantize_k4(x, 15, -1.f, 20, b.scales, &b.d, &b.dmin, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b.qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

void an_quantize_q5_K(const float *x, void *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q5_K b;
        memset(&b, 0, sizeof b);
        quantize_k4(x, 31, -0.5f, 15, b.scales, &b.d, &b.dmin, L);
        for (int e = 0; e < 256; e++)
            if (L[e] > 15) b.qh[e % 32] |= (uint8_t)(1u << (e / 32));
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b.qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0x0F) | (L[64 * c + 32 + l] & 0x0F) << 4);
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

void an_quantize_q6_K(const float *x, void *y, int64_t nb) {
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q6_K b;
        memset(&b, 0, sizeof b);
        float max_scale = 0, max_abs_scale = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > max_abs_scale) { max_abs_scale = a; max_scale = scales[j]; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) { /* all-zero super-block: zero bytes, d = +0 */
            memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
            continue;
        }
        /* The scales come out negative (codes map the max element to -32); iscale flips them
         * so the largest becomes -128 and d is positive. */
        float iscale = -128.f / max_scale;
        b.d = an_f32_to_f16(1 / iscale);
        for (int j = 0; j < 16; j++) b.scales[j] = (int8_t)clamp_int(an_q_nearest_int(iscale * scales[j]), -128, 127);
        for (int j = 0; j < 16; j++) {
            const float d = an_q_h2f(b.d) * (float)b.scales[j];
            if (d == 0.f) continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clamp_int(an_q_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *p = L + 128 * h + l;
                b.ql[64 * h + l] = (uint8_t)((p[0] & 0x0F) | (p[64] & 0x0F) << 4);
                b.ql[64 * h + 32 + l] = (uint8_t)((p[32] & 0x0F) | (p[96] & 0x0F) << 4);
                b.qh[32 * h + l] = (uint8_t)((p[0] >> 4) | (p[32] >> 4) << 2 | (p[64] >> 4) << 4 | (p[96] >> 4) << 6);
            }
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* Q8_K (quantize_row_q8_K_ref): iscale = -127/max where max is the signed element of largest
 * magnitude (first wins), so d = 1/iscale is NEGATIVE when max > 0 and every q has the
 * opposite sign of its x; q = min(127, round_half_even(iscale*x)); d kept in f32. For an
 * all-zero block ggml leaves bsums untouched; we zero them so the block is fully defined. */
void an_quantize_q8_K(const float *x, void *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        an_block_q8_K b;
        memset(&b, 0, sizeof b);
        float max = 0, amax = 0;
        for (int e = 0; e < 256; e++) {
            float ax = fabsf(x[e]);
            if (ax > amax) { amax = ax; max = x[e]; }
        }
        if (amax != 0.f) {
            const float iscale = -127.f / max;
            for (int e = 0; e < 256; e++) {
                int v = an_q_nearest_int(iscale * x[e]);
                b.qs[e] = (int8_t)clamp_int(v, -128, 127);
            }
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b.qs[16 * g + l];
                b.bsums[g] = (int16_t)sum;
            }
            b.d = 1 / iscale;
        }
        memcpy((unsigned char *)y + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Dot products with Q8_K: exact integer sums per sub-block weighted by the integer scales;
 * the min terms from the activation's bsums; one float combination per super-block
 * (d = fp16(x.d) * y.d etc., as ggml's generic code); super-blocks accumulated in double. */

static int dot16(const int8_t *a, const int8_t *b) {
    int s = 0;
    for (int l = 0; l < 16; l++) s += a[l] * b[l];
    return s;
}

double an_dot_q2_K(const void *w, const void *a, int64_t nb) {
    int8_t q[256];
    double sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        LOAD_BLOCK(an_block_q2_K, x, w, i);
        LOAD_BLOCK(an_block_q8_K, y, a, i);
        q2K_decode(&x, q);
        int summs = 0, isum = 0;
        for (int s = 0; s < 16; s++) {
            summs += y.bsums[s] * (x.scales[s] >> 4);
            isum += (x.scales[s] & 0x0F) * dot16(q + 16 * s, y.qs + 16 * s);
        }
        const float dall = y.d * an_q_h2f(x.d);
        const float dmin = y.d * an_q_h2f(x.dmin);
        sum += (double)(dall * (float)isum - dmin * (float)summs);
    }
    return sum;
}

double an_dot_q3_K(const void *w, const void *a, int64_t nb) {
    int8_t q[256];
    int u[16];
    double sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        LOAD_BLOCK(an_block_q3_K, x, w, i);
        LOAD_BLOCK(an_block_q8_K, y, a, i);
        q3K_decode(&x, q);
        q3K_scales(x.scales, u);
        int isum = 0;
        for (int s = 0; s < 16; s++) isum += (u[s] - 32) * dot16(q + 16 * s, y.qs + 16 * s);
        const float d = an_q_h2f(x.d) * y.d;
        sum += (double)(d * (float)isum);
    }
    return sum;
}

static double dot_k4(const uint8_t scales[12], an_f16 xd, an_f16 xdmin, const int8_t q[256],
                     const an_block_q8_K *y) {
    int isum = 0, summ = 0;
    for (int s = 0; s < 8; s++) {
        int sc, m;
        k4_scale_min(scales, s, &sc, &m);
        isum += sc * (dot16(q + 32 * s, y->qs + 32 * s) + dot16(q + 32 * s + 16, y->qs + 32 * s + 16));
        summ += m * (y->bsums[2 * s] + y->bsums[2 * s + 1]);
    }
    const float d = an_q_h2f(xd) * y->d;
    const float dmin = an_q_h2f(xdmin) * y->d;
    return (double)(d * (float)isum - dmin * (float)summ);
}

double an_dot_q4_K(const void *w, const void *a, int64_t nb) {
    int8_t q[256];
    double sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        LOAD_BLOCK(an_block_q4_K, x, w, i);
        LOAD_BLOCK(an_block_q8_K, y, a, i);
        q4K_decode(x.qs, q);
        sum += dot_k4(x.scales, x.d, x.dmin, q, &y);
    }
    return sum;
}

double an_dot_q5_K(const void *w, const void *a, int64_t nb) {
    int8_t q[256];
    double sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        LOAD_BLOCK(an_block_q5_K, x, w, i);
        LOAD_BLOCK(an_block_q8_K, y, a, i);
        q5K_decode(&x, q);
        sum += dot_k4(x.scales, x.d, x.dmin, q, &y);
    }
    return sum;
}

double an_dot_q6_K(const void *w, const void *a, int64_t nb) {
    int8_t q[256];
    double sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        LOAD_BLOCK(an_block_q6_K, x, w, i);
        LOAD_BLOCK(an_block_q8_K, y, a, i);
        q6K_decode(&x, q);
        int isum = 0;
        for (int s = 0; s < 16; s++) isum += x.scales[s] * dot16(q + 16 * s, y.qs + 16 * s);
        const float d = an_q_h2f(x.d) * y.d;
        sum += (double)(d * (float)isum);
    }
    return sum;
}
