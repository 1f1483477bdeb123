/* limits_avx512.c — AVX-512 FP32 FMA peak (see limits.h). */
#include "bench/limits.h"

#include <immintrin.h>

/* 12 independent zmm accumulators (latency 4 x 2 FMA ports = 8 needed in flight), all register
 * resident with the two operands. acc = acc * a + b converges, so no overflow or denormals. */
float an_lim_fma_avx512(int64_t iters) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    __m512 c0 = _mm512_set1_ps(0.00f), c1 = _mm512_set1_ps(0.05f), c2 = _mm512_set1_ps(0.10f),
           c3 = _mm512_set1_ps(0.15f), c4 = _mm512_set1_ps(0.20f), c5 = _mm512_set1_ps(0.25f),
           c6 = _mm512_set1_ps(0.30f), c7 = _mm512_set1_ps(0.35f), c8 = _mm512_set1_ps(0.40f),
           c9 = _mm512_set1_ps(0.45f), c10 = _mm512_set1_ps(0.50f), c11 = _mm512_set1_ps(0.55f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b);
        c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b);
        c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b);
        c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b);
        c11 = _mm512_fmadd_ps(c11, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}
