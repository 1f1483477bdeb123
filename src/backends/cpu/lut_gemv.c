/* lut_gemv.c — the portable LUT GEMV kernels (the AN_ISA_SCALAR variant, and the fallback for
 * ISAs without one) and the per-ISA dispatch. */
#include "backends/cpu/lut_gemv.h"

#include <pthread.h>
#include <stddef.h>

#include "core/fp16.h"
#include "quant/lut.h"

/* Row by row: the group's table converted to f32 once per row (2^b conversions against K
 * lookups), indices decoded a whole byte group at a time (LUT4: 1 byte = 2 elements, LUT6:
 * 3 bytes = 4, LUT8: 1 byte = 1), four float accumulators so the adds are not one chain. */
static void lut_gemv_scalar(const an_mat *w, int64_t r0, int64_t nrows, const float *x, float *y) {
    const int bits = an_lut_bits(w->type);
    const int64_t K = w->cols;
    float t[256];
    for (int64_t i = 0; i < nrows; i++) {
        const int64_t r = r0 + i;
        const uint8_t *p = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
        const uint16_t *tab = an_lut_table(w, r);
        if (i == 0 || r % w->lut_group == 0)
            for (int v = 0; v < 1 << bits; v++) t[v] = an_f16_to_f32(tab[v]);
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        int64_t k = 0;
        if (bits == 4) {
            for (; k + 4 <= K; k += 4, p += 2) {
                a0 += t[p[0] & 15] * x[k];
                a1 += t[p[0] >> 4] * x[k + 1];
                a2 += t[p[1] & 15] * x[k + 2];
                a3 += t[p[1] >> 4] * x[k + 3];
            }
            if (k < K) { /* K is even: one byte left */
                a0 += t[p[0] & 15] * x[k];
                a1 += t[p[0] >> 4] * x[k + 1];
            }
        } else if (bits == 6) {
            for (; k < K; k += 4, p += 3) { /* K is a multiple of 4 */
                const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
                a0 += t[v & 63] * x[k];
                a1 += t[(v >> 6) & 63] * x[k + 1];
                a2 += t[(v >> 12) & 63] * x[k + 2];
                a3 += t[v >> 18] * x[k + 3];
            }
        } else {
            for (; k + 4 <= K; k += 4, p += 4) {
                a0 += t[p[0]] * x[k];
                a1 += t[p[1]] * x[k + 1];
                a2 += t[p[2]] * x[k + 2];
                a3 += t[p[3]] * x[k + 3];
            }
            for (; k < K; k++, p++) a0 += t[p[0]] * x[k];
        }
        y[i] = ((a0 + a1) + (a2 + a3)) * an_lut_row_scale(w, r);
    }
}

static const an_lut_kernels k_scalar = {.k = {{NULL, lut_gemv_scalar, true}, {NULL, lut_gemv_scalar, true}, {NULL, lut_gemv_scalar, true}}};

/* Per-ISA tables, defined in the ISA files (built only for their architecture). */
#if defined(__x86_64__)
extern const an_lut_kernels an_lut_table_avx2, an_lut_table_avx512, an_lut_table_avx512vbmi;
int an_lut_avx512_has_vbmi(void);
#elif defined(__aarch64__)
extern const an_lut_kernels an_lut_table_neon;
#endif

static const an_lut_kernels *table_of(an_isa isa) {
    switch (isa) {
    case AN_ISA_SCALAR: return &k_scalar;
#if defined(__x86_64__)
    case AN_ISA_AVX2: return &an_lut_table_avx2;
    case AN_ISA_AVX512: return an_lut_avx512_has_vbmi() ? &an_lut_table_avx512vbmi : &an_lut_table_avx512;
#elif defined(__aarch64__)
    case AN_ISA_NEON: return &an_lut_table_neon;
#endif
    default: return NULL;
    }
}

an_lut_kernel an_lut_kernel_variant(an_isa isa, uint32_t t) {
    const an_lut_kernel none = {NULL, NULL, false};
    const int bits = an_lut_bits(t);
    const an_lut_kernels *tab = table_of(isa);
    if (!bits || !tab) return none;
    return tab->k[(bits - 4) / 2];
}

an_lut_kernel an_lut_kernel_avx512_base(uint32_t t) {
    const an_lut_kernel none = {NULL, NULL, false};
#if defined(__x86_64__)
    const int bits = an_lut_bits(t);
    if (bits) return an_lut_table_avx512.k[(bits - 4) / 2];
#endif
    (void)t;
    return none;
}

static an_lut_kernel g_active[3];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_active(void) {
    static const uint32_t types[3] = {AN_TYPE_LUT4, AN_TYPE_LUT6, AN_TYPE_LUT8};
    const an_isa act = an_cpu()->active;
    for (int i = 0; i < 3; i++) {
        an_lut_kernel k = {NULL, NULL, false};
        /* best variant at or below the active level: avx512 -> avx2 -> portable */
        if (act == AN_ISA_AVX512) k = an_lut_kernel_variant(AN_ISA_AVX512, types[i]);
        if (!k.gemv && (act == AN_ISA_AVX512 || act == AN_ISA_AVX2)) k = an_lut_kernel_variant(AN_ISA_AVX2, types[i]);
        if (!k.gemv && act == AN_ISA_NEON) k = an_lut_kernel_variant(AN_ISA_NEON, types[i]);
        if (!k.gemv) k = k_scalar.k[i];
        g_active[i] = k;
    }
}

an_lut_kernel an_lut_kernel_get(uint32_t t) {
    const an_lut_kernel none = {NULL, NULL, false};
    const int bits = an_lut_bits(t);
    if (!bits) return none;
    pthread_once(&g_once, init_active);
    return g_active[(bits - 4) / 2];
}
