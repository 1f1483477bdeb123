/* gemv_avx2.c — AVX2+FMA+F16C decode GEMV kernels (placeholder table: every type falls back to
 * the reference until a kernel is added here). */
#include "backends/cpu/gemv.h"

const an_gemv_table an_gemv_table_avx2 = {.fn = {0}};
