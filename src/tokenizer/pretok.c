/* pretok.c — BPE pre-tokenizers: hand-written scanners that split code points exactly as
 * llama.cpp's unicode_regex_split does for the regex lists of each pre-type.
 *
 * llama.cpp runs some regexes through its own custom scanners (GPT-2, Llama 3) and the rest
 * through std::regex over a "collapsed" text where every non-ASCII code point is replaced by a
 * stand-in byte for its class (letter, number, punctuation, ...; non-ASCII whitespace becomes
 * \v). Either way a regex turns every piece into a sequence of matches and unmatched gaps, each
 * of which becomes a piece; later regexes then split those pieces further. At the edge of a
 * piece the scanners see "nothing" (so `\s+(?!\S)` may take a run up to the piece end).
 *
 * Classes: letter = \p{L}, number = \p{N}, whitespace = White_Space (see unicode_tables.c). */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>

typedef struct {
    const uint32_t *cp;
    const uint8_t *fl;
    size_t *out;   /* piece ends */
    size_t n_out;
} scan;

/* Close the current piece at end (empty pieces are dropped). */
static void emit(scan *s, size_t end) {
    size_t last = s->n_out ? s->out[s->n_out - 1] : 0;
    if (end > last) s->out[s->n_out++] = end;
}

#define IS_L(f) ((f) & AN_UNI_LETTER)
#define IS_N(f) ((f) & AN_UNI_NUMBER)
#define IS_WS(f) ((f) & AN_UNI_SPACE)

static int ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? (int)(c + 32) : (int)c; }

/* Contraction at pos: 's 't 're 've 'm 'll 'd (case-insensitive when ci); returns its length or
 * 0. The letters must be inside the piece [.., e). */
static size_t contraction(const uint32_t *cp, size_t pos, size_t e, bool ci) {
    if (cp[pos] != '\'' || pos + 1 >= e) return 0;
    int a = ci ? ascii_lower(cp[pos + 1]) : (int)cp[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < e) {
        int b = ci ? ascii_lower(cp[pos + 2]) : (int)cp[pos + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ over the
 * piece [b, e). */
static void split_gpt2(scan *s, size_t b, size_t e) {
    const uint32_t *cp = s->cp;
    const uint8_t *fl = s->fl;
    size_t pos = b;
    while (pos < e) {
        size_t c = contraction(cp, pos, e, false);
        if (c) {
            pos += c;
            emit(s, pos);
            continue;
        }
        /* the class of the char after an optional leading space (none past the piece end) */
        bool sp = cp[pos] == ' ';
        bool have2 = !sp || pos + 1 < e;
        unsigned f2 = sp ? (pos + 1 < e ? fl[pos + 1] : 0) : fl[pos];
        if (have2 && IS_L(f2)) {
            pos += sp;
            while (pos < e && IS_L(fl[pos])) pos++;
            emit(s, pos);
            continue;
        }
        if (have2 && IS_N(f2)) {
            pos += sp;
            while (pos < e && IS_N(fl[pos])) pos++;
            emit(s, pos);
            continue;
        }
        if (have2 && !(IS_WS(f2) || IS_L(f2) || IS_N(f2))) {
            pos += sp;
            while (pos < e && !(IS_WS(fl[pos]) || IS_L(fl[pos]) || IS_N(fl[pos]))) pos++;
            emit(s, pos);
            continue;
        }
        size_t nws = 0;
        while (pos + nws < e && IS_WS(fl[pos + nws])) nws++;
        if (nws > 1 && pos + nws < e) { /* \s+(?!\S): leave the last space for the next word */
            pos += nws - 1;
            emit(s, pos);
            continue;
        }
        pos += nws ? nws : 1;
        emit(s, pos);
    }
}

/* Llama 3 (maxdig 3) and Qwen2 (maxdig 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxdig}| ?[^\s\p{L}\p{N}]+[\r\n]*
 * |\s*[\r\n]+|\s+(?!\S)|\s+ over the piece [b, e). llama.cpp runs the Llama 3 form through a
 * custom scanner and the Qwen2 form through std::regex; with leftmost-first alternation and
 * backtracking the regex gives the same pieces as this scanner with single digits. */
static void split_llama3(scan *s, size_t b, size_t e, int maxdig) {
    const uint32_t *cp = s->cp;
    const uint8_t *fl = s->fl;
    size_t pos = b;
    while (pos < e) {
        uint32_t c0 = cp[pos];
        unsigned f = fl[pos];
        size_t c = contraction(cp, pos, e, true);
        if (c) {
            pos += c;
            emit(s, pos);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c0 == '\r' || c0 == '\n' || IS_N(f))) {
            if (IS_L(f) || (pos + 1 < e && IS_L(fl[pos + 1]))) {
                pos++;
                while (pos < e && IS_L(fl[pos])) pos++;
                emit(s, pos);
                continue;
            }
        }
        /* \p{N}{1,maxdig}: a digit run is cut into groups of maxdig from the left */
        if (IS_N(f)) {
            size_t run = 0;
            while (pos < e && IS_N(fl[pos])) {
                pos++;
                if (++run == (size_t)maxdig) {
                    emit(s, pos);
                    run = 0;
                }
            }
            emit(s, pos);
            continue;
        }
        /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
        bool sp = c0 == ' ';
        if (!sp || pos + 1 < e) {
            unsigned f2 = sp ? fl[pos + 1] : f;
            if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2))) {
                pos += sp;
                while (pos < e && !(IS_WS(fl[pos]) || IS_L(fl[pos]) || IS_N(fl[pos]))) pos++;
                while (pos < e && (cp[pos] == '\r' || cp[pos] == '\n')) pos++;
                emit(s, pos);
                continue;
            }
        }
        /* whitespace run: \s*[\r\n]+ ends after its last CR/LF; else \s+(?!\S); else \s+ */
        size_t nws = 0, last_nl = 0;
        while (pos + nws < e && IS_WS(fl[pos + nws])) {
            if (cp[pos + nws] == '\r' || cp[pos + nws] == '\n') last_nl = pos + nws + 1;
            nws++;
        }
        if (last_nl) {
            pos = last_nl;
            emit(s, pos);
            continue;
        }
        if (nws > 1 && pos + nws < e) {
            pos += nws - 1;
            emit(s, pos);
            continue;
        }
        pos += nws ? nws : 1;
        emit(s, pos);
    }
}

/* The DEFAULT list's std::regex stages: matches and the gaps between them become pieces. */
typedef size_t (*matcher)(const uint32_t *cp, const uint8_t *fl, size_t pos, size_t e);

/* [\p{P}\$\+<=>\^~\|]+ (note: not the backtick, and no non-ASCII symbols) */
static bool punctish(uint32_t c, unsigned f) {
    return (f & AN_UNI_PUNCT) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
           c == '^' || c == '~' || c == '|';
}
static size_t m_punct(const uint32_t *cp, const uint8_t *fl, size_t pos, size_t e) {
    size_t p = pos;
    while (p < e && punctish(cp[p], fl[p])) p++;
    return p - pos;
}
/* \p{N}+ */
static size_t m_num(const uint32_t *cp, const uint8_t *fl, size_t pos, size_t e) {
    (void)cp;
    size_t p = pos;
    while (p < e && IS_N(fl[p])) p++;
    return p - pos;
}
/* [0-9][0-9][0-9] (ASCII digits only: this regex has no \p class, so it runs on raw text) */
static size_t m_3dig(const uint32_t *cp, const uint8_t *fl, size_t pos, size_t e) {
    (void)fl;
    if (pos + 3 > e) return 0;
    for (size_t k = 0; k < 3; k++)
        if (cp[pos + k] < '0' || cp[pos + k] > '9') return 0;
    return 3;
}

static void split_regex(scan *s, size_t b, size_t e, matcher m) {
    size_t pos = b, gap = b;
    while (pos < e) {
        size_t len = m(s->cp, s->fl, pos, e);
        if (len) {
            emit(s, pos); /* the gap before the match, if any (emit ignores empty pieces) */
            pos += len;
            emit(s, pos);
            gap = pos;
        } else {
            pos++;
        }
    }
    if (gap < e) emit(s, e);
}

typedef enum { ST_GPT2, ST_LLAMA3, ST_QWEN2, ST_PUNCT, ST_NUM, ST_3DIG } stage;

/* Apply one stage to every piece of in[0..n_in) (piece ends), writing s->out. */
static void run_stage(scan *s, stage st, const size_t *in, size_t n_in) {
    size_t b = 0;
    s->n_out = 0;
    for (size_t i = 0; i < n_in; i++) {
        size_t e = in[i];
        switch (st) {
        case ST_GPT2: split_gpt2(s, b, e); break;
        case ST_LLAMA3: split_llama3(s, b, e, 3); break;
        case ST_QWEN2: split_llama3(s, b, e, 1); break;
        case ST_PUNCT: split_regex(s, b, e, m_punct); break;
        case ST_NUM: split_regex(s, b, e, m_num); break;
        case ST_3DIG: split_regex(s, b, e, m_3dig); break;
        }
        b = e;
    }
}

long an_pretok_split(an_pre pre, const uint32_t *cp, size_t n, size_t **ends) {
    *ends = NULL;
    if (n == 0) return 0;
    uint8_t *fl = malloc(n);
    size_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!fl || !a || !b) {
        free(fl), free(a), free(b);
        return -1;
    }
    for (size_t i = 0; i < n; i++) fl[i] = (uint8_t)an_uni_flags(cp[i]);
    static const stage k_default[] = {ST_PUNCT, ST_GPT2, ST_NUM, ST_3DIG};
    static const stage k_gpt2[] = {ST_GPT2}, k_llama3[] = {ST_LLAMA3}, k_qwen2[] = {ST_QWEN2};
    const stage *st = k_default;
    size_t n_st = 4;
    switch (pre) {
    case AN_PRE_DEFAULT: break;
    case AN_PRE_GPT2: st = k_gpt2, n_st = 1; break;
    case AN_PRE_LLAMA3: st = k_llama3, n_st = 1; break;
    case AN_PRE_QWEN2: st = k_qwen2, n_st = 1; break;
    }
    /* ping-pong between a and b; the whole text is the first piece */
    a[0] = n;
    size_t n_in = 1;
    scan s = {cp, fl, b, 0};
    for (size_t k = 0; k < n_st; k++) {
        s.out = (k % 2 == 0) ? b : a;
        const size_t *in = (k % 2 == 0) ? a : b;
        run_stage(&s, st[k], in, n_in);
        n_in = s.n_out;
    }
    free(fl);
    if (s.out == a) {
        free(b);
        *ends = a;
    } else {
        free(a);
        *ends = b;
    }
    return (long)n_in;
}
