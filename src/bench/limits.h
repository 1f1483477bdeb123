/* limits.h — this machine's measured ceilings (memory read bandwidth, vector FMA peak, AMX
 * peaks), the denominators `anelm bench` divides achieved speed by.
 *
 * Measuring takes several seconds, so results are cached in <an_cache_dir>/limits.json, keyed by
 * a machine id (CPU brand string, core count, format version): a key that differs means another
 * machine (or a changed measurement method) and triggers a new measurement.
 *
 * The machines this runs on are noisy shared VMs (research/machine.md): every figure is the
 * median of several runs, and 1-thread and N-thread runs alternate so that a burst of host load
 * hits both rather than one. */
#ifndef AN_BENCH_LIMITS_H
#define AN_BENCH_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bump when the measurement method or the file layout changes: old caches then re-measure. */
#define AN_LIMITS_VERSION 1

typedef struct an_limits {
    char key[192];        /* machine id the figures belong to (an_limits_machine_key) */
    int n_threads;        /* N of the *_n figures */
    double measured_at;   /* Unix time of the measurement */
    double seconds;       /* how long the measurement took */
    /* CPU time the measuring threads got / the wall time x threads they ran: well below 1 means
     * other processes competed and the figures are low. 0: unknown. */
    double cpu_share;
    /* Streaming read of a >= 1 GiB buffer, GB/s (1e9 bytes/s). */
    double mem_gbps_1, mem_gbps_n;
    /* Vector FP32 FMA peak, GFLOPS (an FMA counts 2 FLOP per lane). */
    char fma_isa[16];     /* "avx512", "avx2", "scalar" */
    double fma_gflops_1, fma_gflops_n;
    /* AMX tile peaks; absent (amx false) when the CPU lacks AMX or the OS refuses the tiles. */
    bool amx;
    char amx_note[160];   /* why AMX is absent, or empty */
    double amx_bf16_tflops_1, amx_bf16_tflops_n; /* TDPBF16PS */
    double amx_int8_tops_1, amx_int8_tops_n;     /* TDPBSSD */
} an_limits;

/* The machine id: "<cpu brand> | <n> cpus | limits v<AN_LIMITS_VERSION>". */
void an_limits_machine_key(char *buf, size_t cap);

/* Measures everything with 1 and n_threads threads (~10-20 s on a 2-vCPU machine). progress,
 * when non-NULL, receives a short line before each part (for a CLI's stderr). */
typedef void (*an_limits_progress_fn)(void *ud, const char *what);
#define AN_LIMITS_BUSY_SHARE 0.9 /* below this cpu_share, call the measurement disturbed */
an_status an_limits_measure(an_limits *out, int n_threads, an_limits_progress_fn progress, void *ud,
                            an_err *err);

/* JSON (one flat object) <-> struct. to_json returns the length it needed (snprintf-like). */
size_t an_limits_to_json(const an_limits *l, char *buf, size_t cap);
an_status an_limits_from_json(an_limits *out, const char *json, size_t len, an_err *err);

/* Reads / writes a cache file; save writes a temporary file next to it and renames it over the
 * old one, so a reader never sees a half-written file. */
an_status an_limits_load(an_limits *out, const char *path, an_err *err);
an_status an_limits_save(const an_limits *l, const char *path, an_err *err);

/* <an_cache_dir>/limits.json (create: make the directory). */
an_status an_limits_path(char *buf, size_t cap, int create, an_err *err);

/* The measurement an_limits_get runs when the cache cannot be used (injectable for tests). */
typedef an_status (*an_limits_measure_fn)(an_limits *out, int n_threads, void *ud, an_err *err);

/* Where an_limits_get's figures came from. A failure to save is not an error (the figures are
 * still good), but the caller should say so: the next run will measure again. */
typedef enum an_limits_source { AN_LIMITS_CACHED, AN_LIMITS_MEASURED, AN_LIMITS_UNSAVED } an_limits_source;

/* Loads the limits cached at path, or measures (and saves) them when the file is missing,
 * unreadable, for another machine key, or refresh is set. n_threads == 0 accepts a cache
 * measured with any thread count (measuring then uses all CPUs); n_threads > 0 also requires the
 * cache to have been measured with that many. measure NULL: an_limits_measure without progress.
 * *src (may be NULL) tells what happened. */
an_status an_limits_get(an_limits *out, const char *path, int n_threads, bool refresh,
                        an_limits_measure_fn measure, void *ud, an_limits_source *src, an_err *err);

/* The figures to divide by for a run with `threads` threads: the 1-thread ones for 1 thread,
 * otherwise the N-thread ones (the closest the cache has). */
double an_limits_mem_gbps(const an_limits *l, int threads);
double an_limits_fma_gflops(const an_limits *l, int threads);

/* The median of v[0..n), n >= 1: v is sorted in place; for even n, the mean of the middle two.
 * Every figure anelm's benchmarks report is one (also used by the programs in bench/). */
double an_bench_median(double *v, int n);

/* ---- ISA kernels (limits_<isa>.c; x86-64 only) ------------------------------------------- */
#if defined(__x86_64__)
/* Each returns a value derived from the work so the compiler cannot drop it. */
uint64_t an_lim_read_avx2(const void *p, size_t n);          /* n: multiple of 256 bytes */
float an_lim_fma_avx2(int64_t iters);     /* iters x 10 ymm FMAs = iters * 160 FLOP */
float an_lim_fma_avx512(int64_t iters);   /* iters x 12 zmm FMAs = iters * 384 FLOP */
/* AMX: the caller must hold XTILEDATA permission. iters x 4 tile ops, each 16x16x32 BF16 MACs
 * (16384 FLOP) or 16x16x64 INT8 MACs (32768 OP). */
float an_lim_amx_bf16(int64_t iters);
int32_t an_lim_amx_int8(int64_t iters);
#endif

#endif
