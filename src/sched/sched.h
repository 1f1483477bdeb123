/* sched.h — placing each matmul op on the device with the least predicted time, from a cost
 * model measured on this machine, and recording why. Plans are plain data: tests assert them,
 * `anelm run --plan` prints them.
 *
 * The model issues a fixed list of op kinds per layer (QKV, O, gate/up, down) plus the LM head;
 * all layers have the same shapes, so a plan for a batch size n is one placement per op kind. */
#ifndef AN_SCHED_H
#define AN_SCHED_H

#include "backends/backend.h"

typedef enum an_op_kind { AN_OPK_QKV, AN_OPK_O, AN_OPK_GATE_UP, AN_OPK_DOWN, AN_OPK_OUTPUT, AN_OPK_COUNT } an_op_kind;
const char *an_op_kind_name(an_op_kind k);

#define AN_MAX_DEV 4

/* The measured speed of one device for one weight type: seconds per multiply-accumulate at a
 * few batch sizes (n = 1, 2, 4, ... 512), plus a fixed per-call overhead. */
#define AN_CALIB_NS 10
typedef struct an_calib {
    char device[16];
    uint32_t type;
    double overhead_s;            /* per call */
    double s_per_mac[AN_CALIB_NS]; /* at n = 1 << i */
} an_calib;

/* Predicted seconds for op on a device with calibration c (log-linear in n between points). */
double an_calib_cost(const an_calib *c, const an_op *op);

typedef struct an_placement {
    int dev;                     /* index into the scheduler's devices */
    double cost[AN_MAX_DEV];     /* predicted seconds per device; < 0: not supported */
    char cause[192];             /* why this device */
} an_placement;

typedef struct an_plan {
    int n;                       /* batch size the plan is for */
    an_placement op[AN_OPK_COUNT];
} an_plan;

typedef struct an_sched an_sched;

/* devices[0] must be the CPU device (the fallback). force: NULL or "auto" to choose by cost,
 * else a device name that every op is placed on when it supports the op (with the cause
 * "forced by --device"). The scheduler does not own the devices. */
an_status an_sched_create(an_sched **out, an_device *const *devices, int n_devices, const char *force,
                          an_pool *pool, an_err *err);
void an_sched_free(an_sched *s);
int an_sched_n_devices(const an_sched *s);
an_device *an_sched_device(const an_sched *s, int i);

/* Placement for op kind k at op->n tokens (memoized per (k, n)). */
const an_placement *an_sched_place(an_sched *s, an_op_kind k, const an_op *op);

/* Runs op where it was placed; if that device answers "not handled", runs it on the CPU and
 * says so once (loud fallback). */
an_status an_sched_run(an_sched *s, an_op_kind k, const an_op *op, const an_mm_out *outs, const float *x,
                       an_pool *pool, void *ws, an_err *err);

/* The calibration of device i for weight type t: loaded from <cache>/calib-v1.txt, or measured
 * now (a few matmuls of a synthetic 1024 x 2048 weight at n = 1 .. 512) and saved. Keyed by
 * the CPU, the thread count and the anelm version, so a new machine or release re-measures. */
an_status an_sched_calib(an_sched *s, int i, uint32_t t, const an_calib **out, an_err *err);

/* The device that runs the SwiGLU FFN of a layer as one fused op (an_op.ffn), or NULL: an
 * engine that supports the fused op (and is the forced one, under --device) and whose
 * predicted time for it beats that of the two halves (gate/up, down) where they are placed. */
an_device *an_sched_ffn_device(an_sched *s, const an_op *gate_up, const an_op *down);

/* Builds the plan for n tokens given one representative op per kind. */
void an_sched_plan(an_sched *s, const an_op ops[AN_OPK_COUNT], int n, an_plan *out);

/* Prints a plan ("op  device  predicted  cause" per op kind). */
void an_plan_print(const an_sched *s, const an_plan *p, const char *title, int n_layer, void *file);

#endif
