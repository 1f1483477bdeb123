/* matmul.c — the CPU matmul driver: activation conversion, weight-panel dequantization and
 * the split of work over threads. The float kernels are per ISA (matmul_body.inc). */
#include "backends/cpu/cpu.h"

#include <pthread.h>
#include <string.h>

#include "core/cpu.h"
#include "core/fp16.h"
#include "backends/cpu/gemv.h"
#include "backends/cpu/lut_gemv.h"
#include "quant/lut.h"
#include "quant/quant.h"

/* ---- per-ISA kernel table, chosen once -------------------------------------------------- */

typedef void (*mm_gemm_fn)(const float *panel, int64_t kc, const float *x, int64_t ldx, int n, float *y,
                           int64_t ldy, int nr, int acc);
typedef float (*mm_dot_fn)(const float *a, const float *b, int64_t K);
typedef void (*mm_axpy_fn)(float *o, float w, const float *v, int64_t n);
typedef void (*mm_f16_fn)(const uint16_t *x, float *y, int64_t n);
typedef void (*mm_round_f16_fn)(const float *x, uint16_t *h, float *y, int64_t n);

#define MM_DECL(isa)                                                                                  \
    void an_mm_gemm_##isa(const float *, int64_t, const float *, int64_t, int, float *, int64_t, int, int); \
    float an_mm_dot_##isa(const float *, const float *, int64_t);                                     \
    void an_mm_axpy_##isa(float *, float, const float *, int64_t);                                    \
    int an_mm_panel_rows_##isa(void);
MM_DECL(scalar)
#if defined(__x86_64__)
MM_DECL(avx2)
MM_DECL(avx512)
void an_mm_f16_row_avx2(const uint16_t *, float *, int64_t);
void an_mm_f16_row_avx512(const uint16_t *, float *, int64_t);
void an_mm_round_f16_avx2(const float *, uint16_t *, float *, int64_t);
void an_mm_round_f16_avx512(const float *, uint16_t *, float *, int64_t);
#endif

static struct {
    mm_gemm_fn gemm;
    mm_dot_fn dot;
    mm_axpy_fn axpy;
    mm_f16_fn f16_row;
    mm_round_f16_fn round_f16; /* NULL: the portable an_quant_act_row + table path */
    int pr; /* panel rows */
} g_mm;
static pthread_once_t g_mm_once = PTHREAD_ONCE_INIT;

/* Portable f16 -> f32 through a 64K-entry table (256 KiB, built once). */
static float g_f16_table[65536];
static void f16_row_table(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g_f16_table[x[i]];
}

#define MM_USE(isa)                          \
    do {                                     \
        g_mm.gemm = an_mm_gemm_##isa;        \
        g_mm.dot = an_mm_dot_##isa;          \
        g_mm.axpy = an_mm_axpy_##isa;        \
        g_mm.pr = an_mm_panel_rows_##isa();  \
    } while (0)

static void mm_init(void) {
    MM_USE(scalar);
    g_mm.f16_row = f16_row_table;
    for (uint32_t i = 0; i < 65536; i++) g_f16_table[i] = an_f16_to_f32((an_f16)i);
#if defined(__x86_64__)
    an_isa isa = an_cpu()->active;
    if (isa == AN_ISA_AVX512) {
        MM_USE(avx512);
        g_mm.f16_row = an_mm_f16_row_avx512;
        g_mm.round_f16 = an_mm_round_f16_avx512;
    } else if (isa == AN_ISA_AVX2) {
        MM_USE(avx2);
        g_mm.f16_row = an_mm_f16_row_avx2;
        g_mm.round_f16 = an_mm_round_f16_avx2;
    }
#endif
}

static void mm_ensure_init(void) { pthread_once(&g_mm_once, mm_init); }

float an_cpu_dot_f32(const float *a, const float *b, int64_t n) {
    mm_ensure_init();
    return g_mm.dot(a, b, n);
}

void an_cpu_axpy_f32(float *o, float w, const float *v, int64_t n) {
    mm_ensure_init();
    g_mm.axpy(o, w, v, n);
}

void an_cpu_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    mm_ensure_init();
    g_mm.f16_row(x, y, n);
}

/* ---- workspace ---------------------------------------------------------------------------- */

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)
#define MAX_PR 32 /* the widest panel of any ISA */
/* K block. Measured (M = K = 4096, N = 512, F16, 2 threads): KC 256 -> 102 GFLOPS, 1024 -> 128,
 * 8192 (whole K) -> 175: re-reading and re-writing the outputs once per K block costs more than
 * streaming a 32 x K panel (512 KiB at K = 4096) from L2. */
#define KC 8192

size_t an_cpu_matmul_wsize(int64_t k_max, int n_max, int nth) {
    size_t K = (size_t)k_max, n = (size_t)(n_max < 1 ? 1 : n_max), kc = K < KC ? K : KC;
    size_t act = ALIGN64(n * K * 4 + 64 * n);      /* converted activations (<= f32 size + slack) */
    size_t xf = ALIGN64(n * K * 4);               /* the same, back in f32 */
    size_t per_thread = ALIGN64((MAX_PR + 1) * kc * 4); /* panel + one dequantized row segment */
    return act + xf + (size_t)nth * per_thread + 64;
}

/* ---- the job ------------------------------------------------------------------------------ */

typedef struct {
    const an_mm_out *outs;
    int n_outs;
    int64_t total;   /* decode: rows of all outputs; batch: panels of all outputs */
    const float *x;
    int64_t K;
    int n;
    an_type vdt;
    uint64_t act_row_bytes;
    uint8_t *act;
    an_lut_kernel lut; /* palettized weights: the kernel (prep + gemv); gemv NULL otherwise */
    float *xf;
    uint8_t *thread_ws;
    size_t per_thread;
} mm_job;

/* Dequantizes elements [k0, k0 + kc) of weight row r (k0 and kc multiples of the block). */
static void dequant_seg(const an_mat *w, int64_t r, int64_t k0, int64_t kc, float *dst) {
    if (an_lut_is_type(w->type)) { /* palettized: needs the row's table, not just its bytes */
        an_lut_dequant_seg(w, r, k0, kc, dst);
        return;
    }
    const an_type_traits *tt = an_type_traits_get(w->type);
    const uint8_t *src = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes + (uint64_t)(k0 / tt->blck) * tt->size;
    if (w->type == AN_TYPE_F16) g_mm.f16_row((const uint16_t *)src, dst, kc);
    else if (w->type == AN_TYPE_F32) memcpy(dst, src, (size_t)kc * 4);
    else an_dequant_row((an_type)w->type, src, dst, kc);
}

/* Converts activation row t to the vec_dot type; for batches also back to f32, so the float
 * kernel sees exactly the values llama.cpp's dot products see. */
static void convert_row(mm_job *j, int t) {
    const int64_t K = j->K;
    const float *x = j->x + (int64_t)t * K;
    uint8_t *a = j->act + (uint64_t)t * j->act_row_bytes;
    if (j->n == 1) { /* decode: the GEMV kernels take the converted row itself */
        if (j->lut.gemv && j->lut.prep) j->lut.prep(x, (float *)a, K); /* the LUT kernel's element order */
        else if (j->vdt == AN_TYPE_F32) memcpy(a, x, (size_t)K * 4);
        else an_quant_act_row(j->vdt, x, a, K);
        return;
    }
    float *xf = j->xf + (int64_t)t * K;
    if (j->vdt == AN_TYPE_F32) {
        memcpy(xf, x, (size_t)K * 4);
        return;
    }
    if (j->vdt == AN_TYPE_F16 && g_mm.round_f16) { /* F16C rounds exactly as an_quant_act_row */
        g_mm.round_f16(x, (uint16_t *)a, xf, K);
        return;
    }
    an_quant_act_row(j->vdt, x, a, K);
    if (j->vdt == AN_TYPE_F16) g_mm.f16_row((const uint16_t *)a, xf, K);
    else an_dequant_row(j->vdt, a, xf, K);
}

static void mm_convert(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int t = ith; t < j->n; t += nth) convert_row(j, t);
}

/* Maps a global index (row or panel) to its output: returns the output and the local index. */
static const an_mm_out *locate(const mm_job *j, int64_t g, int64_t unit, int64_t *local) {
    for (int o = 0; o < j->n_outs; o++) {
        const int64_t cnt = (j->outs[o].w->rows + unit - 1) / unit;
        if (g < cnt) {
            *local = g;
            return &j->outs[o];
        }
        g -= cnt;
    }
    *local = 0;
    return NULL;
}

/* Decode: each thread takes a contiguous range of the rows of all outputs together. */
static void mm_gemv(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int64_t g0 = j->total * ith / nth, g1 = j->total * (ith + 1) / nth;
    while (g0 < g1) {
        int64_t r0;
        const an_mm_out *o = locate(j, g0, 1, &r0);
        const an_mat *w = o->w;
        int64_t cnt = w->rows - r0 < g1 - g0 ? w->rows - r0 : g1 - g0;
        if (j->lut.gemv) j->lut.gemv(w, r0, cnt, (const float *)j->act, o->y + r0);
        else an_gemv_get((an_type)w->type)((const uint8_t *)w->data + (uint64_t)r0 * w->row_bytes, w->row_bytes, w->cols,
                                      j->act, o->y + r0, cnt);
        g0 += cnt;
    }
}

/* Batch: each thread owns a contiguous range of the panels of all outputs; per panel and K
 * block it packs the weights once and runs them against every token. */
static void mm_gemm(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const int PR = g_mm.pr;
    const int64_t K = j->K;
    float *panel = (float *)(j->thread_ws + (size_t)ith * j->per_thread);
    const int64_t kcmax = K < KC ? K : KC;
    float *row = panel + MAX_PR * kcmax;
    for (int64_t g = j->total * ith / nth, g1 = j->total * (ith + 1) / nth; g < g1; g++) {
        int64_t pi;
        const an_mm_out *o = locate(j, g, PR, &pi);
        const an_mat *w = o->w;
        const int64_t r0 = pi * PR;
        const int nr = (int)(w->rows - r0 < PR ? w->rows - r0 : PR);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = K - k0 < KC ? K - k0 : KC;
            for (int r = 0; r < PR; r++) {
                if (r < nr) dequant_seg(w, r0 + r, k0, kc, row);
                else memset(row, 0, (size_t)kc * 4); /* pad: the kernel always computes PR lanes */
                for (int64_t k = 0; k < kc; k++) panel[k * PR + r] = row[k];
            }
            g_mm.gemm(panel, kc, j->xf + k0, K, j->n, o->y + r0, o->ldy, nr, k0 > 0);
        }
    }
}

/* What the activations are converted to for w: its vec_dot type, or for palettized weights the
 * LUT type itself (fp32 in the kernel's element order; ids >= 1000 never equal a vec_dot type). */
static uint32_t act_key(const an_mat *w) {
    return an_lut_is_type(w->type) ? w->type : (uint32_t)an_quant_vec_dot_type((an_type)w->type);
}

/* Up to AN_CPU_GEMV_MAX_BATCH tokens run as one decode GEMV per token (cpu.h says why). */
void an_cpu_matmul_multi(an_pool *pool, const an_mm_out *outs, int n_outs, const float *x, int n, void *ws) {
    mm_ensure_init();
    if (n > 1 && n <= AN_CPU_GEMV_MAX_BATCH && n_outs <= 4) {
        an_mm_out row[4];
        for (int t = 0; t < n; t++) {
            for (int o = 0; o < n_outs; o++) row[o] = (an_mm_out){outs[o].w, outs[o].y + (int64_t)t * outs[o].ldy, outs[o].ldy};
            an_cpu_matmul_multi(pool, row, n_outs, x + (int64_t)t * outs[0].w->cols, 1, ws);
        }
        return;
    }
    /* one conversion serves every output only if they share the vec_dot type and K */
    for (int o = 1; o < n_outs; o++)
        if (act_key(outs[o].w) != act_key(outs[0].w) ||
            outs[o].w->cols != outs[0].w->cols) {
            for (int i = 0; i < n_outs; i++) an_cpu_matmul_multi(pool, &outs[i], 1, x, n, ws);
            return;
        }
    mm_job j = {.outs = outs, .n_outs = n_outs, .x = x, .K = outs[0].w->cols, .n = n};
    j.lut = an_lut_kernel_get(outs[0].w->type);
    /* LUT: fp32 activations (lut_gemv.h says why); the batch path dequantizes panels as usual */
    j.vdt = j.lut.gemv ? AN_TYPE_F32 : an_quant_vec_dot_type((an_type)outs[0].w->type);
    j.act_row_bytes = an_row_bytes(an_type_traits_get(j.vdt), (uint64_t)j.K);
    const size_t K = (size_t)j.K, nn = (size_t)n;
    uint8_t *p = ws;
    j.act = p;
    p += ALIGN64(nn * K * 4 + 64 * nn);
    j.xf = (float *)p;
    p += ALIGN64(nn * K * 4);
    j.thread_ws = p;
    j.per_thread = ALIGN64((MAX_PR + 1) * (K < KC ? K : KC) * 4);
    const int64_t unit = n == 1 ? 1 : g_mm.pr;
    for (int o = 0; o < n_outs; o++) j.total += (outs[o].w->rows + unit - 1) / unit;
    if (n == 1) {
        convert_row(&j, 0); /* one row: not worth waking the pool for */
        an_pool_run(pool, mm_gemv, &j);
    } else {
        an_pool_run(pool, mm_convert, &j);
        an_pool_run(pool, mm_gemm, &j);
    }
}

void an_cpu_matmul(an_pool *pool, const an_mat *w, const float *x, int n, float *y, int64_t ldy, void *ws) {
    an_mm_out o = {w, y, ldy};
    an_cpu_matmul_multi(pool, &o, 1, x, n, ws);
}
