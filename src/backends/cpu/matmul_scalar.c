/* Portable instantiation of the matmul float kernels (the reference level, ANELM_ISA=scalar). */
#include <stdint.h>
#include <string.h>

#define MM_SUFFIX scalar
#define MM_PR 16
#include "backends/cpu/matmul_body.inc"
