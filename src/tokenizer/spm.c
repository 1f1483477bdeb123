/* spm.c — SentencePiece ("llama") encoding as llama.cpp does it: spaces become U+2581, the
 * text is split into UTF-8 characters, and adjacent pairs whose concatenation is a vocabulary
 * token are merged highest score first (ties: leftmost). Symbols left that are not tokens are
 * emitted as <0xNN> byte tokens. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

typedef an_tok_sym sym;

/* Key of a character pair: each char's bytes (1..4, length fixed by the lead byte inside a
 * pair) packed little-endian into 32 bits. */
static uint64_t pair_key(const char *a, size_t la, const char *b, size_t lb) {
    uint64_t x = 0, y = 0;
    for (size_t i = 0; i < la; i++) x |= (uint64_t)(uint8_t)a[i] << (8 * i);
    for (size_t i = 0; i < lb; i++) y |= (uint64_t)(uint8_t)b[i] << (8 * i);
    return x | y << 32;
}

static uint32_t key_slot(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

bool an_spm_pair_possible(const an_tok *t, uint64_t key) {
    if (key == 0) return t->pair_zero;
    for (uint32_t i = key_slot(key) & t->pairs_mask;; i = (i + 1) & t->pairs_mask) {
        if (t->pairs[i] == key) return true;
        if (t->pairs[i] == 0) return false;
    }
}

bool an_spm_build_pairs(an_tok *t) {
    size_t total = t->text_off[t->n_vocab];
    uint32_t size = 16;
    while (size < 2 * total + 16) size *= 2; /* pairs <= bytes of all texts */
    t->pairs = calloc(size, sizeof *t->pairs);
    if (!t->pairs) return false;
    t->pairs_mask = size - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = tok_text(t, id, &len);
        size_t i = 0, prev = 0, plen = 0;
        while (i < len) {
            size_t l = an_utf8_len((uint8_t)s[i]);
            if (l > len - i) l = len - i;
            if (i > 0) {
                uint64_t k = pair_key(s + prev, plen, s + i, l);
                if (k == 0) {
                    t->pair_zero = true;
                } else {
                    uint32_t j = key_slot(k) & t->pairs_mask;
                    while (t->pairs[j] != 0 && t->pairs[j] != k) j = (j + 1) & t->pairs_mask;
                    t->pairs[j] = k;
                }
            }
            prev = i;
            plen = l;
            i += l;
        }
    }
    return true;
}

static bool try_add(const an_tok *t, const char *buf, const sym *S, int32_t l, int32_t r,
                    an_heap *h) {
    if (l < 0 || r < 0) return true;
    size_t len = (size_t)S[l].n + S[r].n;
    int32_t id = an_tok_lookup(t, buf + S[l].off, len);
    if (id < 0) return true;
    an_bigram b = {t->scores[id], l, r, (uint32_t)len};
    return an_heap_push(h, b);
}

/* Merge the symbols [a, b) (a segment no merge can leave) and append its ids. */
static an_status merge_segment(const an_tok *t, const char *buf, sym *S, int32_t a, int32_t b,
                               an_heap *h, an_ivec *out) {
    S[a].prev = -1;
    S[b - 1].next = -1;
    h->n = 0;
    for (int32_t k = a + 1; k < b; k++)
        if (!try_add(t, buf, S, k - 1, k, h)) return AN_E_NOMEM;
    while (h->n) {
        an_bigram g = an_heap_pop(h);
        sym *L = &S[g.left], *R = &S[g.right];
        /* stale: one side was merged away or grew since the pair was pushed */
        if (L->n == 0 || R->n == 0 || L->n + R->n != g.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) S[R->next].prev = g.left;
        if (!try_add(t, buf, S, L->prev, g.left, h)) return AN_E_NOMEM;
        if (!try_add(t, buf, S, g.left, L->next, h)) return AN_E_NOMEM;
    }
    /* Every merged symbol is a token (pairs are only pushed when they are), so llama.cpp's
     * resegmentation reduces to: the token if it is one, else one byte token per byte. */
    for (int32_t k = a; k != -1; k = S[k].next) {
        int32_t id = an_tok_lookup(t, buf + S[k].off, S[k].n);
        if (id >= 0) {
            if (!an_ivec_push(out, id)) return AN_E_NOMEM;
            continue;
        }
        for (uint32_t j = 0; j < S[k].n; j++) {
            int32_t bid = t->byte_tok[(uint8_t)buf[S[k].off + j]];
            /* neither <0xNN> nor a 1-char token: llama.cpp throws; we emit <unk> (or nothing) */
            if (bid < 0) bid = t->unk;
            if (bid >= 0 && !an_ivec_push(out, bid)) return AN_E_NOMEM;
        }
    }
    return AN_OK;
}

an_status an_spm_encode(const an_tok *t, const char *s, size_t n, bool space_prefix, an_ivec *out) {
    if (n > (UINT32_MAX - 3) / 3 || n > INT32_MAX / 4) return AN_E_RANGE; /* 32-bit offsets */
    char *buf = malloc(3 * n + 3);
    if (!buf) return AN_E_NOMEM;
    /* llama.cpp's escape: an optional leading ' ', then every ' ' becomes U+2581 (E2 96 81) */
    size_t m = 0;
    if (space_prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(buf + m, "\xe2\x96\x81", 3);
            m += 3;
        } else {
            buf[m++] = s[i];
        }
    }
    size_t n_sym = 0;
    for (size_t i = 0; i < m; n_sym++) {
        size_t l = an_utf8_len((uint8_t)buf[i]);
        i += l < m - i ? l : m - i;
    }
    if (n_sym == 0) {
        free(buf);
        return AN_OK;
    }
    sym *S = malloc(n_sym * sizeof *S);
    if (!S) {
        free(buf);
        return AN_E_NOMEM;
    }
    /* symbols: UTF-8 characters by lead-byte length (clamped at the end), as llama.cpp */
    an_tok_split_chars(buf, m, S);
    /* llama.cpp merges the whole fragment with one priority queue. Merges are local, so where
     * no token contains the two characters on either side of a boundary, the two sides evolve
     * independently and in the same relative order; merging segment by segment therefore gives
     * the same result with small queues (a single queue over a 1 MB text was cache-bound). */
    an_heap h = {0};
    an_status st = AN_OK;
    int32_t a = 0;
    for (int32_t k = 1; k <= (int32_t)n_sym && st == AN_OK; k++) {
        if (k < (int32_t)n_sym) {
            const sym *L = &S[k - 1], *R = &S[k];
            if (an_spm_pair_possible(t, pair_key(buf + L->off, L->n, buf + R->off, R->n)))
                continue;
        }
        st = merge_segment(t, buf, S, a, k, &h, out);
        a = k;
    }
    free(h.v);
    free(S);
    free(buf);
    return st;
}
