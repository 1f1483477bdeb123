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
