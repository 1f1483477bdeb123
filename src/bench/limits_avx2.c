/* limits_avx2.c — AVX2 microbenchmarks: streaming read and FP32 FMA peak (see limits.h). */
#include "bench/limits.h"

#include <immintrin.h>

/* Reads n bytes with 8 independent 32-byte loads per step, folded with XOR: the ALU work is far
 * below what the loads cost at DRAM speed, so the figure is the memory's, not the core's. */
uint64_t an_lim_read_avx2(const void *p, size_t n) {
    const __m256i *v = (const __m256i *)p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 8 <= n / 32; i += 8) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(v + i));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(v + i + 1));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(v + i + 2));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(v + i + 3));
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(v + i + 4));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(v + i + 5));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(v + i + 6));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(v + i + 7));
    }
    __m256i x = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t r[4];
    _mm256_storeu_si256((__m256i *)r, x);
    return r[0] ^ r[1] ^ r[2] ^ r[3];
}

/* 10 independent accumulators: FMA latency 4 x 2 ports needs 8 in flight; 10 leaves slack and
 * with the two operands still fits the 16 ymm registers, so nothing touches memory. The
 * recurrence acc = acc * a + b converges (a < 1), so values stay normal and finite. */
float an_lim_fma_avx2(int64_t iters) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f),
           c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f),
           c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f),
           c9 = _mm256_set1_ps(0.9f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b);
        c1 = _mm256_fmadd_ps(c1, a, b);
        c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b);
        c4 = _mm256_fmadd_ps(c4, a, b);
        c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b);
        c7 = _mm256_fmadd_ps(c7, a, b);
        c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(c8, c9));
    float r[8];
    _mm256_storeu_ps(r, s);
    return r[0] + r[1] + r[2] + r[3] + r[4] + r[5] + r[6] + r[7];
}
