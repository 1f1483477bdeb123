/* ane.h — the Apple Neural Engine as an an_device (backends/backend.h), in two flavours that
 * share everything but the last step:
 *   "ane-ref"  every offloaded matmul runs as an emitted MIL program + Blob Storage v2 weight
 *              file through the reference MIL executor (ref/ref.h) with ANE numerics: runs on
 *              any machine, so Linux tests and users can check an ANE plan's numbers.
 *   "ane"      the same programs compiled and evaluated on the Neural Engine through the macOS
 *              bridge (bridge/bridge.h; not run on Apple hardware by this project).
 * One program per op (QKV, O, gate/up, down, LM head of each layer) with one function per
 * prompt-length bucket (32, 64, ... up to the context's batch size), so a model costs one
 * compile per op, not one per op and prompt length (the prototype's budget overrun). Programs
 * are stored in the compile cache by the content of their weights.
 *
 * Cost: the ANE's published figures (research/ane.md §5.4-5.5: a dispatch floor of ~100 µs
 * per evaluation, ~4 TFLOPS for one conv, weights streamed from DRAM), not this machine's
 * speed, so `--plan` shows what a Mac would do; `--device ane-ref` keeps decode on the CPU
 * unless that model says otherwise. */
#ifndef AN_ANE_H
#define AN_ANE_H

#include <stdbool.h>

#include "backends/ane/mil/mil.h"
#include "backends/backend.h"
#include "cache/cache.h"

typedef struct an_ane_params {
    bool hardware;        /* false: "ane-ref" (reference executor); true: "ane" (macOS bridge) */
    an_ane_family family; /* dimension caps and cost anchors */
    int n_max;            /* largest batch (tokens) a program must take: the context's -ub */
    an_cache *cache;      /* not owned; NULL: no compile cache */
} an_ane_params;

/* The family ANELM_ANE_FAMILY names ("m1".."m3" -> AN_ANE_M1_M3, "m4"/"m5" -> M4_PLUS;
 * default M4_PLUS, the seed's M4 Pro). */
an_ane_family an_ane_family_from_env(void);

/* NULL only if out of memory. The "ane" flavour is created even where the bridge is not
 * available; its supports() then says why (the scheduler falls back to the CPU). */
an_device *an_ane_device_create(const an_ane_params *p);

/* Predicted seconds for op on family f (the published model above); pure, for tests. */
double an_ane_cost_model(an_ane_family f, const an_op *op);

#endif
