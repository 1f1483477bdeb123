/* lut_gemv_avx2.c — AVX2 (+FMA, F16C) LUT decode GEMV kernels, activations in row order.
 *
 * AVX2 has no word permutes and VPERMPS reaches only 8 entries, so:
 *   - LUT4: the 16-entry table widened to fp32 in two ymm; 8 nibbles of a dword go to the 8
 *     lanes by VPSRLVD, each lane looks up both halves (VPERMPS reads bits 2:0) and VBLENDVPS
 *     picks by bit 3 (shifted to the sign). 5 operations + 1 FMA per 8 elements.
 *   - LUT6 / LUT8: the table widened to fp32 on the stack (64 / 256 entries, L1-resident) and
 *     read by VGATHERDPS, 8 elements per gather; LUT6's 8 indices (6 bytes) are spread over
 *     the lanes by one 64-bit and one 32-bit variable shift.
 * Tails (fewer elements than a step) run in scalar code. No load reads outside the row. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/lut_gemv.h"
#include "core/fp16.h"
#include "quant/lut.h"

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the group's table in f32 (n entries) */
static inline void widen(const uint16_t *tab, float *t, int n) {
    for (int v = 0; v < n; v += 8) _mm256_storeu_ps(t + v, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(tab + v))));
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT4 matrix, x in row order */
static void gemv_lut4(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    const __m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tab));
        const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(tab + 8)));
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t k = 0;
        for (; k + 16 <= K; k += 16, p += 8) {
            uint32_t d0, d1;
            memcpy(&d0, p, 4);
            memcpy(&d1, p + 4, 4);
            const __m256i i0 = _mm256_srlv_epi32(_mm256_set1_epi32((int)d0), sh);
            const __m256i i1 = _mm256_srlv_epi32(_mm256_set1_epi32((int)d1), sh);
            const __m256 w0 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i0), _mm256_permutevar8x32_ps(hi, i0),
                                               _mm256_castsi256_ps(_mm256_slli_epi32(i0, 28)));
            const __m256 w1 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i1), _mm256_permutevar8x32_ps(hi, i1),
                                               _mm256_castsi256_ps(_mm256_slli_epi32(i1, 28)));
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k + 8), a1);
        }
        float acc = hsum8(_mm256_add_ps(a0, a1));
        for (; k < K; k += 2, p++) /* K is even */
            acc += an_f16_to_f32(tab[p[0] & 15]) * x[k] + an_f16_to_f32(tab[p[0] >> 4]) * x[k + 1];
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT6 matrix, x in row order */
static void gemv_lut6(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    const uint64_t rb = w->row_bytes;
    /* qword lane q gets the stream >> 12q (elements 2q, 2q+1 in bits 11:0); VPSHUFD copies its
     * low dword to both halves; then >> 0 | 6 per dword */
    const __m256i shq = _mm256_setr_epi64x(0, 12, 24, 36), shd = _mm256_setr_epi32(0, 6, 0, 6, 0, 6, 0, 6);
    const __m256i m63 = _mm256_set1_epi32(63);
    float t[64];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * rb, *end = p + rb;
        if (i == 0 || r % w->lut_group == 0) widen(an_lut_table(w, r), t, 64);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t k = 0;
        for (; k + 8 <= K; k += 8, p += 6) {
            uint64_t v = 0;
            memcpy(&v, p, p + 8 <= end ? 8 : 6); /* 8 indices are 6 bytes; read 8 where the row has them */
            __m256i ix = _mm256_srlv_epi64(_mm256_set1_epi64x((long long)v), shq);
            ix = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi32(ix, 0xA0), shd), m63);
            const __m256 wv = _mm256_i32gather_ps(t, ix, 4);
            if (k & 8) a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + k), a1);
            else a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + k), a0);
        }
        float acc = hsum8(_mm256_add_ps(a0, a1));
        for (; k < K; k += 4, p += 3) { /* K % 4 == 0 */
            const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
            acc += t[v & 63] * x[k] + t[(v >> 6) & 63] * x[k + 1] + t[(v >> 12) & 63] * x[k + 2] + t[v >> 18] * x[k + 3];
        }
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

/* see lut_gemv.h (an_lut_gemv_fn): rows [r0, r0+nrows) of a LUT8 matrix, x in row order */
static void gemv_lut8(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int64_t K = w->cols;
    float t[256];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        if (i == 0 || r % w->lut_group == 0) widen(an_lut_table(w, r), t, 256);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t k = 0;
        for (; k + 16 <= K; k += 16, p += 16) {
            const __m128i b = _mm_loadu_si128((const __m128i *)p);
            const __m256 w0 = _mm256_i32gather_ps(t, _mm256_cvtepu8_epi32(b), 4);
            const __m256 w1 = _mm256_i32gather_ps(t, _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b)), 4);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k + 8), a1);
        }
        float acc = hsum8(_mm256_add_ps(a0, a1));
        for (; k < K; k++, p++) acc += t[p[0]] * x[k];
        y[i] = acc * an_lut_row_scale(w, r);
    }
}

const an_lut_kernels an_lut_table_avx2 = {.k = {{NULL, gemv_lut4, true}, {NULL, gemv_lut6, true}, {NULL, gemv_lut8, true}}};
