/* attn.h — internal to the CPU backend: the per-ISA pieces of the blocked attention
 * (an_cpu_attention, ops.c), the vector exp they share with an_swiglu, and the portable scalar
 * exp every ISA uses for its tails.
 *
 * Layout of one attention tile (ops.c builds it): the tile's R queries are padded to rp rows
 * (a multiple of AN_ATTN_LANES), and every per-query array is "transposed" so that a vector's
 * lanes are queries: qt[d][rp] (q, rounded to f16 with an f16 cache), ot[d][rp] (the unnormalized
 * output), st[j][rp] (scores, then probabilities, of the block's keys), m/l/alpha[rp] (running
 * max, running sum, this block's rescale factor), lim[rp] (the last key position each query may
 * see, as a float; padding rows get FLT_MAX). Row max, sum and rescale are then lane-wise vector
 * operations; no horizontal reductions anywhere. */
#ifndef AN_CPU_ATTN_H
#define AN_CPU_ATTN_H

#include <stdint.h>
#include <string.h>

#define AN_ATTN_LANES 16 /* rp is a multiple of this (one zmm, two ymm) */
#ifndef AN_ATTN_DC
#define AN_ATTN_DC 16 /* head dims per partial dot-product chain in S = Q·Kᵀ */
#endif
#ifndef AN_ATTN_KB
#define AN_ATTN_KB 64 /* keys per block (bench/attn_bench.c: 32 / 64 / 128) */
#endif

typedef struct an_attn_blk {
    const float *qt;      /* [hd][rp] */
    float *ot;            /* [hd][rp], rescaled and accumulated in place */
    float *st;            /* [kbn][rp] scratch */
    float *m, *l, *alpha; /* [rp] */
    const float *lim;     /* [rp] */
    const float *k, *v;   /* key / value rows j0 .. j0+kbn-1, f32, row strides ldk / ldv */
    int64_t ldk, ldv;
    int hd, rp, j0, kbn;
    int mask;             /* some query of the tile may not see some key of the block */
    float scale;
} an_attn_blk;

/* One key block: S = scale * Q·Kᵀ, causal mask (key j hidden from row r when j > lim[r]),
 * m' = max(m, max_j S), alpha = exp(m - m'), P = exp(S - m'), l = l*alpha + Σ_j P,
 * ot = ot*alpha + P·V, m = m'. Every row must see at least one key of the first block. */
typedef void (*an_attn_block_fn)(const an_attn_blk *b);
void an_attn_block_scalar(const an_attn_blk *b);

/* dst[j][hd] = f32(src[j * stride .. + hd]), j < rows: one key or value block, with prefetch
 * of the rows that follow. */
typedef void (*an_attn_f16_rows_fn)(const uint16_t *src, int64_t stride, int rows, int hd, float *dst);
#if defined(__x86_64__)
void an_attn_f16_rows_avx2(const uint16_t *src, int64_t stride, int rows, int hd, float *dst);
void an_attn_f16_rows_avx512(const uint16_t *src, int64_t stride, int rows, int hd, float *dst);
#endif

/* y[i] = f32(f16(x[i])) (round to nearest even, as an_round_f16), i < n; y may alias x. */
typedef void (*an_attn_round_f16_fn)(const float *x, float *y, int n);
#if defined(__x86_64__)
void an_attn_round_f16_avx2(const float *x, float *y, int n);
void an_attn_round_f16_avx512(const float *x, float *y, int n);
#endif

/* y[i] = exp(x[i]) (an_exp_approx's algorithm); silu(g) * u. y may alias x / g. */
void an_exp_row_scalar(const float *x, float *y, int64_t n);
void an_swiglu_scalar(const float *g, const float *u, float *y, int64_t n);

#if defined(__x86_64__)
void an_attn_block_avx2(const an_attn_blk *b);
void an_attn_block_avx512(const an_attn_blk *b);
void an_exp_row_avx2(const float *x, float *y, int64_t n);
void an_exp_row_avx512(const float *x, float *y, int64_t n);
void an_swiglu_avx2(const float *g, const float *u, float *y, int64_t n);
void an_swiglu_avx512(const float *g, const float *u, float *y, int64_t n);
#endif

/* ---- exp(x) = 2^n · p(r) -------------------------------------------------------------------
 * n = round(x·log2 e), r = x - n·ln2 in two steps (Cody-Waite: AN_EXP_LN2_HI has 9 significant
 * bits, so n·HI is exact), |r| <= ln2/2, p(r) = 1 + r + r²·(C2 + C3 r + C4 r² + C5 r³ + C6 r⁴)
 * interpolating exp at the Chebyshev nodes of [-ln2/2, ln2/2] (fitted for this file; the
 * polynomial alone is within 1.1e-8 of exp). x is first clamped to [-110, 89]: below -110 the
 * result is 0 (as for -inf), above 89 it is +inf, NaN stays NaN. 2^n is applied as two
 * power-of-two factors (each a normal float) so that results in the subnormal range and up to
 * FLT_MAX come out right. Max relative error over [-87, 88]: tests/test_attention.c measures
 * it for every ISA (bound 2^-22, 2 ulp at 1.0). */
#define AN_EXP_LOG2E 1.44269504088896341f
#define AN_EXP_LN2_HI 0.693359375f
#define AN_EXP_LN2_LO (-2.12194440e-4f)
#define AN_EXP_C2 0.5f
#define AN_EXP_C3 0.16666577025597988f
#define AN_EXP_C4 0.041666554662050534f
#define AN_EXP_C5 0.0083631730745137109f
#define AN_EXP_C6 0.0013926176119935579f
#define AN_EXP_XMIN (-110.0f)
#define AN_EXP_XMAX 89.0f

static inline float an_exp_pow2i(int32_t e) { /* 2^e, -126 <= e <= 127 */
    uint32_t u = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float an_exp_approx(float x) {
    if (x != x) return x;
    if (x < AN_EXP_XMIN) x = AN_EXP_XMIN;
    if (x > AN_EXP_XMAX) x = AN_EXP_XMAX;
    /* round to nearest without libm: |x·log2e| < 2^22 */
    const float t = x * AN_EXP_LOG2E;
    const int32_t n = (int32_t)(t < 0 ? t - 0.5f : t + 0.5f);
    const float nf = (float)n;
    const float r = (x - nf * AN_EXP_LN2_HI) - nf * AN_EXP_LN2_LO;
    const float q = AN_EXP_C2 + r * (AN_EXP_C3 + r * (AN_EXP_C4 + r * (AN_EXP_C5 + r * AN_EXP_C6)));
    const float p = 1.0f + r + (r * r) * q;
    const int32_t n1 = n / 2, n2 = n - n1; /* n in [-159, 128]: both halves in [-80, 64] */
    return p * an_exp_pow2i(n1) * an_exp_pow2i(n2);
}

#endif
