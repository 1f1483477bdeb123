/* bridge.h — the only code that touches Apple frameworks: compiles a MIL program (text +
 * weight file, as mil/mil.h emits them) with the private AppleNeuralEngine framework, loads it,
 * and evaluates its functions on the Neural Engine through IOSurfaces (research/ane.md §1-§2).
 * Built on macOS only (bridge.m, Objective-C runtime calls, no private headers, `make macos`);
 * elsewhere (bridge_stub.c) an_ane_bridge_available() is false with the reason "not macOS" and
 * every call answers AN_E_UNSUPPORTED.
 *
 * NOT RUN ON APPLE HARDWARE BY THIS PROJECT: it is type-checked on Linux against minimal
 * declarations of the Apple C and Objective-C runtime functions it uses (.ci/bridge-check.sh);
 * its portable parts (budget, bounded waits, strides, self-test comparison, cache paths:
 * bridge/internal.h) are tested everywhere by the ane_bridge suite. See bridge/README.md.
 *
 * Every failure returns an an_status with a message saying which step failed and why (the
 * framework's NSError text when there is one); callers fall back to the CPU and say so. */
#ifndef AN_ANE_BRIDGE_H
#define AN_ANE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ane/mil/mil.h"
#include "core/status.h"

/* Is the framework there and usable (macOS, AppleNeuralEngine.framework loads, the classes and
 * selectors the bridge calls exist, no earlier call timed out)? *why gets a static reason when
 * not (why may be NULL). */
bool an_ane_bridge_available(const char **why);

/* One line for logs and bug reports: "macOS 15.1 (24B83), Apple M4 Pro, ANE H16G", or why the
 * bridge is not available. */
void an_ane_bridge_describe(char *buf, size_t cap);

/* Compiles made by this process so far; a compile past AN_ANE_COMPILE_BUDGET (mil/mil.h) is
 * refused with AN_E_UNSUPPORTED before it reaches the framework. Loading a program compiled
 * earlier (the persistent cache) does not count. */
int an_ane_bridge_compiles(void);

typedef struct an_ane_prog an_ane_prog;

/* A program to compile (or reuse from cache_dir, keyed by the framework's identifier, across
 * processes, guarded by flock) and load. io[fn] describes function fn's inputs and outputs,
 * each fp16 [io[fn].n][width] row-major (an_mil_program.io, mil/mil.h): input i binds to the
 * procedure's i-th input symbol in ascending index order (the emitter names I/O so that this is
 * declaration order, research/ane.md §2.4), outputs likewise.
 *
 * Known-answer self-test (required): before an_ane_prog_load returns, every function fn is
 * evaluated on ref_in[fn][i] (i < n_in) and its outputs are compared with ref_out[fn][j]
 * (j < n_out; the reference executor's fp16 outputs, ref/ref.h): element-wise
 * |ane - ref| <= tol_abs + tol_rel * |ref|, infinities equal, NaN only where ref is NaN. Any
 * mismatch fails the load (the message names function, output, row, column and both values). */
typedef struct an_ane_prog_desc {
    const char *mil; size_t mil_len;       /* MIL text (UTF-8) */
    const uint8_t *blob; size_t blob_len;  /* "@model_path/weights/weight.bin"; blob_len 0: none */
    int n_fns;                             /* 1 .. AN_ANE_BANK_MAX_FNS */
    const struct an_mil_io *io;            /* [n_fns] */
    const char *cache_dir;                 /* persistent directory for compiled models, or NULL */
    const uint16_t *const *const *ref_in;  /* [n_fns][n_in] -> fp16 [n][in_width[i]] */
    const uint16_t *const *const *ref_out; /* [n_fns][n_out] -> fp16 [n][out_width[j]] */
    float tol_abs, tol_rel;
} an_ane_prog_desc;

/* Compiles/loads d, builds one request per function with its IOSurfaces, runs the self-test.
 * The bridge copies what it keeps (MIL, weights, shapes); d's buffers may be freed afterwards.
 * Every wait is bounded (30 s per load/eval/unload, 300 s per compile; ANELM_ANE_TIMEOUT_S
 * overrides both); a timeout fails the call and disables the bridge for the rest of the
 * process (the driver is presumed wedged). *out is NULL on failure. */
an_status an_ane_prog_load(an_ane_prog **out, const an_ane_prog_desc *d, an_err *err);

/* Unloads (bounded wait), releases the surfaces and requests, deletes the staging directory.
 * NULL is a no-op. */
void an_ane_prog_free(an_ane_prog *p);

/* Evaluates function fn: in[i] / out[j] fp16 [n][width] row-major as described by io[fn]; the
 * bridge copies them to and from the IOSurfaces with the strides the compiled model reports
 * (or 64-byte-aligned rows when it reports none). One thread at a time per program; the bridge
 * serializes evaluations of all programs on one worker thread. */
an_status an_ane_prog_eval(an_ane_prog *p, int fn, const uint16_t *const *in, uint16_t *const *out, an_err *err);

/* What the load did, for logs: identifier, compiled or reused from the cache, where the
 * strides came from, surface form. Static text owned by p. */
const char *an_ane_prog_info(const an_ane_prog *p);

#endif
