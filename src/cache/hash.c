/* hash.c — see hash.h for the design and why it is shaped this way. */
#include "cache/hash.h"

#include <string.h>

/* Odd multipliers with well-spread bits: fractional parts of the golden ratio and of the
 * square roots of 2, 3, 5 (the same "nothing up my sleeve" numbers SHA-2 uses). */
#define M1 0x9E3779B97F4A7C15ull
#define M2 0x6A09E667F3BCC909ull
#define M3 0xBB67AE8584CAA73Bull
#define M4 0x3C6EF372FE94F82Bull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8); /* unaligned-safe; compiles to one load */
    return w;
}

/* Two multipliers alternate across lanes so no two lanes run the same function. */
#define STEP(v, p, M) (v) = rotl(((v) ^ load64(p)) * (M), 29)

/* splitmix64's finalizer: every input bit affects every output bit. */
static inline uint64_t fmix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

void an_h128_init(an_h128 *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->seed = seed;
    /* Distinct starting points so the lanes are not interchangeable. */
    for (int j = 0; j < 8; j++) h->v[j] = fmix(seed + (uint64_t)(j + 1) * M3);
}

/* Absorbs whole 64-byte stripes; returns bytes consumed (a multiple of 64). Written out lane
 * by lane with the state in locals so both gcc and clang keep it in registers. */
static size_t stripes(uint64_t v[8], const uint8_t *p, size_t n) {
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3], e = v[4], f = v[5], g = v[6], k = v[7];
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint8_t *q = p + i;
        STEP(a, q, M1);
        STEP(b, q + 8, M2);
        STEP(c, q + 16, M1);
        STEP(d, q + 24, M2);
        STEP(e, q + 32, M1);
        STEP(f, q + 40, M2);
        STEP(g, q + 48, M1);
        STEP(k, q + 56, M2);
    }
    v[0] = a, v[1] = b, v[2] = c, v[3] = d, v[4] = e, v[5] = f, v[6] = g, v[7] = k;
    return i;
}

void an_h128_update(an_h128 *h, const void *data, size_t n) {
    if (!n) return; /* data may be NULL then; memcpy(.., NULL, 0) is still undefined */
    const uint8_t *p = data;
    h->len += n;
    if (h->nbuf) {
        size_t take = 64 - h->nbuf < n ? 64 - h->nbuf : n;
        memcpy(h->buf + h->nbuf, p, take);
        h->nbuf += (unsigned)take;
        p += take;
        n -= take;
        if (h->nbuf < 64) return;
        stripes(h->v, h->buf, 64);
        h->nbuf = 0;
    }
    size_t done = stripes(h->v, p, n);
    if (n > done) memcpy(h->buf, p + done, n - done);
    h->nbuf = (unsigned)(n - done);
}

void an_h128_final(const an_h128 *h, uint64_t out[2]) {
    uint64_t v[8];
    memcpy(v, h->v, sizeof v);
    if (h->nbuf) {
        /* The tail, zero-padded to a stripe; the length below tells "ab" from "ab\0". */
        uint8_t last[64] = {0};
        memcpy(last, h->buf, h->nbuf);
        stripes(v, last, 64);
    }
    /* Two different chains over all eight lanes: each output word depends on the whole state. */
    uint64_t x = fmix(h->len ^ h->seed ^ M4), y = fmix(h->len * M3 + ~h->seed);
    for (int j = 0; j < 8; j++) {
        x = fmix(x + v[j]) * M1;
        y = fmix(y ^ rotl(v[j], 23)) + M2;
    }
    out[0] = fmix(x);
    out[1] = fmix(y);
}

void an_h128_once(const void *data, size_t n, uint64_t seed, uint64_t out[2]) {
    an_h128 h;
    an_h128_init(&h, seed);
    an_h128_update(&h, data, n);
    an_h128_final(&h, out);
}
