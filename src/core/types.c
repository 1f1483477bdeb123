#include "core/types.h"

#include <stddef.h>

/* Sizes from the block definitions in research/ggml.md section 2. */
static const an_type_traits k_types[AN_TYPE_COUNT] = {
    [AN_TYPE_F32] = {"F32", 1, 4},        [AN_TYPE_F16] = {"F16", 1, 2},
    [AN_TYPE_Q4_0] = {"Q4_0", 32, 18},    [AN_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [AN_TYPE_Q5_0] = {"Q5_0", 32, 22},    [AN_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [AN_TYPE_Q8_0] = {"Q8_0", 32, 34},    [AN_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [AN_TYPE_Q2_K] = {"Q2_K", 256, 84},   [AN_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [AN_TYPE_Q4_K] = {"Q4_K", 256, 144},  [AN_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [AN_TYPE_Q6_K] = {"Q6_K", 256, 210},  [AN_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [AN_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [AN_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [AN_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [AN_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [AN_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},    [AN_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [AN_TYPE_IQ2_S] = {"IQ2_S", 256, 82},     [AN_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [AN_TYPE_I8] = {"I8", 1, 1},          [AN_TYPE_I16] = {"I16", 1, 2},
    [AN_TYPE_I32] = {"I32", 1, 4},        [AN_TYPE_I64] = {"I64", 1, 8},
    [AN_TYPE_F64] = {"F64", 1, 8},        [AN_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [AN_TYPE_BF16] = {"BF16", 1, 2},      [AN_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [AN_TYPE_TQ2_0] = {"TQ2_0", 256, 66}, [AN_TYPE_MXFP4] = {"MXFP4", 32, 17},
    [AN_TYPE_NVFP4] = {"NVFP4", 64, 36},  [AN_TYPE_Q1_0] = {"Q1_0", 128, 18},
    [AN_TYPE_Q2_0] = {"Q2_0", 64, 18},
};

/* anelm's palettized types (types.h), kept out of k_types so that tables indexed by ids below
 * AN_TYPE_COUNT (GEMV, quantizer and dispatch tables) never see them. A "block" is the smallest
 * whole number of elements that fills whole bytes of the LSB-first index stream. */
static const an_type_traits k_lut_types[] = {
    {"LUT4", 2, 1}, /* 2 x 4 bits = 1 byte */
    {"LUT6", 4, 3}, /* 4 x 6 bits = 3 bytes */
    {"LUT8", 1, 1},
};

const an_type_traits *an_type_traits_get(uint32_t id) {
    switch (id) {
    case AN_TYPE_LUT4: return &k_lut_types[0];
    case AN_TYPE_LUT6: return &k_lut_types[1];
    case AN_TYPE_LUT8: return &k_lut_types[2];
    default: break;
    }
    if (id >= AN_TYPE_COUNT || k_types[id].blck == 0) return NULL;
    return &k_types[id];
}

const char *an_type_name(uint32_t id) {
    const an_type_traits *t = an_type_traits_get(id);
    return t ? t->name : "unknown";
}
