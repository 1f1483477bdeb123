/* quant.h — every weight format's block layout with scalar reference code: dequantize,
 * quantize, and the dot products llama.cpp's CPU path computes. These are the oracle for every
 * fast kernel (src/backends/...), so they favour clarity and exactness over speed.
 *
 * Terms: a weight row of type T is dotted with an activation row converted to T's "vec_dot
 * type" (F32 -> F32, F16 -> F16, BF16 -> BF16, Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1,
 * Q2_K..Q6_K -> Q8_K), exactly as llama.cpp's CPU backend converts src1 before vec_dot.
 * n (elements) is always a multiple of the block size of the types involved. */
#ifndef AN_QUANT_H
#define AN_QUANT_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/types.h"
#include "core/fp16.h"

/* Block structs (little-endian, packed by construction: all members are bytes or u16 at even
 * offsets, checked by static asserts in quant.c). */
typedef struct { an_f16 d; uint8_t qs[16]; } an_block_q4_0;                 /* 18 B */
typedef struct { an_f16 d, m; uint8_t qs[16]; } an_block_q4_1;              /* 20 B */
typedef struct { an_f16 d; uint8_t qh[4]; uint8_t qs[16]; } an_block_q5_0;  /* 22 B */
typedef struct { an_f16 d, m; uint8_t qh[4]; uint8_t qs[16]; } an_block_q5_1; /* 24 B */
typedef struct { an_f16 d; int8_t qs[32]; } an_block_q8_0;                  /* 34 B */
typedef struct { an_f16 d, s; int8_t qs[32]; } an_block_q8_1;               /* 36 B */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; an_f16 d, dmin; } an_block_q2_K; /* 84 B */
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; an_f16 d; } an_block_q3_K; /* 110 B */
typedef struct { an_f16 d, dmin; uint8_t scales[12]; uint8_t qs[128]; } an_block_q4_K; /* 144 B */
typedef struct { an_f16 d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } an_block_q5_K; /* 176 B */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; an_f16 d; } an_block_q6_K; /* 210 B */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } an_block_q8_K; /* 292 B */

/* Weight types anelm computes with (the 13 formats of the foundation issue). */
bool an_quant_is_weight_type(uint32_t t);

/* The activation format a weight type is dotted with (see above). */
an_type an_quant_vec_dot_type(an_type t);

/* y[0..n) = dequantized x (one row of n elements). Bit-exact with ggml's dequantize_row_*. */
void an_dequant_row(an_type t, const void *x, float *y, int64_t n);

/* Reference quantization of a weight row (ggml's quantize_row_*_ref): F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K. Returns false for types without a quantizer. */
bool an_quant_row_ref(an_type t, const float *x, void *y, int64_t n);

/* Activation quantization exactly as llama.cpp's x86 CPU path converts src1 for MUL_MAT:
 * F32 copy; F16 / BF16 round-to-nearest-even; Q8_0 and Q8_1 with d = amax/127,
 * id = 127/amax, round half to even (the AVX2 code path); Q8_K with the reference quantizer.
 * t is a vec_dot type. */
void an_quant_act_row(an_type t, const float *x, void *y, int64_t n);

/* Reference dot product of one weight row w (type t) with one activation row a (type
 * an_quant_vec_dot_type(t)) of n elements: integer sums per block as ggml's generic
 * vec_dot_*, block results accumulated in double. */
float an_vec_dot_ref(an_type t, int64_t n, const void *w, const void *a);

#endif
