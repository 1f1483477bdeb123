/* gemv_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI) decode GEMV kernels: y[r] = dot(W row r, a).
 *
 * Decode is memory-bound: every weight byte is read once per token and the activation row is
 * small and cache-resident. So the kernels are built to keep the load ports streaming:
 *   - 4 rows per pass: the activation block (its load, its offset correction, its scale) is
 *     prepared once and used by four weight rows, and four independent accumulator chains hide
 *     the FMA/VNNI latencies. A tail of 1..3 rows repeats the last real row in the unused slots
 *     (computed, not stored) so there is one code path.
 *   - integer formats: exact integer block sums with VPDPBUSD (u8 x s8, 4 products summed into
 *     each int32 lane, no saturation) or VPMADDUBSW + VPDPWSSD when a per-sub-block integer scale
 *     is applied (K-quants); the float block scale is broadcast over the lanes and FMA'd into a
 *     float accumulator, so nothing is reduced horizontally until the row is done.
 *   - Q8_0 goes two blocks per 512-bit register (lanes 0..7 = block b, 8..15 = b+1);
 *     Q4_0/Q4_1/Q5_0/Q5_1 go four blocks per register (one per 128-bit lane) and, like Q4_K/Q5_K,
 *     reduce the integer sums of the 4 rows into one register before the float scaling, so the
 *     scale conversion, VCVTDQ2PS and FMA are paid once per 4 rows instead of per row.
 *
 * Every kernel matches an_vec_dot_ref up to float summation order (block sums are exact
 * integers; only the order/association of the float scaling and accumulation differs).
 * Rows and activations may be unaligned: only unaligned or masked loads are used, and no load
 * touches a byte outside the row (masked loads for partial tails). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "backends/cpu/gemv_x86.h"
#include "quant/quant.h"

AI void store4(float *y, int nr, __m512 c0, __m512 c1, __m512 c2, __m512 c3) {
    y[0] = _mm512_reduce_add_ps(c0);
    if (nr > 1) y[1] = _mm512_reduce_add_ps(c1);
    if (nr > 2) y[2] = _mm512_reduce_add_ps(c2);
    if (nr > 3) y[3] = _mm512_reduce_add_ps(c3);
}

/* 4x4 transpose-and-add: lane 4i + r of the result = sum of lanes 4i..4i+3 of s[r] */
AI __m512i sum4x4(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
    const __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1), _mm512_unpackhi_epi32(s0, s1));
    const __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

/* start of the next group whatever the row length, or 0 if there is none: for the 4-block Q4/Q5
 * and Q4_K/Q5_K kernels, which consume rows faster per load than the float ones; measured
 * (gemv_bench, Q4_0 2048x8192, rows of 4608 B): 1 thread 56-59% -> 74-81% of DRAM, 2 threads
 * 57-60% -> 75-78% */
AI uintptr_t next_group_any(const void *w, uint64_t rb, int64_t r0, int64_t nrows) {
    return r0 + 4 < nrows ? (uintptr_t)w + (uintptr_t)((uint64_t)(r0 + 4) * rb) : 0;
}

/* ========================================================================================== */
/* Float formats. 16 elements per step; the K % 16 tail with masked loads (no over-read).     */

/* 16 weights (or the first m of them, the rest 0) as f32, for each float format */
AI __m512 ld_f32(const uint8_t *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
AI __m512 ld_f16(const uint8_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
/* bf16 -> f32 is exact: the bf16 bits are the top half of the f32 (VDPBF16PS is avoided: it
 * runs at half the FP32 FMA rate on this core, and this path is bandwidth-bound anyway) */
AI __m512 ld_bf16(const uint8_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

/* y[r] = sum_k W[r][k] a[k]; W: nrows x K elements of `es` bytes (row stride rb), a: K of the
 * same type. The f16/bf16 activation is converted per 16-element step and shared by 4 rows
 * (cheaper than a scratch copy: one conversion per 4 rows of weights). */
#define FLOAT_GEMV(NAME, LD, ES)                                                                   \
    static void NAME(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) { \
        const uint8_t *av = a;                                                                     \
        for (int64_t r0 = 0; r0 < nrows; r0 += 4) {                                                \
            const uint8_t *p[4];                                                                   \
            const int nr = rows4(w, rb, r0, nrows, p);                                             \
            __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;                            \
            const uintptr_t nx = next_group(w, rb, r0, nrows);                                     \
            int64_t k = 0;                                                                         \
            for (; k + 16 <= K; k += 16) {                                                         \
                pf_span(nx, 4 * 16 * ES, k / 16);                                                  \
                const __m512 x = LD(av + ES * k, 0xFFFF);                                          \
                c0 = _mm512_fmadd_ps(LD(p[0] + ES * k, 0xFFFF), x, c0);                            \
                c1 = _mm512_fmadd_ps(LD(p[1] + ES * k, 0xFFFF), x, c1);                            \
                c2 = _mm512_fmadd_ps(LD(p[2] + ES * k, 0xFFFF), x, c2);                            \
                c3 = _mm512_fmadd_ps(LD(p[3] + ES * k, 0xFFFF), x, c3);                            \
            }                                                                                      \
            if (k < K) {                                                                           \
                const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);                              \
                const __m512 x = LD(av + ES * k, m);                                               \
                c0 = _mm512_fmadd_ps(LD(p[0] + ES * k, m), x, c0);                                 \
                c1 = _mm512_fmadd_ps(LD(p[1] + ES * k, m), x, c1);                                 \
                c2 = _mm512_fmadd_ps(LD(p[2] + ES * k, m), x, c2);                                 \
                c3 = _mm512_fmadd_ps(LD(p[3] + ES * k, m), x, c3);                                 \
            }                                                                                      \
            store4(y + r0, nr, c0, c1, c2, c3);                                                    \
        }                                                                                          \
    }
FLOAT_GEMV(gemv_f32, ld_f32, 4)
FLOAT_GEMV(gemv_f16, ld_f16, 2)
FLOAT_GEMV(gemv_bf16, ld_bf16, 2)

/* ========================================================================================== */
/* 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 against Q8_0 / Q8_1 activations).
 *
 * VPDPBUSD multiplies UNSIGNED bytes by SIGNED bytes. Weight codes are made unsigned by an
 * offset: Q4_0 stores q+8 (0..15), Q5_0 q+16 (0..31), Q8_0 gets q+128 via xor 0x80 (-128..127
 * -> 0..255). Then sum (q+o) a = sum q a + o sum a, so the int32 accumulator starts at
 * -o*sum(a) (lanes of a VPDPBUSD of the constant o with a, negated): computed once per
 * activation block and shared by the rows — no per-row correction, no horizontal work.
 * Q4_1/Q5_1 add the m*s term of sum_e (q_e dw + m) (da a_e) = dw da sum q_e a_e + m (da sum a_e),
 * s = da sum a_e (carried by the Q8_1 block).
 *
 * Q8_0 (below) goes per pair of blocks (b, b+1) and row: S = 16 int32 lanes whose lanes 0..7
 * sum to block b's integer dot product and lanes 8..15 to block b+1's; acc += float(S) *
 * [dw_b*da_b x8, dw_b1*da_b1 x8]. Block scales: a masked 16-bit load picks d of both blocks
 * (never reading past the row), VPERMW spreads d_b over lanes 0..7 and d_b1 over 8..15,
 * VCVTPH2PS makes them f32. (The 4-block scheme of the Q4/Q5 formats further down measured
 * slower for Q8_0: 18 vs 24 GB/s from cache.) */

enum { FM_Q4_0, FM_Q4_1, FM_Q5_0, FM_Q5_1, FM_Q8_0 };

/* bytes per weight block, offset of qs */
AI int wbs(int f) { return f == FM_Q4_0 ? 18 : f == FM_Q4_1 ? 20 : f == FM_Q5_0 ? 22 : f == FM_Q5_1 ? 24 : 34; }
AI int wqs(int f) { return f == FM_Q4_0 ? 2 : f == FM_Q4_1 ? 4 : f == FM_Q5_0 ? 6 : f == FM_Q5_1 ? 8 : 2; }
AI int has_min(int f) { return f == FM_Q4_1 || f == FM_Q5_1; }

/* f32 lanes [h[0] x8, h[w1] x8] from the f16 words at word offsets 0 and w1 of p (w1 only when
 * two; else lanes 8..15 are 0). */
AI __m512 scale_pair(const uint8_t *p, int w1, int two) {
    const __mmask32 m = two ? (1u | (1u << w1)) : 1u;
    const __m512i v = _mm512_maskz_loadu_epi16(m, p);
    const __m512i idx = _mm512_mask_set1_epi32(_mm512_setzero_si512(), 0x00F0, w1 * 0x10001);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, v)));
}

/* The 64 unsigned codes (q + 128) of the Q8_0 blocks at x (and x + 34 when two) in element
 * order: bytes 0..31 = block b, bytes 32..63 = block b+1. Without `two` the upper half is 128s:
 * it meets a zero activation half and a zero scale. */
AI __m512i codes_pair_q8(const uint8_t *x, int two) {
    const __m256i lo = _mm256_loadu_si256((const void *)(x + 2));
    const __m256i hi = two ? _mm256_loadu_si256((const void *)(x + 34 + 2)) : _mm256_setzero_si256();
    /* xor 0x80 = +128 on two's complement bytes: -128..127 -> 0..255 (unsigned operand) */
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8((char)0x80));
}

/* Activation side of a pair, shared by the rows: the quants, the start value of the int32
 * accumulator (-128 * sum a), the f32 scales d. */
typedef struct { __m512i q, init; __m512 d; } act_pair;

AI void act_load_q8(const uint8_t *y, int two, act_pair *ap) {
    const __m256i lo = _mm256_loadu_si256((const void *)(y + 2));
    const __m256i hi = two ? _mm256_loadu_si256((const void *)(y + 34 + 2)) : _mm256_setzero_si256();
    ap->q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), ap->q);
    ap->init = _mm512_sub_epi32(_mm512_setzero_si512(), s);
    ap->d = scale_pair(y, 17, two);
}

AI void row_pair_q8(const uint8_t *x, const act_pair *ap, int two, __m512 *acc) {
    const __m512i s = _mm512_dpbusd_epi32(ap->init, codes_pair_q8(x, two), ap->q);
    const __m512 d = _mm512_mul_ps(scale_pair(x, 17, two), ap->d);
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, *acc);
}

/* y[r] = dot(W row r, a); W: nrows rows of K/32 Q8_0 blocks, a: K/32 Q8_0 blocks */
static void gemv_q8_0(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {
    const int64_t nb = K / 32;
    const uint8_t *av = a;
    for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
        const uint8_t *p[4];
        const int nr = rows4(w, rb, r0, nrows, p);
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        const uintptr_t nx = next_group(w, rb, r0, nrows);
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            pf_span(nx, 8 * 34, b / 2);
            act_pair ap;
            act_load_q8(av + b * 34, 1, &ap);
            row_pair_q8(p[0] + b * 34, &ap, 1, &c0);
            row_pair_q8(p[1] + b * 34, &ap, 1, &c1);
            row_pair_q8(p[2] + b * 34, &ap, 1, &c2);
            row_pair_q8(p[3] + b * 34, &ap, 1, &c3);
        }
        if (b < nb) { /* odd block count: one block, the upper lanes see zeros */
            act_pair ap;
            act_load_q8(av + b * 34, 0, &ap);
            row_pair_q8(p[0] + b * 34, &ap, 0, &c0);
            row_pair_q8(p[1] + b * 34, &ap, 0, &c1);
            row_pair_q8(p[2] + b * 34, &ap, 0, &c2);
            row_pair_q8(p[3] + b * 34, &ap, 0, &c3);
        }
        store4(y + r0, nr, c0, c1, c2, c3);
    }
}

/* ========================================================================================== */
/* K-quants against Q8_K (292 B: d f32 @0, qs[256] @4, bsums[16] i16 @260).
 *
 * Per super-block and row the integer part is sum_s sc[s] * sum_{e in s} q_e a_e, computed
 * 64 elements at a time: VPMADDUBSW (u8 codes x s8 activations -> s16 pair sums; no saturation:
 * |code| <= 63, |a| <= 128, 2*63*128 < 32767) then VPDPWSSD against a vector holding each
 * word's sub-block scale (s16 x s16 pair sums added into int32 lanes, exact) — for Q6_K;
 * Q4_K/Q5_K (sub-blocks of 32, codes <= 31) take VPDPBUSD sums per 64 elements instead and
 * apply the scales to two chunks at once after an exact VPACKSSDW (see row_k45). The min / offset
 * terms need sum_{e in s} a_e, which Q8_K already carries as bsums (sums of 16): no extra pass
 * over the activation. */

/* Q4_K/Q5_K 6-bit scales and mins (layout in quant_k.c) as bytes: sc[0..7] and m[0..7].
 * bytes 0..3 hold sc[0..3] (low 6 bits) and the top 2 bits of sc[4..7]; bytes 4..7 the same
 * for m; bytes 8..11 the low 4 bits of sc[4..7] (low nibble) and m[4..7] (high nibble). */
AI void k4_unpack(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    const uint32_t u0 = rd32(s), u1 = rd32(s + 4), u2 = rd32(s + 8);
    const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4;
    const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4;
    *sc = (uint64_t)(u0 & 0x3f3f3f3fu) | (uint64_t)sc_hi << 32;
    *mn = (uint64_t)(u1 & 0x3f3f3f3fu) | (uint64_t)m_hi << 32;
}

/* Activation side of a Q8_K super-block, shared by the rows. */
typedef struct { __m512i q[4]; __m128i bs16; __m256i bsums; float d; } act_k;

AI void act_k_load(const uint8_t *y, int pairs, act_k *ak) {
    for (int j = 0; j < 4; j++) ak->q[j] = _mm512_loadu_si512((const void *)(y + 4 + 64 * j));
    ak->bsums = _mm256_loadu_si256((const void *)(y + 260));
    if (pairs) { /* sums of 32 (bsums[2s] + bsums[2s+1], |.| <= 4096) as 8 s16 words */
        const __m256i s32 = _mm256_madd_epi16(ak->bsums, _mm256_set1_epi16(1));
        ak->bs16 = _mm_packs_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    }
    ak->d = rdf32(y);
}

/* scale-word index for VPACKSSDW(sums of chunks c, c+1), s0 = 2c: word 8l + w <- sub-block
 * s0 + (w < 4 ? 0 : 2) + (l >> 1) of 128-bit lane l */
AI __m512i kpk(int s0) {
    return _mm512_set_epi64((s0 + 3) * 0x0001000100010001LL, (s0 + 1) * 0x0001000100010001LL,
                            (s0 + 3) * 0x0001000100010001LL, (s0 + 1) * 0x0001000100010001LL,
                            (s0 + 2) * 0x0001000100010001LL, s0 * 0x0001000100010001LL,
                            (s0 + 2) * 0x0001000100010001LL, s0 * 0x0001000100010001LL);
}
/* words 8i..8i+7 <- word i0+i, i = 0..3 */
AI __m512i idx4(int i0) {
    return _mm512_set_epi32((i0 + 3) * 0x10001, (i0 + 3) * 0x10001, (i0 + 3) * 0x10001, (i0 + 3) * 0x10001,
                            (i0 + 2) * 0x10001, (i0 + 2) * 0x10001, (i0 + 2) * 0x10001, (i0 + 2) * 0x10001,
                            (i0 + 1) * 0x10001, (i0 + 1) * 0x10001, (i0 + 1) * 0x10001, (i0 + 1) * 0x10001,
                            i0 * 0x10001, i0 * 0x10001, i0 * 0x10001, i0 * 0x10001);
}

/* Q4_K (144 B: d, dmin f16 @0,2; scales[12] @4; qs[128] @16) and Q5_K (qh[32] @16, qs @48).
 * Chunk c (elements 64c..64c+63) = qs[32c..32c+31]: low nibbles are elements 64c..+31
 * (sub-block 2c), high nibbles 64c+32..+63 (sub-block 2c+1). A 256-bit broadcast of the 32
 * bytes, the upper half shifted right by 4, masked with 0x0F, gives the 64 codes in order.
 * Q5_K: bit 4 of element 64c+32k+l is bit 2c+k of qh[l]: a byte test against [1<<2c x32,
 * 1<<(2c+1) x32] on qh broadcast to both halves yields the byte mask for adding 16.
 * x = d*sc*q - dmin*m per sub-block, so dot = d dy sum_s sc_s (q.a)_s - dmin dy sum_s m_s bsum_s. */
AI __m512i row_k45(int q5, const uint8_t *x, const act_k *ak, __m128i *msum) {
    uint64_t sc, mn;
    k4_unpack(x + 4, &sc, &mn);
    const __m512i scw = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    const uint8_t *qs = x + (q5 ? 48 : 16);
    const __m512i sh = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i qh = _mm512_setzero_si512();
    if (q5) qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(x + 16)));
    __m512i isum = _mm512_setzero_si512(), sc4[4];
    for (int c = 0; c < 4; c++) {
        const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(qs + 32 * c)));
        __m512i q = _mm512_and_si512(_mm512_srlv_epi64(v, sh), m4);
        if (q5) {
            const __m512i bit = _mm512_mask_set1_epi8(_mm512_set1_epi8((char)(1 << (2 * c))),
                                                      0xFFFFFFFF00000000ull, (char)(1 << (2 * c + 1)));
            q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, _mm512_set1_epi8(16));
        }
        sc4[c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, ak->q[c]);
    }
    /* sc4[c]: lanes 0..7 sum sub-block 2c, 8..15 sub-block 2c+1 (|.| <= 4*31*128: an s16), so
     * VPACKSSDW of two chunks is exact; in 128-bit lane l its words 0..3 come from the first
     * (sub-block l >> 1 of the pair) and 4..7 from the second: VPDPWSSD against the matching
     * scale words */
    isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(sc4[0], sc4[1]), _mm512_permutexvar_epi16(kpk(0), scw));
    isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(sc4[2], sc4[3]), _mm512_permutexvar_epi16(kpk(4), scw));
    /* min term: 8 words m[s] against the 8 words bsum32[s] -> 4 int32 lanes */
    *msum = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), ak->bs16);
    return isum;
}

/* One super-block of 4 rows: the float work is shared by the rows. The integer sums of the 4
 * rows are reduced together (lane 4i + r of one register belongs to row r) and scaled by
 * [d_r dy] in one convert + FMA; the min sums (4 lanes per row) likewise into a 128-bit
 * accumulator (lane r). d and dmin of the 4 rows: one VCVTPH2PS. */
AI void step_k45(int q5, const uint8_t *const p[4], uint64_t off, const act_k *ak, __m512 *acc, __m128 *accm) {
    __m128i m[4];
    const __m512i s0 = row_k45(q5, p[0] + off, ak, &m[0]), s1 = row_k45(q5, p[1] + off, ak, &m[1]);
    const __m512i s2 = row_k45(q5, p[2] + off, ak, &m[2]), s3 = row_k45(q5, p[3] + off, ak, &m[3]);
    const __m512i s = sum4x4(s0, s1, s2, s3);
    const __m128i ma = _mm_add_epi32(_mm_unpacklo_epi32(m[0], m[1]), _mm_unpackhi_epi32(m[0], m[1]));
    const __m128i mb = _mm_add_epi32(_mm_unpacklo_epi32(m[2], m[3]), _mm_unpackhi_epi32(m[2], m[3]));
    const __m128i ms = _mm_add_epi32(_mm_unpacklo_epi64(ma, mb), _mm_unpackhi_epi64(ma, mb)); /* lane r */
    const __m128i h = _mm_set_epi32((int)rd32(p[3] + off), (int)rd32(p[2] + off), (int)rd32(p[1] + off),
                                    (int)rd32(p[0] + off)); /* d_r, dmin_r */
    const __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(ak->d));
    const __m512 dv = _mm512_permutexvar_ps(_mm512_set_epi32(6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0),
                                            _mm512_castps256_ps512(dd));
    const __m128 dm = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(dd, _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7)));
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), dv, *acc);
    *accm = _mm_fnmadd_ps(_mm_cvtepi32_ps(ms), dm, *accm);
}

/* Q6_K (210 B: ql[128] @0, qh[64] @128, scales[16] s8 @192, d f16 @208).
 * Half h (elements 128h..128h+127) in two registers of 64 elements, t = 0,1 and t = 2,3:
 *   low 4 bits: ql[64h..64h+63] low nibbles (t = 0,1) / high nibbles (t = 2,3)
 *   high 2 bits: bits 2t..2t+1 of qh[32h + l], brought to bits 4..5 by a per-256-bit-half
 *   shift of qh broadcast to both halves (64-bit lane shifts are safe: after the shift only
 *   bits 4..5 of each byte are kept, and those come from the same byte for shifts <= 4).
 * Codes are q + 32 (0..63, unsigned for VPMADDUBSW); the offset comes back out as
 * 32 * sum_s sc_s bsum_s (sub-blocks of 16 = Q8_K's bsums exactly), one VPMADDWD per row. */
AI void row_q6k(const uint8_t *x, const act_k *ak, __m512 *acc) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(x + 192)));
    const __m512i scw = _mm512_castsi256_si512(sc16);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512((const void *)(x + 64 * h));
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(x + 128 + 32 * h)));
        const __m512i hA = _mm512_and_si512(_mm512_sllv_epi64(qh, _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4)), m30);
        const __m512i hB = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)), m30);
        const __m512i qA = _mm512_or_si512(_mm512_and_si512(ql, m4), hA);
        const __m512i qB = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), hB);
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(qA, ak->q[2 * h]), _mm512_permutexvar_epi16(idx4(8 * h), scw));
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(qB, ak->q[2 * h + 1]),
                                   _mm512_permutexvar_epi16(idx4(8 * h + 4), scw));
    }
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, ak->bsums), 5); /* 32 sum sc bsum */
    isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
    const float d = h2f(x + 208) * ak->d;
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d), *acc);
}

/* y[r] = dot(W row r, a); W: nrows rows of K/256 super-blocks (bs bytes), a: K/256 Q8_K blocks */
AI void gemv_k(int kind, const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {
    const int64_t nb = K / 256;
    const int bs = kind == 4 ? 144 : kind == 5 ? 176 : 210;
    const uint8_t *av = a;
    for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
        const uint8_t *p[4];
        const int nr = rows4(w, rb, r0, nrows, p);
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        __m128 cm = _mm_setzero_ps();
        const uintptr_t nx = kind == 6 ? next_group(w, rb, r0, nrows) : next_group_any(w, rb, r0, nrows);
        for (int64_t b = 0; b < nb; b++) {
            pf_span(nx, 4 * (uint64_t)bs, b);
            act_k ak;
            act_k_load(av + b * 292, kind != 6, &ak);
            if (kind == 6) {
                row_q6k(p[0] + b * bs, &ak, &c0);
                row_q6k(p[1] + b * bs, &ak, &c1);
                row_q6k(p[2] + b * bs, &ak, &c2);
                row_q6k(p[3] + b * bs, &ak, &c3);
            } else {
                step_k45(kind == 5, p, (uint64_t)b * (uint64_t)bs, &ak, &c0, &cm);
            }
        }
        if (kind == 6) {
            store4(y + r0, nr, c0, c1, c2, c3);
        } else { /* c0 lane 4i + r and cm lane r belong to row r */
            const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(c0), _mm512_extractf32x8_ps(c0, 1));
            const __m128 h4 = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1)), cm);
            _mm_mask_storeu_ps(y + r0, (__mmask8)((1u << nr) - 1), h4);
        }
    }
}

/* ========================================================================================== */
/* Q4_0, Q4_1, Q5_0, Q5_1: 4 blocks x 4 rows per step. The per-block scale work is what bounds
 * a pair kernel like Q8_0's (per pair and row: scale load, VPERMW, VCVTPH2PS, VMULPS,
 * VCVTDQ2PS, FMA); here it is done once per 4 rows x 4 blocks:
 *   - codes: the 4 * bs bytes of blocks b..b+3 (72..96) come from two unaligned 64-byte loads
 *     (x and x + 4 bs - 64, both inside them); one VPERMT2W (qs starts at even offsets) puts
 *     qs of block b+i in 128-bit lane i. Then L = q & 0x0F are elements 0..15 of each block;
 *     Q4: H = q & 0xF0 = 16 * elements 16..31 (saves a shift); Q5: H = (q >> 4) & 0x0F, and
 *     bit 4 of each code is added with a masked byte add of 16: a VPERMT2W gathers the low
 *     (elements 0..15) and high 16 bits of the 4 blocks' qh, which are exactly the byte masks
 *     of L and H.
 *   - the activation, rearranged to match (lane i: elements 0..15 / 16..31 of block b+i), its
 *     offset correction and its scales are prepared once per call for all rows (an entry per
 *     step, for chunks of up to Q4X_CH steps of K, kept on the stack).
 *   - integer sums: Q4: sH = VPDPBUSD(init, H, a_hi) = 16 * (sum hi*a_hi - o sum a_hi -
 *     o sum a_lo) (o = 8 for Q4_0, 0 for Q4_1), exact, so sH >> 4 (arithmetic, exact) seeds
 *     VPDPBUSD(., L, a_lo); Q5: two VPDPBUSD from init = -o (sum a_lo + sum a_hi) (o = 16
 *     for Q5_0, 0 for Q5_1). Lanes 4i..4i+3 sum to block b+i's exact integer dot product.
 *   - the four rows' registers are reduced together (sum4x4) into one register whose lane
 *     4i+r is row r's sum for block b+i; the weight scales (and mins) of the 16 (row, block)
 *     pairs lie in the rows' loads (word bs/2 * i: in the first load, block b+3 of Q5 in the
 *     second): two VPERMT2W (four for Q5) + blends + one VCVTPH2PS, one VMULPS by the
 *     activation scales, and one VCVTDQ2PS + FMA into a single accumulator (lane 4i+r belongs
 *     to row r); Q4_1/Q5_1 add m * s the same way.
 * A partial last step (K/32 % 4 blocks) reads with masked loads (nothing past the row) and
 * meets zero activations and zero scales in the missing blocks. */
typedef struct { __m512i al, ah, init; __m512 da, s; } q4x_act;
#ifndef Q4X_CH
#define Q4X_CH 64 /* steps per chunk of K: 64 x 320 B = 20 KB of stack, K <= 8192 in one chunk */
#endif

/* entry for the n (1..4) Q8_0 / Q8_1 blocks at y, for weight format f */
static void q4x_act_make(int f, const uint8_t *y, int n, q4x_act *e) {
    const int q81 = has_min(f), abk = q81 ? 36 : 34, aq = q81 ? 4 : 2;
    uint8_t lo[64] = {0}, hi[64] = {0};
    float d[16] = {0}, sm[16] = {0};
    for (int i = 0; i < n; i++) {
        memcpy(lo + 16 * i, y + abk * i + aq, 16);
        memcpy(hi + 16 * i, y + abk * i + aq + 16, 16);
        const float di = h2f(y + abk * i), si = q81 ? h2f(y + abk * i + 2) : 0.0f;
        for (int r = 0; r < 4; r++) d[4 * i + r] = di, sm[4 * i + r] = si;
    }
    e->al = _mm512_loadu_si512((const void *)lo);
    e->ah = _mm512_loadu_si512((const void *)hi);
    e->init = _mm512_setzero_si512();
    if (!q81) { /* -o (sum a_lo + sum a_hi); Q4_0: o = 16 * 8 (H holds 16 * code, see q4x_row) */
        const __m512i o = _mm512_set1_epi8((char)(f == FM_Q4_0 ? 0x80 : 16));
        const __m512i s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), o, e->ah), o, e->al);
        e->init = _mm512_sub_epi32(_mm512_setzero_si512(), s);
    }
    e->da = _mm512_loadu_ps(d);
    e->s = _mm512_loadu_ps(sm);
}

/* exact int32 sums of one row's blocks b..b+3 (lanes 4i..4i+3: block b+i) from its loads */
AI __m512i q4x_row(int f, __m512i v0, __m512i v1, const __m512i *ix, const q4x_act *e) {
    const __m512i q = _mm512_permutex2var_epi16(v0, ix[0], v1);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (f == FM_Q4_0 || f == FM_Q4_1) {
        const __m512i l = _mm512_and_si512(q, m4);
        const __m512i h = _mm512_and_si512(q, _mm512_set1_epi8((char)0xF0));
        const __m512i sh = _mm512_dpbusd_epi32(e->init, h, e->ah);
        return _mm512_dpbusd_epi32(_mm512_srai_epi32(sh, 4), l, e->al);
    }
    /* Q5: bit 4 of element k of block i is bit k of qh_i: words 0..3 of g are the low halves
     * of qh (elements 0..15, the bytes of L in lane order) and words 4..7 the high halves */
    __m512i l = _mm512_and_si512(q, m4), h = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    const __m128i g = _mm512_castsi512_si128(_mm512_permutex2var_epi16(v0, ix[5], v1));
    const __m512i b16 = _mm512_set1_epi8(16);
    l = _mm512_mask_add_epi8(l, (__mmask64)(uint64_t)_mm_cvtsi128_si64(g), l, b16);
    h = _mm512_mask_add_epi8(h, (__mmask64)(uint64_t)_mm_extract_epi64(g, 1), h, b16);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(e->init, l, e->al), h, e->ah);
}

/* f32 lane 4i + r <- the f16 word of block b+i of row r (index vectors ia: from v0 of rows
 * (0, 1) then (2, 3), ib: from v1 of the same rows, for the blocks past v0, which are the
 * lanes of mask kb) */
AI __m512 q4x_f16(const __m512i v0[4], const __m512i v1[4], const __m512i *ia, const __m512i *ib, __mmask32 kb) {
    __m512i t01 = _mm512_permutex2var_epi16(v0[0], ia[0], v0[1]);
    __m512i t23 = _mm512_permutex2var_epi16(v0[2], ia[1], v0[3]);
    if (kb) {
        t01 = _mm512_mask_mov_epi16(t01, kb, _mm512_permutex2var_epi16(v1[0], ib[0], v1[1]));
        t23 = _mm512_mask_mov_epi16(t23, kb, _mm512_permutex2var_epi16(v1[2], ib[1], v1[3]));
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_mask_mov_epi16(t01, 0xCCCCCCCC, t23)));
}

/* one step of 4 rows: n = 4 blocks (full loads) or 1..3 (masked) */
AI __m512 q4x_step(int f, const uint8_t *const p[4], uint64_t off, int n, const q4x_act *e, const __m512i ix[10],
                   __m512 acc) {
    const int bs = wbs(f), o1 = 4 * bs - 64;
    const __mmask32 kb = bs > 20 ? 0xF000 : 0; /* Q5: block b+3's scale is in v1 */
    __m512i v0[4], v1[4];
    for (int r = 0; r < 4; r++) {
        if (n == 4) {
            v0[r] = _mm512_loadu_si512((const void *)(p[r] + off));
            v1[r] = _mm512_loadu_si512((const void *)(p[r] + off + o1));
        } else { /* bs * n bytes: [0, bs n) and [o1, bs n) */
            v0[r] = bs * n >= 64 ? _mm512_loadu_si512((const void *)(p[r] + off))
                                 : _mm512_maskz_loadu_epi8(((__mmask64)1 << (bs * n)) - 1, p[r] + off);
            v1[r] = bs * n > o1 ? _mm512_maskz_loadu_epi8(((__mmask64)1 << (bs * n - o1)) - 1, p[r] + off + o1)
                                : _mm512_setzero_si512();
        }
    }
    const __m512i s0 = q4x_row(f, v0[0], v1[0], ix, e), s1 = q4x_row(f, v0[1], v1[1], ix, e);
    const __m512i s2 = q4x_row(f, v0[2], v1[2], ix, e), s3 = q4x_row(f, v0[3], v1[3], ix, e);
    const __m512i s = sum4x4(s0, s1, s2, s3);
    const __m512 d = _mm512_mul_ps(q4x_f16(v0, v1, ix + 1, ix + 3, kb), e->da);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
    if (has_min(f)) acc = _mm512_fmadd_ps(q4x_f16(v0, v1, ix + 6, ix + 8, kb), e->s, acc);
    return acc;
}

AI void gemv_q4x(int f, const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {
    const int bs = wbs(f), qs = wqs(f), o1 = 4 * bs - 64, abk = has_min(f) ? 36 : 34;
    const int64_t nb = K / 32, nsteps = (nb + 3) / 4;
    /* word w of the 4 blocks as a VPERMT2W index into (v0 = words 0.., v1 = words o1/2..) */
    #define Q4X_W(w) ((w) < 32 ? (w) : 32 + (w) - o1 / 2)
    uint16_t iw[10][32];
    for (int j = 0; j < 32; j++) {
        /* codes: word j of lane j / 8 <- word (bs i + qs) / 2 + k of the 4 blocks */
        iw[0][j] = (uint16_t)Q4X_W((bs * (j >> 3) + qs) / 2 + (j & 7));
        /* scales / mins: word 4i + r <- word bs/2 i (+1) of row r: rows 1, 3 from the second
         * table; from v0 (ia) or, past it, from v1 (ib) */
        const int i = (j >> 2) & 3, r = j & 3;
        for (int mm = 0; mm < 2; mm++) {
            const int wd = bs / 2 * i + mm, in0 = wd < 32 ? wd : 0, in1 = wd - o1 / 2 >= 0 ? wd - o1 / 2 : 0;
            iw[1 + 5 * mm][j] = (uint16_t)(in0 + (r == 1 ? 32 : 0));
            iw[2 + 5 * mm][j] = (uint16_t)(in0 + (r == 3 ? 32 : 0));
            iw[3 + 5 * mm][j] = (uint16_t)(in1 + (r == 1 ? 32 : 0));
            iw[4 + 5 * mm][j] = (uint16_t)(in1 + (r == 3 ? 32 : 0));
        }
        /* Q5 qh: word i <- low half of qh of block i, word 4 + i <- high half */
        const int wq = (bs * (j & 3) + (f == FM_Q5_1 ? 4 : 2)) / 2 + ((j >> 2) & 1);
        iw[5][j] = (uint16_t)(f == FM_Q5_0 || f == FM_Q5_1 ? Q4X_W(wq) : 0);
    }
    #undef Q4X_W
    __m512i ix[10];
    for (int k = 0; k < 10; k++) ix[k] = _mm512_loadu_si512((const void *)iw[k]);
    q4x_act act[Q4X_CH];
    const uint8_t *av = a;
    for (int64_t c0 = 0; c0 < nsteps; c0 += Q4X_CH) {
        const int64_t ns = nsteps - c0 < Q4X_CH ? nsteps - c0 : Q4X_CH;
        const int64_t bl = nb - 4 * c0 < 4 * ns ? nb - 4 * c0 : 4 * ns; /* blocks in this chunk */
        const int64_t nfull = bl / 4;
        const int last = (int)(bl - 4 * nfull);
        for (int64_t j = 0; j < ns; j++) q4x_act_make(f, av + (4 * (c0 + j)) * abk, j < nfull ? 4 : last, &act[j]);
        const uint64_t base = (uint64_t)(4 * c0) * (uint64_t)bs;
        for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
            const uint8_t *p[4];
            const int nr = rows4(w, rb, r0, nrows, p);
            const uintptr_t nx = nsteps <= Q4X_CH ? next_group_any(w, rb, r0, nrows) : 0;
            __m512 acc = _mm512_setzero_ps();
            int64_t j = 0;
            for (; j < nfull; j++) {
                pf_span(nx, 16 * (uint64_t)bs, j);
                acc = q4x_step(f, p, base + (uint64_t)j * 4 * bs, 4, &act[j], ix, acc);
            }
            if (last) acc = q4x_step(f, p, base + (uint64_t)j * 4 * bs, last, &act[j], ix, acc);
            /* lane 4i + r -> y[r] */
            const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
            const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
            const __mmask8 m = (__mmask8)((1u << nr) - 1);
            if (c0) _mm_mask_storeu_ps(y + r0, m, _mm_add_ps(_mm_maskz_loadu_ps(m, y + r0), h4));
            else _mm_mask_storeu_ps(y + r0, m, h4);
        }
    }
}

static void gemv_q4_0(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_q4x(FM_Q4_0, w, rb, K, a, y, n); }
static void gemv_q4_1(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_q4x(FM_Q4_1, w, rb, K, a, y, n); }
static void gemv_q5_0(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_q4x(FM_Q5_0, w, rb, K, a, y, n); }
static void gemv_q5_1(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_q4x(FM_Q5_1, w, rb, K, a, y, n); }

static void gemv_q4_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(4, w, rb, K, a, y, n); }
static void gemv_q5_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(5, w, rb, K, a, y, n); }
static void gemv_q6_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(6, w, rb, K, a, y, n); }

const an_gemv_table an_gemv_table_avx512 = {.fn = {
    [AN_TYPE_F32] = gemv_f32,   [AN_TYPE_F16] = gemv_f16,   [AN_TYPE_BF16] = gemv_bf16,
    [AN_TYPE_Q4_0] = gemv_q4_0, [AN_TYPE_Q4_1] = gemv_q4_1, [AN_TYPE_Q5_0] = gemv_q5_0,
    [AN_TYPE_Q5_1] = gemv_q5_1, [AN_TYPE_Q8_0] = gemv_q8_0, [AN_TYPE_Q4_K] = gemv_q4_k,
    [AN_TYPE_Q5_K] = gemv_q5_k, [AN_TYPE_Q6_K] = gemv_q6_k,
}};
