/* amx.h — the AMX engine: Intel Advanced Matrix Extensions tile GEMM for Y = X · Wᵀ.
 *
 * Shapes as in backends/cpu/cpu.h: W has `rows` output channels of `cols` (K) inputs, X is n
 * token rows of K floats, Y is n rows of ldy floats (first w->rows written).
 *
 * Two tile engines:
 *   - BF16 (TDPBF16PS, f32 accumulation in the tiles across all of K) for F32, F16 and BF16
 *     weights. Each weight and activation is split into bf16 "planes" whose sum is the value,
 *     and the products of selected plane pairs are accumulated:
 *       BF16: 1 plane x 1 plane, 1 pass — the CPU path's products exactly (X rounded to bf16).
 *       F16:  X rounded to f16 (as the CPU path), then both sides split exactly into
 *             hi = bf16(v) and lo = v - hi (lo has <= 3 significant bits). Passes:
 *             4 = hh+hl+lh+ll (every product exact), 3 = hh+hl+lh (drops lo·lo, < 2^-16 of each
 *             product, the default), 2 = hh+lh (W exact, X only to bf16), 1 = hh.
 *       F32:  3 planes each side (hi/mid/lo: 24 significand bits); the 6 plane pairs of order
 *             <= 2 are accumulated (dropped terms < 2^-24 relative of each product).
 *   - INT8 (TDPBSSD, int32 per block) for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, against the
 *     activations quantized exactly as llama.cpp's CPU path does (Q8_0, Q8_1, Q8_K). Each
 *     block's integer sum is exact; it is then scaled by (weight block scale x activation
 *     block scale) in f32 and accumulated in f32; min terms (Q4_1's m, the K-quants' dmin·m)
 *     use the activation block sums computed from the integers.
 *
 * Weights are repacked once ("compiled") into tile order; the packed form is a self-describing
 * blob that can be stored in the compile cache and viewed again without copying.
 * Any M, K, n: rows, tokens and (float formats) K are zero-padded inside the engine, never
 * dropped. The library never touches tiles without XTILEDATA permission (an_amx_available). */
#ifndef AN_AMX_H
#define AN_AMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/cpu/cpu.h"
#include "core/pool.h"
#include "core/status.h"

typedef struct an_amx_weight an_amx_weight;

/* True when the CPU has AMX-TILE/INT8/BF16 and AVX-512 (F/BW/VL/DQ/BF16, used by the
 * conversions and epilogues), ANELM_ISA does not cap below avx512, ANELM_AMX is not "0", and
 * the kernel granted XTILEDATA (arch_prctl ARCH_REQ_XCOMP_PERM, asked once per process).
 * *why (if non-NULL) gets a static sentence: the reason when false, "AMX ready" when true. */
bool an_amx_available(const char **why);

/* Weight types the engine handles (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K). */
bool an_amx_supports_type(uint32_t type);

/* F16 weights: plane-pair passes (1..4, see above). Process-wide; default 3, or ANELM_AMX_F16_PASSES.
 * Takes effect for later an_amx_matmul calls (the packed weights hold both planes). */
void an_amx_set_f16_passes(int passes);
int an_amx_f16_passes(void);

/* Bytes of the packed blob for w (0 if the type is unsupported). */
size_t an_amx_packed_size(const an_mat *w);

/* Repack w into buf (cap >= an_amx_packed_size(w), 64-byte aligned): a header naming the type
 * and shape, then the tiles. Pure function of w's data (deterministic bytes, cacheable). */
an_status an_amx_pack_into(const an_mat *w, void *buf, size_t cap, an_err *err);

/* A weight object reading a packed blob in place (blob must outlive it; 64-byte aligned).
 * Validates the header against w (type, rows, cols) and n. */
an_status an_amx_weight_view(const void *blob, size_t n, const an_mat *w, an_amx_weight **out, an_err *err);

/* Repack into an owned blob: an_amx_packed_size + an_amx_pack_into + an_amx_weight_view. */
an_status an_amx_pack(const an_mat *w, an_amx_weight **out, an_err *err);
void an_amx_weight_free(an_amx_weight *w);

/* The source matrix a packed weight was made for (type, rows, cols; data is not read). */
const an_mat *an_amx_weight_mat(const an_amx_weight *w);

/* Workspace bytes an_amx_matmul needs for up to n_max tokens of K <= k_max with nth threads. */
size_t an_amx_wsize(int64_t k_max, int n_max, int nth);

/* outs[i].y[n][ldy] = X[n][K] · W_iᵀ for the packed weights w[i] (outs[i].w is ignored; w[i]
 * gives the shape). All w[i] must share K. Activations are converted once per group of
 * consecutive weights with the same activation format. ws: an_amx_wsize bytes, 64-aligned.
 * Fails (AN_E_UNSUPPORTED) when AMX is unavailable, AN_E_USAGE on mismatched K. */
an_status an_amx_matmul(an_pool *pool, const an_amx_weight *const *w, const an_mm_out *outs, int n_outs,
                        const float *x, int n, void *ws, an_err *err);

/* One activation row as the INT8 engine feeds it to weights of `type` (Q8_0, Q4_0, Q4_1,
 * K-quants): kb = 32 (16 for Q6_K) quants per block into q[K], per block the scale as[K/kb] and
 * scale x sum of its quants am[K/kb]. reference: the scalar conversion (an_quant_act_row);
 * else the AVX-512 one the engine runs (needs an_amx_available). Both give the same bits; the
 * engine uses the reference when ANELM_AMX_QUANT_REF=1. For tests. */
an_status an_amx_quant_act_row(uint32_t type, const float *x, int64_t K, bool reference, int8_t *q, float *as,
                               float *am, an_err *err);

/* The engine as a scheduler device (amx_device.c; backends/backend.h): supports() needs AMX,
 * n >= 2 and supported formats; prepare() packs and keeps the weight (keyed by its data
 * pointer); run() packs lazily what was not prepared. cost is NULL (scheduler calibrates).
 * Returns NULL on allocation failure. Works (declining every op) where AMX is absent. */
struct an_device;
/* cache: the compile cache packed weights are read from and stored to (NULL: none; not owned,
 * must outlive the device). */
struct an_cache;
struct an_device *an_amx_device_create(struct an_cache *cache);

#endif
