/* attn_avx512.c — AVX-512 blocked attention (one key block of a tile, attn.h), vector exp and
 * SwiGLU. A zmm holds 16 queries of the tile (lanes = queries), so the softmax statistics are
 * lane-wise. Register blocks: S = Q·Kᵀ as 32 queries x 8 keys (16 accumulators; per d two Q
 * loads and eight K broadcasts), O += P·V as 32 queries x 8 head dims. */
#include <immintrin.h>
#include <stdint.h>

#include "backends/cpu/attn.h"

#define AI static inline __attribute__((always_inline))

/* exp(x), attn.h's algorithm; VSCALEFPS applies 2^n with correct overflow and underflow. */
AI __m512 exp16(__m512 x) {
    /* max/min return the second operand when either is NaN: keep x second */
    x = _mm512_max_ps(_mm512_set1_ps(AN_EXP_XMIN), x);
    x = _mm512_min_ps(_mm512_set1_ps(AN_EXP_XMAX), x);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(AN_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(AN_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(AN_EXP_LN2_LO), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(AN_EXP_C6), r, _mm512_set1_ps(AN_EXP_C5));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(AN_EXP_C4));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(AN_EXP_C3));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(AN_EXP_C2));
    const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

void an_exp_row_avx512(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

AI __m512 silu_mul16(__m512 g, __m512 u) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

void an_swiglu_avx512(const float *g, const float *u, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, silu_mul16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, silu_mul16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

void an_attn_f16_rows_avx512(const uint16_t *src, int64_t stride, int rows, int hd, float *dst) {
    for (int j = 0; j < rows; j++, src += stride, dst += hd) {
        _mm_prefetch((const char *)(src + 4 * stride), _MM_HINT_T0);
        int d = 0;
        for (; d + 16 <= hd; d += 16)
            _mm512_storeu_ps(dst + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + d))));
        if (d < hd) {
            const __mmask16 m = (__mmask16)((1u << (hd - d)) - 1);
            _mm512_mask_storeu_ps(dst + d, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + d)));
        }
    }
}

void an_attn_round_f16_avx512(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++) y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* ---- S = Q·Kᵀ: st[j][r] for keys j < kbn, NR zmm of queries x NK keys ----------------------
 * Each score is summed in chunks of AN_ATTN_DC head dims (a chain of DC FMAs from zero), the
 * chunk sums added in order: a 64-term FMA chain loses enough in rounding to move a near-tie in
 * the q8_0 models (tests/test_model.c) that pairwise-like sums (the reference, llama.cpp) keep. */
AI void qk_tile(const an_attn_blk *b, int r0, int j, const int NR, const int NK) {
    const int rp = b->rp;
    const float *qt = b->qt + r0, *k = b->k + (int64_t)j * b->ldk;
    float *st = b->st + (int64_t)j * rp + r0;
    for (int d0 = 0; d0 < b->hd; d0 += AN_ATTN_DC) {
        const int d1 = d0 + AN_ATTN_DC < b->hd ? d0 + AN_ATTN_DC : b->hd;
        __m512 acc[2][8];
#pragma GCC unroll 8
        for (int u = 0; u < NK; u++)
#pragma GCC unroll 2
            for (int i = 0; i < NR; i++) acc[i][u] = _mm512_setzero_ps();
        for (int d = d0; d < d1; d++) {
            __m512 q[2];
#pragma GCC unroll 2
            for (int i = 0; i < NR; i++) q[i] = _mm512_loadu_ps(qt + (int64_t)d * rp + 16 * i);
#pragma GCC unroll 8
            for (int u = 0; u < NK; u++) {
                const __m512 kv = _mm512_set1_ps(k[(int64_t)u * b->ldk + d]);
#pragma GCC unroll 2
                for (int i = 0; i < NR; i++) acc[i][u] = _mm512_fmadd_ps(q[i], kv, acc[i][u]);
            }
        }
#pragma GCC unroll 8
        for (int u = 0; u < NK; u++)
#pragma GCC unroll 2
            for (int i = 0; i < NR; i++) {
                float *o = st + (int64_t)u * rp + 16 * i;
                _mm512_storeu_ps(o, d0 ? _mm512_add_ps(_mm512_loadu_ps(o), acc[i][u]) : acc[i][u]);
            }
    }
}

AI void qk_rows(const an_attn_blk *b, int r0, const int NR) {
    int j = 0;
    for (; j + 8 <= b->kbn; j += 8) qk_tile(b, r0, j, NR, 8);
    for (; j < b->kbn; j++) qk_tile(b, r0, j, NR, 1);
}

/* ---- O = O·alpha + P·V: NR zmm of queries x ND head dims --------------------------------- */
AI void pv_tile(const an_attn_blk *b, int r0, int d0, const int NR, const int ND) {
    const int rp = b->rp;
    float *ot = b->ot + r0;
    const float *v = b->v + d0;
    __m512 acc[2][8], p[2];
#pragma GCC unroll 2
    for (int i = 0; i < NR; i++) {
        const __m512 al = _mm512_loadu_ps(b->alpha + r0 + 16 * i);
#pragma GCC unroll 8
        for (int e = 0; e < ND; e++) acc[i][e] = _mm512_mul_ps(_mm512_loadu_ps(ot + (int64_t)(d0 + e) * rp + 16 * i), al);
    }
    for (int j = 0; j < b->kbn; j++) {
#pragma GCC unroll 2
        for (int i = 0; i < NR; i++) p[i] = _mm512_loadu_ps(b->st + (int64_t)j * rp + r0 + 16 * i);
#pragma GCC unroll 8
        for (int e = 0; e < ND; e++) {
            const __m512 vv = _mm512_set1_ps(v[(int64_t)j * b->ldv + e]);
#pragma GCC unroll 2
            for (int i = 0; i < NR; i++) acc[i][e] = _mm512_fmadd_ps(p[i], vv, acc[i][e]);
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 8
        for (int e = 0; e < ND; e++) _mm512_storeu_ps(ot + (int64_t)(d0 + e) * rp + 16 * i, acc[i][e]);
}

AI void pv_rows(const an_attn_blk *b, int r0, const int NR) {
    int d = 0;
    for (; d + 8 <= b->hd; d += 8) pv_tile(b, r0, d, NR, 8);
    for (; d < b->hd; d++) pv_tile(b, r0, d, NR, 1);
}

/* ---- scale, causal mask, online softmax update for 16 queries ------------------------------ */
static void softmax16(const an_attn_blk *b, int r0) {
    const int rp = b->rp;
    const __m512 scale = _mm512_set1_ps(b->scale), ninf = _mm512_set1_ps(-__builtin_inff());
    const __m512 lim = _mm512_loadu_ps(b->lim + r0);
    float *st = b->st + r0;
    __m512 mx = ninf;
    for (int j = 0; j < b->kbn; j++) {
        __m512 s = _mm512_mul_ps(_mm512_loadu_ps(st + (int64_t)j * rp), scale);
        if (b->mask) {
            const __mmask16 hid = _mm512_cmp_ps_mask(_mm512_set1_ps((float)(b->j0 + j)), lim, _CMP_GT_OQ);
            s = _mm512_mask_mov_ps(s, hid, ninf);
        }
        _mm512_storeu_ps(st + (int64_t)j * rp, s);
        mx = _mm512_max_ps(mx, s);
    }
    const __m512 m0 = _mm512_loadu_ps(b->m + r0), m1 = _mm512_max_ps(m0, mx);
    const __m512 alpha = exp16(_mm512_sub_ps(m0, m1)); /* m0 = -inf on the first block: 0 */
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < b->kbn; j++) {
        const __m512 p = exp16(_mm512_sub_ps(_mm512_loadu_ps(st + (int64_t)j * rp), m1));
        _mm512_storeu_ps(st + (int64_t)j * rp, p);
        sum = _mm512_add_ps(sum, p);
    }
    _mm512_storeu_ps(b->l + r0, _mm512_fmadd_ps(_mm512_loadu_ps(b->l + r0), alpha, sum));
    _mm512_storeu_ps(b->m + r0, m1);
    _mm512_storeu_ps(b->alpha + r0, alpha);
}

void an_attn_block_avx512(const an_attn_blk *b) {
    const int rp = b->rp;
    int r = 0;
    for (; r + 32 <= rp; r += 32) qk_rows(b, r, 2);
    for (; r < rp; r += 16) qk_rows(b, r, 1);
    for (r = 0; r < rp; r += 16) softmax16(b, r);
    for (r = 0; r + 32 <= rp; r += 32) pv_rows(b, r, 2);
    for (; r < rp; r += 16) pv_rows(b, r, 1);
}
