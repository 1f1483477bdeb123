/* test_lut.c — palettized weights (quant/lut.h): the type table entries, the LSB-first index
 * stream (hand-built bytes for 4, 6 and 8 bits, every bit position, round trips), the scalar
 * reference dequant/dot, and the matrix check. New cases go before the table at the end and
 * into it (appending keeps concurrent edits apart). */
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/gemv.h"
#include "backends/cpu/lut_gemv.h"
#include "core/cpu.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "core/types.h"
#include "quant/lut.h"
#include "quant/quant.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rng_sym(void) { return (float)(rng_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f; } /* [-1, 1) */

static const uint32_t k_lut_types[] = {AN_TYPE_LUT4, AN_TYPE_LUT6, AN_TYPE_LUT8};

/* ---- type table ------------------------------------------------------------------------- */

static void lut_type_traits(void) {
    static const struct { uint32_t t; const char *name; uint32_t blck, size; int bits; } want[] = {
        {AN_TYPE_LUT4, "LUT4", 2, 1, 4}, {AN_TYPE_LUT6, "LUT6", 4, 3, 6}, {AN_TYPE_LUT8, "LUT8", 1, 1, 8}};
    for (int i = 0; i < 3; i++) {
        const an_type_traits *tt = an_type_traits_get(want[i].t);
        T_CHECK(tt != NULL, "%s has traits", want[i].name);
        if (!tt) continue;
        T_CHECK(strcmp(tt->name, want[i].name) == 0 && strcmp(an_type_name(want[i].t), want[i].name) == 0, "name %s",
                tt->name);
        T_CHECK(tt->blck == want[i].blck && tt->size == want[i].size, "%s block %u/%u", tt->name, tt->blck, tt->size);
        T_CHECK(an_lut_bits(want[i].t) == want[i].bits, "%s bits", tt->name);
        /* a row of K elements is K*b/8 bytes through either formula */
        T_CHECK(an_row_bytes(tt, 4096) == an_lut_row_bytes(want[i].bits, 4096), "%s row bytes", tt->name);
        /* LUT ids stay out of every table indexed by id < AN_TYPE_COUNT */
        T_CHECK(!an_quant_is_weight_type(want[i].t), "%s is not a block weight type", tt->name);
        T_CHECK(an_quant_vec_dot_type((an_type)want[i].t) == AN_TYPE_COUNT, "%s has no vec_dot type", tt->name);
        T_CHECK(an_gemv_get((an_type)want[i].t) == NULL, "%s has no block GEMV", tt->name);
    }
    /* the ids around them stay unknown, as do ggml's ids and the base */
    const uint32_t unknown[] = {AN_TYPE_LUT_BASE, 1001, 1003, 1005, 1007, 1009, AN_TYPE_COUNT, 0xffffffffu};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        T_CHECK(an_type_traits_get(unknown[i]) == NULL, "id %u unknown", unknown[i]);
        T_CHECK(strcmp(an_type_name(unknown[i]), "unknown") == 0, "id %u name", unknown[i]);
        T_CHECK(an_lut_bits(unknown[i]) == 0, "id %u bits", unknown[i]);
    }
    T_CHECK(an_lut_bits(AN_TYPE_Q4_0) == 0 && an_lut_bits(AN_TYPE_F16) == 0, "block types are not LUT types");
}

/* ---- the index stream -------------------------------------------------------------------- */

/* Hand-built bytes: the layout stated in lut.h, written out. */
static void lut_bits_hand(void) {
    /* 4 bits: element 0 in the low nibble of byte 0, element 1 in its high nibble */
    const uint8_t i4[4] = {0x1, 0x2, 0xF, 0x0};
    uint8_t r4[2], u[8];
    an_lut_pack_row(i4, 4, 4, r4);
    T_CHECK(r4[0] == 0x21 && r4[1] == 0x0F, "LUT4 bytes %02x %02x", r4[0], r4[1]);
    /* 6 bits: a | b<<6 | c<<12 | d<<18 over 3 bytes; b and c straddle bytes.
     * a = 63, b = 1, c = 42 (0b101010), d = 21 (0b010101):
     *   byte0 = a | (b & 3) << 6           = 0x3F | 0x40 = 0x7F
     *   byte1 = b >> 2 | (c & 15) << 4     = 0x00 | 0xA0 = 0xA0
     *   byte2 = c >> 4 | d << 2            = 0x02 | 0x54 = 0x56 */
    const uint8_t i6[8] = {63, 1, 42, 21, 0, 63, 0, 1};
    uint8_t r6[6];
    an_lut_pack_row(i6, 8, 6, r6);
    T_CHECK(r6[0] == 0x7F && r6[1] == 0xA0 && r6[2] == 0x56, "LUT6 bytes %02x %02x %02x", r6[0], r6[1], r6[2]);
    /* second group: 0 | 63<<6 | 0<<12 | 1<<18 = 0x040FC0 -> C0 0F 04 */
    T_CHECK(r6[3] == 0xC0 && r6[4] == 0x0F && r6[5] == 0x04, "LUT6 bytes %02x %02x %02x", r6[3], r6[4], r6[5]);
    an_lut_unpack_row(r6, 8, 6, u);
    T_CHECK(memcmp(u, i6, 8) == 0, "LUT6 unpack");
    for (int i = 0; i < 8; i++) T_CHECK(an_lut_index(r6, i, 6) == i6[i], "LUT6 index %d", i);
    /* 8 bits: the bytes themselves */
    const uint8_t i8[3] = {0x00, 0xA5, 0xFF};
    uint8_t r8[3];
    an_lut_pack_row(i8, 3, 8, r8);
    T_CHECK(memcmp(r8, i8, 3) == 0, "LUT8 bytes");
    /* index bits above b are dropped, not smeared into the neighbour */
    const uint8_t big[2] = {0xFF, 0x00};
    an_lut_pack_row(big, 2, 4, r4);
    T_CHECK(r4[0] == 0x0F, "LUT4 masks indices (%02x)", r4[0]);
    const uint8_t big6[4] = {0xFF, 0, 0, 0};
    an_lut_pack_row(big6, 4, 6, r6);
    T_CHECK(r6[0] == 0x3F && r6[1] == 0 && r6[2] == 0, "LUT6 masks indices");
}

/* Every position: one index set to all ones in a zero row sets exactly bits [b*i, b*i + b) of
 * the stream, and reading it back finds it there and only there. */
static void lut_bits_every_position(void) {
    enum { N = 40 };
    for (int k = 0; k < 3; k++) {
        const int b = an_lut_bits(k_lut_types[k]);
        const uint64_t nb = an_lut_row_bytes(b, N);
        for (int i = 0; i < N; i++) {
            uint8_t idx[N] = {0}, row[N], back[N];
            idx[i] = (uint8_t)((1u << b) - 1u);
            an_lut_pack_row(idx, N, b, row);
            int bad = 0;
            for (uint64_t bit = 0; bit < nb * 8; bit++) {
                const int set = (row[bit / 8] >> (bit % 8)) & 1;
                const int want = bit >= (uint64_t)(b * i) && bit < (uint64_t)(b * i + b);
                bad += set != want;
            }
            T_CHECK(bad == 0, "%d bits, element %d: %d stream bits wrong", b, i, bad);
            an_lut_unpack_row(row, N, b, back);
            T_CHECK(memcmp(back, idx, N) == 0, "%d bits, element %d: unpack", b, i);
        }
    }
}

static void lut_round_trip(void) {
    const int64_t ns[] = {1, 2, 3, 4, 5, 7, 8, 31, 33, 64, 100, 4097};
    for (int k = 0; k < 3; k++) {
        const int b = an_lut_bits(k_lut_types[k]);
        for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
            const int64_t n = ns[s];
            const uint64_t nb = an_lut_row_bytes(b, n);
            uint8_t *idx = malloc((size_t)n), *back = malloc((size_t)n), *row = malloc((size_t)nb + 1);
            for (int64_t i = 0; i < n; i++) idx[i] = (uint8_t)(rng_u32() & ((1u << b) - 1u));
            row[nb] = 0xEE; /* canary: packing writes exactly nb bytes */
            an_lut_pack_row(idx, n, b, row);
            T_CHECK(row[nb] == 0xEE, "%d bits n=%lld: wrote past the row", b, (long long)n);
            const unsigned used = (unsigned)((uint64_t)n * (uint64_t)b % 8); /* bits used in the last byte */
            if (used) /* padding bits of the last byte are zero */
                T_CHECK((row[nb - 1] >> used) == 0, "%d bits n=%lld: padding", b, (long long)n);
            an_lut_unpack_row(row, n, b, back);
            T_CHECK(memcmp(idx, back, (size_t)n) == 0, "%d bits n=%lld: round trip", b, (long long)n);
            /* repacking the unpacked row gives the same bytes */
            uint8_t *row2 = malloc((size_t)nb);
            an_lut_pack_row(back, n, b, row2);
            T_CHECK(memcmp(row, row2, (size_t)nb) == 0, "%d bits n=%lld: repack", b, (long long)n);
            free(idx), free(back), free(row), free(row2);
        }
    }
}

/* ---- reference dequant and dot ------------------------------------------------------------- */

/* 3 rows of 4 LUT4 elements, groups of 2 rows (the second group is short), with row scales. */
static void lut_dequant_hand(void) {
    uint16_t lut[2 * 16];
    for (int v = 0; v < 16; v++) {
        lut[v] = an_f32_to_f16((float)v * 0.5f - 4.0f); /* table 0: -4 .. 3.5, exact in f16 */
        lut[16 + v] = an_f32_to_f16((float)v);        /* table 1: 0 .. 15 */
    }
    const uint16_t rs[3] = {an_f32_to_f16(1.0f), an_f32_to_f16(2.0f), an_f32_to_f16(-0.25f)};
    const uint8_t idx[3][4] = {{0, 1, 8, 15}, {15, 8, 1, 0}, {3, 0, 15, 7}};
    uint8_t data[3 * 2];
    for (int r = 0; r < 3; r++) an_lut_pack_row(idx[r], 4, 4, data + 2 * r);
    an_mat w = {.type = AN_TYPE_LUT4, .rows = 3, .cols = 4, .row_bytes = 2, .data = data, .name = "hand",
                .lut = lut, .lut_group = 2, .row_scale = rs};
    an_err err = {0};
    T_CHECK(an_lut_check(&w, &err) == AN_OK, "check: %s", err.msg);
    const float want[3][4] = {{-4.0f, -3.5f, 0.0f, 3.5f}, {7.0f, 0.0f, -7.0f, -8.0f}, {-0.75f, 0.0f, -3.75f, -1.75f}};
    float y[4];
    for (int r = 0; r < 3; r++) {
        an_lut_dequant_row(&w, r, y);
        for (int i = 0; i < 4; i++) T_CHECK(y[i] == want[r][i], "row %d el %d: %g, want %g", r, i, y[i], want[r][i]);
    }
    const float x[4] = {1.0f, -2.0f, 0.5f, 0.25f};
    const float dots[3] = {-4.0f + 7.0f + 0.0f + 0.875f, 7.0f + 0.0f - 3.5f - 2.0f, -0.75f + 0.0f - 1.875f - 0.4375f};
    for (int r = 0; r < 3; r++)
        T_CHECK(an_lut_dot_ref(&w, r, x) == dots[r], "dot row %d: %g, want %g", r, an_lut_dot_ref(&w, r, x), dots[r]);
    /* without row scales the multiplier is 1 */
    w.row_scale = NULL;
    an_lut_dequant_row(&w, 1, y);
    T_CHECK(y[0] == 3.5f && y[3] == -4.0f, "no row scale: %g %g", y[0], y[3]);
}

/* The dot reference equals the dequantized row dotted in double, for every type. */
static void lut_dot_matches_dequant(void) {
    for (int k = 0; k < 3; k++) {
        const uint32_t t = k_lut_types[k];
        const int b = an_lut_bits(t);
        const int64_t R = 5, K = 4 * 37; /* a multiple of every block */
        const uint64_t rb = an_lut_row_bytes(b, K);
        uint8_t *data = malloc((size_t)(rb * (uint64_t)R)), *idx = malloc((size_t)K);
        uint16_t *lut = malloc(sizeof(uint16_t) * 3 * ((size_t)1 << b)), rs[5];
        float *x = malloc(sizeof(float) * (size_t)K), *y = malloc(sizeof(float) * (size_t)K);
        for (int i = 0; i < 3 << b; i++) lut[i] = an_f32_to_f16(rng_sym());
        for (int r = 0; r < R; r++) {
            rs[r] = an_f32_to_f16(0.5f + (float)r * 0.25f);
            for (int64_t i = 0; i < K; i++) idx[i] = (uint8_t)(rng_u32() & ((1u << b) - 1u));
            an_lut_pack_row(idx, K, b, data + rb * (uint64_t)r);
        }
        for (int64_t i = 0; i < K; i++) x[i] = rng_sym();
        an_mat w = {.type = t, .rows = R, .cols = K, .row_bytes = rb, .data = data, .lut = lut, .lut_group = 2, .row_scale = rs};
        for (int r = 0; r < R; r++) {
            an_lut_dequant_row(&w, r, y);
            double acc = 0.0;
            for (int64_t i = 0; i < K; i++) acc += (double)y[i] * (double)x[i];
            const float got = an_lut_dot_ref(&w, r, x);
            /* the row scale is applied per element in one and after the sum in the other: the
             * two differ only by f32 rounding of the K products */
            T_CHECK(fabs((double)got - acc) <= 1e-6 * (1.0 + fabs(acc)), "%s row %d: %.9g vs %.9g", an_type_name(t), r,
                    got, acc);
        }
        free(data), free(idx), free(lut), free(x), free(y);
    }
}

static void lut_check_rejects(void) {
    uint8_t data[16] = {0};
    uint16_t lut[16] = {0};
    const an_mat ok = {.type = AN_TYPE_LUT6, .rows = 2, .cols = 8, .row_bytes = 6, .data = data, .lut = lut, .lut_group = 1};
    an_err err = {0};
    T_CHECK(an_lut_check(&ok, &err) == AN_OK, "valid: %s", err.msg);
    an_mat m;
    m = ok, m.type = AN_TYPE_Q4_0;
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "not a LUT type");
    m = ok, m.cols = 6, m.row_bytes = 5; /* not a multiple of the 4-element block */
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "cols not a multiple of the block");
    m = ok, m.row_bytes = 8;
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "row_bytes");
    m = ok, m.lut_group = 0;
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "lut_group 0");
    m = ok, m.lut = NULL;
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "no tables");
    m = ok, m.rows = 0;
    T_CHECK(an_lut_check(&m, &err) != AN_OK, "no rows");
    /* the reference functions write zeros / return 0 for a non-LUT matrix rather than abort */
    m = ok, m.type = AN_TYPE_F16;
    float y[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    an_lut_dequant_row(&m, 0, y);
    T_CHECK(y[0] == 0.0f && y[7] == 0.0f, "non-LUT dequant writes zeros");
    T_CHECK(an_lut_dot_ref(&m, 0, y) == 0.0f, "non-LUT dot is 0");
}

/* ---- GEMV kernels ------------------------------------------------------------------------- */

/* A random LUT matrix whose data ends exactly at a PROT_NONE page, so a kernel load past the
 * last row's last byte faults; data may also start at an odd address (off). Tables are
 * gaussian-ish fp16 with a few large entries; row scales (when used) span 2^-3 .. 2^3. */
typedef struct {
    an_mat w;
    uint8_t *map;
    size_t map_len;
    uint16_t *lut, *rs;
} lut_problem;

static float rng_gauss(void) { return (rng_sym() + rng_sym() + rng_sym()) * 1.0f; }

static int problem_make(lut_problem *P, uint32_t t, int64_t R, int64_t K, int group, int with_scale) {
    memset(P, 0, sizeof *P);
    const int b = an_lut_bits(t), nv = 1 << b;
    const uint64_t rb = an_lut_row_bytes(b, K), bytes = rb * (uint64_t)R;
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = ((size_t)bytes + pg - 1) / pg * pg;
    P->map_len = body + pg;
    P->map = mmap(NULL, P->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (P->map == MAP_FAILED) return 0;
    if (mprotect(P->map + body, pg, PROT_NONE) != 0) return 0;
    uint8_t *data = P->map + body - bytes, *idx = malloc((size_t)K);
    const int64_t ngroups = (R + group - 1) / group;
    P->lut = malloc(sizeof(uint16_t) * (size_t)(ngroups * nv));
    P->rs = malloc(sizeof(uint16_t) * (size_t)R);
    for (int64_t i = 0; i < ngroups * nv; i++)
        P->lut[i] = an_f32_to_f16(rng_gauss() * (rng_u32() % 61 == 0 ? 40.0f : 1.0f));
    for (int64_t r = 0; r < R; r++) {
        P->rs[r] = an_f32_to_f16(ldexpf(1.0f + 0.5f * rng_sym(), (int)(rng_u32() % 7) - 3));
        for (int64_t i = 0; i < K; i++) idx[i] = (uint8_t)(rng_u32() & (uint32_t)(nv - 1));
        an_lut_pack_row(idx, K, b, data + rb * (uint64_t)r);
    }
    free(idx);
    P->w = (an_mat){.type = t, .rows = R, .cols = K, .row_bytes = rb, .data = data, .name = "test",
                    .lut = P->lut, .lut_group = group, .row_scale = with_scale ? P->rs : NULL};
    return 1;
}

static void problem_free(lut_problem *P) {
    if (P->map && P->map != MAP_FAILED) munmap(P->map, P->map_len);
    free(P->lut), free(P->rs);
}

/* avx512: the variant dispatch picks (with VBMI where the CPU has it); avx512-base: the
 * F/BW-only set, so both are tested on CPUs with VBMI. */
typedef struct { an_isa isa; const char *name; int base; } isa_entry;
static const isa_entry k_isas[] = {{AN_ISA_SCALAR, "scalar", 0}, {AN_ISA_AVX2, "avx2", 0}, {AN_ISA_AVX512, "avx512", 0},
                                   {AN_ISA_AVX512, "avx512-base", 1}, {AN_ISA_NEON, "neon", 0}};

static int isa_supported(an_isa isa) {
    const an_isa best = an_cpu()->best;
    switch (isa) {
    case AN_ISA_SCALAR: return 1;
    case AN_ISA_AVX2: return best == AN_ISA_AVX2 || best == AN_ISA_AVX512;
    case AN_ISA_AVX512: return best == AN_ISA_AVX512;
    case AN_ISA_NEON: return best == AN_ISA_NEON;
    default: return 0;
    }
}

/* NMSE of one kernel against an_lut_dot_ref (pooled: sum of squared errors over sum of squared
 * reference outputs). The reference sums in double and the kernels in float lanes (FMA), so
 * the only difference is f32 accumulation order and rounding: ~1e-14 measured. Bound 1e-10
 * pooled; a wrong bit position, table, group or scale lands at 1e-2 or worse. A single
 * shape's output can be near zero by cancellation, so single shapes get CASE_BOUND. */
#define LUT_NMSE_BOUND 1e-10
#define LUT_CASE_BOUND 1e-7
/* Integer-product variants (an_lut_kernel.exact false: AVX-512 VBMI LUT6, 14-bit table and
 * int16 activations per 64-element block): ~1e-8 on plain tables, ~1e-6 where a table has a
 * 40x outlier entry (the table step is max|T| / 8191); bounds 1e-5 pooled and 1e-4 per case.
 * A wrong index or scale still lands at 1e-2 or worse. */
#define LUT_NMSE_BOUND_INT 1e-5
#define LUT_CASE_BOUND_INT 1e-4

/* Every variant this CPU runs against the reference: K from one block to several blocks plus
 * every kind of tail (odd for LUT8, 2 mod 4 for LUT4, not a multiple of the 64/128-element
 * blocks), rows not a multiple of any unroll, groups of 1, 3, 4 rows and one group for all,
 * with and without row scales, and calls starting mid-group (r0 > 0). y is pre-filled with
 * NaN and followed by a sentinel. */
static void lut_gemv_variants_match_reference(void) {
    static const int64_t Ks4[] = {2, 6, 30, 130, 254, 256, 1026, 4096};
    static const int64_t Ks6[] = {4, 12, 60, 68, 124, 256, 1028, 4096};
    static const int64_t Ks8[] = {1, 7, 31, 33, 97, 256, 1087, 4096};
    static const int64_t Rs[] = {1, 3, 7, 13};
    static const int groups[] = {1, 3, 4, 1000};
    int tested = 0;
    for (size_t ii = 0; ii < sizeof k_isas / sizeof k_isas[0]; ii++) {
        if (!isa_supported(k_isas[ii].isa)) continue;
        for (int ti = 0; ti < 3; ti++) {
            const uint32_t t = k_lut_types[ti];
            const an_lut_kernel kern = k_isas[ii].base ? an_lut_kernel_avx512_base(t) : an_lut_kernel_variant(k_isas[ii].isa, t);
            if (!kern.gemv) continue;
            const int64_t *Ks = ti == 0 ? Ks4 : ti == 1 ? Ks6 : Ks8;
            double e_sum = 0, r_sum = 0, worst = 0;
            int cases = 0;
            for (int ki = 0; ki < 8; ki++)
                for (int ri = 0; ri < 4; ri++)
                    for (int gi = 0; gi < 4; gi++) {
                        const int64_t K = Ks[ki], R = Rs[ri];
                        lut_problem P;
                        if (!problem_make(&P, t, R, K, groups[gi], (ki + gi) % 2)) {
                            T_FAIL("cannot build a %lldx%lld problem", (long long)R, (long long)K);
                            problem_free(&P);
                            return;
                        }
                        float *x = malloc(sizeof(float) * (size_t)K), *xp = malloc(sizeof(float) * (size_t)K);
                        float *y = malloc(sizeof(float) * (size_t)(R + 1)), *yr = malloc(sizeof(float) * (size_t)R);
                        for (int64_t i = 0; i < K; i++) x[i] = rng_gauss();
                        if (kern.prep) kern.prep(x, xp, K);
                        else memcpy(xp, x, sizeof(float) * (size_t)K);
                        for (int64_t r = 0; r < R; r++) yr[r] = an_lut_dot_ref(&P.w, r, x);
                        /* the whole range, then a split at row 1 (mid-group for groups > 1) */
                        for (int split = 0; split < 2; split++) {
                            for (int64_t r = 0; r < R; r++) y[r] = NAN;
                            y[R] = 12345.0f;
                            if (split && R > 1) {
                                kern.gemv(&P.w, 0, 1, xp, y);
                                kern.gemv(&P.w, 1, R - 1, xp, y + 1);
                            } else {
                                kern.gemv(&P.w, 0, R, xp, y);
                            }
                            T_CHECK(y[R] == 12345.0f, "%s %s %lldx%lld: wrote past nrows", k_isas[ii].name,
                                    an_type_name(t), (long long)R, (long long)K);
                            double e = 0, s = 0;
                            for (int64_t r = 0; r < R; r++) {
                                const double d = isfinite(y[r]) ? (double)y[r] - (double)yr[r] : INFINITY;
                                e += d * d;
                                s += (double)yr[r] * (double)yr[r];
                            }
                            const double n = s > 0 ? e / s : e;
                            e_sum += e, r_sum += s, cases++;
                            if (n > worst) worst = n;
                            T_CHECK(n <= (kern.exact ? LUT_CASE_BOUND : LUT_CASE_BOUND_INT),
                                    "%s %s K=%lld R=%lld group %d split %d: NMSE %.3g",
                                    k_isas[ii].name, an_type_name(t), (long long)K, (long long)R, groups[gi], split, n);
                        }
                        free(x), free(xp), free(y), free(yr);
                        problem_free(&P);
                    }
            const double pooled = r_sum > 0 ? e_sum / r_sum : e_sum;
            const double bound = kern.exact ? LUT_NMSE_BOUND : LUT_NMSE_BOUND_INT;
            T_CHECK(pooled <= bound, "%s %s: pooled NMSE %.3g > %.0e", k_isas[ii].name, an_type_name(t), pooled, bound);
            t_note("%-6s %s%s NMSE %.2e pooled over %d runs (bound %.0e), worst single %.2e", k_isas[ii].name,
                   an_type_name(t), kern.exact ? "" : " (integer products)", pooled, cases, bound, worst);
            tested++;
        }
    }
    T_CHECK(tested >= 3, "the portable kernels at least");
}

/* The dispatcher returns the active ISA's variant when it has one, never NULL for LUT types,
 * and nothing for other types. */
static void lut_kernel_get_follows_active_isa(void) {
    const an_isa act = an_cpu()->active;
    for (int ti = 0; ti < 3; ti++) {
        const an_lut_kernel k = an_lut_kernel_get(k_lut_types[ti]);
        T_CHECK(k.gemv != NULL, "%s: no kernel", an_type_name(k_lut_types[ti]));
        const an_lut_kernel v = an_lut_kernel_variant(act, k_lut_types[ti]);
        if (v.gemv) T_CHECK(k.gemv == v.gemv && k.prep == v.prep && k.exact == v.exact, "%s: not the %s variant", an_type_name(k_lut_types[ti]),
                            an_isa_name(act));
    }
    T_CHECK(an_lut_kernel_get(AN_TYPE_Q4_0).gemv == NULL && an_lut_kernel_get(AN_TYPE_LUT_BASE).gemv == NULL,
            "non-LUT types have no LUT kernel");
    T_CHECK(an_lut_kernel_variant(AN_ISA_SCALAR, AN_TYPE_F16).gemv == NULL, "non-LUT variant");
}

/* The CPU matmul driver on LUT weights: decode (n = 1), per-token GEMVs (n = 3), the batch GEMM
 * that dequantizes panels (n = 11 > AN_CPU_GEMV_MAX_BATCH), and a multi-output call mixing
 * two LUT6 weights (one activation prep) with a LUT4 and a Q8_0 weight (separate conversions),
 * each against the reference dot per token. */
static void lut_matmul_driver(void) {
    an_pool *pool = NULL;
    an_err err = {0};
    if (an_pool_create(&pool, 2, &err) != AN_OK) {
        T_FAIL("pool: %s", err.msg);
        return;
    }
    const int64_t K = 4 * 73; /* 292: not a multiple of any kernel block */
    const int ns[] = {1, 3, 11};
    lut_problem P6a, P6b, P4;
    const int ok = problem_make(&P6a, AN_TYPE_LUT6, 37, K, 4, 1) && problem_make(&P6b, AN_TYPE_LUT6, 9, K, 1, 0) &&
                   problem_make(&P4, AN_TYPE_LUT4, 21, K, 3, 1);
    /* a Q8_0 weight of the same K */
    const uint64_t qrb = an_row_bytes(an_type_traits_get(AN_TYPE_Q8_0), (uint64_t)K);
    uint8_t *q = malloc(qrb * 5);
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int r = 0; r < 5; r++) {
        for (int64_t i = 0; i < K; i++) row[i] = rng_gauss();
        an_quant_row_ref(AN_TYPE_Q8_0, row, q + qrb * (uint64_t)r, K);
    }
    const an_mat wq = {.type = AN_TYPE_Q8_0, .rows = 5, .cols = K, .row_bytes = qrb, .data = q, .name = "q8"};
    const int nmax = 11;
    void *ws = aligned_alloc(64, (an_cpu_matmul_wsize(K, nmax, an_pool_size(pool)) + 63) / 64 * 64);
    float *x = malloc(sizeof(float) * (size_t)(K * nmax));
    float *y[4], *yr = malloc(sizeof(float) * 64 * nmax);
    const an_mat *ws_[4] = {&P6a.w, &P6b.w, &P4.w, &wq};
    for (int o = 0; o < 4; o++) y[o] = malloc(sizeof(float) * 64 * (size_t)nmax);
    if (!ok || !q || !ws || !x || !yr) {
        T_FAIL("setup");
        goto out;
    }
    for (int64_t i = 0; i < K * nmax; i++) x[i] = rng_gauss();
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        const int n = ns[ni];
        const int64_t ldy = 40; /* >= every output's rows: a strided output */
        /* single matmuls, then one multi call over all four */
        for (int multi = 0; multi < 2; multi++) {
            for (int o = 0; o < 4; o++)
                for (int64_t i = 0; i < 64 * n; i++) y[o][i] = NAN;
            if (multi) {
                an_mm_out outs[4];
                for (int o = 0; o < 4; o++) outs[o] = (an_mm_out){ws_[o], y[o], ldy};
                an_cpu_matmul_multi(pool, outs, 4, x, n, ws);
            } else {
                for (int o = 0; o < 3; o++) an_cpu_matmul(pool, ws_[o], x, n, y[o], ldy, ws);
            }
            for (int o = 0; o < (multi ? 4 : 3); o++) {
                const an_mat *w = ws_[o];
                double e = 0, s = 0;
                for (int tkn = 0; tkn < n; tkn++)
                    for (int64_t r = 0; r < w->rows; r++) {
                        double ref;
                        if (o < 3) {
                            ref = an_lut_dot_ref(w, r, x + (int64_t)tkn * K);
                        } else { /* Q8_0: dequantized weights against f32 activations; llama.cpp's
                                  * Q8_0 activation rounding makes this loose (bound below) */
                            an_dequant_row(AN_TYPE_Q8_0, q + qrb * (uint64_t)r, row, K);
                            ref = 0;
                            for (int64_t i = 0; i < K; i++) ref += (double)row[i] * x[(int64_t)tkn * K + i];
                        }
                        const float got = y[o][(int64_t)tkn * ldy + r];
                        const double d = isfinite(got) ? got - ref : INFINITY;
                        e += d * d, s += ref * ref;
                    }
                /* decode runs the active kernel; the batch GEMM dequantizes exactly */
                const bool exact = n > AN_CPU_GEMV_MAX_BATCH || an_lut_kernel_get(w->type).exact;
                const double nm = e / s, bound = o < 3 ? (exact ? LUT_NMSE_BOUND : LUT_NMSE_BOUND_INT) : 1e-3;
                T_CHECK(nm <= bound, "n=%d %s output %d (%s): NMSE %.3g > %.0e", n, multi ? "multi" : "single", o,
                        an_type_name(w->type), nm, bound);
                if (o < 3 && multi) t_note("n=%-2d multi %s %lldx%lld: NMSE %.2e", n, an_type_name(w->type),
                                           (long long)w->rows, (long long)K, nm);
            }
        }
    }
out:
    for (int o = 0; o < 4; o++) free(y[o]);
    free(yr), free(x), free(ws), free(q), free(row);
    problem_free(&P6a), problem_free(&P6b), problem_free(&P4);
    an_pool_free(pool);
}

const t_case t_suite_lut[] = {
    {"type_traits", lut_type_traits},
    {"bits_hand", lut_bits_hand},
    {"bits_every_position", lut_bits_every_position},
    {"round_trip", lut_round_trip},
    {"dequant_hand", lut_dequant_hand},
    {"dot_matches_dequant", lut_dot_matches_dequant},
    {"check_rejects", lut_check_rejects},
    {"gemv_variants_match_reference", lut_gemv_variants_match_reference},
    {"kernel_get_follows_active_isa", lut_kernel_get_follows_active_isa},
    {"matmul_driver", lut_matmul_driver},
    {0},
};
