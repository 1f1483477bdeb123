/* types.h — the tensor type table (ggml's type ids, which GGUF stores on disk).
 * Shared by the GGUF reader (byte sizes) and the weight formats (src/quant). */
#ifndef AN_CORE_TYPES_H
#define AN_CORE_TYPES_H

#include <stdint.h>
#include <stdbool.h>

typedef enum an_type {
    AN_TYPE_F32 = 0,
    AN_TYPE_F16 = 1,
    AN_TYPE_Q4_0 = 2,
    AN_TYPE_Q4_1 = 3,
    AN_TYPE_Q5_0 = 6,
    AN_TYPE_Q5_1 = 7,
    AN_TYPE_Q8_0 = 8,
    AN_TYPE_Q8_1 = 9,
    AN_TYPE_Q2_K = 10,
    AN_TYPE_Q3_K = 11,
    AN_TYPE_Q4_K = 12,
    AN_TYPE_Q5_K = 13,
    AN_TYPE_Q6_K = 14,
    AN_TYPE_Q8_K = 15,
    AN_TYPE_IQ2_XXS = 16,
    AN_TYPE_IQ2_XS = 17,
    AN_TYPE_IQ3_XXS = 18,
    AN_TYPE_IQ1_S = 19,
    AN_TYPE_IQ4_NL = 20,
    AN_TYPE_IQ3_S = 21,
    AN_TYPE_IQ2_S = 22,
    AN_TYPE_IQ4_XS = 23,
    AN_TYPE_I8 = 24,
    AN_TYPE_I16 = 25,
    AN_TYPE_I32 = 26,
    AN_TYPE_I64 = 27,
    AN_TYPE_F64 = 28,
    AN_TYPE_IQ1_M = 29,
    AN_TYPE_BF16 = 30,
    AN_TYPE_TQ1_0 = 34,
    AN_TYPE_TQ2_0 = 35,
    AN_TYPE_MXFP4 = 39,
    AN_TYPE_NVFP4 = 40,
    AN_TYPE_Q1_0 = 41,
    AN_TYPE_Q2_0 = 42,
    AN_TYPE_COUNT = 43, /* first id past ggml's range */
    /* anelm's own types, outside ggml's range so llama.cpp refuses them cleanly (its reader
     * rejects type ids >= its GGML_TYPE_COUNT). Palettized weights: b-bit indices into fp16
     * tables shared by groups of rows; the tables live in a companion F16 tensor (see an_mat in
     * backends/cpu/cpu.h and the README's format section). */
    AN_TYPE_LUT_BASE = 1000,
    AN_TYPE_LUT4 = 1004, /* 2 elements per byte */
    AN_TYPE_LUT6 = 1006, /* 4 elements per 3 bytes */
    AN_TYPE_LUT8 = 1008,
} an_type;

#define AN_QK 32   /* elements per block of the 32-wide formats */
#define AN_QK_K 256 /* elements per K-quant super-block */

typedef struct an_type_traits {
    const char *name; /* "F16", "Q4_K", ... */
    uint32_t blck;    /* elements per block */
    uint32_t size;    /* bytes per block */
} an_type_traits;

/* Traits of a type id as stored in a file; NULL for ids that are unknown or were removed
 * from ggml (block size 0), which a reader must reject. */
const an_type_traits *an_type_traits_get(uint32_t id);

/* Name of a type id ("Q4_K"), or "unknown" for ids an_type_traits_get rejects. */
const char *an_type_name(uint32_t id);

/* Bytes of a row of n elements; n must be a multiple of the block size. */
static inline uint64_t an_row_bytes(const an_type_traits *tt, uint64_t n) {
    return n / tt->blck * tt->size;
}

#endif
