/* cpu.h — what this CPU and OS can run, probed once (cpuid + XGETBV on x86, hwcaps on arm).
 * ANELM_ISA=scalar|avx2|avx512 (or neon) caps the level used, for tests and comparisons. */
#ifndef AN_CORE_CPU_H
#define AN_CORE_CPU_H

#include <stdbool.h>
#include <stddef.h>

typedef enum an_isa {
    AN_ISA_SCALAR = 0, /* portable C, the reference */
    AN_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    AN_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI + BF16 */
    AN_ISA_NEON = 3,
} an_isa;

typedef struct an_cpu_info {
    bool avx2, fma, f16c;          /* usable: cpuid bits and OS saves YMM state */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avx512fp16;
    bool amx_tile, amx_int8, amx_bf16; /* cpuid only; OS permission is the AMX backend's job */
    bool neon, dotprod;
    an_isa best;   /* highest level both CPU and OS support */
    an_isa active; /* best, capped by ANELM_ISA */
    const char *override; /* the ANELM_ISA value, or NULL */
} an_cpu_info;

/* Probed on first call (thread-safe), then constant. */
const an_cpu_info *an_cpu(void);
const char *an_isa_name(an_isa isa);

/* The CPU's marketing name (cpuid leaves 0x80000002-4 on x86, /proc/cpuinfo elsewhere),
 * trimmed; "unknown cpu" if there is none. Keys per-machine caches (limits, calibration). */
void an_cpu_brand(char *buf, size_t cap);

#endif
