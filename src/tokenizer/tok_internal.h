/* tok_internal.h — the an_tok structure and helpers shared by tokenizer.c, spm.c, bpe.c and
 * pretok.c. Not part of the subsystem's contract (that is tokenizer.h). */
#ifndef AN_TOK_INTERNAL_H
#define AN_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

#include "tokenizer/unicode.h"

/* A symbol of the merge algorithms (SPM and BPE): a byte range of the text in a doubly linked
 * list; n == 0 once merged into its left neighbour. */
typedef struct an_tok_sym {
    int32_t prev, next;
    uint32_t off, n;
} an_tok_sym;

/* Splits buf[0..m) into one symbol per UTF-8 character (by lead-byte length, clamped at the
 * end, as llama.cpp does), linked in order; returns the number of symbols. S holds >= m. */
static inline size_t an_tok_split_chars(const char *buf, size_t m, an_tok_sym *S) {
    size_t k = 0;
    for (size_t i = 0; i < m; k++) {
        size_t l = an_utf8_len((uint8_t)buf[i]);
        if (l > m - i) l = m - i;
        S[k].off = (uint32_t)i;
        S[k].n = (uint32_t)l;
        S[k].prev = (int32_t)k - 1;
        i += l;
        S[k].next = i == m ? -1 : (int32_t)k + 1;
    }
    return k;
}

typedef enum { AN_VOCAB_SPM, AN_VOCAB_BPE } an_vocab_kind;

/* The pre-tokenizer behaviours of llama.cpp we implement (tokenizer.ggml.pre maps onto them). */
typedef enum {
    AN_PRE_DEFAULT, /* "default": 4 regexes (punctuation runs, GPT-2, digit runs, 3-digit groups) */
    AN_PRE_GPT2,    /* "gpt-2": the GPT-2 regex alone */
    AN_PRE_LLAMA3,  /* "llama3"/"llama-bpe": contractions, letters, 1-3 digits, ... */
    AN_PRE_QWEN2,   /* "qwen2": like LLAMA3 with single digits */
} an_pre;

/* Growable id vector (encoding output before it is copied to the caller). */
typedef struct an_ivec {
    int32_t *v;
    size_t n, cap;
} an_ivec;

bool an_ivec_push(an_ivec *a, int32_t x);

struct an_tok {
    an_vocab_kind kind;
    an_pre pre;
    int32_t n_vocab;

    char *text;          /* all token texts, back to back */
    uint32_t *text_off;  /* n_vocab + 1 offsets into text */
    char *piece;         /* detokenized piece of every token (special = false semantics) */
    uint32_t *piece_off; /* n_vocab + 1 */
    float *scores;       /* n_vocab (0 when the file has none) */
    uint8_t *type;       /* AN_TOK_* per token (after EOG tokens were forced to CONTROL) */
    uint8_t *eog;        /* 1 if the token ends generation */

    int32_t *tmap;       /* open-addressing hash: token text -> id (-1 empty) */
    uint32_t tmap_mask;

    /* BPE merges: entry i is "left right" split at m_split[i]; rank = i. */
    char *mtext;
    uint32_t *m_off;     /* n_merges + 1 */
    uint32_t *m_split;   /* length of the left part */
    int32_t n_merges;
    int32_t *mmap;       /* hash: (left, right) -> rank (-1 empty) */
    uint32_t mmap_mask;

    /* SPM: set of adjacent character pairs (each char's UTF-8 bytes packed little-endian,
     * left | right << 32) that occur inside some token. A text boundary whose pair is absent
     * can never be merged across, so the text is merged in independent segments. */
    uint64_t *pairs;     /* open addressing, 0 = empty */
    uint32_t pairs_mask;
    bool pair_zero;      /* the pair (NUL, NUL), whose key is 0 */

    int32_t byte_tok[256]; /* SPM byte fallback: <0xNN>, else the 1-char token, else -1 */

    int32_t *special;    /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int32_t n_special;

    int32_t bos, eos, unk, eot, eom, pad; /* -1 if none */
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
};

static inline const char *tok_text(const an_tok *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

/* Max-heap of candidate merges shared by SPM (priority = score) and BPE (priority = -rank);
 * equal priorities pop the leftmost pair first, as llama.cpp's queues do. */
typedef struct an_bigram {
    double pri;
    int32_t left, right;
    uint32_t size; /* byte length of left + right when pushed (stale-entry check) */
} an_bigram;

typedef struct an_heap {
    an_bigram *v;
    size_t n, cap;
} an_heap;

static inline bool an_bigram_before(const an_bigram *a, const an_bigram *b) {
    return a->pri > b->pri || (a->pri == b->pri && a->left < b->left);
}
bool an_heap_push(an_heap *h, an_bigram x);
an_bigram an_heap_pop(an_heap *h); /* h->n > 0 */

uint64_t an_tok_hash(const void *p, size_t n, uint64_t h);
#define AN_TOK_HASH_SEED 1469598103934665603ull
/* Token id whose text is exactly s[0..n), or -1. */
int32_t an_tok_lookup(const an_tok *t, const char *s, size_t n);
/* Merge rank of (l, r), or -1. */
int32_t an_tok_merge_rank(const an_tok *t, const char *l, size_t ln, const char *r, size_t rn);

/* SPM: build t->pairs from the token texts (t->text must be set). */
bool an_spm_build_pairs(an_tok *t);
bool an_spm_pair_possible(const an_tok *t, uint64_t key);

/* Encode one raw-text fragment (no special tokens inside), appending ids. */
an_status an_spm_encode(const an_tok *t, const char *s, size_t n, bool space_prefix, an_ivec *out);
an_status an_bpe_encode(const an_tok *t, const char *s, size_t n, an_ivec *out);

/* Pre-tokenize code points cp[0..n) into pieces: writes piece end offsets (exclusive, in code
 * points, increasing, the last == n) to *ends (malloc'ed, caller frees); returns the count or
 * -1 on allocation failure. */
long an_pretok_split(an_pre pre, const uint32_t *cp, size_t n, size_t **ends);

#endif
