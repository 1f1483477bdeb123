/* limits_amx.c — AMX tile peaks: TDPBF16PS and TDPBSSD on register-resident tiles (see
 * limits.h). The caller must already hold XTILEDATA permission (arch_prctl), or the first tile
 * instruction faults. */
#include "backends/amx/amx_impl.h"
#include "bench/limits.h"

#include <immintrin.h>
#include <string.h>

/* All 8 tiles at their full 16 rows x 64 bytes (the engine's BF16 configuration): tmm0-3
 * accumulators, tmm4-5 A, tmm6-7 B. Four independent accumulators (a 2x2 block) keep the tile
 * unit busy despite each op's latency. prime() configures the tiles, zeroes the accumulators
 * and loads the operand tile ab (1 KiB) into all four A/B tiles. */
static void prime(const void *ab) {
    an_amx_k_config(AMX_KIND_BF16, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ab, 64);
    _tile_loadd(5, ab, 64);
    _tile_loadd(6, ab, 64);
    _tile_loadd(7, ab, 64);
}

/* The first 32-bit word of each accumulator (so the loop cannot be dropped), then the tiles
 * back to the init state, so context switches stop saving 8 KiB of tiles. */
static void finish(uint32_t first[4]) {
    uint32_t c[16 * 16];
    _tile_stored(0, c, 64);
    first[0] = c[0];
    _tile_stored(1, c, 64);
    first[1] = c[0];
    _tile_stored(2, c, 64);
    first[2] = c[0];
    _tile_stored(3, c, 64);
    first[3] = c[0];
    an_amx_k_release();
}

float an_lim_amx_bf16(int64_t iters) {
    /* A and B hold a small BF16 value (0x3a83 ~ 1e-3): sums stay far from overflow. */
    uint16_t ab[16 * 32];
    for (int i = 0; i < 16 * 32; i++) ab[i] = 0x3a83;
    prime(ab);
    for (int64_t i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    uint32_t first[4];
    finish(first);
    float s = 0;
    for (int i = 0; i < 4; i++) {
        float f;
        memcpy(&f, &first[i], 4);
        s += f;
    }
    return s;
}

int32_t an_lim_amx_int8(int64_t iters) {
    int8_t ab[16 * 64];
    for (int i = 0; i < 16 * 64; i++) ab[i] = 1;
    prime(ab);
    for (int64_t i = 0; i < iters; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    uint32_t first[4];
    finish(first);
    /* unsigned: the accumulators wrap on long runs, and the sum may too */
    return (int32_t)(first[0] + first[1] + first[2] + first[3]);
}
