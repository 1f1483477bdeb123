/* AVX2+FMA instantiation of the matmul float kernels, plus F16C row conversion. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define MM_SUFFIX avx2
#define MM_PR 16
#include "backends/cpu/matmul_body.inc"

void an_mm_f16_row_avx2(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* h[i] = f16(x[i]) (round to nearest even, as an_f32_to_f16), y[i] = f32(h[i]) */
void an_mm_round_f16_avx2(const float *x, uint16_t *h, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(h + i), v);
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(v));
    }
    for (; i < n; i++) {
        h[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        y[i] = _cvtsh_ss(h[i]);
    }
}
