/* gemv_avx2.c — AVX2 + FMA + F16C decode GEMV kernels: y[r] = dot(W row r, a).
 *
 * Same plan as gemv_avx512.c (read its header): 4 rows per pass sharing the activation work
 * (a tail of 1..3 rows repeats the last real row in the unused slots, computed but not
 * stored), exact integer block sums, the float block scale broadcast and FMA'd into 8-lane
 * float accumulators, one horizontal reduction per row at the end.
 *
 * Without VNNI the integer dot product is VPMADDUBSW (u8 x s8 -> s16, adjacent pairs summed,
 * SATURATING) then VPMADDWD against ones (s16 pairs -> s32). Saturation cannot happen with the
 * operands used here: every unsigned operand is <= 128 and every signed one in [-128, 127]
 * except Q8_0/Q8_1/Q8_K activations (built with d = amax/127, so >= -127): |pair| <= 2*128*127
 * = 32512 < 32767 (Q8_0 sign trick, 128*|a|), 2*63*128 (Q6_K codes), 2*31*128 (Q5), 2*15*128.
 *
 * Only unaligned loads; no load touches a byte outside the rows / activation. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "backends/cpu/gemv_x86.h"
#include "core/fp16.h"
#include "quant/quant.h"

/* horizontal sum of 8 floats */
AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI void store4(float *y, int nr, __m256 c0, __m256 c1, __m256 c2, __m256 c3, const float t[4]) {
    y[0] = hsum8(c0) + t[0];
    if (nr > 1) y[1] = hsum8(c1) + t[1];
    if (nr > 2) y[2] = hsum8(c2) + t[2];
    if (nr > 3) y[3] = hsum8(c3) + t[3];
}

/* ========================================================================================== */
/* Float formats: 8 elements per step, the K % 8 tail in scalar.                              */

AI __m256 ld_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)(const void *)p); }
AI __m256 ld_f16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const void *)p)); }
/* bf16 -> f32 is exact: the bf16 bits are the top half of the f32 */
AI __m256 ld_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)p)), 16));
}
AI float el_f32(const uint8_t *p) { return rdf32(p); }
AI float el_f16(const uint8_t *p) { return h2f(p); }
AI float el_bf16(const uint8_t *p) { return an_bf16_to_f32(rd16(p)); }

/* y[r] = sum_k W[r][k] a[k]; W: nrows x K elements of ES bytes (row stride rb), a: K of the same
 * type, converted per step and shared by the 4 rows. */
#define FLOAT_GEMV(NAME, LD, EL, ES)                                                               \
    static void NAME(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) { \
        const uint8_t *av = a;                                                                     \
        for (int64_t r0 = 0; r0 < nrows; r0 += 4) {                                                \
            const uint8_t *p[4];                                                                   \
            const int nr = rows4(w, rb, r0, nrows, p);                                             \
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;                            \
            const uintptr_t nx = next_group(w, rb, r0, nrows);                                     \
            int64_t k = 0;                                                                         \
            for (; k + 8 <= K; k += 8) {                                                           \
                if (k % 16 == 0) pf_span(nx, 4 * 16 * ES, k / 16);                                 \
                const __m256 x = LD(av + ES * k);                                                  \
                c0 = _mm256_fmadd_ps(LD(p[0] + ES * k), x, c0);                                    \
                c1 = _mm256_fmadd_ps(LD(p[1] + ES * k), x, c1);                                    \
                c2 = _mm256_fmadd_ps(LD(p[2] + ES * k), x, c2);                                    \
                c3 = _mm256_fmadd_ps(LD(p[3] + ES * k), x, c3);                                    \
            }                                                                                      \
            float t[4] = {0, 0, 0, 0};                                                             \
            for (; k < K; k++) {                                                                   \
                const float x = EL(av + ES * k);                                                   \
                for (int i = 0; i < 4; i++) t[i] += EL(p[i] + ES * k) * x;                         \
            }                                                                                      \
            store4(y + r0, nr, c0, c1, c2, c3, t);                                                 \
        }                                                                                          \
    }
FLOAT_GEMV(gemv_f32, ld_f32, el_f32, 4)
FLOAT_GEMV(gemv_f16, ld_f16, el_f16, 2)
FLOAT_GEMV(gemv_bf16, ld_bf16, el_bf16, 2)

/* ========================================================================================== */
/* 32-element block formats, one block per step (one 256-bit register = 32 codes).
 *
 * Integer block sum S as 8 int32 lanes, acc += float(S) * (dw * da) broadcast.
 *   Q8_0 (sign trick): VPMADDUBSW needs one unsigned operand, so use |w| (u8, 0..128) and
 *        a * sign(w) (s8; VPSIGNB also zeroes a where w = 0): |w| * (sign(w) a) = w a.
 *   Q4_0 / Q5_0 (offset): the stored codes are q + 8 / q + 16, unsigned already; then
 *        sum (q+o) a = sum q a + o sum a, and o sum a (as s16 pair sums of the constant o
 *        against a) is computed once per activation block and subtracted for all 4 rows.
 *   Q4_1 / Q5_1: codes are unsigned q with x = q dw + m, so sum x (da a) = dw da S + m s where
 *        s = da sum a is stored in the Q8_1 block: one scalar FMA per row and block. */

enum { FM_Q4_0, FM_Q4_1, FM_Q5_0, FM_Q5_1, FM_Q8_0 };

AI int wbs(int f) { return f == FM_Q4_0 ? 18 : f == FM_Q4_1 ? 20 : f == FM_Q5_0 ? 22 : f == FM_Q5_1 ? 24 : 34; }
AI int wqh(int f) { return f == FM_Q5_0 ? 2 : 4; }
AI int wqs(int f) { return f == FM_Q4_0 ? 2 : f == FM_Q4_1 ? 4 : f == FM_Q5_0 ? 6 : f == FM_Q5_1 ? 8 : 2; }
AI int wbias(int f) { return f == FM_Q4_0 ? 8 : f == FM_Q5_0 ? 16 : 0; }
AI int has_min(int f) { return f == FM_Q4_1 || f == FM_Q5_1; }

/* 32 bytes, byte e = 16 if bit e of the LE u32 h is set, else 0 */
AI __m256i bits_to_16(uint32_t h) {
    const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                         3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), idx), sel);
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, sel), _mm256_set1_epi8(16));
}

/* The s16 pair sums of one block's (codes x activation) as VPMADDUBSW gives them. */
AI __m256i block_pairs(int f, const uint8_t *x, __m256i aq) {
    if (f == FM_Q8_0) {
        const __m256i wq = _mm256_loadu_si256((const void *)(x + 2));
        return _mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));
    }
    /* qs in both 128-bit lanes, the upper one shifted right by 4: after & 0x0F the low lane
     * holds the low nibbles (elements 0..15), the high lane the high nibbles (16..31) */
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(x + wqs(f))));
    __m256i c = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
    if (f == FM_Q5_0 || f == FM_Q5_1) c = _mm256_or_si256(c, bits_to_16(rd32(x + wqh(f))));
    return _mm256_maddubs_epi16(c, aq);
}

/* y[r] = dot(W row r, a); W: nrows rows of K/32 blocks of format f, a: K/32 Q8_0/Q8_1 blocks */
AI void gemv_b32(int f, const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {
    const int64_t nb = K / 32;
    const int bs = wbs(f), ab = has_min(f) ? 36 : 34, aqo = has_min(f) ? 4 : 2, o = wbias(f);
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *av = a;
    for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
        const uint8_t *p[4];
        const int nr = rows4(w, rb, r0, nrows, p);
        __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        float t[4] = {0, 0, 0, 0};
        const uintptr_t nx = next_group(w, rb, r0, nrows);
        for (int64_t b = 0; b < nb; b++) {
            pf_span(nx, 4 * (uint64_t)bs, b);
            const uint8_t *y8 = av + b * ab;
            const __m256i aq = _mm256_loadu_si256((const void *)(y8 + aqo));
            /* o * (a_2i + a_2i+1) as s16, shared by the rows (|.| <= 2*16*128) */
            const __m256i off = o ? _mm256_maddubs_epi16(_mm256_set1_epi8((char)o), aq) : _mm256_setzero_si256();
            const float da = h2f(y8), sa = has_min(f) ? h2f(y8 + 2) : 0.f;
            for (int i = 0; i < 4; i++) { /* unrolled by the compiler: constant trip count, always_inline */
                const uint8_t *x = p[i] + b * bs;
                __m256i pr = block_pairs(f, x, aq);
                if (o) pr = _mm256_sub_epi16(pr, off); /* (q+o)a - oa = qa; |.| stays < 2^15 */
                const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(pr, ones));
                c[i] = _mm256_fmadd_ps(s, _mm256_set1_ps(h2f(x) * da), c[i]);
                if (has_min(f)) t[i] += h2f(x + 2) * sa;
            }
        }
        store4(y + r0, nr, c[0], c[1], c[2], c[3], t);
    }
}

#define B32(NAME, F)                                                                               \
    static void NAME(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { \
        gemv_b32(F, w, rb, K, a, y, n);                                                            \
    }
B32(gemv_q4_0, FM_Q4_0)
B32(gemv_q4_1, FM_Q4_1)
B32(gemv_q5_0, FM_Q5_0)
B32(gemv_q5_1, FM_Q5_1)
B32(gemv_q8_0, FM_Q8_0)

/* ========================================================================================== */
/* K-quants against Q8_K (292 B: d f32 @0, qs[256] @4, bsums[16] i16 @260).
 *
 * Integer part sum_s sc_s (q.a)_s: VPMADDUBSW (codes x a -> s16 pairs) then VPMADDWD against the
 * sub-block's scale broadcast to all words (s16 x s16 pairs -> exact int32), added into one
 * int32 accumulator per row and super-block. Min / offset terms from Q8_K's bsums. */

/* Q4_K/Q5_K 6-bit scales and mins as bytes sc[0..7], m[0..7] (layout in quant_k.c): bytes 0..3
 * hold sc[0..3] (low 6 bits) and the top 2 bits of sc[4..7]; bytes 4..7 the same for m; bytes
 * 8..11 the low 4 bits of sc[4..7] (low nibble) and m[4..7] (high nibble). */
AI void k4_unpack(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    const uint32_t u0 = rd32(s), u1 = rd32(s + 4), u2 = rd32(s + 8);
    const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4;
    const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4;
    *sc = (uint64_t)(u0 & 0x3f3f3f3fu) | (uint64_t)sc_hi << 32;
    *mn = (uint64_t)(u1 & 0x3f3f3f3fu) | (uint64_t)m_hi << 32;
}

/* Q4_K (144 B: d, dmin f16 @0,2; scales[12] @4; qs[128] @16), Q5_K (qh[32] @16, qs[128] @48).
 * Chunk c = qs[32c..32c+31]: low nibbles = elements 64c..+31 (sub-block 2c), high nibbles =
 * 64c+32..+63 (sub-block 2c+1). Q5_K: bit 4 of element 32s + l is bit s of qh[l].
 * dot = d dy sum_s sc_s (q.a)_s - dmin dy sum_s m_s (bsums[2s] + bsums[2s+1]). */
AI void row_k45(int q5, const uint8_t *x, const uint8_t *yk, __m128i bs16, float dy, __m256 *acc) {
    uint64_t sc, mn;
    k4_unpack(x + 4, &sc, &mn);
    /* the 8 scales as s16 words in both 128-bit lanes; VPSHUFB with bytes (2s, 2s+1) repeated
     * broadcasts scale s to every word */
    const __m256i scw = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    const uint8_t *qs = x + (q5 ? 48 : 16);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qh = q5 ? _mm256_loadu_si256((const void *)(x + 16)) : _mm256_setzero_si256();
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const void *)(qs + 32 * c));
        for (int k = 0; k < 2; k++) {
            const int s = 2 * c + k;
            __m256i q = _mm256_and_si256(k ? _mm256_srli_epi16(v, 4) : v, m4);
            if (q5) {
                const __m256i bit = _mm256_set1_epi8((char)(1 << s));
                q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit),
                                                        _mm256_set1_epi8(16)));
            }
            const __m256i aq = _mm256_loadu_si256((const void *)(yk + 4 + 32 * s));
            const __m256i sv = _mm256_shuffle_epi8(scw, _mm256_set1_epi16((short)(2 * s | (2 * s + 1) << 8)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q, aq), sv));
        }
    }
    const __m128i msum = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), bs16);
    const float d = h2f(x) * dy, dmin = h2f(x + 2) * dy;
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d), *acc);
    *acc = _mm256_fmadd_ps(_mm256_zextps128_ps256(_mm_cvtepi32_ps(msum)), _mm256_set1_ps(-dmin), *acc);
}

/* Q6_K (210 B: ql[128] @0, qh[64] @128, scales[16] s8 @192, d f16 @208). Element 128h + 32t + l:
 * low 4 bits from ql[64h + 32(t&1) + l] (low nibble t < 2, high nibble t >= 2), high 2 bits
 * = bits 2t..2t+1 of qh[32h + l], moved to bits 4..5 by a 16-bit shift and & 0x30 (bits
 * shifted in from the neighbouring byte land outside 0x30 for the shifts used: <<4, <<2, >>2).
 * Codes are q + 32 (0..63, unsigned); the offset returns as 32 sum_s sc_s bsums_s. One t-chunk
 * covers sub-blocks 8h+2t (low 128-bit lane) and 8h+2t+1 (high lane): their scales are put in
 * the words by a VPSHUFB of the scale bytes (byte b into both bytes of each word) and an
 * arithmetic shift right by 8 (sign-extends b). */
AI void row_q6k(const uint8_t *x, const uint8_t *yk, __m256i bsums, float dy, __m256 *acc) {
    const __m128i sc8 = _mm_loadu_si128((const void *)(x + 192));
    const __m256i scb = _mm256_broadcastsi128_si256(sc8);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i ql0 = _mm256_loadu_si256((const void *)(x + 64 * h));
        const __m256i ql1 = _mm256_loadu_si256((const void *)(x + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const void *)(x + 128 + 32 * h));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        for (int t = 0; t < 4; t++) {
            const int s = 8 * h + 2 * t;
            const __m256i aq = _mm256_loadu_si256((const void *)(yk + 4 + 128 * h + 32 * t));
            const __m256i sv = _mm256_srai_epi16(
                _mm256_shuffle_epi8(scb, _mm256_set_m128i(_mm_set1_epi8((char)(s + 1)), _mm_set1_epi8((char)s))), 8);
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[t], aq), sv));
        }
    }
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bsums), 5);
    isum = _mm256_sub_epi32(isum, corr);
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(x + 208) * dy), *acc);
}

/* y[r] = dot(W row r, a); W: nrows rows of K/256 super-blocks, a: K/256 Q8_K blocks */
AI void gemv_k(int kind, const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t nrows) {
    const int64_t nb = K / 256;
    const int bs = kind == 4 ? 144 : kind == 5 ? 176 : 210;
    const uint8_t *av = a;
    for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
        const uint8_t *p[4];
        const int nr = rows4(w, rb, r0, nrows, p);
        __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const uintptr_t nx = next_group(w, rb, r0, nrows);
        for (int64_t b = 0; b < nb; b++) {
            pf_span(nx, 4 * (uint64_t)bs, b);
            const uint8_t *yk = av + b * 292;
            const float dy = rdf32(yk);
            const __m256i bsums = _mm256_loadu_si256((const void *)(yk + 260));
            if (kind == 6) {
                for (int i = 0; i < 4; i++) row_q6k(p[i] + b * bs, yk, bsums, dy, &c[i]);
            } else {
                /* sums of 32 (bsums[2s] + bsums[2s+1], |.| <= 4096) as 8 s16 words, shared */
                const __m256i s32 = _mm256_madd_epi16(bsums, _mm256_set1_epi16(1));
                const __m128i bs16 = _mm_packs_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
                for (int i = 0; i < 4; i++) row_k45(kind == 5, p[i] + b * bs, yk, bs16, dy, &c[i]);
            }
        }
        const float t[4] = {0, 0, 0, 0};
        store4(y + r0, nr, c[0], c[1], c[2], c[3], t);
    }
}

static void gemv_q4_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(4, w, rb, K, a, y, n); }
static void gemv_q5_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(5, w, rb, K, a, y, n); }
static void gemv_q6_k(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { gemv_k(6, w, rb, K, a, y, n); }

const an_gemv_table an_gemv_table_avx2 = {.fn = {
    [AN_TYPE_F32] = gemv_f32,   [AN_TYPE_F16] = gemv_f16,   [AN_TYPE_BF16] = gemv_bf16,
    [AN_TYPE_Q4_0] = gemv_q4_0, [AN_TYPE_Q4_1] = gemv_q4_1, [AN_TYPE_Q5_0] = gemv_q5_0,
    [AN_TYPE_Q5_1] = gemv_q5_1, [AN_TYPE_Q8_0] = gemv_q8_0, [AN_TYPE_Q4_K] = gemv_q4_k,
    [AN_TYPE_Q5_K] = gemv_q5_k, [AN_TYPE_Q6_K] = gemv_q6_k,
}};
