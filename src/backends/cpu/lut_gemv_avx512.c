/* lut_gemv_avx512.c — AVX-512 (F/BW/VL/DQ) LUT decode GEMV kernels.
 *
 * A LUT row is compute-heavy for its size (LUT6: 0.75 bytes per element against Q4_0's 0.56),
 * and the work per element is index extraction, a table lookup, a conversion and an FMA; the
 * lookups and shuffles all run on port 5, so the kernels are built to spend as few port-5
 * operations per element as possible:
 *   - LUT4: the 16-entry table is widened to fp32 once per row and looked up by VPERMPS, which
 *     reads only bits 3:0 of each dword lane; so a 64-byte load (128 indices) needs no masking
 *     or widening, only a shift per nibble position: dword lane k shifted right by 4s holds
 *     element 8k + s in its low nibble. 1 shift + 1 VPERMPS + 1 FMA per 16 elements.
 *   - LUT6: the 64-entry fp16 table is two zmm for VPERMT2W (6-bit word indices, upper bits
 *     ignored). 48 bytes (64 indices) are spread so that each dword holds bytes [b0 b1 b1 b2] of
 *     one 3-byte group (VPERMD then VPSHUFB); then its low word has e0 in bits 5:0 and e1 in
 *     11:6, its high word e2 in 9:4 and e3 in 15:10, so two VPSRLVW (shifts 0|4 and 6|10)
 *     give 32 word indices each; VCVTPH2PS widens the looked-up fp16 values. 2 + 4 + 4 + 2
 *     operations for 64 elements besides the FMAs (measured 11.6 G elements/s on one core from
 *     cache, against 7.0 for bf16 tables with VDPBF16PS).
 *   - LUT8: 32 indices widened to words (VPMOVZXBW); four VPERMT2W over the eight table zmm
 *     and three blends on bits 6 and 7.
 * LUT4 and LUT6 read the activations in the order their lookups produce elements (prep below
 * rewrites x once per token); LUT8 keeps row order. The tails of a row (fewer elements than a
 * block) run in scalar code, in row order (prep leaves them in place).
 * No load touches a byte outside the row: LUT6's 64-byte loads that would run past the row's
 * end are masked to the 48 bytes of the block; LUT8's tail load is masked. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/lut_gemv.h"
#include "core/fp16.h"
#include "quant/lut.h"

/* Software prefetch one page ahead of the row pointer. The kernels are compute-heavy for their
 * bytes, and the hardware streamer stops at every 4 KB page and ramps up again; prefetching
 * 4 KB ahead (every row is contiguous with the next) keeps the stream going across pages and
 * rows. Measured on LUT6, 2 threads, kernel / DRAM read in the same run: no prefetch 50-57%,
 * 1 KB ahead 58-60%, 2 KB 68-70%, 3-8 KB 73-79%. The address is formed as an integer: past
 * the matrix's end it is never dereferenced, and prefetches do not fault. */
static inline __attribute__((always_inline)) void pf_ahead(const uint8_t *p) {
    _mm_prefetch((const char *)((uintptr_t)p + 4096), _MM_HINT_T0);
}

/* ---- LUT4: 128 elements (64 bytes) per block ----------------------------------------------- */

/* xp[16s + k] = x[8k + s] within each 128-element block (s < 8, k < 16): the element the
 * shifted-by-4s lookup puts in lane k. */
static void prep_lut4(const float *x, float *xp, int64_t K) {
    int64_t b = 0;
    for (; b + 128 <= K; b += 128)
        for (int s = 0; s < 8; s++)
            for (int k = 0; k < 16; k++) xp[b + 16 * s + k] = x[b + 8 * k + s];
    for (; b < K; b++) xp[b] = x[b];
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT4 matrix, xp from prep_lut4 */
static void gemv_lut4(const an_mat *w, int64_t r0, int64_t nrows, const float *xp, float *y) {
    const int64_t K = w->cols, nb = K / 128;
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const __m512 T = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)an_lut_table(w, r)));
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *x = xp;
        for (int64_t b = 0; b < nb; b++, p += 64, x += 128) {
            pf_ahead(p);
            const __m512i v = _mm512_loadu_si512(p);
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, T), _mm512_loadu_ps(x), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), T), _mm512_loadu_ps(x + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 8), T), _mm512_loadu_ps(x + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 12), T), _mm512_loadu_ps(x + 48), a3);
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 16), T), _mm512_loadu_ps(x + 64), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 20), T), _mm512_loadu_ps(x + 80), a1);
            a2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 24), T), _mm512_loadu_ps(x + 96), a2);
            a3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 28), T), _mm512_loadu_ps(x + 112), a3);
        }
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        if (nb * 128 < K) { /* tail (K is even): row order */
            float t[16];
            _mm512_storeu_ps(t, T);
            for (int64_t k = nb * 128; k < K; k += 2, p++) acc += t[p[0] & 15] * x[k - nb * 128] + t[p[0] >> 4] * x[k + 1 - nb * 128];
        }
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

/* ---- LUT6: 64 elements (48 bytes) per block ------------------------------------------------- */

/* Within a 64-element block, word j (< 32) of a lookup holds group j/2's element 2*(j%2) (the
 * "A" indices) or 2*(j%2) + 1 ("B"); A's words 0..15 and 16..31, then B's, are widened and
 * FMA'd in that order. */
static void prep_lut6(const float *x, float *xp, int64_t K) {
    int64_t b = 0;
    for (; b + 64 <= K; b += 64)
        for (int j = 0; j < 32; j++) {
            const int e = 4 * (j / 2) + 2 * (j % 2);
            xp[b + j] = x[b + e];
            xp[b + 32 + j] = x[b + e + 1];
        }
    for (; b < K; b++) xp[b] = x[b];
}

/* one 64-element block: v holds its 48 bytes in bytes 0..47 */
#define LUT6_BLOCK(v, x)                                                                                     \
    do {                                                                                                     \
        const __m512i g_ = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(spread, (v)), dup);                 \
        const __m512i ia_ = _mm512_srlv_epi16(g_, sh_a), ib_ = _mm512_srlv_epi16(g_, sh_b);                 \
        const __m512i la_ = _mm512_permutex2var_epi16(T0, ia_, T1), lb_ = _mm512_permutex2var_epi16(T0, ib_, T1); \
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(la_)), _mm512_loadu_ps(x), a0);        \
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(la_, 1)), _mm512_loadu_ps((x) + 16), a1); \
        a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(lb_)), _mm512_loadu_ps((x) + 32), a2); \
        a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(lb_, 1)), _mm512_loadu_ps((x) + 48), a3); \
    } while (0)

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT6 matrix, xp from prep_lut6 */
static void gemv_lut6(const an_mat *w, int64_t r0, int64_t nrows, const float *xp, float *y) {
    const int64_t K = w->cols, nb = K / 64;
    const uint64_t rb = w->row_bytes;
    /* blocks whose 64-byte load stays inside the row (block b starts at byte 48b) */
    const int64_t nfast = rb >= 64 ? ((int64_t)rb - 64) / 48 + 1 < nb ? ((int64_t)rb - 64) / 48 + 1 : nb : 0;
    /* 128-bit lane k gets dwords 3k..3k+2 (bytes 12k..12k+11: groups 4k..4k+3) */
    const __m512i spread = _mm512_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11);
    /* dword g of a lane = bytes [3g, 3g+1, 3g+1, 3g+2] of the lane */
    const __m512i dup = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 10, 11));
    const __m512i sh_a = _mm512_set1_epi32(0 | 4 << 16), sh_b = _mm512_set1_epi32(6 | 10 << 16);
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * rb;
        const uint16_t *tab = an_lut_table(w, r);
        const __m512i T0 = _mm512_loadu_si512(tab), T1 = _mm512_loadu_si512(tab + 32);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *x = xp;
        int64_t b = 0;
        for (; b < nfast; b++, p += 48, x += 64) {
            pf_ahead(p);
            LUT6_BLOCK(_mm512_loadu_si512(p), x);
        }
        for (; b < nb; b++, p += 48, x += 64) LUT6_BLOCK(_mm512_maskz_loadu_epi8(0xFFFFFFFFFFFFull, p), x);
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (int64_t k = nb * 64; k < K; k += 4, p += 3, x += 4) { /* tail (K % 4 == 0): row order */
            const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
            acc += an_f16_to_f32(tab[v & 63]) * x[0] + an_f16_to_f32(tab[(v >> 6) & 63]) * x[1] +
                   an_f16_to_f32(tab[(v >> 12) & 63]) * x[2] + an_f16_to_f32(tab[v >> 18]) * x[3];
        }
        y[i] = acc * an_lut_row_scale(w, r);
    }
}
#undef LUT6_BLOCK

/* ---- LUT8: 32 elements (32 bytes) per block, row order -------------------------------------- */

/* the 32 fp16 table values for 32 byte indices in word lanes */
static inline __attribute__((always_inline)) __m512i lookup8(__m512i ix, const __m512i T[8]) {
    const __mmask32 k6 = _mm512_movepi16_mask(_mm512_slli_epi16(ix, 9)); /* bit 6 -> sign */
    const __mmask32 k7 = _mm512_movepi16_mask(_mm512_slli_epi16(ix, 8)); /* bit 7 -> sign */
    const __m512i q0 = _mm512_permutex2var_epi16(T[0], ix, T[1]), q1 = _mm512_permutex2var_epi16(T[2], ix, T[3]);
    const __m512i q2 = _mm512_permutex2var_epi16(T[4], ix, T[5]), q3 = _mm512_permutex2var_epi16(T[6], ix, T[7]);
    return _mm512_mask_blend_epi16(k7, _mm512_mask_blend_epi16(k6, q0, q1), _mm512_mask_blend_epi16(k6, q2, q3));
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT8 matrix, x in row order */
static void gemv_lut8(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols, nb = K / 32, rem = K % 32;
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        __m512i T[8];
        for (int t = 0; t < 8; t++) T[t] = _mm512_loadu_si512(tab + 32 * t);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2, p += 64) {
            pf_ahead(p);
            const __m512i l0 = lookup8(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)p)), T);
            const __m512i l1 = lookup8(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p + 32))), T);
            const float *xb = x + 32 * b;
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(l0)), _mm512_loadu_ps(xb), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(l0, 1)), _mm512_loadu_ps(xb + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(l1)), _mm512_loadu_ps(xb + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(l1, 1)), _mm512_loadu_ps(xb + 48), a3);
        }
        for (; b < nb; b++, p += 32) {
            const __m512i l0 = lookup8(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)p)), T);
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(l0)), _mm512_loadu_ps(x + 32 * b), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(l0, 1)), _mm512_loadu_ps(x + 32 * b + 16), a1);
        }
        if (rem) { /* masked: lanes past K look up index 0 and multiply it by x = 0 */
            const __mmask32 m = (__mmask32)((1ull << rem) - 1);
            const __m512i l0 = lookup8(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p)), T);
            const float *xb = x + 32 * nb;
            a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(l0)), _mm512_maskz_loadu_ps((__mmask16)m, xb), a2);
            a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(l0, 1)),
                                 _mm512_maskz_loadu_ps((__mmask16)(m >> 16), xb + 16), a3);
        }
        y[i] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) * an_lut_row_scale(w, r);
    }
}

const an_lut_kernels an_lut_table_avx512 = {
    .k = {{prep_lut4, gemv_lut4, true}, {prep_lut6, gemv_lut6, true}, {NULL, gemv_lut8, true}}};

/* ---- VBMI / VBMI2 (Ice Lake and later) ----------------------------------------------------
 * Measured here (8 independent chains): two-source word and byte permutes (VPERMT2W, VPERMI2B)
 * take 2 cycles each, against 1 for VPERMW, VPERMB, VPERMPS and VPERMT2PS; VCVTPH2PS costs
 * about one cycle per 16 elements plus an extract for the upper half. So:
 *   - LUT8: the fp16 table as two byte planes of 256 (four zmm each); VPERMI2B reads 7 index
 *     bits, so each plane is two lookups and a blend on bit 7 (VPMOVB2M), 64 bytes at a time
 *     with no widening of the indices; VPUNPCK{L,H}BW zip the planes into fp16 words.
 *     6.1 -> 10.0 GB/s per thread from cache (the base form needs four VPERMT2W per 32).
 *   - LUT6: integer products (below). A first VBMI form kept fp32 (fp32 hi/lo half tables
 *     joined by VPSHLDD) and gained only 3%: its four VPERMT2W per 64 ate the saving.
 * Selected at start-up where the CPU has both extensions (an_lut_kernel_variant). */
#define VBMI __attribute__((target("avx512vbmi,avx512vbmi2")))

/* LUT8, within a 64-element block: after the byte zip, 128-bit lane k of the low (high) word
 * vector holds elements 16k..16k+7 (16k+8..16k+15); widening its lower and upper 256 bits gives
 * lanes [0..7, 16..23], [32..39, 48..55] from the low vector and [8..15, 24..31], [40..47,
 * 56..63] from the high one. */
static void prep_lut8_vbmi(const float *x, float *xp, int64_t K) {
    static const int base[4][2] = {{0, 16}, {32, 48}, {8, 24}, {40, 56}};
    int64_t b = 0;
    for (; b + 64 <= K; b += 64)
        for (int q = 0; q < 4; q++)
            for (int j = 0; j < 16; j++) xp[b + 16 * q + j] = x[b + base[q][j / 8] + j % 8];
    for (; b < K; b++) xp[b] = x[b];
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT8 matrix, xp from prep_lut8_vbmi */
VBMI static void gemv_lut8_vbmi(const an_mat *w, int64_t r0, int64_t nrows, const float *xp, float *y) {
    const int64_t K = w->cols, nb = K / 64;
    const uint16_t *cur = NULL;
    __m512i P[8]; /* low-byte plane (4 zmm of 64 entries), then high-byte plane */
    for (int q = 0; q < 8; q++) P[q] = _mm512_setzero_si512();
    const __m512i lo_of = _mm512_set1_epi16(0x00ff);
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        if (tab != cur) { /* byte planes: packus of the low bytes / the high bytes of 64 entries */
            for (int q = 0; q < 4; q++) {
                const __m512i e0 = _mm512_loadu_si512(tab + 64 * q), e1 = _mm512_loadu_si512(tab + 64 * q + 32);
                const __m512i fix = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7); /* packus works per 128-bit lane */
                P[q] = _mm512_permutexvar_epi64(fix, _mm512_packus_epi16(_mm512_and_si512(e0, lo_of), _mm512_and_si512(e1, lo_of)));
                P[4 + q] = _mm512_permutexvar_epi64(fix, _mm512_packus_epi16(_mm512_srli_epi16(e0, 8), _mm512_srli_epi16(e1, 8)));
            }
            cur = tab;
        }
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *x = xp;
        for (int64_t b = 0; b < nb; b++, p += 64, x += 64) {
            pf_ahead(p);
            const __m512i v = _mm512_loadu_si512(p);
            const __mmask64 k7 = _mm512_movepi8_mask(v);
            const __m512i lo = _mm512_mask_blend_epi8(k7, _mm512_permutex2var_epi8(P[0], v, P[1]), _mm512_permutex2var_epi8(P[2], v, P[3]));
            const __m512i hi = _mm512_mask_blend_epi8(k7, _mm512_permutex2var_epi8(P[4], v, P[5]), _mm512_permutex2var_epi8(P[6], v, P[7]));
            const __m512i w0 = _mm512_unpacklo_epi8(lo, hi), w1 = _mm512_unpackhi_epi8(lo, hi);
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(w0)), _mm512_loadu_ps(x), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(w0, 1)), _mm512_loadu_ps(x + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(w1)), _mm512_loadu_ps(x + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(w1, 1)), _mm512_loadu_ps(x + 48), a3);
        }
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (int64_t k = nb * 64; k < K; k++, p++, x++) acc += an_f16_to_f32(tab[p[0]]) * x[0]; /* tail: row order */
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

/* ---- LUT6 with integer products (VBMI + VNNI) ---------------------------------------------
 * Every fp32 form spends most of its operations turning looked-up fp16 values into fp32 lanes.
 * Here the table is made integer instead: per group, t[v] = round(T[v] / s) with s = max|T| /
 * 8191 (14-bit signed; absolute error <= max|T| / 16382, ~250x below LUT6's own step for a
 * gaussian-like table), and the activations are int16 per 64-element block, q = round(x / d),
 * d = amax / 32767 (error <= 2^-16 of the block's amax). A looked-up word is then the weight
 * itself: VPDPWSSD multiplies 32 (t, q) word pairs and adds them into 16 int32 lanes, with no
 * conversion per element. Per lane and block: 4 products of at most 8191 * 32767 < 2^28, so
 * the int32 sum cannot overflow. Each block's lanes are converted once and scaled by d
 * (VCVTDQ2PS + FMA), and the row by s * row_scale at the end. 11 operations per 64 elements
 * against 20 for the fp32 form: 7.6 -> 12.4 GB/s on 2 threads, 4096x4096 (bench/
 * lut_gemv_bench.c, same run). The tail (K % 64) stays fp32 with the exact table. The price:
 * NMSE against an_lut_dot_ref ~1e-8 typical, ~1e-6 with a 40x outlier entry in a table
 * (an_lut_kernel.exact = false; tests/test_lut.c bounds it), against LUT6's own ~1e-3. */

/* prep output: q int16[nb*64] in prep_lut6's element order | d float[nb] | x tail float[K % 64] */
static void prep_lut6_i16(const float *x, float *xp, int64_t K) {
    const int64_t nb = K / 64;
    int16_t *q = (int16_t *)xp;
    float *d = (float *)(q + nb * 64), *tail = d + nb;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + 64 * b;
        float amax = 0.0f;
        for (int i = 0; i < 64; i++) amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        const float id = amax > 0.0f ? 32767.0f / amax : 0.0f;
        d[b] = amax / 32767.0f;
        for (int j = 0; j < 32; j++) {
            const int e = 4 * (j / 2) + 2 * (j % 2);
            q[64 * b + j] = (int16_t)lrintf(xb[e] * id);
            q[64 * b + 32 + j] = (int16_t)lrintf(xb[e + 1] * id);
        }
    }
    for (int64_t k = nb * 64; k < K; k++) tail[k - nb * 64] = x[k];
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT6 matrix, xp from prep_lut6_i16 */
VBMI static void gemv_lut6_i16(const an_mat *w, int64_t r0, int64_t nrows, const float *xp, float *y) {
    const int64_t K = w->cols, nb = K / 64;
    const uint64_t rb = w->row_bytes;
    const int64_t nfast = rb >= 64 ? ((int64_t)rb - 64) / 48 + 1 < nb ? ((int64_t)rb - 64) / 48 + 1 : nb : 0;
    const int16_t *q = (const int16_t *)xp;
    const float *dsc = (const float *)(q + nb * 64), *tail = dsc + nb;
    const __m512i place = _mm512_set_epi8(47, 46, 46, 45, 44, 43, 43, 42, 41, 40, 40, 39, 38, 37, 37, 36, 35, 34, 34, 33,
                                          32, 31, 31, 30, 29, 28, 28, 27, 26, 25, 25, 24, 23, 22, 22, 21, 20, 19, 19, 18,
                                          17, 16, 16, 15, 14, 13, 13, 12, 11, 10, 10, 9, 8, 7, 7, 6, 5, 4, 4, 3, 2, 1, 1, 0);
    const __m512i sh_a = _mm512_set1_epi32(0 | 4 << 16), sh_b = _mm512_set1_epi32(6 | 10 << 16);
    const uint16_t *cur = NULL;
    __m512i T0 = _mm512_setzero_si512(), T1 = T0;
    float s = 0.0f;
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * rb;
        const uint16_t *tab = an_lut_table(w, r);
        if (tab != cur) { /* the group's integer table and its scale */
            __m512 f[4];
            __m512 m = _mm512_setzero_ps();
            for (int g = 0; g < 4; g++) {
                f[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(tab + 16 * g)));
                m = _mm512_max_ps(m, _mm512_abs_ps(f[g]));
            }
            const float amax = _mm512_reduce_max_ps(m);
            s = amax / 8191.0f;
            const __m512 is = _mm512_set1_ps(amax > 0.0f ? 8191.0f / amax : 0.0f);
            __m512i t[4];
            for (int g = 0; g < 4; g++) t[g] = _mm512_cvtps_epi32(_mm512_mul_ps(f[g], is)); /* RNE, |t| <= 8191 */
            T0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(t[0])), _mm512_cvtepi32_epi16(t[1]), 1);
            T1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(t[2])), _mm512_cvtepi32_epi16(t[3]), 1);
            cur = tab;
        }
        __m512 f0 = _mm512_setzero_ps(), f1 = f0;
        const int16_t *qb = q;
#define LUT6I_BLOCK(v, b)                                                                                     \
    do {                                                                                                      \
        const __m512i g_ = _mm512_permutexvar_epi8(place, (v));                                               \
        const __m512i la_ = _mm512_permutex2var_epi16(T0, _mm512_srlv_epi16(g_, sh_a), T1);                   \
        const __m512i lb_ = _mm512_permutex2var_epi16(T0, _mm512_srlv_epi16(g_, sh_b), T1);                   \
        __m512i s_ = _mm512_dpwssd_epi32(_mm512_setzero_si512(), la_, _mm512_loadu_si512(qb));                \
        s_ = _mm512_dpwssd_epi32(s_, lb_, _mm512_loadu_si512(qb + 32));                                        \
        if ((b) & 1) f1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s_), _mm512_set1_ps(dsc[b]), f1);                \
        else f0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s_), _mm512_set1_ps(dsc[b]), f0);                        \
    } while (0)
        int64_t b = 0;
        for (; b < nfast; b++, p += 48, qb += 64) {
            pf_ahead(p);
            LUT6I_BLOCK(_mm512_loadu_si512(p), b);
        }
        for (; b < nb; b++, p += 48, qb += 64) LUT6I_BLOCK(_mm512_maskz_loadu_epi8(0xFFFFFFFFFFFFull, p), b);
#undef LUT6I_BLOCK
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(f0, f1)) * s;
        const float *x = tail;
        for (int64_t k = nb * 64; k < K; k += 4, p += 3, x += 4) { /* tail (K % 4 == 0): exact table */
            const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
            acc += an_f16_to_f32(tab[v & 63]) * x[0] + an_f16_to_f32(tab[(v >> 6) & 63]) * x[1] +
                   an_f16_to_f32(tab[(v >> 12) & 63]) * x[2] + an_f16_to_f32(tab[v >> 18]) * x[3];
        }
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

#undef VBMI

/* LUT4 has nothing to gain from VBMI (VPERMPS on the fp32 table is already one operation per
 * 16 elements); it shares the base kernel. */
const an_lut_kernels an_lut_table_avx512vbmi = {
    .k = {{prep_lut4, gemv_lut4, true}, {prep_lut6_i16, gemv_lut6_i16, false}, {prep_lut8_vbmi, gemv_lut8_vbmi, true}}};

/* VBMI and VBMI2 add no register state, so where AVX-512 is usable (core/cpu.c checked the OS
 * saves it) the cpuid bits are enough. */
int an_lut_avx512_has_vbmi(void) {
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2");
}
