/* backend.h — the small device interface every engine implements (cpu, amx; later ane,
 * ane-ref). The scheduler (src/sched) places each matmul op on the device with the least
 * predicted time; the model layer only ever sees this interface, never a concrete device.
 *
 * An op is one matmul or a fused group of matmuls that read the same activations (Q/K/V,
 * gate/up): Y_i = X · W_iᵀ for i < n_w. Devices may only support some weight formats, shapes or
 * batch sizes; run() may still answer AN_E_UNSUPPORTED ("not handled"), and the caller then
 * falls back to the CPU device. Kernels never own threads: run() gets the pool. */
#ifndef AN_BACKEND_H
#define AN_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/cpu/cpu.h"
#include "cache/cache.h"
#include "core/pool.h"
#include "core/status.h"

#define AN_OP_MAX_W 4

typedef struct an_op {
    const char *name;            /* "blk.3.qkv", "blk.3.ffn_down", "output" (plans print it) */
    const an_mat *w[AN_OP_MAX_W];/* weights; all share cols (K) */
    int n_w;
    int n;                       /* tokens in the batch */
    /* The whole SwiGLU FFN as one op: w = {gate, up, down}, one output
     * y = (silu(x·gateᵀ) * (x·upᵀ)) · downᵀ (outs[0] with outs[0].w = down). Only devices that
     * fuse it (the ANE: one program instead of two dispatches) support such ops. */
    bool ffn;
} an_op;

typedef struct an_device an_device;

typedef struct an_device_i {
    const char *name; /* "cpu", "amx", ... */
    /* Can this device run op? When not, *why (if non-NULL) gets a short static reason. */
    bool (*supports)(an_device *d, const an_op *op, const char **why);
    /* Predicted seconds for op. NULL: the scheduler's measured calibration of this device
     * (sched/sched.h) is used; a device with a published model (e.g. the ANE's dispatch floor
     * before it is measured) can supply its own. */
    double (*cost)(an_device *d, const an_op *op);
    /* Compile/repack one weight for this device (through the compile cache when the device has
     * one); idempotent. CPU: nothing to do. */
    an_status (*prepare)(an_device *d, const an_mat *w, an_err *err);
    /* Devices that compile whole ops rather than weights (the ANE: programs whose functions
     * are (op, prompt-length bucket up to op->n) pairs): when non-NULL, the loader calls this
     * instead of prepare() for each weight, once per op, then once with op == NULL to end the
     * batch (the device may compile the collected ops together). Idempotent. */
    an_status (*prepare_op)(an_device *d, const an_op *op, an_err *err);
    /* outs[i].y = x · op->w[i]ᵀ for n_w outputs; ws: an_device workspace (see wsize). */
    an_status (*run)(an_device *d, const an_op *op, const an_mm_out *outs, const float *x, an_pool *pool,
                     void *ws, an_err *err);
    /* Drop whatever prepare() or run() kept for w, whose memory is about to go away (the
     * scheduler's calibration weights); a device keys prepared weights by their data pointer,
     * which must never outlive the data. NULL: the device keeps nothing. */
    void (*forget)(an_device *d, const an_mat *w);
    /* Workspace bytes run() needs for up to n_max tokens of K <= k_max with nth threads. */
    size_t (*wsize)(an_device *d, int64_t k_max, int n_max, int nth);
    void (*sync)(an_device *d); /* wait for queued work (synchronous devices: no-op) */
    void (*free)(an_device *d);
    /* true: `--device NAME` makes this device the only offload engine but still places each op
     * by cost against the CPU (an ANE: decode stays on the CPU unless its cost model says
     * otherwise); false: forcing puts every op it supports on it. */
    bool forced_by_cost;
} an_device_i;

struct an_device {
    const an_device_i *i;
    void *ctx;
};

/* Adds to a compile-cache key everything of weight m that shapes what a device compiles from
 * it: its bytes, format and shape, and for palettized weights its tables, grouping and row
 * scales (backends/weight_key.c). Never a pointer: the prototype keyed by shape, then by
 * pointer, and served one layer's weights for another. */
void an_weight_key_add(an_cache_keyer *kb, const an_mat *m);

/* The CPU device (backends/cpu/cpu_device.c); NULL only if out of memory. */
an_device *an_cpu_device_create(void);

#endif
