/* gemv_x86.h — what the x86 GEMV kernels (gemv_avx2.c, gemv_avx512.c) share that does not
 * depend on the vector width: unaligned scalar reads, 4-row grouping and the software prefetch
 * of the next group. Included only by files compiled with F16C (both ISA files are). */
#ifndef AN_CPU_GEMV_X86_H
#define AN_CPU_GEMV_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float rdf32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline float h2f(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }

/* Pointers to rows r0..r0+3 (rows past nrows repeat the last real row); returns how many are real. */
AI int rows4(const void *w, uint64_t rb, int64_t r0, int64_t nrows, const uint8_t *p[4]) {
    const int64_t left = nrows - r0;
    const int nr = left < 4 ? (int)left : 4;
    for (int i = 0; i < 4; i++) p[i] = (const uint8_t *)w + (uint64_t)(r0 + (i < nr ? i : nr - 1)) * rb;
    return nr;
}

/* Software prefetch of the next 4-row group, spread evenly over the current pass: iteration
 * `it` touches the lines of bytes [it*span, (it+1)*span) of the next group (rows are contiguous,
 * so the group is 4*rb contiguous bytes). Short rows (e.g. 8192x2048 Q4_0: 1152 B) would
 * otherwise restart the hardware prefetcher's ramp-up at every group. Addresses are formed as
 * integers: they may run past the matrix on the last group, where prefetches are not issued. */
#ifndef AN_GEMV_PREFETCH
#define AN_GEMV_PREFETCH 1
#endif
AI void pf_span(uintptr_t next, uint64_t span, int64_t it) {
    if (!AN_GEMV_PREFETCH || !next) return;
    const uintptr_t s = next + (uintptr_t)((uint64_t)it * span);
    for (uint64_t o = 0; o < span + 63; o += 64) _mm_prefetch((const char *)(s + o), _MM_HINT_T1);
}
/* start of the next group, or 0 if there is none */
AI uintptr_t next_group(const void *w, uint64_t rb, int64_t r0, int64_t nrows) {
    /* Rows of a page or more keep the hardware prefetcher streaming on its own, and software
     * prefetches then only compete with demand misses (measured: F16 2048x8192 on 2 threads
     * 21 GB/s with them, 27-33 without); shorter rows restart it at every page, and prefetching
     * into L2 (T1, leaving L1's fill buffers to the loads) wins there. */
    if (rb >= 4096) return 0;
    return r0 + 4 < nrows ? (uintptr_t)w + (uintptr_t)((uint64_t)(r0 + 4) * rb) : 0;
}

#endif
