/* plan.c — the pure planning functions of mil.h: the chip's dimension cap, prompt buckets,
 * tiling a weight to the cap and grouping programs into procedure banks under the compile
 * budget. No state, no allocation: the scheduler calls these to predict what the emitter and
 * the bridge will do. */
#include "backends/ane/mil/mil.h"

int64_t an_ane_spatial_cap(an_ane_family f) {
    /* ane.md §5.2: width 16385 rejects on M1 (A13-A15 families); A16 (M4, M5) takes 65536 */
    return f == AN_ANE_M4_PLUS ? 65536 : 16384;
}

int an_ane_bucket(int n) {
    if (n < 1) n = 1;
    /* the last axis is stored in 64-byte rows (32 fp16), ane.md §5.3 */
    return (n + AN_ANE_BUCKET - 1) / AN_ANE_BUCKET * AN_ANE_BUCKET;
}

/* Splits an extent into the fewest pieces of at most cap, of near-equal size rounded up to a
 * multiple of 64 (channel counts that are multiples of 64 compile most reliably, ane.md §5.3;
 * the cap itself is a multiple of 64, so rounding never exceeds it). */
static void split(int64_t extent, int64_t cap, int *n_out, int64_t *tile_out) {
    if (extent <= cap) {
        *n_out = 1;
        *tile_out = extent;
        return;
    }
    const int64_t n0 = (extent + cap - 1) / cap;
    int64_t tile = (extent + n0 - 1) / n0;
    tile = (tile + 63) / 64 * 64;
    if (tile > cap) tile = cap;
    *n_out = (int)((extent + tile - 1) / tile); /* rounding up may leave fewer pieces */
    *tile_out = tile;
}

an_ane_tiling an_ane_tile(int64_t rows, int64_t cols, int64_t cap) {
    an_ane_tiling t;
    split(rows, cap, &t.n_m, &t.m_tile);
    split(cols, cap, &t.n_k, &t.k_tile);
    return t;
}

an_status an_ane_bank_plan(const uint64_t *bytes, const int *n_fns, int n_items, int budget, int *bank_of,
                           int *n_banks, an_err *err) {
    *n_banks = 0;
    if (n_items < 0 || (n_items && (!bytes || !n_fns || !bank_of)))
        return an_err_set(err, AN_E_USAGE, "ane bank plan: bad arguments (%d items)", n_items);
    /* Greedy next-fit: with consecutive items and additive caps, closing a bank only when the
     * next item does not fit gives the fewest banks (any bank can only end later this way). */
    int banks = 0, fns = 0;
    uint64_t used = 0;
    for (int i = 0; i < n_items; i++) {
        if (n_fns[i] < 1 || n_fns[i] > AN_ANE_BANK_MAX_FNS || bytes[i] > AN_ANE_BANK_MAX_BYTES)
            return an_err_set(err, AN_E_UNSUPPORTED,
                              "ane bank plan: program %d (%d functions, %llu weight bytes) does not fit one "
                              "bank (at most %d functions and %llu bytes)",
                              i, n_fns[i], (unsigned long long)bytes[i], AN_ANE_BANK_MAX_FNS,
                              (unsigned long long)AN_ANE_BANK_MAX_BYTES);
        if (banks == 0 || fns + n_fns[i] > AN_ANE_BANK_MAX_FNS || used + bytes[i] > AN_ANE_BANK_MAX_BYTES) {
            banks++;
            fns = 0;
            used = 0;
        }
        fns += n_fns[i];
        used += bytes[i];
        bank_of[i] = banks - 1;
    }
    if (banks > budget)
        return an_err_set(err, AN_E_UNSUPPORTED,
                          "ane bank plan: %d programs need %d compiles, over the per-process budget of %d", n_items,
                          banks, budget);
    *n_banks = banks;
    return AN_OK;
}
