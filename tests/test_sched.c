/* test_sched.c — plans are data: placement by predicted cost, forcing, fallbacks, memoization,
 * and the calibrated cost model's interpolation. Uses mock devices with known costs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "t.h"

/* A mock engine: fixed overhead + per-MAC time; supports only batches >= min_n. */
typedef struct {
    const char *name;
    double overhead, per_mac;
    int min_n;
    int runs;
    bool refuse_run; /* answers "not handled" at run time */
} mock;

static bool m_supports(an_device *d, const an_op *op, const char **why) {
    mock *m = d->ctx;
    if (op->n < m->min_n) {
        if (why) *why = "batch too small";
        return false;
    }
    return true;
}
static double m_cost(an_device *d, const an_op *op) {
    mock *m = d->ctx;
    double macs = 0;
    for (int i = 0; i < op->n_w; i++) macs += (double)op->w[i]->rows * op->w[i]->cols;
    return m->overhead + macs * op->n * m->per_mac;
}
static an_status m_prepare(an_device *d, const an_mat *w, an_err *err) { (void)d; (void)w; (void)err; return AN_OK; }
static an_status m_run(an_device *d, const an_op *op, const an_mm_out *outs, const float *x, an_pool *pool, void *ws,
                       an_err *err) {
    mock *m = d->ctx;
    (void)op; (void)outs; (void)x; (void)pool; (void)ws;
    m->runs++;
    return m->refuse_run ? an_err_set(err, AN_E_UNSUPPORTED, "%s: not handled", m->name) : AN_OK;
}
static size_t m_wsize(an_device *d, int64_t k, int n, int nth) { (void)d; (void)k; (void)n; (void)nth; return 0; }
static void m_sync(an_device *d) { (void)d; }
static void m_free(an_device *d) { (void)d; }

#define MOCK_I(NAME)                                                                              \
    {.name = NAME, .supports = m_supports, .cost = m_cost, .prepare = m_prepare, .run = m_run,    \
     .wsize = m_wsize, .sync = m_sync, .free = m_free}
static const an_device_i k_mock_cpu = MOCK_I("cpu"), k_mock_mx = MOCK_I("mx");

/* cpu: no overhead, 1 ns/MAC; mx: 100 us per call, 0.05 ns/MAC, from n >= 2:
 * crossover where 1e-9 m = 1e-4 + 5e-11 m, m = 105k MACs. */
static void plans_follow_predicted_cost(void) {
    mock mc = {"cpu", 0, 1e-9, 1, 0, false}, mx = {"mx", 1e-4, 5e-11, 2, 0, false};
    an_device dcpu = {&k_mock_cpu, &mc}, dmx = {&k_mock_mx, &mx};
    an_device *devs[2] = {&dcpu, &dmx};
    an_sched *s;
    an_err err = {0};
    T_CHECK(an_sched_create(&s, devs, 2, "auto", NULL, &err) == AN_OK, "%s", err.msg);
    an_mat small = {.rows = 32, .cols = 32}, big = {.rows = 2048, .cols = 2048}; /* 65k MACs at n=64: cpu */
    an_op ops[AN_OPK_COUNT] = {0};
    for (int k = 0; k < AN_OPK_COUNT; k++) ops[k] = (an_op){.name = "op", .w = {k == AN_OPK_O ? &small : &big}, .n_w = 1};
    an_plan p;
    an_sched_plan(s, ops, 1, &p); /* decode: mx does not take n = 1 */
    for (int k = 0; k < AN_OPK_COUNT; k++) {
        T_CHECK(p.op[k].dev == 0, "decode op %d placed on %d", k, p.op[k].dev);
        T_CHECK(p.op[k].cost[1] < 0 && strstr(p.op[k].cause, "batch too small"), "cause: %s", p.op[k].cause);
    }
    an_sched_plan(s, ops, 64, &p); /* prefill: big matmuls go to mx, the tiny one stays on cpu */
    T_CHECK(p.op[AN_OPK_QKV].dev == 1, "big op on %d: %s", p.op[AN_OPK_QKV].dev, p.op[AN_OPK_QKV].cause);
    T_CHECK(p.op[AN_OPK_O].dev == 0, "small op on %d: %s", p.op[AN_OPK_O].dev, p.op[AN_OPK_O].cause);
    T_CHECK(fabs(p.op[AN_OPK_QKV].cost[0] - 2048.0 * 2048 * 64 * 1e-9) < 1e-9, "cpu cost %g", p.op[AN_OPK_QKV].cost[0]);
    t_note("n=64 %s: %s", an_op_kind_name(AN_OPK_QKV), p.op[AN_OPK_QKV].cause);
    t_note("n=64 %s: %s", an_op_kind_name(AN_OPK_O), p.op[AN_OPK_O].cause);
    an_sched_plan(s, ops, 2, &p); /* n = 2: 8.4 ms cpu vs 0.52 ms mx */
    T_CHECK(p.op[AN_OPK_DOWN].dev == 1, "n=2 big op on %d", p.op[AN_OPK_DOWN].dev);
    an_sched_free(s);

    /* forcing: everything it can run goes to mx; what it cannot run says why and stays on cpu */
    T_CHECK(an_sched_create(&s, devs, 2, "mx", NULL, &err) == AN_OK, "%s", err.msg);
    an_sched_plan(s, ops, 64, &p);
    T_CHECK(p.op[AN_OPK_O].dev == 1 && strstr(p.op[AN_OPK_O].cause, "forced"), "forced: %s", p.op[AN_OPK_O].cause);
    an_sched_plan(s, ops, 1, &p);
    T_CHECK(p.op[AN_OPK_O].dev == 0 && strstr(p.op[AN_OPK_O].cause, "cannot run"), "forced n=1: %s", p.op[AN_OPK_O].cause);
    an_sched_free(s);
    T_CHECK(an_sched_create(&s, devs, 2, "ane", NULL, &err) == AN_E_USAGE && strstr(err.msg, "ane"), "unknown: %s",
            err.msg);
}

static void run_falls_back_loudly(void) {
    mock mc = {"cpu", 0, 1e-9, 1, 0, false}, mx = {"mx", 0, 1e-12, 1, 0, true};
    an_device dcpu = {&k_mock_cpu, &mc}, dmx = {&k_mock_mx, &mx};
    an_device *devs[2] = {&dcpu, &dmx};
    an_sched *s;
    an_err err = {0};
    an_sched_create(&s, devs, 2, NULL, NULL, &err);
    an_mat big = {.rows = 512, .cols = 512};
    an_op op = {.name = "x", .w = {&big}, .n_w = 1, .n = 8};
    an_mm_out o = {&big, NULL, 512};
    T_CHECK(an_sched_run(s, AN_OPK_DOWN, &op, &o, NULL, NULL, NULL, &err) == AN_OK, "%s", err.msg);
    T_CHECK(mx.runs == 1 && mc.runs == 1, "mx ran %d, cpu ran %d (want 1, 1: refused, then fallback)", mx.runs, mc.runs);
    an_sched_free(s);
}

static void calib_interpolates(void) {
    an_calib c = {.overhead_s = 1e-5};
    for (int i = 0; i < AN_CALIB_NS; i++) c.s_per_mac[i] = 1e-9 / (1 << i); /* faster per MAC with n */
    an_mat w = {.rows = 100, .cols = 100};
    an_op op = {.w = {&w}, .n_w = 1, .n = 1};
    T_CHECK(fabs(an_calib_cost(&c, &op) - (1e-5 + 1e4 * 1e-9)) < 1e-15, "n=1");
    op.n = 4;
    T_CHECK(fabs(an_calib_cost(&c, &op) - (1e-5 + 4e4 * 0.25e-9)) < 1e-15, "n=4");
    op.n = 1024; /* past the table: the last rate */
    T_CHECK(fabs(an_calib_cost(&c, &op) - (1e-5 + 1024e4 * c.s_per_mac[AN_CALIB_NS - 1])) < 1e-12, "n=1024");
    op.n = 3; /* between 2 and 4: between their rates */
    double cst = an_calib_cost(&c, &op) - 1e-5;
    T_CHECK(cst < 3e4 * 0.5e-9 && cst > 3e4 * 0.25e-9, "n=3 interpolates: %g", cst);
}

const t_case t_suite_sched[] = {
    {"plans_follow_predicted_cost", plans_follow_predicted_cost},
    {"run_falls_back_loudly", run_falls_back_loudly},
    {"calib_interpolates", calib_interpolates},
    {0, 0},
};
