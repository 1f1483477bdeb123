/* bench_util.h — what the benchmark programs in bench/ share: a fixed-seed generator, the
 * calling thread's CPU time, and a streaming read of DRAM to measure kernels against. Medians
 * come from the library (an_bench_median, src/bench/limits.h). Header-only: each program is
 * one translation unit built on its own (see its first comment). */
#ifndef AN_BENCH_UTIL_H
#define AN_BENCH_UTIL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

/* xorshift64, the same sequence in every program and run */
static uint64_t bench_rng = 88172645463325252ull;
static inline uint32_t bench_rnd_u32(void) {
    bench_rng ^= bench_rng << 13, bench_rng ^= bench_rng >> 7, bench_rng ^= bench_rng << 17;
    return (uint32_t)(bench_rng >> 32);
}
/* uniform in [-0.5, 0.5) */
static inline float bench_rnd(void) { return (float)(bench_rnd_u32() >> 8) / 16777216.0f - 0.5f; }

/* CPU time of the calling thread, seconds */
static inline double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Streaming read of n u64 at p, as an an_pool job: each thread reads its share as 4
 * concurrent sequential streams (the GEMV kernels read 4 rows at a time, so a single-stream
 * loop would understate what DRAM delivers to them) with 16-byte loads into 8 independent
 * accumulators (not a latency chain); the result goes to sink so the reads stay. */
typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sink[8];
} bench_read_job;
typedef uint64_t bench_v2u64 __attribute__((vector_size(16)));
static inline void bench_read_fn(void *arg, int ith, int nth) {
    bench_read_job *j = arg;
    const size_t lo = j->n * (size_t)ith / (size_t)nth, hi = j->n * (size_t)(ith + 1) / (size_t)nth;
    const size_t q = (hi - lo) / 4 / 8 * 8; /* u64 per stream, a multiple of 8 */
    const uint64_t *s0 = j->p + lo, *s1 = s0 + q, *s2 = s1 + q, *s3 = s2 + q;
    bench_v2u64 a[8] = {{0, 0}};
    for (size_t i = 0; i < q; i += 4) {
        bench_v2u64 x[8];
        memcpy(&x[0], s0 + i, 32), memcpy(&x[2], s1 + i, 32), memcpy(&x[4], s2 + i, 32), memcpy(&x[6], s3 + i, 32);
        for (int k = 0; k < 8; k++) a[k] += x[k];
    }
    uint64_t r = 0;
    for (int k = 0; k < 8; k++) r ^= a[k][0] ^ a[k][1];
    j->sink[ith & 7] += r;
}

#endif
