/* gemv_avx512.c — AVX-512 decode GEMV kernels (placeholder table: every type falls back to
 * the reference until a kernel is added here). */
#include "backends/cpu/gemv.h"

const an_gemv_table an_gemv_table_avx512 = {.fn = {0}};
