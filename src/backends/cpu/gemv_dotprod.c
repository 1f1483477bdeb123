/* gemv_dotprod.c — ARMv8.2 dot-product (SDOT) decode GEMV kernels: y[r] = dot(W row r, a).
 * Chosen at run time when the CPU reports ASIMDDP (core/cpu.c); all Apple silicon and most
 * ARMv8.2+ cores have it.
 *
 * The integer kernels are gemv_arm_body.inc with the int8 runs summed by SDOT: each int32 lane
 * accumulates four int8 products exactly (no intermediate int16 lane, so no range limits on
 * the weights). The float kernels gain nothing from dotprod and are the NEON ones. */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/gemv.h"
#include "backends/cpu/gemv_arm.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "gemv_dotprod.c needs -march=armv8.2-a+dotprod (the Makefile's ARM_DOTPROD flags)"
#endif

/* acc + sum of the 16 products w[i]*a[i] (lane j gets products 4j..4j+3). */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) { return vdotq_s32(acc, w, a); }
static inline int32x4_t dot16s(int32x4_t acc, int8x16_t w, int8x16_t a) { return vdotq_s32(acc, w, a); }
static inline int32x4_t dot32s(int32x4_t acc, int8x16_t w0, int8x16_t a0, int8x16_t w1, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(acc, w0, a0), w1, a1);
}

#define AN_GEMV_ARM_NAME(x) gemv_dotprod_##x
#define AN_GEMV_ARM_TABLE an_gemv_table_dotprod
#include "backends/cpu/gemv_arm_body.inc"
