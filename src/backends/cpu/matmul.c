/* matmul.c — the CPU matmul driver: activation conversion, weight-panel dequantization and
 * the split of work over threads. The float kernels are per ISA (matmul_body.inc). */
#include "backends/cpu/cpu.h"

#include <pthread.h>
#include <string.h>

#include "core/cpu.h"
#include "core/fp16.h"
#include "quant/quant.h"

#define PANEL 16

/* ---- per-ISA kernel table, chosen once -------------------------------------------------- */

typedef void (*mm_panel_fn)(const float *panel, int64_t K, const float *x, int n, float *y,
                            int64_t ldy, int nrows);
typedef float (*mm_dot_fn)(const float *a, const float *b, int64_t K);
typedef void (*mm_f16_fn)(const uint16_t *x, float *y, int64_t n);

void an_mm_panel_scalar(const float *, int64_t, const float *, int, float *, int64_t, int);
float an_mm_dot_scalar(const float *, const float *, int64_t);
#if defined(__x86_64__)
void an_mm_panel_avx2(const float *, int64_t, const float *, int, float *, int64_t, int);
float an_mm_dot_avx2(const float *, const float *, int64_t);
void an_mm_f16_row_avx2(const uint16_t *, float *, int64_t);
void an_mm_panel_avx512(const float *, int64_t, const float *, int, float *, int64_t, int);
float an_mm_dot_avx512(const float *, const float *, int64_t);
void an_mm_f16_row_avx512(const uint16_t *, float *, int64_t);
#endif

static struct {
    mm_panel_fn panel;
    mm_dot_fn dot;
    mm_f16_fn f16_row;
} g_mm;
static pthread_once_t g_mm_once = PTHREAD_ONCE_INIT;

/* Portable f16 -> f32 through a 64K-entry table (256 KiB, built once). */
static float g_f16_table[65536];
static void f16_row_table(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g_f16_table[x[i]];
}

static void mm_init(void) {
    g_mm.panel = an_mm_panel_scalar;
    g_mm.dot = an_mm_dot_scalar;
    g_mm.f16_row = f16_row_table;
    for (uint32_t i = 0; i < 65536; i++) g_f16_table[i] = an_f16_to_f32((an_f16)i);
#if defined(__x86_64__)
    an_isa isa = an_cpu()->active;
    if (isa == AN_ISA_AVX512) {
        g_mm.panel = an_mm_panel_avx512;
        g_mm.dot = an_mm_dot_avx512;
        g_mm.f16_row = an_mm_f16_row_avx512;
    } else if (isa == AN_ISA_AVX2) {
        g_mm.panel = an_mm_panel_avx2;
        g_mm.dot = an_mm_dot_avx2;
        g_mm.f16_row = an_mm_f16_row_avx2;
    }
#endif
}

/* ---- workspace ---------------------------------------------------------------------------- */

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

size_t an_cpu_matmul_wsize(int64_t k_max, int n_max, int nth) {
    size_t K = (size_t)k_max, n = (size_t)(n_max < 1 ? 1 : n_max);
    size_t act = ALIGN64(n * K * 4 + 64 * n);      /* converted activations (<= f32 size + slack) */
    size_t xf = ALIGN64(n * K * 4);               /* the same, back in f32 */
    size_t per_thread = ALIGN64((PANEL + 1) * K * 4); /* panel + one dequantized row */
    return act + xf + (size_t)nth * per_thread + 64;
}

/* ---- the job ------------------------------------------------------------------------------ */

typedef struct {
    const an_mat *w;
    const float *x;
    int n;
    float *y;
    int64_t ldy;
    an_type vdt;
    uint64_t act_row_bytes;
    uint8_t *act;
    float *xf;
    uint8_t *thread_ws;
    size_t per_thread;
} mm_job;

static void dequant_row(const an_mat *w, int64_t r, float *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
    if (w->type == AN_TYPE_F16) g_mm.f16_row((const uint16_t *)src, dst, w->cols);
    else an_dequant_row((an_type)w->type, src, dst, w->cols);
}

/* Phase 1: convert each activation row to the vec_dot type and back to f32, so every kernel
 * sees exactly the values llama.cpp's dot products see. */
static void mm_convert(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int64_t K = j->w->cols;
    for (int t = ith; t < j->n; t += nth) {
        const float *x = j->x + (int64_t)t * K;
        float *xf = j->xf + (int64_t)t * K;
        if (j->vdt == AN_TYPE_F32) {
            memcpy(xf, x, (size_t)K * 4);
            continue;
        }
        uint8_t *a = j->act + (uint64_t)t * j->act_row_bytes;
        an_quant_act_row(j->vdt, x, a, K);
        if (j->vdt == AN_TYPE_F16) g_mm.f16_row((const uint16_t *)a, xf, K);
        else an_dequant_row(j->vdt, a, xf, K);
    }
}

/* Phase 2: each thread owns a contiguous range of PANEL-row groups. */
static void mm_compute(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const an_mat *w = j->w;
    int64_t K = w->cols, M = w->rows;
    int64_t groups = (M + PANEL - 1) / PANEL;
    int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    float *panel = (float *)(j->thread_ws + (size_t)ith * j->per_thread);
    float *row = panel + PANEL * K;
    for (int64_t g = g0; g < g1; g++) {
        int64_t r0 = g * PANEL;
        int nr = (int)(M - r0 < PANEL ? M - r0 : PANEL);
        if (j->n == 1) {
            for (int r = 0; r < nr; r++) {
                const float *wr;
                if (w->type == AN_TYPE_F32) wr = (const float *)((const uint8_t *)w->data + (uint64_t)(r0 + r) * w->row_bytes);
                else { dequant_row(w, r0 + r, row); wr = row; }
                j->y[r0 + r] = g_mm.dot(wr, j->xf, K);
            }
            continue;
        }
        for (int r = 0; r < PANEL; r++) {
            if (r < nr) dequant_row(w, r0 + r, row);
            else memset(row, 0, (size_t)K * 4); /* pad: the kernel always computes 16 lanes */
            for (int64_t k = 0; k < K; k++) panel[k * PANEL + r] = row[k];
        }
        g_mm.panel(panel, K, j->xf, j->n, j->y + r0, j->ldy, nr);
    }
}

void an_cpu_matmul(an_pool *pool, const an_mat *w, const float *x, int n, float *y, int64_t ldy,
                   void *ws) {
    pthread_once(&g_mm_once, mm_init);
    mm_job j = {.w = w, .x = x, .n = n, .y = y, .ldy = ldy};
    j.vdt = an_quant_vec_dot_type((an_type)w->type);
    const an_type_traits *vt = an_type_traits_get(j.vdt);
    j.act_row_bytes = an_row_bytes(vt, (uint64_t)w->cols);
    size_t K = (size_t)w->cols, nn = (size_t)n;
    uint8_t *p = ws;
    j.act = p;
    p += ALIGN64(nn * K * 4 + 64 * nn);
    j.xf = (float *)p;
    p += ALIGN64(nn * K * 4);
    j.thread_ws = p;
    j.per_thread = ALIGN64((PANEL + 1) * K * 4);
    an_pool_run(pool, mm_convert, &j);
    an_pool_run(pool, mm_compute, &j);
}
