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
