/* amx_impl.h — what the portable driver (amx.c) and the tile kernels (amx_gemm_amx.c) share:
 * the packed weight, the converted activation panel and the kernel entry points. Internal to
 * src/backends/amx. */
#ifndef AN_AMX_IMPL_H
#define AN_AMX_IMPL_H

#include <stdint.h>

#include "backends/amx/amx.h"

enum { AMX_KIND_BF16 = 0, AMX_KIND_I8 = 1, AMX_KIND_LUT = 2 };

/* Activation formats (one conversion serves all weights of the same format and K). */
enum {
    AMX_ACT_BF16 = 0, /* 1 plane: bf16(x) */
    AMX_ACT_F16 = 1,  /* 2 planes: h = bf16(f16(x)), l = f16(x) - h */
    AMX_ACT_F32 = 2,  /* 3 planes: hi, mid, lo of x */
    AMX_ACT_Q8_0 = 3, /* int8 + scale per 32 */
    AMX_ACT_Q8_1 = 4, /* int8 + scale and sum per 32 */
    AMX_ACT_Q8_K32 = 5, /* Q8_K: int8, scale per 256, sums per 32 (Q4_K, Q5_K) */
    AMX_ACT_Q8_K16 = 6, /* Q8_K: sums per 16 (Q6_K) */
};

/* Packed weight. Rows are zero-padded to mp (a multiple of 32: the kernels compute 2 groups of
 * 16 rows at once); K to kp (BF16: a multiple of 32; INT8: K itself, a multiple of kb).
 *   BF16: tiles[plane][g][s] for row group g (16 rows) and k-step s (32 k): 1 KiB B tile in
 *         VNNI order, byte (k%32/2)*64 + (r%16)*4 + (k%2)*2 holds bf16 W[16g + r%16][32s + k%32].
 *   INT8: tiles[g][b] for row group g and block b (kb k): kb*16 bytes in VNNI order,
 *         byte (k%kb/4)*64 + (r%16)*4 + k%4 holds the int8 quant; ws[g][b][16] the float scale
 *         of each row's block, wm[g][b][16] its additive min (has_min).
 *   LUT:  palettized (LUT4/LUT6) weights stay indices: tiles[g][s] 512 one-byte indices in the
 *         element order of a BF16 tile, expanded to BF16 tiles a chunk of rows at a time when
 *         the matmul runs (an_amx_k_expand_lut), never for the whole matrix; lut[t][64] the
 *         bf16 tables (table t serves rows [t*lut_group, (t+1)*lut_group)); ws[mp] each row's
 *         scale, applied to the outputs. */
struct an_amx_weight {
    an_mat src; /* shape and type (data not kept) */
    int kind, act, kb, nplanes, has_min;
    int64_t mp, kp, nblk, ngrp;
    int64_t lut_group, ntab;
    const uint8_t *tiles;
    const float *ws, *wm;
    const uint16_t *lut;
    void *owned; /* the blob, when an_amx_pack allocated it */
};

/* Activations converted for one group of weights: np tokens (n rounded up to 32; padding rows
 * are zero), kp columns. */
typedef struct amx_panel {
    int act, kb, nplanes, np;
    int64_t kp, nblk;
    /* Tile order, so each A tile is 1 contiguous KiB (a row stride of kp would put a tile's
     * 16 rows in one L1 set at K = 4096): bf16 planes [np/16][kp/32][16][32]; int8
     * [np/16][nblk][16][kb]. */
    uint16_t *bf[3];
    int8_t *q;
    float *as, *am;  /* [np][nblk]: block scale, and block sum (scale * sum of quants) */
} amx_panel;

#if defined(__x86_64__)
/* Tile configuration for this thread: kind BF16 (all tiles 16 x 64 B) or INT8 with block kb
 * (C 16 x 64 B, A 16 x kb B, B kb/4 x 64 B). Tiles: tmm0-3 C, tmm4-5 A, tmm6-7 B. */
void an_amx_k_config(int kind, int kb);
void an_amx_k_release(void);

/* Rows t in [t0, t1) of the bf16 planes of p from x[n][K] (rows >= n and k >= K are zero). */
void an_amx_k_convert_bf16(const float *x, int64_t K, int n, const amx_panel *p, int t0, int t1);

/* x[K] quantized for INT8 weights with activation format act (AMX_ACT_Q8_0 .. Q8_K16) and
 * block kb: block b's quants to q + b * qstride, as[b] its scale, am[b] scale x sum of its
 * quants. Bit for bit amx.c's scalar quant_row_ref (llama.cpp's rounding: Q8_0/Q8_1
 * id = 127/amax, half-to-even; Q8_K iscale = -127/max, first largest magnitude). */
void an_amx_k_quant_row(const float *x, int64_t K, int act, int kb, int8_t *q, int64_t qstride, float *as, float *am);

/* c[32][32] (tokens x rows) = tokens [t0, t0+32) (or 16 when !two_a; rows 16..31 of c are then
 * not written) · rows [16g, 16g+32) of w over all of K, summing the plane pairs pass[i] =
 * {weight plane, activation plane}. Needs an_amx_k_config(BF16). */
void an_amx_k_block_bf16(const an_amx_weight *w, const amx_panel *a, int64_t g, int t0, int two_a,
                         const uint8_t (*pass)[2], int npass, float *c);

/* Same for INT8 weights: per block, int32 tiles scaled by ws * as (+ wm * am) into c. ib:
 * 32 x 32 int32 scratch. Needs an_amx_k_config(INT8, w->kb). */
/* Expands 16-row groups [g0, g0 + ng) of a LUT weight into BF16 tiles dst[ng][nblk][512]
 * (the layout an_amx_k_block_bf16 reads, one plane). */
void an_amx_k_expand_lut(const an_amx_weight *w, int64_t g0, int64_t ng, uint16_t *dst);

void an_amx_k_block_i8(const an_amx_weight *w, const amx_panel *a, int64_t g, int t0, int two_a, float *c,
                       int32_t *ib);
#endif

#endif
