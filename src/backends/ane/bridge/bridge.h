/* bridge.h — the only code that touches Apple frameworks: compiles a MIL program (text +
 * weight file, as mil/mil.h emits them) with the private AppleNeuralEngine framework, loads it,
 * and evaluates its functions on the Neural Engine through IOSurfaces (research/ane.md §1-§2).
 * Built on macOS only (bridge.m, Objective-C runtime calls, no private headers); elsewhere
 * an_ane_bridge_available() is false and every call answers AN_E_UNSUPPORTED.
 *
 * NOT RUN ON APPLE HARDWARE BY THIS PROJECT: it is type-checked on Linux against minimal
 * declarations of the Apple C and Objective-C runtime functions it uses (.ci/bridge-check). */
#ifndef AN_ANE_BRIDGE_H
#define AN_ANE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Is the framework there and usable? *why gets a static reason when not. */
bool an_ane_bridge_available(const char **why);

/* Compiles made by this process so far; a compile past AN_ANE_COMPILE_BUDGET (mil/mil.h) is
 * refused with AN_E_UNSUPPORTED before it reaches the framework. */
int an_ane_bridge_compiles(void);

typedef struct an_ane_prog an_ane_prog;

/* Compiles (or reuses from cache_dir, keyed by the framework's identifier, across processes)
 * and loads a program; runs a known-answer self-test of every function against ref_out (the
 * reference executor's fp16 outputs for ref_in) before returning. Every wait is bounded. */
typedef struct an_ane_prog_desc {
    const char *mil; size_t mil_len;
    const uint8_t *blob; size_t blob_len;
    int n_fns;
    const char *cache_dir;     /* persistent directory for compiled models, or NULL */
} an_ane_prog_desc;
an_status an_ane_prog_load(an_ane_prog **out, const an_ane_prog_desc *d, an_err *err);
void an_ane_prog_free(an_ane_prog *p);

/* Evaluates function fn: inputs/outputs fp16 [rows][width] row-major; the bridge copies them
 * to and from IOSurfaces with the strides the compiled model reports. */
an_status an_ane_prog_eval(an_ane_prog *p, int fn, const uint16_t *const *in, uint16_t *const *out, an_err *err);

#endif
