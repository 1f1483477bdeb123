/* bpe.c — byte-level BPE ("gpt2") encoding as llama.cpp does it: pre-tokenize into pieces,
 * map every UTF-8 byte of a piece through the GPT-2 byte-to-unicode table, then merge adjacent
 * symbols by lowest merge rank (ties: leftmost). */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

typedef an_tok_sym sym;

typedef struct {
    char *buf;   /* byte-encoded piece */
    size_t cap;
    sym *S;
    size_t scap;
    an_heap h;
} scratch;

static bool add_pair(const an_tok *t, scratch *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const sym *L = &w->S[l], *R = &w->S[r];
    int32_t rank = an_tok_merge_rank(t, w->buf + L->off, L->n, w->buf + R->off, R->n);
    if (rank < 0) return true;
    an_bigram b = {-(double)rank, l, r, L->n + R->n};
    return an_heap_push(&w->h, b);
}

/* Encode one byte-encoded piece w->buf[0..m). */
static an_status encode_piece(const an_tok *t, scratch *w, size_t m, an_ivec *out) {
    if (t->ignore_merges) {
        int32_t id = an_tok_lookup(t, w->buf, m);
        if (id >= 0) return an_ivec_push(out, id) ? AN_OK : AN_E_NOMEM;
    }
    size_t n_sym = 0;
    for (size_t i = 0; i < m; n_sym++) {
        size_t l = an_utf8_len((uint8_t)w->buf[i]);
        i += l < m - i ? l : m - i;
    }
    if (n_sym > w->scap) {
        sym *S = realloc(w->S, n_sym * sizeof *S);
        if (!S) return AN_E_NOMEM;
        w->S = S;
        w->scap = n_sym;
    }
    sym *S = w->S;
    an_tok_split_chars(w->buf, m, S);
    w->h.n = 0;
    for (size_t k = 1; k < n_sym; k++)
        if (!add_pair(t, w, (int32_t)k - 1, (int32_t)k)) return AN_E_NOMEM;
    while (w->h.n) {
        an_bigram b = an_heap_pop(&w->h);
        sym *L = &S[b.left], *R = &S[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) S[R->next].prev = b.left;
        if (!add_pair(t, w, L->prev, b.left)) return AN_E_NOMEM;
        if (!add_pair(t, w, b.left, L->next)) return AN_E_NOMEM;
    }
    for (int32_t k = 0; k != -1; k = S[k].next) {
        int32_t id = an_tok_lookup(t, w->buf + S[k].off, S[k].n);
        if (id >= 0) {
            if (!an_ivec_push(out, id)) return AN_E_NOMEM;
            continue;
        }
        /* not a token: each byte as a 1-char token, silently dropping bytes without one */
        for (uint32_t j = 0; j < S[k].n; j++) {
            int32_t bid = an_tok_lookup(t, w->buf + S[k].off + j, 1);
            if (bid >= 0 && !an_ivec_push(out, bid)) return AN_E_NOMEM;
        }
    }
    return AN_OK;
}

an_status an_bpe_encode(const an_tok *t, const char *s, size_t n, an_ivec *out) {
    if (n == 0) return AN_OK;
    if (n > UINT32_MAX / 8) return AN_E_RANGE; /* symbol offsets are 32-bit */
    const uint8_t *u = (const uint8_t *)s;
    uint32_t *cp = malloc(n * sizeof *cp);
    if (!cp) return AN_E_NOMEM;
    size_t ncp = 0;
    for (size_t i = 0; i < n;) cp[ncp++] = an_utf8_decode(u, n, &i);
    size_t *ends = NULL;
    long np = an_pretok_split(t->pre, cp, ncp, &ends);
    if (np < 0) {
        free(cp);
        return AN_E_NOMEM;
    }
    scratch w = {0};
    an_status st = AN_OK;
    size_t b = 0;
    for (long p = 0; p < np && st == AN_OK; p++) {
        size_t e = ends[p];
        /* each code point -> UTF-8 (invalid input bytes became U+FFFD) -> each byte through the
         * GPT-2 map (at most 2 bytes per byte, so 8 per code point) */
        size_t need = (e - b) * 8;
        if (need > w.cap) {
            char *nb = realloc(w.buf, need);
            if (!nb) {
                st = AN_E_NOMEM;
                break;
            }
            w.buf = nb;
            w.cap = need;
        }
        size_t m = 0;
        for (size_t i = b; i < e; i++) {
            uint8_t tmp[4];
            size_t k = an_utf8_encode(cp[i], tmp);
            for (size_t j = 0; j < k; j++) m += an_utf8_encode(an_byte_to_cp(tmp[j]), (uint8_t *)w.buf + m);
        }
        st = encode_piece(t, &w, m, out);
        b = e;
    }
    free(w.buf);
    free(w.S);
    free(w.h.v);
    free(ends);
    free(cp);
    return st;
}
