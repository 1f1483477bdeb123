/* quant_internal.h — helpers shared by quant.c (32-element formats, dispatch) and quant_k.c
 * (K-quants). Private to src/quant. */
#ifndef AN_QUANT_INTERNAL_H
#define AN_QUANT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "quant/quant.h"

/* The reference code must be bit-exact with ggml built for x86-64, where no FMA is available
 * to the generic C code. clang would otherwise fuse a*b+c on targets that have FMA (gcc in
 * -std=c11 mode already defaults to -ffp-contract=off). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ggml's nearest_int: adding 1.5*2^23 makes the FPU round to an integer in the low mantissa
 * bits, i.e. round half to EVEN (the default rounding mode). Valid for |f| <= 2^22 - 1;
 * ggml only asserts that, so we clamp (and send NaN to 0) to keep malformed input from
 * producing undefined behaviour. Results for in-range input are identical. */
static inline int an_q_nearest_int(float f) {
    if (!(f >= -4194303.f)) f = (f != f) ? 0.f : -4194303.f;
    else if (f > 4194303.f) f = 4194303.f;
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Float -> int conversion that C leaves undefined out of range: clamp first (NaN -> lo). */
static inline int an_q_clamp_int(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v > (float)hi) return hi;
    return (int)v; /* truncation toward zero, like a C cast */
}

/* Read / write a LE u16 / fp16 (the host is little-endian; memcpy keeps alignment-agnostic). */
static inline float an_q_h2f(an_f16 h) { return an_f16_to_f32(h); }

/* K-quant entry points (quant_k.c). nb = number of 256-element super-blocks. x/y may be
 * unaligned: every block is copied to a local struct first. */
void an_dequant_q2_K(const void *x, float *y, int64_t nb);
void an_dequant_q3_K(const void *x, float *y, int64_t nb);
void an_dequant_q4_K(const void *x, float *y, int64_t nb);
void an_dequant_q5_K(const void *x, float *y, int64_t nb);
void an_dequant_q6_K(const void *x, float *y, int64_t nb);
void an_dequant_q8_K(const void *x, float *y, int64_t nb);

void an_quantize_q2_K(const float *x, void *y, int64_t nb);
void an_quantize_q3_K(const float *x, void *y, int64_t nb);
void an_quantize_q4_K(const float *x, void *y, int64_t nb);
void an_quantize_q5_K(const float *x, void *y, int64_t nb);
void an_quantize_q6_K(const float *x, void *y, int64_t nb);
void an_quantize_q8_K(const float *x, void *y, int64_t nb);

double an_dot_q2_K(const void *w, const void *a, int64_t nb);
double an_dot_q3_K(const void *w, const void *a, int64_t nb);
double an_dot_q4_K(const void *w, const void *a, int64_t nb);
double an_dot_q5_K(const void *w, const void *a, int64_t nb);
double an_dot_q6_K(const void *w, const void *a, int64_t nb);

#endif
