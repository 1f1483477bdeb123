/* hash.h — the compile cache's 128-bit non-cryptographic hash (keys and payload checksums).
 *
 * Design (our own, in the spirit of xxHash's parallel lanes): eight independent 64-bit lanes,
 * lane j absorbing every eighth 8-byte word w as v = rotl((v ^ w) * M, 29). Why this shape:
 *  - each lane is a serial chain, so the result depends on word order (swapped rows of a weight
 *    matrix give a different key), and for a fixed w the step is a bijection of v (xor, odd
 *    multiply, rotate), so inputs differing in one word can never leave their lane equal;
 *  - the eight chains are independent, so the loop runs at one multiply per 8 bytes, which is
 *    faster than one core streams from DRAM (measured: 7.5 GB/s hashing vs 8-11 GB/s for a bare
 *    sum over 256 MB; an xxh64-style round with two multiplies per word reached only 6 GB/s);
 *  - the 512-bit state and the total length are folded into two 64-bit words by two different
 *    chains of the splitmix64 finalizer (full avalanche), giving 128 bits, so accidental
 *    collisions among the few thousand entries a cache ever holds are out of reach.
 * It does not resist an adversary; it need not: the cache directory belongs to the user.
 *
 * Words are read in host byte order; the cache is machine-local, so hashes need not agree
 * across endianness. Streaming: update(a); update(b) == update(a || b). */
#ifndef AN_CACHE_HASH_H
#define AN_CACHE_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct an_h128 {
    uint64_t v[8];
    uint64_t len;     /* bytes absorbed so far */
    uint64_t seed;
    uint8_t buf[64];  /* a partial stripe waiting for more bytes */
    unsigned nbuf;
} an_h128;

void an_h128_init(an_h128 *h, uint64_t seed);
void an_h128_update(an_h128 *h, const void *data, size_t n);
/* Does not modify h: more bytes may be added and final called again. */
void an_h128_final(const an_h128 *h, uint64_t out[2]);
/* One-shot convenience. */
void an_h128_once(const void *data, size_t n, uint64_t seed, uint64_t out[2]);

#endif
