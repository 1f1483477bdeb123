/* cpu.h — the CPU backend's kernels: matmul of a weight matrix with a batch of activation rows,
 * and the small per-token ops of a llama-family layer. Kernels that split work take the pool
 * and partition by (ith, nth) internally; the per-ISA bodies are chosen once (core/cpu.h).
 *
 * Shape notation: a weight W has `rows` output channels of `cols` inputs each (GGUF ne =
 * [cols, rows]); an activation batch X is n rows of cols floats; Y = X · Wᵀ is n rows of
 * `rows` floats. */
#ifndef AN_CPU_H
#define AN_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/types.h"

typedef struct an_mat {
    uint32_t type;       /* an_type of the stored rows */
    int64_t rows, cols;  /* W: [rows][cols] */
    uint64_t row_bytes;  /* bytes of one stored row */
    const void *data;    /* rows back to back */
    const char *name;    /* tensor name, for messages and plans */
    /* Palettized types only (AN_TYPE_LUT4/LUT6/LUT8, core/types.h): each group of lut_group
     * consecutive rows shares one table of (1 << bits) fp16 values; lut is [rows/lut_group]
     * [1 << bits] fp16. A row of data is its indices as an LSB-first bit stream (element i in
     * bits [b*i, b*i + b)), the packing MIL's uint4/uint6 blobs use. row_scale: NULL, or fp16
     * [rows] applied after the lookup (w = lut[idx] * row_scale[r]). Zero for other types. */
    const uint16_t *lut;
    int32_t lut_group;
    const uint16_t *row_scale;
} an_mat;

/* Workspace bytes an_cpu_matmul needs for n_max activation rows of up to k_max columns with
 * nth threads (covers every weight type). */
size_t an_cpu_matmul_wsize(int64_t k_max, int n_max, int nth);

/* Y[n][ldy] (first w->rows columns) = X[n][w->cols] · Wᵀ.
 * Activations are first converted to the weight type's vec_dot type (llama.cpp's rounding: F16
 * for F16 weights, Q8_0 blocks for Q4_0/Q8_0, ...), so results match llama.cpp's CPU path up to
 * summation order. n == 1 runs the decode GEMV kernels (gemv.h) on the converted row; n > 1
 * dequantizes weight panels (32 rows x 256 k) once and runs a register-blocked float kernel
 * over every token. ws: an_cpu_matmul_wsize bytes, 64-byte aligned. */
void an_cpu_matmul(an_pool *pool, const an_mat *w, const float *x, int n, float *y, int64_t ldy,
                   void *ws);

/* Batches of at most this many tokens run the decode GEMV once per token instead of the batch
 * GEMM: packing a weight panel (dequantize + transpose) costs about as much as 10-20 streaming
 * GEMV passes over it (`anelm bench --matmul`, F16 4096^2, N = 2: 3 GFLOPS as a GEMM, 33 as
 * GEMVs). An algorithm choice inside the CPU device; the scheduler picks devices by cost. */
#define AN_CPU_GEMV_MAX_BATCH 8

/* Several matmuls of the same input (Q/K/V; gate/up): the activations are converted once when
 * the weights share a vec_dot type and K, and all outputs' rows are split over the threads in
 * one dispatch. Same results as separate an_cpu_matmul calls. */
typedef struct an_mm_out {
    const an_mat *w;
    float *y;     /* [n][ldy] */
    int64_t ldy;
} an_mm_out;
void an_cpu_matmul_multi(an_pool *pool, const an_mm_out *outs, int n_outs, const float *x, int n, void *ws);

/* Small vector helpers, dispatched to the active ISA: dot product, o += w * v, f16 -> f32. */
float an_cpu_dot_f32(const float *a, const float *b, int64_t n);
void an_cpu_axpy_f32(float *o, float w, const float *v, int64_t n);
void an_cpu_f16_to_f32(const uint16_t *x, float *y, int64_t n);

/* y[i] = x[i] * (1/sqrt(mean(x^2) + eps)) * g[i], i < n (sum of squares in double, as ggml).
 * g may be NULL (no gain). y may alias x. */
void an_rms_norm(const float *x, const float *g, float *y, int64_t n, float eps);

/* Rotary embedding cache for one position: cs[2*k] = cos, cs[2*k+1] = sin for pair k <
 * n_rot/2, computed as ggml does (iterative theta, YaRN ramp when ext_factor != 0). */
typedef struct an_rope_params {
    int n_rot;
    float freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow;
    int n_ctx_orig;
    const float *freq_factors; /* n_rot/2 divisors (llama3 rope_freqs) or NULL */
} an_rope_params;
void an_rope_cache(const an_rope_params *rp, int32_t pos, float *cs);

/* Rotate one head vector x[head_dim] in place: neox = 0 pairs (2k, 2k+1), neox = 1 pairs
 * (k, k + n_rot/2); elements past n_rot are unchanged. */
void an_rope_apply(float *x, const float *cs, int n_rot, int neox);

/* y[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i], exp as an_cpu_exp_f32. y may
 * alias g. */
void an_swiglu(const float *g, const float *u, float *y, int64_t n);

/* y[i] = exp(x[i]), i < n, vectorized for the active ISA (y may alias x): range-reduced
 * 2^n·p(r) with a degree-6 polynomial (backends/cpu/attn.h), max relative error 2^-22 over
 * [-87, 88] on every ISA (tests/test_attention.c sweeps it); -inf and x < -110 give 0, x > 89
 * gives +inf, NaN stays NaN, subnormal results are computed (not flushed). */
void an_cpu_exp_f32(const float *x, float *y, int64_t n);

/* Causal attention for a batch of n query tokens at positions pos0 .. pos0+n-1 over a KV
 * cache holding positions 0 .. pos0+n-1.
 *   q:   [n][n_head*hd] (roped), out: [n][n_head*hd]
 *   k,v: cache rows [pos][n_head_kv*hd], f32 or f16 (kv_f16), row stride kv_stride elements
 * Head h reads KV head h / (n_head / n_head_kv).
 *
 * an_cpu_attention is tiled: one work item is a KV head and a block of AN_ATTN_QB query
 * tokens, i.e. all (n_head/n_head_kv) * AN_ATTN_QB queries that share those K/V rows. Keys are
 * taken in blocks of AN_ATTN_KB (backends/cpu/attn.h): the block's K and V rows are converted
 * to f32 once per tile, S = Q·Kᵀ is a register-blocked FMA kernel, the causal mask and the
 * online softmax (running max and sum, vector exp) are applied once per block, then O += P·V;
 * memory stays O(tile) whatever the context length. With an f16 cache q is rounded to f16 as
 * in the reference; the probabilities are not (as llama.cpp's flash path). The dot products
 * of S are summed in chunks of 16 head dims (backends/cpu/attn.h, AN_ATTN_DC). AN_ATTN_QB and
 * AN_ATTN_KB were chosen with bench/attn_bench.c (QB 8/16/32, KB 32/64/128 within a few percent
 * of each other on the 1B shape; 16 and 64 the best or tied).
 * an_attention_ref is the scalar reference: exact two-pass softmax (sum in double), and with an
 * f16 cache q and the probabilities rounded to f16 first, as llama.cpp's non-flash path does. */
#ifndef AN_ATTN_QB
#define AN_ATTN_QB 16
#endif
typedef struct an_attn_args {
    const float *q;
    const void *k, *v;
    float *out;
    int n, pos0, n_head, n_head_kv, hd;
    int64_t kv_stride;
    int kv_f16;
    float scale;
    float *scratch; /* nth * an_attn_scratch_floats(...) floats */
} an_attn_args;

/* Scratch floats one thread needs (head_dim <= 512). */
size_t an_attn_scratch_floats(int n_head, int n_head_kv, int hd, int n_ctx);
void an_cpu_attention(an_pool *pool, const an_attn_args *a);
void an_attention_ref(const an_attn_args *a);

#endif
