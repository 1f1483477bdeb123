/* amx_gemm_amx.c — the AMX tile kernels (TDPBF16PS, TDPBSSD) and the AVX-512 activation
 * conversions they read. Compiled with -mamx-tile -mamx-int8 -mamx-bf16 and AVX-512; called
 * only after amx.c has obtained XTILEDATA permission. */
#include "backends/amx/amx_impl.h"

#include <immintrin.h>
#include <string.h>

/* The 64-byte palette-1 tile configuration (Intel SDM, LDTILECFG). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

void an_amx_k_config(int kind, int kb) {
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    if (kind == AMX_KIND_I8) { /* one weight block of kb k per step: A 16 x kb, B kb/4 x 64 */
        cfg.colsb[4] = cfg.colsb[5] = (uint16_t)kb;
        cfg.rows[6] = cfg.rows[7] = (uint8_t)(kb / 4);
    }
    /* GCC does not model LDTILECFG as reading the whole struct and drops the stores above
     * (observed with gcc -O2); the barrier makes them visible. */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

/* Back to the init state: context switches stop saving 8 KiB of tile data. */
void an_amx_k_release(void) { _tile_release(); }

static inline __m512 bf16_to_f32(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* RNE to bf16 (VCVTNEPS2BF16; treats f32 denormal inputs as zero, which values this small
 * never matter next to the activations of a layer). */
static inline __m256i f32_to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

void an_amx_k_convert_bf16(const float *x, int64_t K, int n, const amx_panel *p, int t0, int t1) {
    const int64_t kp = p->kp, ns = kp / 32;
    for (int t = t0; t < t1; t++) {
        /* tile order: token tile t/16, k-step s, then the 16 x 32 tile row-major */
        const int64_t base = (int64_t)(t / 16) * ns * 512 + (t % 16) * 32;
        if (t >= n) {
            for (int pl = 0; pl < p->nplanes; pl++)
                for (int64_t s = 0; s < ns; s++) memset(p->bf[pl] + base + s * 512, 0, 64);
            continue;
        }
        const float *xr = x + (int64_t)t * K;
        for (int64_t k = 0; k < kp; k += 16) {
            const int64_t left = K - k, off = base + (k / 32) * 512 + k % 32;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + k);
            if (p->act == AMX_ACT_F16) /* the CPU path's f16 rounding, then an exact hi/lo split */
                v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i h = f32_to_bf16(v);
            _mm256_storeu_si256((__m256i *)(p->bf[0] + off), h);
            if (p->nplanes > 1) {
                __m512 r = _mm512_sub_ps(v, bf16_to_f32(h)); /* exact */
                __m256i mid = f32_to_bf16(r);
                _mm256_storeu_si256((__m256i *)(p->bf[1] + off), mid);
                if (p->nplanes > 2)
                    _mm256_storeu_si256((__m256i *)(p->bf[2] + off), f32_to_bf16(_mm512_sub_ps(r, bf16_to_f32(mid))));
            }
        }
    }
}

/* round(p) to int32, half to even, with what the scalar path does at the edges: NaN -> 0
 * (an_q_nearest_int), and the clamp to [-128, 127] first (the same result: the scalar rounds
 * then clamps, and rounding is monotonic). */
static inline __m512i q8_round(__m512 p) {
    p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p);
    p = _mm512_min_ps(_mm512_max_ps(p, _mm512_set1_ps(-128.f)), _mm512_set1_ps(127.f));
    return _mm512_cvtps_epi32(p); /* MXCSR round-to-nearest-even */
}

/* |v|, with NaN lanes 0: MAXPS returns its second operand when either is NaN, and the scalar
 * `a > amax ? a : amax` never takes a NaN. */
static inline __m512 abs_nonan(__m512 v) {
    return _mm512_max_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.f), v), _mm512_setzero_ps());
}

void an_amx_k_quant_row(const float *x, int64_t K, int act, int kb, int8_t *q, int64_t qstride, float *as, float *am) {
    if (act == AMX_ACT_Q8_0 || act == AMX_ACT_Q8_1) {
        for (int64_t b = 0; b < K / 32; b++) {
            const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_nonan(v0), abs_nonan(v1)));
            const float d = amax / 127.f;
            const __m512 id = _mm512_set1_ps(amax != 0.f ? 127.f / amax : 0.f);
            const __m512i i0 = q8_round(_mm512_mul_ps(v0, id)), i1 = q8_round(_mm512_mul_ps(v1, id));
            _mm_storeu_si128((__m128i *)(q + b * qstride), _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + b * qstride + 16), _mm512_cvtepi32_epi8(i1));
            const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            as[b] = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT)); /* stored as fp16, as the block's d */
            am[b] = as[b] * (float)sum;
        }
        return;
    }
    const int per = 256 / kb;
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const float *xs = x + 256 * sb;
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < 16; i++) m = _mm512_max_ps(m, abs_nonan(_mm512_loadu_ps(xs + 16 * i)));
        const float amax = _mm512_reduce_max_ps(m);
        float d = 0.f;
        int bsum[16] = {0};
        if (amax != 0.f) {
            float max = 0.f; /* the first element of largest magnitude, with its sign */
            for (int i = 0; i < 16; i++) {
                const __m512 v = _mm512_loadu_ps(xs + 16 * i);
                const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_andnot_ps(_mm512_set1_ps(-0.f), v),
                                                         _mm512_set1_ps(amax), _CMP_EQ_OQ);
                if (hit) {
                    max = xs[16 * i + __builtin_ctz(hit)];
                    break;
                }
            }
            const float iscale = -127.f / max;
            const __m512 is = _mm512_set1_ps(iscale);
            for (int i = 0; i < 16; i++) {
                const __m512i iv = q8_round(_mm512_mul_ps(is, _mm512_loadu_ps(xs + 16 * i)));
                const int e = 16 * i; /* element e lies in block e / kb of this super-block */
                _mm_storeu_si128((__m128i *)(q + (sb * per + e / kb) * qstride + e % kb), _mm512_cvtepi32_epi8(iv));
                bsum[i] = _mm512_reduce_add_epi32(iv);
            }
            d = 1 / iscale;
        } else {
            for (int b = 0; b < per; b++) memset(q + (sb * per + b) * qstride, 0, (size_t)kb);
        }
        for (int b = 0; b < per; b++) {
            const int s = kb == 16 ? bsum[b] : bsum[2 * b] + bsum[2 * b + 1];
            as[sb * per + b] = d;
            am[sb * per + b] = d * (float)s;
        }
    }
}

void an_amx_k_block_bf16(const an_amx_weight *w, const amx_panel *a, int64_t g, int t0, int two_a,
                         const uint8_t (*pass)[2], int npass, float *c) {
    const int64_t ns = w->nblk;
    const size_t plane = (size_t)(w->ngrp * ns) * 1024;
    const uint8_t *b0 = w->tiles + (size_t)(g * ns) * 1024, *b1 = b0 + (size_t)ns * 1024;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t s = 0; s < ns; s++) {
        int cw = -1, cx = -1; /* planes currently in the B and A tiles: reload only on change */
        for (int p = 0; p < npass; p++) {
            if (pass[p][1] != cx) {
                cx = pass[p][1];
                const uint16_t *A = a->bf[cx] + ((int64_t)(t0 / 16) * ns + s) * 512;
                _tile_loadd(4, A, 64);
                if (two_a) _tile_loadd(5, A + ns * 512, 64);
            }
            if (pass[p][0] != cw) {
                cw = pass[p][0];
                _tile_loadd(6, b0 + cw * plane + (size_t)s * 1024, 64);
                _tile_loadd(7, b1 + cw * plane + (size_t)s * 1024, 64);
            }
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            if (two_a) {
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
        }
    }
    _tile_stored(0, c, 128);
    _tile_stored(1, c + 16, 128);
    if (two_a) {
        _tile_stored(2, c + 512, 128);
        _tile_stored(3, c + 528, 128);
    }
}

/* c[t][0..31] += the int32 sums ib[t][..] of block b scaled by weight scale x activation scale,
 * plus the min term (weight min x activation block sum) when the format has one. */
static inline void rescale_i8(const int32_t *ib, int nt, int64_t nb, int64_t b, const float *ws0, const float *ws1,
                              const float *wm0, const float *wm1, const float *as, const float *am, float *c) {
    const __m512 w0 = _mm512_loadu_ps(ws0 + b * 16), w1 = _mm512_loadu_ps(ws1 + b * 16);
    if (wm0) {
        const __m512 m0 = _mm512_loadu_ps(wm0 + b * 16), m1 = _mm512_loadu_ps(wm1 + b * 16);
        for (int t = 0; t < nt; t++) {
            const __m512 s = _mm512_set1_ps(as[t * nb + b]), sm = _mm512_set1_ps(am[t * nb + b]);
            float *ct = c + t * 32;
            const int32_t *it = ib + t * 32;
            __m512 c0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it)), _mm512_mul_ps(w0, s),
                                        _mm512_load_ps(ct));
            __m512 c1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it + 16)), _mm512_mul_ps(w1, s),
                                        _mm512_load_ps(ct + 16));
            _mm512_store_ps(ct, _mm512_fmadd_ps(m0, sm, c0));
            _mm512_store_ps(ct + 16, _mm512_fmadd_ps(m1, sm, c1));
        }
    } else {
        for (int t = 0; t < nt; t++) {
            const __m512 s = _mm512_set1_ps(as[t * nb + b]);
            float *ct = c + t * 32;
            const int32_t *it = ib + t * 32;
            _mm512_store_ps(ct, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it)), _mm512_mul_ps(w0, s),
                                                _mm512_load_ps(ct)));
            _mm512_store_ps(ct + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(it + 16)),
                                                     _mm512_mul_ps(w1, s), _mm512_load_ps(ct + 16)));
        }
    }
}

/* Software-pipelined by one block: the tile work of block b is issued before the vector
 * rescale of block b-1 (from the other half of ib), so the TMUL and the vector units overlap;
 * rescaling a block right after storing its tiles serialised them (26% slower in a
 * microbenchmark: TDPBSSD + tile store 14 ns and rescale 14 ns per 16x16x32, 31 ns together;
 * bench/amx_bench.c, Q8_0 4096^2 at N = 256/512: ~10% more GOPS, alternating runs). */
void an_amx_k_block_i8(const an_amx_weight *w, const amx_panel *a, int64_t g, int t0, int two_a, float *c,
                       int32_t *ib) {
    const int kb = w->kb, nt = two_a ? 32 : 16;
    const int64_t nb = w->nblk;
    const size_t tb = (size_t)kb * 16;
    const uint8_t *b0 = w->tiles + (size_t)(g * nb) * tb, *b1 = b0 + (size_t)nb * tb;
    const float *ws0 = w->ws + g * nb * 16, *ws1 = ws0 + nb * 16;
    const float *wm0 = w->has_min ? w->wm + g * nb * 16 : NULL, *wm1 = wm0 ? wm0 + nb * 16 : NULL;
    const float *as = a->as + (int64_t)t0 * nb, *am = a->am + (int64_t)t0 * nb;
    for (int i = 0; i < nt * 32; i += 16) _mm512_store_ps(c + i, _mm512_setzero_ps());
    for (int64_t b = 0; b < nb; b++) {
        int32_t *cur = ib + (b & 1) * 1024;
        const int8_t *A = a->q + ((int64_t)(t0 / 16) * nb + b) * 16 * kb;
        _tile_zero(0);
        _tile_zero(1);
        _tile_loadd(4, A, kb);
        _tile_loadd(6, b0 + b * tb, 64);
        _tile_loadd(7, b1 + b * tb, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        if (two_a) {
            _tile_zero(2);
            _tile_zero(3);
            _tile_loadd(5, A + nb * 16 * kb, kb);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        }
        _tile_stored(0, cur, 128);
        _tile_stored(1, cur + 16, 128);
        if (two_a) {
            _tile_stored(2, cur + 512, 128);
            _tile_stored(3, cur + 528, 128);
        }
        if (b > 0) rescale_i8(ib + ((b - 1) & 1) * 1024, nt, nb, b - 1, ws0, ws1, wm0, wm1, as, am, c);
    }
    if (nb > 0) rescale_i8(ib + ((nb - 1) & 1) * 1024, nt, nb, nb - 1, ws0, ws1, wm0, wm1, as, am, c);
}

/* The 16 rows of a group may use several tables (lut_group < 16, or a group boundary inside);
 * each table fills the lanes of its rows: a tile row of 32 bf16 lanes holds rows 0..15 of two
 * adjacent k, so lane l belongs to row l / 2. One VPERMT2W looks up 64 bf16 entries (LUT6; a
 * LUT4 table uses the first 16). */
void an_amx_k_expand_lut(const an_amx_weight *w, int64_t g0, int64_t ng, uint16_t *dst) {
    const int64_t nb = w->nblk, G = w->lut_group;
    for (int64_t g = g0; g < g0 + ng; g++) {
        __m512i tlo[16], thi[16];
        __mmask32 lanes[16];
        int nt = 0;
        int64_t prev = -1;
        for (int r = 0; r < 16; r++) {
            int64_t row = g * 16 + r;
            if (row >= w->src.rows) row = w->src.rows - 1; /* padding rows: any finite value */
            const int64_t t = row / G;
            if (t != prev) { /* rows are in order, so a table's rows are contiguous */
                tlo[nt] = _mm512_loadu_si512(w->lut + t * 64);
                thi[nt] = _mm512_loadu_si512(w->lut + t * 64 + 32);
                lanes[nt++] = 0;
                prev = t;
            }
            lanes[nt - 1] |= (__mmask32)3u << (2 * r);
        }
        const uint8_t *src = w->tiles + (size_t)(g * nb) * 512;
        uint16_t *out = dst + (size_t)((g - g0) * nb) * 512;
        for (int64_t i = 0; i < nb * 16; i++) { /* 32 indices -> 32 bf16 per tile row */
            const __m512i idx = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(src + i * 32)));
            __m512i v = _mm512_permutex2var_epi16(tlo[0], idx, thi[0]);
            for (int k = 1; k < nt; k++)
                v = _mm512_mask_mov_epi16(v, lanes[k], _mm512_permutex2var_epi16(tlo[k], idx, thi[k]));
            _mm512_storeu_si512(out + i * 32, v);
        }
    }
}
