/* ref.h — the reference MIL executor: parses the MIL subset that mil/mil.h documents and the
 * Blob Storage v2 weight file (blob.h), rejects anything malformed with a clear error (what,
 * and where: line and column of the text, byte offset of the blob), and runs functions with
 * ANE numerics: every op output is stored as fp16 (round to nearest even; values past the fp16
 * range become ±inf), conv accumulates in fp32 internally. constexpr_* ops are folded when the
 * program is loaded (as the ANE compiler does) into fp16 weights. Portable C. */
#ifndef AN_ANE_REF_H
#define AN_ANE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/status.h"

typedef struct an_mil_ref an_mil_ref;

/* Parses and loads a program; weights are read from blob (the file named
 * "@model_path/weights/weight.bin"; other paths are refused). Keeps no pointer into text or
 * blob after returning. */
an_status an_mil_ref_load(an_mil_ref **out, const char *text, size_t text_len, const uint8_t *blob,
                          size_t blob_len, an_err *err);
void an_mil_ref_free(an_mil_ref *r);

int an_mil_ref_n_fns(const an_mil_ref *r);
/* Index of the function called name, or -1. */
int an_mil_ref_find(const an_mil_ref *r, const char *name);

/* Name of function fn (NULL when out of range). */
const char *an_mil_ref_fn_name(const an_mil_ref *r, int fn);

/* A function's input or output: its MIL name and fp16 shape (dims[0..rank-1], row-major). */
typedef struct an_mil_ref_tensor {
    const char *name;
    int rank;
    int64_t dims[5];
    int64_t n; /* elements */
} an_mil_ref_tensor;
int an_mil_ref_n_inputs(const an_mil_ref *r, int fn);
int an_mil_ref_n_outputs(const an_mil_ref *r, int fn);
/* NULL when fn or i is out of range. */
const an_mil_ref_tensor *an_mil_ref_input(const an_mil_ref *r, int fn, int i);
const an_mil_ref_tensor *an_mil_ref_output(const an_mil_ref *r, int fn, int i);

/* Bytes of activation buffers the first run allocates (every intermediate of every function,
 * plus the conv scratch without the per-thread matmul workspace), so a caller can decline to
 * run a program whose declared shapes are huge. */
size_t an_mil_ref_work_bytes(const an_mil_ref *r);

/* Runs function fn: in[i] holds input i as fp16 in its declared shape (row-major), out[j]
 * receives output j as fp16. pool may be NULL (one thread). The first run allocates the
 * activation buffers (sizes fixed at load); later runs allocate nothing unless the pool has
 * more threads than before. One run at a time per an_mil_ref. */
an_status an_mil_ref_run(an_mil_ref *r, int fn, const uint16_t *const *in, uint16_t *const *out, an_pool *pool,
                         an_err *err);

/* conv runs through the CPU backend's F16 matmul (an_cpu_matmul) by default; on = the scalar
 * reference loop (fp32 accumulation in k order), to check the fast path against. */
void an_mil_ref_set_scalar_conv(an_mil_ref *r, int on);

/* Exact evaluation, for tests: loads the program as an_mil_ref_load does, but folds the
 * constexpr ops in float without rounding their results to fp16, and copies the n elements of
 * const (or constexpr) value `name` of function `fn` to out. Q8_0 and Q4_0 blocks written as
 * constexpr_blockwise_shift_scale thereby give exactly GGUF's dequantized floats (an int8
 * times an fp16 scale is exact in float; fp16 rounding is not). n must equal the value's
 * element count. */
an_status an_mil_ref_const_f32(const char *text, size_t text_len, const uint8_t *blob, size_t blob_len,
                               const char *fn, const char *name, float *out, int64_t n, an_err *err);

#endif
