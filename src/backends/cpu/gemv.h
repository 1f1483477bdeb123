/* gemv.h — decode GEMV kernels: one activation row against many weight rows, with the
 * activation already converted to the weight type's vec_dot type (quant.h). Every ISA variant
 * computes what an_vec_dot_ref computes, up to float summation order; tests/test_kernels.c
 * holds each to a stated NMSE bound against the reference.
 *
 * Variants live in files named for the ISA (gemv_avx2.c, gemv_avx512.c, gemv_neon.c,
 * gemv_dotprod.c); the table for this machine is chosen once (core/cpu.h, ANELM_ISA). */
#ifndef AN_CPU_GEMV_H
#define AN_CPU_GEMV_H

#include <stdint.h>

#include "core/cpu.h"
#include "core/types.h"

/* y[r] = dot(W row r, a) for r in [0, nrows)
 *   w:   nrows rows of `row_bytes` bytes each (type t, K elements per row)
 *   a:   one activation row of K elements in an_quant_vec_dot_type(t)
 *   y:   nrows floats */
typedef void (*an_gemv_fn)(const void *w, uint64_t row_bytes, int64_t K, const void *a, float *y,
                           int64_t nrows);

/* The kernel of this machine's active ISA for weight type t (falls back to the reference
 * when the ISA has no variant for t). Never NULL for weight types (an_quant_is_weight_type). */
an_gemv_fn an_gemv_get(an_type t);

/* The variant of a given ISA for t, or NULL if that ISA has none for t or is not built into
 * this binary (for tests and benchmarks; the caller checks the CPU supports the ISA). */
an_gemv_fn an_gemv_variant(an_isa isa, an_type t);

/* Per-ISA tables: each ISA file defines one, filling the types it accelerates. */
typedef struct an_gemv_table {
    an_gemv_fn fn[AN_TYPE_COUNT];
} an_gemv_table;

#endif
