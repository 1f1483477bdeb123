/* internal.h — the portable parts of the ANE bridge: pure functions and POSIX helpers that
 * bridge.m uses and that the ane_bridge suite tests on every platform (budget.c, worker.c,
 * portable.c). No Apple headers. */
#ifndef AN_ANE_BRIDGE_INTERNAL_H
#define AN_ANE_BRIDGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ane/bridge/bridge.h"
#include "core/status.h"

/* ---- compile budget (budget.c) ---------------------------------------------------------- */
/* Takes one compile from the budget: when *counter < budget, increments it and returns true;
 * otherwise leaves it alone and returns false. Not atomic: the caller serializes. */
bool an_ane_budget_take(int *counter, int budget);

/* ---- bounded waits (worker.c) ----------------------------------------------------------- */
/* One worker thread that runs jobs one at a time; callers wait for their job with a timeout.
 * After a timeout the worker is "wedged": the job keeps running (it cannot be cancelled), and
 * every later call fails at once. */
typedef struct an_ane_worker an_ane_worker;
an_status an_ane_worker_start(an_ane_worker **out, an_err *err);
/* Runs fn(arg) on the worker and waits at most timeout_ms. AN_OK: fn has returned and arg is
 * the caller's again. Any failure: arg belongs to the worker, which calls release(arg) (at once
 * when fn never started, else after fn returns; release may be NULL). what names the job in
 * the message ("compile", ...). */
an_status an_ane_worker_run(an_ane_worker *w, void (*fn)(void *), void *arg, void (*release)(void *),
                            int timeout_ms, const char *what, an_err *err);
bool an_ane_worker_wedged(an_ane_worker *w);
/* Stops the thread and frees w; a wedged worker is detached and frees itself if its job ever
 * returns. NULL is a no-op. */
void an_ane_worker_stop(an_ane_worker *w);

/* ---- layouts and surfaces (portable.c) -------------------------------------------------- */
#define AN_ANE_MAX_EXTENT 65536         /* largest rows or width the bridge accepts */
#define AN_ANE_SURFACE_QUANTUM 65536    /* surfaces are multiples of 64 KiB, at least 64 KiB */

/* Bytes from one row (channel) to the next when the model reports no layout: width fp16
 * values rounded up to 64 bytes (research/ane.md §2.1). */
int64_t an_ane_default_stride(int64_t width);
/* Checks a layout the compiled model reported for a [rows][width] fp16 tensor (height: the
 * reported Height, 0 when absent) and returns the channel stride to write with: plane_stride
 * when reported (> 0), else row_stride. Refuses height > 1, strides that are odd, smaller than
 * width*2 or (plane) smaller than the row stride. */
an_status an_ane_layout_stride(int64_t rows, int64_t width, int64_t height, int64_t row_stride, int64_t plane_stride,
                               int64_t *stride, an_err *err);
/* Allocation for a surface holding rows channels of stride bytes: a multiple of 64 KiB, at
 * least 64 KiB (research/ane.md §2.3: small surfaces fail at eval). */
size_t an_ane_surface_bytes(int64_t rows, int64_t stride);
/* Copies fp16 [rows][width] between a packed array and a surface with the given stride. */
void an_ane_copy_in(uint8_t *dst, int64_t stride, const uint16_t *src, int64_t rows, int64_t width);
void an_ane_copy_out(uint16_t *dst, const uint8_t *src, int64_t stride, int64_t rows, int64_t width);

/* ---- known-answer self-test (portable.c) ------------------------------------------------ */
/* true when every got[i] matches want[i] (|got - want| <= tol_abs + tol_rel * |want|,
 * infinities equal, NaN only against NaN); else false with *bad = the first failing index. */
bool an_ane_fp16_close(const uint16_t *got, const uint16_t *want, size_t n, float tol_abs, float tol_rel,
                       size_t *bad);
/* Compares every output of function fn (shapes io) against the reference; the error names
 * function, output, row, column and both values. */
an_status an_ane_selftest_check(const struct an_mil_io *io, int fn, const uint16_t *const *got,
                                const uint16_t *const *want, float tol_abs, float tol_rel, an_err *err);
/* Validates a program description before anything reaches the framework (sizes, shapes,
 * reference arrays, tolerances). */
an_status an_ane_desc_check(const an_ane_prog_desc *d, an_err *err);

/* ---- files (portable.c) ----------------------------------------------------------------- */
/* A framework identifier usable as one path component: 1..200 of [0-9A-Za-z_-]. */
bool an_ane_ident_ok(const char *ident);
/* "<cache_dir>/ane/<os_build>/<ident>" into buf; os_build NULL or unusable becomes "unknown"
 * (only [0-9A-Za-z._-], at most 32). Fails (AN_E_USAGE / AN_E_RANGE) on a bad ident or a
 * path that does not fit. */
an_status an_ane_cache_path(char *buf, size_t cap, const char *cache_dir, const char *os_build, const char *ident,
                            an_err *err);
/* mkdir -p with mode 0700 for new directories. */
an_status an_ane_mkdir_p(const char *path, an_err *err);
/* Writes a whole file (created 0600, replaced if present). */
an_status an_ane_write_file(const char *path, const void *data, size_t len, an_err *err);
/* Deletes a directory tree (no symlinks followed). Missing is fine. */
an_status an_ane_rm_tree(const char *path, an_err *err);
/* Opens/creates path and takes an exclusive flock on it, polling for at most timeout_ms;
 * *fd gets the descriptor (close it to unlock). AN_E_RUNTIME when the wait runs out. */
an_status an_ane_lock_file(const char *path, int timeout_ms, int *fd, an_err *err);
void an_ane_unlock_file(int fd);

#endif
