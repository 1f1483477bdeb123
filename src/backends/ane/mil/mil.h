/* mil.h — emitting MIL programs (text, research/ane.md §3) and their Blob Storage v2 weight
 * files (blob.h) for the matmul ops anelm offloads, plus the pure planning functions around
 * them: prompt-length buckets, tiling to the chip's dimension cap, procedure banks and the
 * per-process compile budget. Portable C; no Apple headers. The reference executor (ref/ref.h)
 * runs exactly what this emits; the macOS bridge (bridge/bridge.h) hands it to the ANE.
 *
 * The MIL subset anelm emits (and the executor accepts) — every statement typed, keyword args:
 *   program(1.3)
 *   [buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, ...})]
 *   {
 *     func NAME<ios18>(tensor<fp16, [1, N, 1, K]> x) {
 *       tensor<int32, [4]> perm = const()[name = string("perm"), val = tensor<int32, [4]>([0, 3, 2, 1])];
 *       tensor<fp16, [M, K, 1, 1]> W = const()[name = string("W"), val = tensor<fp16, [M, K, 1, 1]>(
 *           BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64(64)))];
 *       tensor<fp16, [1, K, 1, N]> xt = transpose(x = x, perm = perm)[name = string("xt")];
 *       tensor<fp16, [1, M, 1, N]> yc = conv(x = xt, weight = W, strides = s, pad_type = pt,
 *           pad = p, dilations = d, groups = g)[name = string("yc")];
 *       tensor<fp16, [1, N, 1, M]> y = transpose(x = yc, perm = perm)[name = string("y")];
 *     } -> (y);
 *   }
 * Ops: const (inline literal or BLOBFILE val), transpose, conv (1x1, valid, groups 1),
 * slice_by_index (K tiling), add, mul, sigmoid, constexpr_blockwise_shift_scale,
 * constexpr_lut_to_dense. Scalar literals: int32(v), bool(v), string("s"), uint64(v),
 * fp16 hex floats; tensor literals tensor<int32, [n]>([a, b, ...]).
 *
 * Weights: F16 as fp16; BF16/F32 and formats without a lossless mapping dequantized to fp16;
 * Q8_0 as int8 data [M, K, 1, 1] + fp16 scale [M, K/32, 1, 1] and Q4_0 as int4 data (q - 8) +
 * the same scale, both through constexpr_blockwise_shift_scale — the GGUF values exactly;
 * LUT4/LUT6 (an_mat.lut) as uint4/uint6 indices [M, K, 1, 1] + fp16 lut [M/G, 1, 1, 1, 2^b, 1]
 * through constexpr_lut_to_dense (iOS18 form), followed by a blockwise scale [M, 1, 1, 1]
 * when the matrix has row scales. */
#ifndef AN_ANE_MIL_H
#define AN_ANE_MIL_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/ane/blob.h"
#include "backends/cpu/cpu.h"
#include "core/status.h"

/* ---- chips and planning (pure functions) ------------------------------------------------ */
typedef enum an_ane_family { AN_ANE_M1_M3 = 0, AN_ANE_M4_PLUS = 1 } an_ane_family;
/* Largest extent of a width/spatial axis (and of a matmul contraction): 16384 on M1-M3,
 * 65536 on M4 and later; channels are capped at 65536 on all. */
int64_t an_ane_spatial_cap(an_ane_family f);

#define AN_ANE_BUCKET 32
/* The bucket a batch of n tokens runs in: n rounded up to a multiple of AN_ANE_BUCKET
 * (activations are padded with zero rows; the padded outputs are dropped, never tokens). */
int an_ane_bucket(int n);

/* How a weight of rows x cols is split so that no axis exceeds the cap: n_m tiles of output
 * rows (each its own conv and program output, written side by side by the caller) and n_k
 * slices of the contraction (slice_by_index on the input, partial convs summed with add). */
typedef struct an_ane_tiling {
    int n_m, n_k;
    int64_t m_tile, k_tile; /* all tiles this size except the last (remainder) */
} an_ane_tiling;
an_ane_tiling an_ane_tile(int64_t rows, int64_t cols, int64_t cap);

/* The per-process compile budget (research/ane.md §6.3: ~119 before the process is refused;
 * we stop at 100). Programs are grouped into banks so a model fits: */
#define AN_ANE_COMPILE_BUDGET 100
#define AN_ANE_BANK_MAX_FNS 256                 /* functions per program (oMLX's cap) */
#define AN_ANE_BANK_MAX_BYTES (1ull << 30)      /* weight bytes per program */
/* Assigns each of n_items programs-to-be (weight bytes bytes[i], n_fns[i] functions) to a bank:
 * bank_of[i] in 0 .. *n_banks-1, consecutive items together, as few banks as the two caps
 * allow. Fails (AN_E_UNSUPPORTED, message says how many compiles it would take) when more than
 * budget banks are needed. */
an_status an_ane_bank_plan(const uint64_t *bytes, const int *n_fns, int n_items, int budget, int *bank_of,
                           int *n_banks, an_err *err);

/* ---- programs ---------------------------------------------------------------------------- */
typedef enum an_mil_kind {
    AN_MIL_LINEAR, /* y_i = x · W_iᵀ for i < n_w: one output per weight (Q/K/V, gate/up fused) */
    AN_MIL_FFN,    /* w = {gate, up, down}: y = (silu(x·gateᵀ) * (x·upᵀ)) · downᵀ, silu as
                      x * sigmoid(x) */
} an_mil_kind;

typedef struct an_mil_fn {
    an_mil_kind kind;
    const an_mat *w[4];
    int n_w;
    int n;           /* tokens: a bucket, multiple of AN_ANE_BUCKET */
} an_mil_fn;

/* One program: n_fns functions (named "main" when n_fns == 1, else "procedure000", ...) that
 * share one weight file "@model_path/weights/weight.bin"; a weight used by several functions
 * (the same an_mat pointer, e.g. one op at several buckets) is stored once. */
typedef struct an_mil_program {
    char *text;          /* MIL text, NUL-terminated */
    size_t text_len;
    uint8_t *blob;       /* the weight file */
    size_t blob_len;
    int n_fns;
    /* per function: inputs and outputs in order, each [1, n, 1, width] fp16 */
    struct an_mil_io { int n_in, n_out; int64_t in_width[4]; int64_t out_width[16]; int n; } *io;
} an_mil_program;

/* Emits fns[0 .. n_fns-1] as one program for chip family f (tiling to its cap). Errors name the
 * weight and say why (an unsupported weight type is dequantized, never refused; a shape that
 * does not fit is refused). */
an_status an_mil_emit(const an_mil_fn *fns, int n_fns, an_ane_family f, an_mil_program *out, an_err *err);
void an_mil_program_free(an_mil_program *p);

#endif
