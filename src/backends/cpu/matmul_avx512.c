/* AVX-512 instantiation of the matmul float kernels, plus row conversion. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define MM_SUFFIX avx512
#define MM_PR 32
#include "backends/cpu/matmul_body.inc"

void an_mm_f16_row_avx512(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* h[i] = f16(x[i]) (round to nearest even, as an_f32_to_f16), y[i] = f32(h[i]) */
void an_mm_round_f16_avx512(const float *x, uint16_t *h, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(h + i), v);
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(v));
    }
    for (; i < n; i++) {
        h[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        y[i] = _cvtsh_ss(h[i]);
    }
}
