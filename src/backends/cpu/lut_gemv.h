/* lut_gemv.h — decode GEMV kernels for palettized weights (AN_TYPE_LUT4/LUT6/LUT8; the format
 * is in quant/lut.h). Separate from gemv.h because the block-format tables there are indexed by
 * type ids below AN_TYPE_COUNT, and because a LUT row cannot be computed from its bytes alone
 * (it needs its group's table and its row scale, i.e. the an_mat).
 *
 * Activations: fp32 in every exact variant (llama.cpp has no LUT type, so there is no rounding
 * to reproduce; bf16 hi/lo halves with VDPBF16PS, exact to ~2^-16, were slower: 7.0 against
 * 11.6 G elements/s for AVX-512 LUT6). One variant trades precision for speed where it
 * measurably pays: AVX-512 VBMI LUT6 uses int16 activations per 64-element block and a 14-bit
 * integer table, 1.6x faster on 2 threads, with an error still ~1000x below LUT6's own
 * (lut_gemv_avx512.c; an_lut_kernel.exact says which is which).
 *
 * A kernel may want the activation row in its own element order (so that the table lookups
 * need no shuffles back into row order) or format: each variant is a pair (prep, gemv), where
 * prep rewrites x once per token, and gemv reads the result. prep is NULL when the kernel reads
 * x as it is. tests/test_lut.c holds each variant to a stated NMSE bound against
 * an_lut_dot_ref.
 *
 * Variants live in files named for the ISA (lut_gemv_avx512.c, lut_gemv_avx2.c,
 * lut_gemv_neon.c); the active one is chosen once (core/cpu.h, ANELM_ISA). */
#ifndef AN_CPU_LUT_GEMV_H
#define AN_CPU_LUT_GEMV_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/cpu/cpu.h"
#include "core/cpu.h"

/* xp = x[0..K) in the kernel's element order and format, at most 4*K bytes. */
typedef void (*an_lut_prep_fn)(const float *x, float *xp, int64_t K);

/* y[i] = dot(row r0 + i of w, x) for i in [0, nrows)
 *   w:   a checked LUT matrix (an_lut_check), K = w->cols
 *   xp:  the activation row after prep (x itself, K fp32, when prep is NULL)
 *   y:   nrows floats (row r0's result first) */
typedef void (*an_lut_gemv_fn)(const an_mat *w, int64_t r0, int64_t nrows, const float *xp, float *y);

typedef struct an_lut_kernel {
    an_lut_prep_fn prep; /* NULL: x is read in row order */
    an_lut_gemv_fn gemv; /* NULL: no such variant */
    bool exact;          /* fp32 products (float rounding only); false: integer products */
} an_lut_kernel;

/* The kernel of this machine's active ISA for LUT type t (the portable one when the ISA has no
 * variant); {NULL, NULL} for non-LUT types. */
an_lut_kernel an_lut_kernel_get(uint32_t t);

/* The variant of a given ISA for t; gemv is NULL if that ISA has none or is not built into this
 * binary (for tests and benchmarks; the caller checks the CPU supports the ISA). AN_ISA_SCALAR
 * is the portable kernel. */
an_lut_kernel an_lut_kernel_variant(an_isa isa, uint32_t t);

/* AVX-512 has two variant sets: one for AVX-512 F/BW alone, and one that also uses VBMI and
 * VBMI2 (Ice Lake and later; LUT6 and LUT8 gain from them), which an_lut_kernel_variant and
 * an_lut_kernel_get return where the CPU has them. This returns the first set, for tests and
 * comparisons ({NULL, NULL} off x86). */
an_lut_kernel an_lut_kernel_avx512_base(uint32_t t);

/* Per-ISA tables, indexed by (bits - 4) / 2: LUT4, LUT6, LUT8. */
typedef struct an_lut_kernels {
    an_lut_kernel k[3];
} an_lut_kernels;

#endif
