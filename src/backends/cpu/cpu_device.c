/* cpu_device.c — the CPU as an an_device: every weight format, any shape, nothing to prepare.
 * It is the scheduler's fallback, so it never answers "not handled" (it declines only the
 * fused-FFN op, which the forward pass then runs as its two matmuls). */
#include <stdlib.h>

#include "backends/backend.h"

static bool cpu_supports(an_device *d, const an_op *op, const char **why) {
    (void)d;
    if (op->ffn && why) *why = "cpu: runs the FFN as its two matmuls";
    return !op->ffn; /* the fused FFN op is an engine's; the forward pass falls back to the halves */
}

static an_status cpu_prepare(an_device *d, const an_mat *w, an_err *err) {
    (void)d;
    (void)w;
    (void)err;
    return AN_OK; /* weights are used in place, from the mapped file */
}

static an_status cpu_run(an_device *d, const an_op *op, const an_mm_out *outs, const float *x, an_pool *pool,
                         void *ws, an_err *err) {
    (void)d;
    (void)err;
    an_cpu_matmul_multi(pool, outs, op->n_w, x, op->n, ws);
    return AN_OK;
}

static size_t cpu_wsize(an_device *d, int64_t k_max, int n_max, int nth) {
    (void)d;
    return an_cpu_matmul_wsize(k_max, n_max, nth);
}

static void cpu_sync(an_device *d) { (void)d; }
static void cpu_free(an_device *d) { free(d); }

static const an_device_i k_cpu = {
    .name = "cpu", .supports = cpu_supports, .cost = NULL, .prepare = cpu_prepare, .run = cpu_run,
    .wsize = cpu_wsize, .sync = cpu_sync, .free = cpu_free,
};

an_device *an_cpu_device_create(void) {
    an_device *d = calloc(1, sizeof *d);
    if (d) d->i = &k_cpu;
    return d;
}
