/* ref_impl.h — the reference MIL executor's internals, shared by its files:
 *   types.c     data types and tensor types
 *   lex.c       text -> tokens (with line:column)
 *   parse.c     tokens -> functions of typed statements, checked as they are read
 *   ops.c       per-op argument and type checking, building the run plan
 *   constexpr.c const values: element access, BLOBFILE data, constexpr folding
 *   fp16ops.c   fp16 kernels (elementwise, strided copies) and the two convs
 *   exec.c      load/free/run and the public queries of ref.h
 * Not part of any public interface. */
#ifndef AN_ANE_REF_IMPL_H
#define AN_ANE_REF_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ane/blob.h"
#include "backends/ane/ref/ref.h"
#include "backends/cpu/cpu.h"

#define REF_MAX_RANK 5      /* tensors the ANE computes with (ane.md §5.2) */
#define REF_MAX_TYPE_RANK 7 /* a constexpr_lut_to_dense table has rank(indices) + 2 */
#define REF_MAX_AXIS 65536 /* every axis in 1..65536, as the ANE's MIL parser checks (ane.md §5.2) */
/* Elements of one tensor: far past any real program, and small enough that byte counts and
 * index arithmetic never overflow. */
#define REF_MAX_ELEMS (1ll << 36)

/* ---- types ------------------------------------------------------------------------------ */
typedef enum ref_dt {
    DT_NONE = 0,
    DT_FP16, DT_FP32, DT_BF16, DT_INT32, DT_INT16, DT_UINT16, DT_UINT32, DT_INT8, DT_UINT8,
    DT_INT4, DT_UINT1, DT_UINT2, DT_UINT3, DT_UINT4, DT_UINT6,
    DT_BOOL, DT_STRING, DT_UINT64,
    DT_COUNT
} ref_dt;

typedef struct ref_dt_info {
    const char *name;
    int bits;       /* element bits in a BLOBFILE (0: cannot come from one) */
    uint32_t blob;  /* blob.h dtype code, 0 if none */
    bool is_float, is_signed;
    int64_t lo, hi; /* integer range (integer types) */
} ref_dt_info;
const ref_dt_info *ref_dt_get(ref_dt dt);
ref_dt ref_dt_from_name(const char *s, size_t n);

/* rank 0: a scalar type (`int32`, `fp16`); 1..7: tensor<dt, [dims]> (only LUT tables may have
 * rank 6 or 7; ops.c refuses them anywhere else). */
typedef struct ref_type {
    ref_dt dt;
    int rank;
    int64_t dim[REF_MAX_TYPE_RANK];
} ref_type;
int64_t ref_type_elems(const ref_type *t);
bool ref_type_eq(const ref_type *a, const ref_type *b);
/* "tensor<fp16, [1, 64, 1, 32]>" into buf. */
const char *ref_type_str(const ref_type *t, char *buf, size_t cap);

/* ---- tokens ------------------------------------------------------------------------------ */
typedef enum ref_tok_kind {
    TK_EOF = 0, TK_IDENT, TK_NUMBER, TK_STRING,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE, TK_LT, TK_GT,
    TK_COMMA, TK_EQ, TK_SEMI, TK_ARROW,
} ref_tok_kind;

typedef struct ref_tok {
    ref_tok_kind kind;
    const char *p; /* into the text (parsing only) */
    size_t n;
    int line, col;
} ref_tok;

/* Tokenizes text; *toks (ending with TK_EOF) is the caller's to free. Errors say line:col. */
an_status ref_lex(const char *text, size_t len, ref_tok **toks, size_t *n_toks, an_err *err);

/* ---- values ------------------------------------------------------------------------------ */
typedef enum ref_vkind { V_INPUT, V_OP, V_CONST } ref_vkind;

typedef struct ref_val {
    char *name;      /* NULL for an inline literal argument */
    ref_type type;
    ref_vkind kind;
    int64_t n;       /* elements (1 for a scalar) */
    int line, col;
    /* const data, exactly one source set (load time; `h` also at run time):
     *   raw:  BLOBFILE bytes, borrowed from the caller's blob (load time only)
     *   num:  inline literal elements; str: a string literal
     *   f:    a folded constexpr result in exact float (exact mode)
     *   h:    fp16 values (folded constexprs; fp16 consts used by ops; runtime buffers) */
    const uint8_t *raw;
    double *num;
    char *str;
    float *f;
    uint16_t *h;
    /* run time: where the fp16 data of this value is for the current run */
    const uint16_t *cur;
    an_mat mat;      /* conv weights: h as an F16 matrix [dim0][dim1] */
    bool is_weight;
} ref_val;

/* Element i of a const numeric value, as a double (exact for every dtype we accept). */
double ref_const_get(const ref_val *v, int64_t i);
/* Makes v->h hold v's values rounded to fp16 (a no-op when it already does). */
an_status ref_const_to_f16(ref_val *v, an_err *err);

/* ---- ops ---------------------------------------------------------------------------------- */
typedef enum ref_opk { OP_COPY, OP_STRIDED, OP_CONV, OP_ADD, OP_MUL, OP_SIGMOID, OP_SILU } ref_opk;

typedef struct ref_op {
    ref_opk kind;
    int out, in[2]; /* value slots */
    /* OP_STRIDED (transpose, slice): out[i0..i4] = in[base + sum i_d * stride[d]]; out dims are
     * the output value's dims right-aligned to 5. OP_ADD/OP_MUL: broadcast strides of x and y
     * (0 along broadcast axes). */
    int64_t odim[REF_MAX_RANK];
    int64_t base;
    int64_t stride[2][REF_MAX_RANK];
    /* OP_CONV: x [B, K, H, W] (dims), weight slot in[1] ([M, K, 1, 1] fp16), bias slot or -1 */
    int64_t B, K, S, M;
    int bias;
} ref_op;

typedef struct ref_fn {
    char *name;
    ref_val *v;
    int nv, capv;
    ref_op *ops;
    int nops, capops;
    int *in, n_in;   /* value slots of the inputs, in order */
    int *out, n_out; /* value slots of the outputs, in order */
    an_mil_ref_tensor *in_t, *out_t;
} ref_fn;

struct an_mil_ref {
    ref_fn *fn;
    int n_fns;
    bool exact;       /* constexprs folded to exact float, not fp16 (an_mil_ref_const_f32) */
    bool scalar_conv; /* an_mil_ref_set_scalar_conv */
    bool buffers;     /* runtime buffers allocated (at the first run) */
    /* fast conv scratch, sized at load for the largest conv */
    int64_t conv_xf, conv_yf; /* floats */
    int conv_nmax;
    int64_t conv_kmax;
    float *xf, *yf;
    void *ws;
    size_t ws_size;
    size_t work_bytes;
};

/* ---- the parser's interface to ops.c ------------------------------------------------------ */
typedef struct ref_arg {
    const char *name; /* in the token text */
    size_t name_n;
    int slot;         /* value slot (a reference or an inline literal's anonymous const) */
    int line, col;
} ref_arg;

typedef struct ref_ctx {
    an_mil_ref *r;
    const uint8_t *blob;
    size_t blob_len;
    an_blob_file bf;
    bool bf_parsed;
    an_err *err;
} ref_ctx;

/* Checks op `op` (name op_n bytes) applied to args, whose declared result is slot `out` of fn,
 * at line:col; adds its run step (or folds it, for constexpr ops). */
an_status ref_op_build(ref_ctx *c, ref_fn *fn, const char *op, size_t op_n, const ref_arg *args, int n_args,
                       int out, int line, int col);

/* constexpr folding (constexpr.c): fills v (slot out) from its checked operands. */
an_status ref_fold_blockwise(ref_ctx *c, ref_fn *fn, int out, int data, int scale, int offset);
an_status ref_fold_lut(ref_ctx *c, ref_fn *fn, int out, int indices, int lut);

/* The program text parser (parse.c): fills r's functions. */
an_status ref_parse(ref_ctx *c, const char *text, size_t len);

/* Appends a value slot to fn; returns its index or -1 (out of memory, recorded in err). */
int ref_fn_add_val(ref_fn *fn, an_err *err);

/* ---- kernels (fp16ops.c) ------------------------------------------------------------------ */
void ref_k_strided(const ref_op *op, const uint16_t *in, uint16_t *out);
void ref_k_binary(const ref_op *op, const uint16_t *x, const uint16_t *y, uint16_t *out);
void ref_k_unary(ref_opk k, const uint16_t *x, uint16_t *out, int64_t n);
/* conv: x [B][K][S], w [M][K], bias [M] or NULL -> out [B][M][S]; fp32 accumulation in k
 * order, one rounding to fp16 (bias added before it). */
void ref_k_conv_scalar(const ref_op *op, const uint16_t *x, const uint16_t *w, const uint16_t *bias,
                       uint16_t *out);
/* The same through an_cpu_matmul (F16 weights, f32 accumulation; summation order differs). */
void ref_k_conv_fast(an_mil_ref *r, const ref_op *op, const uint16_t *x, const an_mat *w, const uint16_t *bias,
                     uint16_t *out, an_pool *pool);

#endif
