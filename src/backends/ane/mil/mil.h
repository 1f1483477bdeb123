/* mil.h — emitting MIL programs (text, research/ane.md §3) and their Blob Storage v2 weight
 * files (blob.h) for the matmul ops anelm offloads, plus the pure planning functions around
 * them: prompt-length buckets, tiling to the chip's dimension cap, procedure banks and the
 * per-process compile budget. Portable C; no Apple headers. The reference executor (ref/ref.h)
 * runs exactly what this emits; the macOS bridge (bridge/bridge.h) hands it to the ANE.
 *
 * THE MIL SUBSET anelm EMITS (and the executor accepts). Layout, exactly (functions indented 4
 * spaces, statements 8, one statement per line, "\n" line ends, no comments, no blank lines):
 *   program(1.3)
 *   [buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}, {"coremltools-component-milinternal", ""}, {"coremltools-version", "9.0"}})]
 *   {
 *       func main<ios18>(tensor<fp16, [1, 32, 1, 64]> x) {
 *           tensor<int32, [4]> perm = const()[name = string("perm"), val = tensor<int32, [4]>([0, 3, 2, 1])];
 *           tensor<int32, [2]> strides = const()[name = string("strides"), val = tensor<int32, [2]>([1, 1])];
 *           string pad_type = const()[name = string("pad_type"), val = string("valid")];
 *           tensor<int32, [4]> pad = const()[name = string("pad"), val = tensor<int32, [4]>([0, 0, 0, 0])];
 *           tensor<int32, [2]> dilations = const()[name = string("dilations"), val = tensor<int32, [2]>([1, 1])];
 *           int32 groups = const()[name = string("groups"), val = int32(1)];
 *           tensor<fp16, [1, 64, 1, 32]> xt = transpose(x = x, perm = perm)[name = string("xt")];
 *           tensor<fp16, [96, 64, 1, 1]> w0 = const()[name = string("w0"), val = tensor<fp16, [96, 64, 1, 1]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64(64)))];
 *           tensor<fp16, [1, 96, 1, 32]> c0 = conv(x = xt, weight = w0, strides = strides, pad_type = pad_type, pad = pad, dilations = dilations, groups = groups)[name = string("c0")];
 *           tensor<fp16, [1, 32, 1, 96]> y0 = transpose(x = c0, perm = perm)[name = string("y0")];
 *       } -> (y0);
 *   }
 * Statement forms: `TYPE NAME = const()[name = string("NAME"), val = LITERAL];` and
 * `TYPE NAME = OP(ARG = VAR, ...)[name = string("NAME")];` where every argument is a variable
 * defined earlier in the same function (or an input). Names match [A-Za-z_][A-Za-z0-9_]* and
 * are unique within a function; functions share no variables (each repeats its consts).
 * Types: `tensor<DT, [d0, d1, ...]>` with DT in fp16 int8 int4 uint4 uint6 uint8 int32, and the
 * scalar types `int32`, `string`. Literals: `int32(v)`, `string("s")`,
 * `tensor<int32, [n]>([a, b, ...])`, and `tensor<DT, [dims]>(BLOBFILE(path =
 * string("@model_path/weights/weight.bin"), offset = uint64(X)))` whose X is the offset of the
 * blob's metadata in the weight file; the blob's dtype equals DT and it holds exactly
 * prod(dims) elements (sub-byte types LSB-first, blob.h).
 * Ops and their arguments (all tensors rank 4 except lut, which is rank 6):
 *   transpose(x, perm)                        perm is always [0, 3, 2, 1]
 *   conv(x, weight, strides, pad_type, pad, dilations, groups)
 *                                             1x1, strides/dilations [1, 1], "valid", pad 0,
 *                                             groups 1: x [1, K, 1, N], weight [M, K, 1, 1]
 *   slice_by_index(x, begin, end)             begin/end int32 [4] consts, stride 1, no masks
 *   add(x, y), mul(x, y)                      same shapes (no broadcasting)
 *   sigmoid(x)
 *   constexpr_blockwise_shift_scale(data, scale)
 *                                             data int8/int4/fp16 [M, K, 1, 1], scale fp16
 *                                             [M, K/B, 1, 1]: out = scale[m][k/B] * data, fp16
 *                                             (no offset argument is emitted)
 *   constexpr_lut_to_dense(indices, lut)      iOS18 form: indices uint4/uint6/uint8
 *                                             [M, K, 1, 1], lut fp16 [M/G, 1, 1, 1, 2^b, 1]:
 *                                             out[m][k] = lut[m/G][idx[m][k]]
 * Function names: "main" alone, else "procedure000", "procedure001", ... Inputs are named x
 * (one input) or x0, x1, ... (the contraction split over inputs, see tiling); outputs are
 * whatever the `-> (...)` list names, in an_mil_io order.
 *
 * Weights: F16 as fp16; BF16/F32 and formats without a lossless mapping dequantized to fp16;
 * Q8_0 as int8 data [M, K, 1, 1] + fp16 scale [M, K/32, 1, 1] and Q4_0 as int4 data (q - 8) +
 * the same scale, both through constexpr_blockwise_shift_scale — the GGUF values exactly;
 * LUT4/LUT6/LUT8 (an_mat.lut) as uint4/uint6/uint8 indices [M, K, 1, 1] + fp16 lut
 * [M/G, 1, 1, 1, 2^b, 1] through constexpr_lut_to_dense (iOS18 form), followed by a blockwise
 * scale [M, 1, 1, 1] when the matrix has row scales.
 *
 * Tiling (M1-M3 cap 16384, M4+ 65536): activations enter as [1, N, 1, K] and leave as
 * [1, N, 1, M], so K and M lie on the width axis. Output rows above the cap are split into
 * output tiles (one conv and one output each). An input wider than the cap is split into
 * several inputs x0, x1, ... (the caller passes column slices), each transposed; their partial
 * convs are summed with add. Inside the fused FFN the down projection's contraction (d_ff,
 * on the channel axis) above the cap is cut with slice_by_index and summed the same way. */
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
/* An extent within the cap is one tile; a larger one is cut into the fewest tiles, of
 * near-equal size rounded up to a multiple of 64 (40000 at 16384: 13376, 13376, 13248). The
 * emitter uses exactly this for output tiles, split inputs and FFN slices. */
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
    AN_MIL_FFN,    /* n_w = 3, w = {gate, up, down}: y = (silu(x·gateᵀ) * (x·upᵀ)) · downᵀ,
                      silu as x * sigmoid(x); one result (output tiles if wide) */
} an_mil_kind;

typedef struct an_mil_fn {
    an_mil_kind kind;
    const an_mat *w[4];
    int n_w;
    int n;           /* tokens: a bucket, multiple of AN_ANE_BUCKET, at most the cap */
} an_mil_fn;

/* One program: n_fns functions (named "main" when n_fns == 1, else "procedure000", ...) that
 * share one weight file "@model_path/weights/weight.bin"; a weight used by several functions
 * (the same an_mat, e.g. one op at several buckets: same data pointer, type, shape and tables)
 * is stored once, and every function's BLOBFILE consts point at that one copy. */
#define AN_MIL_MAX_IN 4   /* K <= 65536 (channel cap) = 4 x 16384 */
#define AN_MIL_MAX_OUT 16
typedef struct an_mil_program {
    char *text;          /* MIL text, NUL-terminated */
    size_t text_len;
    uint8_t *blob;       /* the weight file */
    size_t blob_len;
    int n_fns;
    /* per function: inputs and outputs in order, each [1, n, 1, width] fp16 */
    struct an_mil_io {
        int n;                                         /* tokens (rows of every input/output) */
        int n_in, n_out;
        int64_t in_width[AN_MIL_MAX_IN], in_col0[AN_MIL_MAX_IN]; /* input i = columns [col0, col0+width) of x */
        int64_t out_width[AN_MIL_MAX_OUT];
        int out_w[AN_MIL_MAX_OUT];       /* which weight's result (LINEAR: weight index; FFN: 0) */
        int64_t out_col0[AN_MIL_MAX_OUT]; /* first column of that result this output holds */
    } *io;
} an_mil_program;

/* Emits fns[0 .. n_fns-1] as one program for chip family f (tiling to its cap). Errors name the
 * weight and say why: a shape that does not fit or does not chain (AN_E_USAGE / AN_E_RANGE), a
 * type without a dequantizer (IQ*, ...: AN_E_UNSUPPORTED; every type an_dequant_row knows is
 * dequantized to fp16 rather than refused). On error *out is left empty. */
an_status an_mil_emit(const an_mil_fn *fns, int n_fns, an_ane_family f, an_mil_program *out, an_err *err);
void an_mil_program_free(an_mil_program *p);

#endif
