#include "core/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static an_cpu_info g_info;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void probe(void) {
    an_cpu_info *c = &g_info;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, cx, d;
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        bool osxsave = cx & (1u << 27);
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        bool ymm = (xcr0 & 6) == 6;            /* XMM and YMM state saved by the OS */
        bool zmm = ymm && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
        c->fma = ymm && (cx & (1u << 12));
        c->f16c = ymm && (cx & (1u << 29));
        if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
            c->avx2 = ymm && (b & (1u << 5));
            c->avx512f = zmm && (b & (1u << 16));
            c->avx512dq = zmm && (b & (1u << 17));
            c->avx512bw = zmm && (b & (1u << 30));
            c->avx512vl = zmm && (b & (1u << 31));
            c->avx512vnni = zmm && (cx & (1u << 11));
            c->avx512fp16 = zmm && (d & (1u << 23));
            c->amx_bf16 = d & (1u << 22);
            c->amx_tile = d & (1u << 24);
            c->amx_int8 = d & (1u << 25);
            unsigned a1, b1, c1, d1;
            if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) c->avx512bf16 = zmm && (a1 & (1u << 5));
        }
    }
    c->best = AN_ISA_SCALAR;
    if (c->avx2 && c->fma && c->f16c) c->best = AN_ISA_AVX2;
    if (c->best == AN_ISA_AVX2 && c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq &&
        c->avx512vnni && c->avx512bf16)
        c->best = AN_ISA_AVX512;
#elif defined(__aarch64__)
    c->neon = true;
#if defined(__linux__)
    c->dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0; /* HWCAP_ASIMDDP */
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    c->dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
#endif
    c->best = AN_ISA_NEON;
#else
    c->best = AN_ISA_SCALAR;
#endif
    c->active = c->best;
    const char *e = getenv("ANELM_ISA");
    if (e && *e) {
        c->override = e;
        an_isa want = c->best;
        if (!strcmp(e, "scalar")) want = AN_ISA_SCALAR;
        else if (!strcmp(e, "avx2")) want = AN_ISA_AVX2;
        else if (!strcmp(e, "avx512")) want = AN_ISA_AVX512;
        else if (!strcmp(e, "neon")) want = AN_ISA_NEON;
        /* never go above what the machine supports; NEON and x86 levels don't mix */
        if (want == AN_ISA_SCALAR || (want != AN_ISA_NEON && c->best != AN_ISA_NEON && want < c->best) ||
            want == c->best)
            c->active = want;
    }
}

const an_cpu_info *an_cpu(void) {
    pthread_once(&g_once, probe);
    return &g_info;
}

const char *an_isa_name(an_isa isa) {
    switch (isa) {
    case AN_ISA_SCALAR: return "scalar";
    case AN_ISA_AVX2: return "avx2";
    case AN_ISA_AVX512: return "avx512";
    case AN_ISA_NEON: return "neon";
    }
    return "?";
}

/* The CPU's marketing name: cpuid leaves 0x80000002-4 on x86, /proc/cpuinfo elsewhere. */
void an_cpu_brand(char *buf, size_t cap) {
    buf[0] = 0;
#if defined(__x86_64__)
    unsigned r[12], max = __get_cpuid_max(0x80000000u, NULL);
    if (max >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[i * 4], &r[i * 4 + 1], &r[i * 4 + 2], &r[i * 4 + 3]);
        char s[49];
        memcpy(s, r, 48);
        s[48] = 0;
        snprintf(buf, cap, "%s", s);
    }
#else
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            const char *c = strchr(line, ':');
            if (c && (!strncmp(line, "model name", 10) || !strncmp(line, "Hardware", 8) ||
                      !strncmp(line, "CPU part", 8))) {
                snprintf(buf, cap, "%s", c + 1);
                break;
            }
        }
        fclose(f);
    }
#endif
    /* trim: brand strings are padded with spaces (and the cpuinfo line ends with a newline) */
    size_t n = strlen(buf), b = 0;
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\t')) buf[--n] = 0;
    while (buf[b] == ' ' || buf[b] == '\t') b++;
    memmove(buf, buf + b, n - b + 1);
    if (!buf[0]) snprintf(buf, cap, "unknown cpu");
}
