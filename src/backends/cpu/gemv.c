/* gemv.c — the reference GEMV (row loop over an_vec_dot_ref) and the per-ISA dispatch. */
#include "backends/cpu/gemv.h"

#include <pthread.h>
#include <stddef.h>

#include "quant/quant.h"

static void gemv_ref(an_type t, const void *w, uint64_t row_bytes, int64_t K, const void *a, float *y,
                     int64_t nrows) {
    for (int64_t r = 0; r < nrows; r++) y[r] = an_vec_dot_ref(t, K, (const uint8_t *)w + (uint64_t)r * row_bytes, a);
}

/* One reference entry per weight type (the table needs plain function pointers). */
#define REF(T, NAME)                                                                                     \
    static void gemv_ref_##NAME(const void *w, uint64_t rb, int64_t K, const void *a, float *y, int64_t n) { \
        gemv_ref(T, w, rb, K, a, y, n);                                                                  \
    }
REF(AN_TYPE_F32, f32)
REF(AN_TYPE_F16, f16)
REF(AN_TYPE_BF16, bf16)
REF(AN_TYPE_Q4_0, q4_0)
REF(AN_TYPE_Q4_1, q4_1)
REF(AN_TYPE_Q5_0, q5_0)
REF(AN_TYPE_Q5_1, q5_1)
REF(AN_TYPE_Q8_0, q8_0)
REF(AN_TYPE_Q2_K, q2_k)
REF(AN_TYPE_Q3_K, q3_k)
REF(AN_TYPE_Q4_K, q4_k)
REF(AN_TYPE_Q5_K, q5_k)
REF(AN_TYPE_Q6_K, q6_k)
#undef REF

static const an_gemv_table k_ref = {.fn = {
    [AN_TYPE_F32] = gemv_ref_f32,   [AN_TYPE_F16] = gemv_ref_f16,   [AN_TYPE_BF16] = gemv_ref_bf16,
    [AN_TYPE_Q4_0] = gemv_ref_q4_0, [AN_TYPE_Q4_1] = gemv_ref_q4_1, [AN_TYPE_Q5_0] = gemv_ref_q5_0,
    [AN_TYPE_Q5_1] = gemv_ref_q5_1, [AN_TYPE_Q8_0] = gemv_ref_q8_0, [AN_TYPE_Q2_K] = gemv_ref_q2_k,
    [AN_TYPE_Q3_K] = gemv_ref_q3_k, [AN_TYPE_Q4_K] = gemv_ref_q4_k, [AN_TYPE_Q5_K] = gemv_ref_q5_k,
    [AN_TYPE_Q6_K] = gemv_ref_q6_k,
}};

/* Per-ISA tables, defined in the ISA files; the Makefile builds the files of the target
 * architecture, so these references are strong (a static archive only pulls in members that
 * something references). */
#if defined(__x86_64__)
extern const an_gemv_table an_gemv_table_avx2, an_gemv_table_avx512;
#elif defined(__aarch64__)
extern const an_gemv_table an_gemv_table_neon, an_gemv_table_dotprod;
#endif

static const an_gemv_table *table_of(an_isa isa, int dotprod) {
    switch (isa) {
    case AN_ISA_SCALAR: return &k_ref;
#if defined(__x86_64__)
    case AN_ISA_AVX2: return &an_gemv_table_avx2;
    case AN_ISA_AVX512: return &an_gemv_table_avx512;
#elif defined(__aarch64__)
    case AN_ISA_NEON: return dotprod ? &an_gemv_table_dotprod : &an_gemv_table_neon;
#endif
    default: return NULL;
    }
}

an_gemv_fn an_gemv_variant(an_isa isa, an_type t) {
    if ((unsigned)t >= AN_TYPE_COUNT) return NULL;
    const an_gemv_table *tab = table_of(isa, an_cpu()->dotprod);
    return tab ? tab->fn[t] : NULL;
}

static an_gemv_fn g_active[AN_TYPE_COUNT];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_active(void) {
    const an_cpu_info *c = an_cpu();
    for (int t = 0; t < AN_TYPE_COUNT; t++) {
        an_gemv_fn f = NULL;
        /* best variant at or below the active level: avx512 -> avx2 -> reference */
        if (c->active == AN_ISA_AVX512) f = an_gemv_variant(AN_ISA_AVX512, (an_type)t);
        if (!f && (c->active == AN_ISA_AVX512 || c->active == AN_ISA_AVX2)) f = an_gemv_variant(AN_ISA_AVX2, (an_type)t);
        if (!f && c->active == AN_ISA_NEON) f = an_gemv_variant(AN_ISA_NEON, (an_type)t);
        if (!f) f = k_ref.fn[t];
        g_active[t] = f;
    }
}

an_gemv_fn an_gemv_get(an_type t) {
    pthread_once(&g_once, init_active);
    return (unsigned)t < AN_TYPE_COUNT ? g_active[t] : NULL;
}
