/* attn_avx2.c — AVX2+FMA blocked attention (one key block of a tile, attn.h), vector exp and
 * SwiGLU. A ymm holds 8 queries (lanes = queries); the tile's rows are padded to a multiple of
 * 16, so the kernels always take queries two ymm at a time. Register blocks: S = Q·Kᵀ as 16
 * queries x 6 keys (12 accumulators), O += P·V as 16 queries x 4 head dims. */
#include <immintrin.h>
#include <stdint.h>

#include "backends/cpu/attn.h"

#define AI static inline __attribute__((always_inline))

/* exp(x), attn.h's algorithm; 2^n as two normal power-of-two factors. */
AI __m256 exp8(__m256 x) {
    /* max/min return the second operand when either is NaN: keep x second */
    x = _mm256_max_ps(_mm256_set1_ps(AN_EXP_XMIN), x);
    x = _mm256_min_ps(_mm256_set1_ps(AN_EXP_XMAX), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(AN_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(AN_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(AN_EXP_LN2_LO), r);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(AN_EXP_C6), r, _mm256_set1_ps(AN_EXP_C5));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(AN_EXP_C4));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(AN_EXP_C3));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(AN_EXP_C2));
    const __m256 p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), q, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i ni = _mm256_cvtps_epi32(n); /* [-159, 128]; NaN lanes give garbage, p is NaN */
    const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

void an_exp_row_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = an_exp_approx(x[i]);
}

AI __m256 silu_mul8(__m256 g, __m256 u) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void an_swiglu_avx2(const float *g, const float *u, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    for (; i < n; i++) y[i] = g[i] / (1.0f + an_exp_approx(-g[i])) * u[i];
}

void an_attn_f16_rows_avx2(const uint16_t *src, int64_t stride, int rows, int hd, float *dst) {
    for (int j = 0; j < rows; j++, src += stride, dst += hd) {
        _mm_prefetch((const char *)(src + 4 * stride), _MM_HINT_T0);
        int d = 0;
        for (; d + 8 <= hd; d += 8)
            _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + d))));
        for (; d < hd; d++) dst[d] = _cvtsh_ss(src[d]);
    }
}

void an_attn_round_f16_avx2(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++) y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* ---- S = Q·Kᵀ: st[j][r] for keys j < kbn, 16 queries x NK keys, in chunks of AN_ATTN_DC
 * head dims (attn_avx512.c says why) ------------------------------------------------------- */
AI void qk_tile(const an_attn_blk *b, int r0, int j, const int NK) {
    const int rp = b->rp;
    const float *qt = b->qt + r0, *k = b->k + (int64_t)j * b->ldk;
    float *st = b->st + (int64_t)j * rp + r0;
    for (int d0 = 0; d0 < b->hd; d0 += AN_ATTN_DC) {
        const int d1 = d0 + AN_ATTN_DC < b->hd ? d0 + AN_ATTN_DC : b->hd;
        __m256 acc[2][6];
#pragma GCC unroll 6
        for (int u = 0; u < NK; u++) acc[0][u] = acc[1][u] = _mm256_setzero_ps();
        for (int d = d0; d < d1; d++) {
            const __m256 q0 = _mm256_loadu_ps(qt + (int64_t)d * rp), q1 = _mm256_loadu_ps(qt + (int64_t)d * rp + 8);
#pragma GCC unroll 6
            for (int u = 0; u < NK; u++) {
                const __m256 kv = _mm256_broadcast_ss(k + (int64_t)u * b->ldk + d);
                acc[0][u] = _mm256_fmadd_ps(q0, kv, acc[0][u]);
                acc[1][u] = _mm256_fmadd_ps(q1, kv, acc[1][u]);
            }
        }
#pragma GCC unroll 6
        for (int u = 0; u < NK; u++) {
            float *o = st + (int64_t)u * rp;
            _mm256_storeu_ps(o, d0 ? _mm256_add_ps(_mm256_loadu_ps(o), acc[0][u]) : acc[0][u]);
            _mm256_storeu_ps(o + 8, d0 ? _mm256_add_ps(_mm256_loadu_ps(o + 8), acc[1][u]) : acc[1][u]);
        }
    }
}

/* ---- O = O·alpha + P·V: 16 queries x ND head dims ----------------------------------------- */
AI void pv_tile(const an_attn_blk *b, int r0, int d0, const int ND) {
    const int rp = b->rp;
    float *ot = b->ot + r0;
    const float *v = b->v + d0;
    const __m256 al0 = _mm256_loadu_ps(b->alpha + r0), al1 = _mm256_loadu_ps(b->alpha + r0 + 8);
    __m256 acc[2][4];
#pragma GCC unroll 4
    for (int e = 0; e < ND; e++) {
        acc[0][e] = _mm256_mul_ps(_mm256_loadu_ps(ot + (int64_t)(d0 + e) * rp), al0);
        acc[1][e] = _mm256_mul_ps(_mm256_loadu_ps(ot + (int64_t)(d0 + e) * rp + 8), al1);
    }
    for (int j = 0; j < b->kbn; j++) {
        const __m256 p0 = _mm256_loadu_ps(b->st + (int64_t)j * rp + r0);
        const __m256 p1 = _mm256_loadu_ps(b->st + (int64_t)j * rp + r0 + 8);
#pragma GCC unroll 4
        for (int e = 0; e < ND; e++) {
            const __m256 vv = _mm256_broadcast_ss(v + (int64_t)j * b->ldv + e);
            acc[0][e] = _mm256_fmadd_ps(p0, vv, acc[0][e]);
            acc[1][e] = _mm256_fmadd_ps(p1, vv, acc[1][e]);
        }
    }
#pragma GCC unroll 4
    for (int e = 0; e < ND; e++) {
        _mm256_storeu_ps(ot + (int64_t)(d0 + e) * rp, acc[0][e]);
        _mm256_storeu_ps(ot + (int64_t)(d0 + e) * rp + 8, acc[1][e]);
    }
}

/* ---- scale, causal mask, online softmax update for 8 queries ------------------------------- */
static void softmax8(const an_attn_blk *b, int r0) {
    const int rp = b->rp;
    const __m256 scale = _mm256_set1_ps(b->scale), ninf = _mm256_set1_ps(-__builtin_inff());
    const __m256 lim = _mm256_loadu_ps(b->lim + r0);
    float *st = b->st + r0;
    __m256 mx = ninf;
    for (int j = 0; j < b->kbn; j++) {
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(st + (int64_t)j * rp), scale);
        if (b->mask) s = _mm256_blendv_ps(s, ninf, _mm256_cmp_ps(_mm256_set1_ps((float)(b->j0 + j)), lim, _CMP_GT_OQ));
        _mm256_storeu_ps(st + (int64_t)j * rp, s);
        mx = _mm256_max_ps(mx, s);
    }
    const __m256 m0 = _mm256_loadu_ps(b->m + r0), m1 = _mm256_max_ps(m0, mx);
    const __m256 alpha = exp8(_mm256_sub_ps(m0, m1)); /* m0 = -inf on the first block: 0 */
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < b->kbn; j++) {
        const __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(st + (int64_t)j * rp), m1));
        _mm256_storeu_ps(st + (int64_t)j * rp, p);
        sum = _mm256_add_ps(sum, p);
    }
    _mm256_storeu_ps(b->l + r0, _mm256_fmadd_ps(_mm256_loadu_ps(b->l + r0), alpha, sum));
    _mm256_storeu_ps(b->m + r0, m1);
    _mm256_storeu_ps(b->alpha + r0, alpha);
}

void an_attn_block_avx2(const an_attn_blk *b) {
    const int rp = b->rp;
    for (int r = 0; r < rp; r += 16) {
        int j = 0;
        for (; j + 6 <= b->kbn; j += 6) qk_tile(b, r, j, 6);
        for (; j < b->kbn; j++) qk_tile(b, r, j, 1);
    }
    for (int r = 0; r < rp; r += 8) softmax8(b, r);
    for (int r = 0; r < rp; r += 16) {
        int d = 0;
        for (; d + 4 <= b->hd; d += 4) pv_tile(b, r, d, 4);
        for (; d < b->hd; d++) pv_tile(b, r, d, 1);
    }
}
