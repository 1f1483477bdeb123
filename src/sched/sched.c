/* sched.c — placement by measured cost, with causes; calibration measured once per machine. */
#include "sched/sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/timer.h"
#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"

#define AN_VERSION_STR "anelm 0.3"
#define CALIB_ROWS 1024
#define CALIB_K 2048
#define MAX_CALIB 32
#define MEMO_N 8 /* batch sizes remembered per op kind */

const char *an_op_kind_name(an_op_kind k) {
    static const char *const names[AN_OPK_COUNT] = {"attn_qkv", "attn_output", "ffn_gate_up", "ffn_down", "output"};
    return (unsigned)k < AN_OPK_COUNT ? names[k] : "?";
}

double an_calib_cost(const an_calib *c, const an_op *op) {
    double macs = 0;
    for (int i = 0; i < op->n_w; i++) macs += (double)op->w[i]->rows * (double)op->w[i]->cols;
    macs *= op->n;
    /* interpolate log2(n) between the measured points; beyond 512 the rate stays flat */
    double ln = log2((double)(op->n < 1 ? 1 : op->n));
    int i0 = (int)ln;
    if (i0 >= AN_CALIB_NS - 1) return c->overhead_s + macs * c->s_per_mac[AN_CALIB_NS - 1];
    double f = ln - i0, r = c->s_per_mac[i0] * (1 - f) + c->s_per_mac[i0 + 1] * f;
    return c->overhead_s + macs * r;
}

typedef struct {
    int n;
    an_placement p;
} memo;

struct an_sched {
    an_device *dev[AN_MAX_DEV];
    int n_dev;
    int forced; /* -1: choose by cost */
    an_pool *pool;
    an_calib calib[MAX_CALIB];
    int n_calib;
    bool loaded;
    memo memo[AN_OPK_COUNT][MEMO_N];
    int n_memo[AN_OPK_COUNT];
    bool warned_fallback;
};

an_status an_sched_create(an_sched **out, an_device *const *devices, int n_devices, const char *force,
                          an_pool *pool, an_err *err) {
    *out = NULL;
    if (n_devices < 1 || n_devices > AN_MAX_DEV)
        return an_err_set(err, AN_E_USAGE, "scheduler: %d devices (1..%d)", n_devices, AN_MAX_DEV);
    an_sched *s = calloc(1, sizeof *s);
    if (!s) return an_err_set(err, AN_E_NOMEM, "scheduler: out of memory");
    memcpy(s->dev, devices, sizeof *devices * (size_t)n_devices);
    s->n_dev = n_devices;
    s->pool = pool;
    s->forced = -1;
    if (force && *force && strcmp(force, "auto") != 0) {
        for (int i = 0; i < n_devices; i++)
            if (!strcmp(devices[i]->i->name, force)) s->forced = i;
        if (s->forced < 0) {
            free(s);
            return an_err_set(err, AN_E_USAGE, "device '%s' is not available on this machine", force);
        }
    }
    *out = s;
    return AN_OK;
}

void an_sched_free(an_sched *s) { free(s); }
int an_sched_n_devices(const an_sched *s) { return s->n_dev; }
an_device *an_sched_device(const an_sched *s, int i) { return i >= 0 && i < s->n_dev ? s->dev[i] : NULL; }

/* ---- calibration ----------------------------------------------------------------------------- */

static void machine_key(char *buf, size_t cap, int nth) {
    char brand[128];
    an_cpu_brand(brand, sizeof brand);
    snprintf(buf, cap, "%s | %d cpus | %d threads | %s | isa %s", brand, an_cpu_count(), nth, AN_VERSION_STR,
             an_isa_name(an_cpu()->active));
}

static void calib_path(char *buf, size_t cap) {
    an_err e = {0};
    char dir[1024];
    if (an_cache_dir(dir, sizeof dir, 1, &e) != AN_OK) {
        buf[0] = 0;
        return;
    }
    snprintf(buf, cap, "%s/calib-v1.txt", dir);
}

/* File: line 1 the machine key; then "device type overhead r0 .. r9" per calibration. */
static void calib_load(an_sched *s) {
    s->loaded = true;
    char path[1200], key[512], line[1024];
    calib_path(path, sizeof path);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f) return;
    machine_key(key, sizeof key, an_pool_size(s->pool));
    if (!fgets(line, sizeof line, f) || strncmp(line, key, strlen(key)) != 0 || line[strlen(key)] != '\n') {
        fclose(f); /* another machine, thread count or version: measure again */
        return;
    }
    while (s->n_calib < MAX_CALIB && fgets(line, sizeof line, f)) {
        an_calib c = {0};
        int used = 0;
        if (sscanf(line, "%15s %u %lf%n", c.device, &c.type, &c.overhead_s, &used) != 3) continue;
        const char *p = line + used;
        int ok = 1;
        for (int i = 0; i < AN_CALIB_NS && ok; i++) {
            int u = 0;
            ok = sscanf(p, "%lf%n", &c.s_per_mac[i], &u) == 1 && c.s_per_mac[i] > 0;
            p += u;
        }
        if (ok) s->calib[s->n_calib++] = c;
    }
    fclose(f);
}

static void calib_save(const an_sched *s) {
    char path[1200], tmp[1300], key[512];
    calib_path(path, sizeof path);
    if (!path[0]) return;
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    machine_key(key, sizeof key, an_pool_size(s->pool));
    fprintf(f, "%s\n", key);
    for (int i = 0; i < s->n_calib; i++) {
        fprintf(f, "%s %u %.6e", s->calib[i].device, s->calib[i].type, s->calib[i].overhead_s);
        for (int j = 0; j < AN_CALIB_NS; j++) fprintf(f, " %.6e", s->calib[i].s_per_mac[j]);
        fprintf(f, "\n");
    }
    if (fclose(f) == 0) rename(tmp, path); /* atomic: readers see the old file or the new one */
    else remove(tmp);
}

/* Times one op at each batch size on a synthetic weight of type t. */
static an_status measure(an_sched *s, int di, uint32_t t, an_calib *out, an_err *err) {
    an_device *d = s->dev[di];
    const an_type_traits *tt = an_type_traits_get(t);
    const int64_t K = CALIB_K, M = CALIB_ROWS, NMAX = 1 << (AN_CALIB_NS - 1);
    const uint64_t rb = an_row_bytes(tt, (uint64_t)K);
    uint8_t *w = malloc(rb * (uint64_t)M);
    uint16_t *lut = NULL;
    an_mat m = {.type = t, .rows = M, .cols = K, .row_bytes = rb, .data = w, .name = "calibration"};
    float *x = malloc(sizeof(float) * (size_t)(K * NMAX)), *y = malloc(sizeof(float) * (size_t)(M * NMAX));
    const int nth = an_pool_size(s->pool);
    size_t wss = d->i->wsize(d, K, (int)NMAX, nth);
    void *ws = aligned_alloc(64, (wss + 63) / 64 * 64);
    an_status st = AN_OK;
    if (!w || !x || !y || !ws) {
        st = an_err_set(err, AN_E_NOMEM, "calibration: out of memory");
        goto out;
    }
    uint32_t seed = 12345;
    for (int64_t i = 0; i < K * NMAX; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 9) & 0x3fff) / 8192.0f - 1.0f;
    }
    if (an_lut_is_type(t)) { /* palettized: random indices into one table shared by all rows */
        const int k = 1 << an_lut_bits(t);
        if (!(lut = malloc(sizeof *lut * (size_t)k))) {
            st = an_err_set(err, AN_E_NOMEM, "calibration: out of memory");
            goto out;
        }
        for (int j = 0; j < k; j++) lut[j] = an_f32_to_f16((float)(j - k / 2) / (float)k);
        for (uint64_t i = 0; i < rb * (uint64_t)M; i++) seed = seed * 1664525u + 1013904223u, w[i] = (uint8_t)(seed >> 24);
        m.lut = lut;
        m.lut_group = (int32_t)M;
    } else {
        for (int64_t r = 0; r < M; r++) an_quant_row_ref((an_type)t, x + (r % NMAX) * K, w + (uint64_t)r * rb, K);
    }
    if ((st = d->i->prepare(d, &m, err)) != AN_OK) goto out;
    snprintf(out->device, sizeof out->device, "%s", d->i->name);
    out->type = t;
    an_op op = {.name = "calibration", .w = {&m}, .n_w = 1};
    an_mm_out o = {&m, y, M};
    for (int i = 0; i < AN_CALIB_NS; i++) {
        op.n = 1 << i;
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) { /* best of 3: the machine is shared and noisy */
            double t0 = an_now();
            if ((st = d->i->run(d, &op, &o, x, s->pool, ws, err)) != AN_OK) goto out;
            double dt = an_now() - t0;
            if (dt < best) best = dt;
        }
        out->s_per_mac[i] = best / ((double)M * (double)K * op.n);
    }
    out->overhead_s = 0; /* folded into the per-n rates of this synchronous device */
out:
    if (w && d->i->forget) d->i->forget(d, &m); /* w is freed below: no device may keep it */
    free(w);
    free(lut);
    free(x);
    free(y);
    free(ws);
    return st;
}

an_status an_sched_calib(an_sched *s, int i, uint32_t t, const an_calib **out, an_err *err) {
    if (!s->loaded) calib_load(s);
    for (int c = 0; c < s->n_calib; c++)
        if (s->calib[c].type == t && !strcmp(s->calib[c].device, s->dev[i]->i->name)) {
            *out = &s->calib[c];
            return AN_OK;
        }
    if (s->n_calib == MAX_CALIB) return an_err_set(err, AN_E_RUNTIME, "calibration table full");
    an_log(1, "calibrating %s for %s weights (once per machine)...\n", s->dev[i]->i->name, an_type_name(t));
    an_calib c = {0};
    AN_TRY(measure(s, i, t, &c, err));
    s->calib[s->n_calib++] = c;
    calib_save(s);
    *out = &s->calib[s->n_calib - 1];
    return AN_OK;
}

/* ---- placement -------------------------------------------------------------------------------- */

static void place(an_sched *s, const an_op *op, an_placement *p) {
    memset(p, 0, sizeof *p);
    int best = 0;
    double best_cost = INFINITY;
    const char *why_not[AN_MAX_DEV] = {0};
    for (int i = 0; i < s->n_dev; i++) {
        an_device *d = s->dev[i];
        p->cost[i] = -1;
        if (!d->i->supports(d, op, &why_not[i])) continue;
        double c;
        if (d->i->cost) {
            c = d->i->cost(d, op);
        } else {
            const an_calib *cal;
            an_err e = {0};
            if (an_sched_calib(s, i, op->w[0]->type, &cal, &e) != AN_OK) {
                why_not[i] = "calibration failed";
                continue;
            }
            c = an_calib_cost(cal, op);
        }
        p->cost[i] = c;
        if (c < best_cost) {
            best_cost = c;
            best = i;
        }
    }
    if (s->forced >= 0 && s->dev[s->forced]->i->forced_by_cost) {
        /* the forced engine is the only offload target, but still competes with the cpu */
        const int f = s->forced;
        p->dev = p->cost[f] >= 0 && p->cost[f] < p->cost[0] ? f : 0;
        if (p->cost[f] < 0)
            snprintf(p->cause, sizeof p->cause, "--device %s cannot run it (%s): cpu", s->dev[f]->i->name,
                     why_not[f] ? why_not[f] : "unsupported");
        else
            snprintf(p->cause, sizeof p->cause, "--device %s, least predicted time: cpu %.3g ms, %s %.3g ms",
                     s->dev[f]->i->name, p->cost[0] * 1e3, s->dev[f]->i->name, p->cost[f] * 1e3);
        return;
    }
    if (s->forced >= 0) {
        if (p->cost[s->forced] >= 0) {
            p->dev = s->forced;
            snprintf(p->cause, sizeof p->cause, "forced by --device %s", s->dev[s->forced]->i->name);
        } else {
            p->dev = 0;
            snprintf(p->cause, sizeof p->cause, "--device %s cannot run it (%s): cpu", s->dev[s->forced]->i->name,
                     why_not[s->forced] ? why_not[s->forced] : "unsupported");
        }
        return;
    }
    p->dev = best;
    int o = snprintf(p->cause, sizeof p->cause, "least predicted time:");
    for (int i = 0; i < s->n_dev && o < (int)sizeof p->cause; i++) {
        if (p->cost[i] >= 0)
            o += snprintf(p->cause + o, sizeof p->cause - (size_t)o, " %s %.3g ms", s->dev[i]->i->name, p->cost[i] * 1e3);
        else
            o += snprintf(p->cause + o, sizeof p->cause - (size_t)o, " %s n/a (%s)", s->dev[i]->i->name,
                          why_not[i] ? why_not[i] : "unsupported");
    }
}

const an_placement *an_sched_place(an_sched *s, an_op_kind k, const an_op *op) {
    for (int i = 0; i < s->n_memo[k]; i++)
        if (s->memo[k][i].n == op->n) return &s->memo[k][i].p;
    int slot = s->n_memo[k] < MEMO_N ? s->n_memo[k]++ : (op->n % MEMO_N); /* small cache, any eviction */
    s->memo[k][slot].n = op->n;
    place(s, op, &s->memo[k][slot].p);
    return &s->memo[k][slot].p;
}

an_status an_sched_run(an_sched *s, an_op_kind k, const an_op *op, const an_mm_out *outs, const float *x,
                       an_pool *pool, void *ws, an_err *err) {
    const an_placement *p = an_sched_place(s, k, op);
    an_device *d = s->dev[p->dev];
    if (p->dev != 0) {
        an_status st = d->i->run(d, op, outs, x, pool, ws, err);
        if (st != AN_E_UNSUPPORTED) return st;
        if (!s->warned_fallback) { /* loud, once: the plan said one thing and another happened */
            an_log(0, "anelm: %s did not handle %s (n=%d): running it on the cpu\n", d->i->name, op->name, op->n);
            s->warned_fallback = true;
        }
        an_err_clear(err);
        d = s->dev[0];
    }
    return d->i->run(d, op, outs, x, pool, ws, err);
}

an_device *an_sched_ffn_device(an_sched *s, const an_op *gate_up, const an_op *down) {
    const an_placement *a = an_sched_place(s, AN_OPK_GATE_UP, gate_up), *b = an_sched_place(s, AN_OPK_DOWN, down);
    const double halves = a->cost[a->dev] + b->cost[b->dev];
    const an_op f = {.name = "ffn", .w = {gate_up->w[0], gate_up->w[1], down->w[0]}, .n_w = 3, .n = gate_up->n, .ffn = true};
    for (int i = 1; i < s->n_dev; i++) {
        an_device *d = s->dev[i];
        if ((s->forced >= 0 && i != s->forced) || !d->i->cost || !d->i->supports(d, &f, NULL)) continue;
        if (d->i->cost(d, &f) < halves) return d;
    }
    return NULL;
}

void an_sched_plan(an_sched *s, const an_op ops[AN_OPK_COUNT], int n, an_plan *out) {
    out->n = n;
    for (int k = 0; k < AN_OPK_COUNT; k++) {
        an_op op = ops[k];
        op.n = n;
        out->op[k] = *an_sched_place(s, (an_op_kind)k, &op);
    }
}

void an_plan_print(const an_sched *s, const an_plan *p, const char *title, int n_layer, void *file) {
    FILE *f = file;
    fprintf(f, "%s (n = %d tokens):\n", title, p->n);
    for (int k = 0; k < AN_OPK_COUNT; k++) {
        const an_placement *pl = &p->op[k];
        char what[48];
        snprintf(what, sizeof what, k == AN_OPK_OUTPUT ? "%s" : "%s x%d", an_op_kind_name((an_op_kind)k), n_layer);
        fprintf(f, "  %-18s -> %-6s %s\n", what, s->dev[pl->dev]->i->name, pl->cause);
    }
    fprintf(f, "  %-18s -> %-6s %s\n", "norms/rope/attn", "cpu", "not matmuls: always on the cpu");
}
