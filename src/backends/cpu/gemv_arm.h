/* gemv_arm.h — private to the AArch64 GEMV files (gemv_neon.c, gemv_dotprod.c).
 *
 * The float kernels (F32, F16, BF16) need nothing beyond baseline ARMv8-A NEON, so they are
 * compiled once in gemv_neon.c and the dotprod table points at the same functions. The integer
 * kernels differ only in how a run of int8 products is summed (SDOT or widening multiplies);
 * their block decoding is written once in gemv_arm_body.inc and compiled into each file with
 * that file's dot-product helpers. */
#ifndef AN_CPU_GEMV_ARM_H
#define AN_CPU_GEMV_ARM_H

#include <stdint.h>

/* The kernels take the number of rows per pass R as a constant argument and keep per-row
 * vectors in small arrays indexed by r; forced inlining plus full unrolling of the r loops turns
 * those arrays into registers (GCC's -O2 would otherwise keep them on the stack). */
#define AN_INLINE static inline __attribute__((always_inline))
#define AN_UNROLL _Pragma("GCC unroll 8")

/* Same contract as an_gemv_fn (gemv.h). */
void an_gemv_neon_f32(const void *w, uint64_t row_bytes, int64_t K, const void *a, float *y, int64_t nrows);
void an_gemv_neon_f16(const void *w, uint64_t row_bytes, int64_t K, const void *a, float *y, int64_t nrows);
void an_gemv_neon_bf16(const void *w, uint64_t row_bytes, int64_t K, const void *a, float *y, int64_t nrows);

#endif
