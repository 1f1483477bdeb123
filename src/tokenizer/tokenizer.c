/* tokenizer.c — building an an_tok from GGUF metadata, special-token partitioning, encode
 * dispatch and detokenization (whole sequences and streaming). Semantics follow llama.cpp's
 * llama-vocab.cpp as described in shared/research/ggml.md section 5. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers ---------------------------------------------------------------------- */

bool an_ivec_push(an_ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, nc * sizeof *v);
        if (!v) return false;
        a->v = v;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return true;
}

bool an_heap_push(an_heap *h, an_bigram x) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 256;
        an_bigram *v = realloc(h->v, nc * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!an_bigram_before(&x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
    return true;
}

an_bigram an_heap_pop(an_heap *h) {
    an_bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && an_bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!an_bigram_before(&h->v[c], &x)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = x;
    return top;
}

/* FNV-1a: short keys (token texts), no allocation, good enough spread for power-of-2 tables. */
uint64_t an_tok_hash(const void *p, size_t n, uint64_t h) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int32_t an_tok_lookup(const an_tok *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)an_tok_hash(s, n, AN_TOK_HASH_SEED) & t->tmap_mask;
    for (;; i = (i + 1) & t->tmap_mask) {
        int32_t id = t->tmap[i];
        if (id < 0) return -1;
        size_t len;
        const char *x = tok_text(t, id, &len);
        if (len == n && memcmp(x, s, n) == 0) return id;
    }
}

static uint64_t pair_hash(const char *l, size_t ln, const char *r, size_t rn) {
    uint64_t h = an_tok_hash(l, ln, AN_TOK_HASH_SEED);
    h = an_tok_hash("\xff", 1, h); /* separator: ("ab","c") and ("a","bc") differ */
    return an_tok_hash(r, rn, h);
}

int32_t an_tok_merge_rank(const an_tok *t, const char *l, size_t ln, const char *r, size_t rn) {
    if (!t->mmap) return -1;
    uint32_t i = (uint32_t)pair_hash(l, ln, r, rn) & t->mmap_mask;
    for (;; i = (i + 1) & t->mmap_mask) {
        int32_t k = t->mmap[i];
        if (k < 0) return -1;
        const char *x = t->mtext + t->m_off[k];
        size_t xl = t->m_split[k], xr = t->m_off[k + 1] - t->m_off[k] - xl - 1;
        if (xl == ln && xr == rn && memcmp(x, l, ln) == 0 && memcmp(x + xl + 1, r, rn) == 0)
            return k;
    }
}

static uint32_t table_size(size_t n) {
    uint32_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

/* ---- building ----------------------------------------------------------------------------- */

void an_tok_free(an_tok *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->piece);
    free(t->piece_off);
    free(t->scores);
    free(t->type);
    free(t->eog);
    free(t->tmap);
    free(t->mtext);
    free(t->m_off);
    free(t->m_split);
    free(t->mmap);
    free(t->special);
    free(t->pairs);
    free(t);
}

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n) nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}

static an_status nomem(const an_gguf *g, an_err *err) {
    return an_err_set(err, AN_E_NOMEM, "%s: out of memory building the tokenizer", an_gguf_path(g));
}

/* Optional token id key: absent keeps *id; -1 / 0xFFFFFFFF mean "none"; other values must be
 * valid ids. */
static an_status get_id(const an_gguf *g, const char *key, int32_t n_vocab, int32_t *id,
                        an_err *err) {
    int64_t v;
    bool found;
    AN_TRY(an_gguf_get_i64(g, key, &v, &found, err));
    if (!found) return AN_OK;
    if (v == -1 || v == 0xFFFFFFFFll) {
        *id = -1;
        return AN_OK;
    }
    if (v < 0 || v >= n_vocab)
        return an_err_set(err, AN_E_FORMAT, "%s: %s = %lld is not a token id (the vocabulary has %d tokens)",
                          an_gguf_path(g), key, (long long)v, n_vocab);
    *id = (int32_t)v;
    return AN_OK;
}

static an_status get_flag(const an_gguf *g, const char *key, bool *v, an_err *err) {
    bool x, found;
    AN_TRY(an_gguf_get_bool(g, key, &x, &found, err));
    if (found) *v = x;
    return AN_OK;
}

static bool str_is(an_str s, const char *c) {
    size_t n = strlen(c);
    return s.n == n && memcmp(s.p, c, n) == 0;
}

static bool str_in(an_str s, const char *const *list) {
    for (; *list; list++)
        if (str_is(s, *list)) return true;
    return false;
}

/* tokenizer.ggml.pre values (llama.cpp's names) for the behaviours we implement. */
static bool parse_pre(an_str s, an_pre *pre, bool *add_bos, bool *ignore_merges, bool *clean) {
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                         "pixtral", "midm-2.0", "lfm2", NULL};
    static const char *const gpt2[] = {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
                                       "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
                                       "modern-bert", "exaone4", NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "kormo", NULL};
    *clean = true; /* llama.cpp's BPE default; most newer pre-types turn it off */
    if (str_is(s, "default")) {
        *pre = AN_PRE_DEFAULT;
    } else if (str_in(s, llama3)) {
        *pre = AN_PRE_LLAMA3;
        *ignore_merges = true;
        *add_bos = true;
    } else if (str_in(s, gpt2)) {
        *pre = AN_PRE_GPT2;
    } else if (str_in(s, qwen2)) {
        *pre = AN_PRE_QWEN2;
        *clean = false;
    } else if (str_is(s, "megrez")) {
        *pre = AN_PRE_QWEN2; /* same regex; llama.cpp keeps clean_spaces on for it */
    } else {
        return false;
    }
    return true;
}

/* Token texts that end generation (llama.cpp detects them by text and forces them to CONTROL). */
static const char *const k_eog_text[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                         "<|endoftext|>", "<|eom_id|>", NULL};

/* llama.cpp's token_to_piece with special = false, precomputed for every token. */
static void make_piece(const an_tok *t, int32_t id, sbuf *b) {
    size_t len;
    const char *s = tok_text(t, id, &len);
    switch (t->type[id]) {
    case AN_TOK_USER_DEFINED:
        sb_put(b, s, len);
        return;
    case AN_TOK_NORMAL:
        if (t->kind == AN_VOCAB_SPM) {
            for (size_t i = 0; i < len; i++) {
                if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    sb_put(b, " ", 1);
                    i += 2;
                } else {
                    sb_put(b, s + i, 1);
                }
            }
        } else {
            /* each code point back through the inverse byte map; code points outside it give
             * llama.cpp's "[UNK_BYTE_0x<utf8 hex><token text>]" */
            for (size_t i = 0; i < len;) {
                uint32_t cp = an_utf8_decode((const uint8_t *)s, len, &i);
                int byte = an_cp_to_byte(cp);
                if (byte >= 0) {
                    char c = (char)byte;
                    sb_put(b, &c, 1);
                } else {
                    uint8_t u[4];
                    size_t k = an_utf8_encode(cp, u);
                    char hex[16];
                    sb_put(b, "[UNK_BYTE_0x", 12);
                    for (size_t j = 0; j < k; j++) {
                        snprintf(hex, sizeof hex, "%02x", u[j]);
                        sb_put(b, hex, 2);
                    }
                    sb_put(b, s, len);
                    sb_put(b, "]", 1);
                }
            }
        }
        return;
    case AN_TOK_BYTE:
        if (t->kind == AN_VOCAB_SPM) {
            /* strtol(text + 3, 16) of "<0xNN>", cast to char */
            unsigned v = 0;
            for (size_t i = 3; i < len; i++) {
                char c = s[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0) break;
                v = (v << 4) | (unsigned)d;
            }
            char c = (char)(v & 0xff);
            sb_put(b, &c, 1);
        }
        return; /* BPE byte tokens have no piece in llama.cpp */
    default:
        return; /* CONTROL, UNKNOWN, UNUSED, UNDEFINED: nothing */
    }
}

typedef struct {
    uint32_t len;
    int32_t id;
} spec_ent;

static int spec_cmp(const void *a, const void *b) {
    const spec_ent *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return x->id < y->id ? -1 : x->id > y->id; /* llama.cpp leaves ties unordered; use ids */
}

an_status an_tok_create(an_tok **out, const an_gguf *g, an_err *err) {
    if (!out || !g) return an_err_set(err, AN_E_USAGE, "an_tok_create: NULL argument");
    *out = NULL;
    const char *path = an_gguf_path(g);
    an_str model;
    AN_TRY(an_gguf_get_str(g, "tokenizer.ggml.model", &model, NULL, err));
    an_vocab_kind kind;
    if (str_is(model, "llama")) kind = AN_VOCAB_SPM;
    else if (str_is(model, "gpt2")) kind = AN_VOCAB_BPE;
    else
        return an_err_set(err, AN_E_UNSUPPORTED,
                          "%s: tokenizer.ggml.model '%.*s' is not supported (supported: 'llama' = "
                          "SentencePiece, 'gpt2' = byte-level BPE)",
                          path, (int)(model.n > 64 ? 64 : model.n), model.p);

    const an_gguf_kv *tokens, *scores = NULL, *types = NULL, *merges = NULL;
    bool found;
    AN_TRY(an_gguf_get_arr(g, "tokenizer.ggml.tokens", AN_GGUF_STR, &tokens, NULL, err));
    if (tokens->arr_n == 0 || tokens->arr_n > INT32_MAX / 2)
        return an_err_set(err, AN_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries",
                          path, (unsigned long long)tokens->arr_n);
    int32_t nv = (int32_t)tokens->arr_n;

    AN_TRY(an_gguf_get_arr(g, "tokenizer.ggml.scores", AN_GGUF_VTYPE_COUNT, &scores, &found, err));
    if (found) {
        if (scores->arr_type != AN_GGUF_F32 && scores->arr_type != AN_GGUF_I32)
            return an_err_set(err, AN_E_FORMAT,
                              "%s: tokenizer.ggml.scores has elements of type %s (expected FLOAT32)",
                              path, an_gguf_vtype_name(scores->arr_type));
        if (scores->arr_n != tokens->arr_n)
            return an_err_set(err, AN_E_FORMAT,
                              "%s: tokenizer.ggml.scores has %llu entries but tokenizer.ggml.tokens has %d",
                              path, (unsigned long long)scores->arr_n, nv);
    } else {
        scores = NULL;
    }
    AN_TRY(an_gguf_get_arr(g, "tokenizer.ggml.token_type", AN_GGUF_VTYPE_COUNT, &types, &found, err));
    if (found) {
        if (types->arr_type != AN_GGUF_I32)
            return an_err_set(err, AN_E_FORMAT,
                              "%s: tokenizer.ggml.token_type has elements of type %s (expected INT32)",
                              path, an_gguf_vtype_name(types->arr_type));
        if (types->arr_n != tokens->arr_n)
            return an_err_set(err, AN_E_FORMAT,
                              "%s: tokenizer.ggml.token_type has %llu entries but tokenizer.ggml.tokens has %d",
                              path, (unsigned long long)types->arr_n, nv);
    } else {
        types = NULL;
    }
    if (kind == AN_VOCAB_BPE) {
        AN_TRY(an_gguf_get_arr(g, "tokenizer.ggml.merges", AN_GGUF_STR, &merges, NULL, err));
        if (merges->arr_n > INT32_MAX / 2)
            return an_err_set(err, AN_E_FORMAT, "%s: tokenizer.ggml.merges has %llu entries",
                              path, (unsigned long long)merges->arr_n);
    }

    an_tok *t = calloc(1, sizeof *t);
    if (!t) return nomem(g, err);
    t->kind = kind;
    t->n_vocab = nv;
    t->pre = AN_PRE_DEFAULT;
    t->eot = t->eom = t->pad = -1;
    if (kind == AN_VOCAB_SPM) {
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = true, t->add_space_prefix = true;
    } else {
        t->bos = 11, t->eos = 11, t->unk = -1; /* llama.cpp's placeholders; files set them */
    }
    if (t->bos >= nv) t->bos = -1;
    if (t->eos >= nv) t->eos = -1;
    if (t->unk >= nv) t->unk = -1;

    an_status st = AN_OK;
    if (kind == AN_VOCAB_BPE) {
        an_str pre;
        st = an_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &found, err);
        if (st != AN_OK) goto fail;
        /* missing -> "default", as llama.cpp (which warns that quality will suffer) */
        if (found && !parse_pre(pre, &t->pre, &t->add_bos, &t->ignore_merges, &t->clean_spaces)) {
            st = an_err_set(err, AN_E_UNSUPPORTED,
                            "%s: tokenizer.ggml.pre '%.*s' is not a supported pre-tokenizer "
                            "(supported: default, gpt-2, llama3, llama-v3, llama-bpe, qwen2, ...)",
                            path, (int)(pre.n > 64 ? 64 : pre.n), pre.p);
            goto fail;
        }
        if (!found) t->clean_spaces = true;
    }

    /* texts, copied (the an_gguf may be freed after we return) */
    {
        sbuf b = {0};
        t->text_off = malloc(((size_t)nv + 1) * sizeof *t->text_off);
        if (!t->text_off) goto oom;
        for (int32_t i = 0; i < nv; i++) {
            t->text_off[i] = (uint32_t)b.n;
            an_str s = tokens->arr_str[i];
            if (s.n == 0) { /* llama.cpp renames empty tokens */
                char tmp[32];
                int k = snprintf(tmp, sizeof tmp, "[EMPTY_%d]", i);
                sb_put(&b, tmp, (size_t)k);
            } else {
                sb_put(&b, s.p, s.n);
            }
            if (b.n > UINT32_MAX / 2) {
                free(b.p);
                st = an_err_set(err, AN_E_FORMAT, "%s: tokenizer.ggml.tokens: texts too large", path);
                goto fail;
            }
        }
        t->text_off[nv] = (uint32_t)b.n;
        sb_put(&b, "", 1); /* never a zero-size allocation */
        if (b.oom) goto oom;
        t->text = b.p;
    }
    t->scores = calloc((size_t)nv, sizeof *t->scores);
    t->type = malloc((size_t)nv);
    t->eog = calloc((size_t)nv, 1);
    if (!t->scores || !t->type || !t->eog) goto oom;
    for (int32_t i = 0; i < nv; i++) {
        if (scores) t->scores[i] = (float)an_gguf_arr_f64(scores, (uint64_t)i);
        int64_t ty = types ? an_gguf_arr_i64(types, (uint64_t)i) : AN_TOK_NORMAL;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= AN_TOK_BYTE ? ty : AN_TOK_UNDEFINED);
    }

    /* text -> id map; duplicates are a load error in llama.cpp too */
    t->tmap_mask = table_size((size_t)nv) - 1;
    t->tmap = malloc(((size_t)t->tmap_mask + 1) * sizeof *t->tmap);
    if (!t->tmap) goto oom;
    memset(t->tmap, 0xff, ((size_t)t->tmap_mask + 1) * sizeof *t->tmap);
    for (int32_t i = 0; i < nv; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        uint32_t h = (uint32_t)an_tok_hash(s, len, AN_TOK_HASH_SEED) & t->tmap_mask;
        for (;; h = (h + 1) & t->tmap_mask) {
            int32_t id = t->tmap[h];
            if (id < 0) {
                t->tmap[h] = i;
                break;
            }
            size_t l2;
            const char *s2 = tok_text(t, id, &l2);
            if (l2 == len && memcmp(s, s2, len) == 0) {
                st = an_err_set(err, AN_E_FORMAT,
                                "%s: tokenizer.ggml.tokens: tokens %d and %d have the same text '%.*s'",
                                path, id, i, (int)(len > 64 ? 64 : len), s);
                goto fail;
            }
        }
    }

    if (merges) {
        sbuf b = {0};
        int32_t nm = (int32_t)merges->arr_n;
        t->n_merges = nm;
        t->m_off = malloc(((size_t)nm + 1) * sizeof *t->m_off);
        t->m_split = malloc(((size_t)nm + 1) * sizeof *t->m_split);
        if (!t->m_off || !t->m_split) goto oom;
        for (int32_t i = 0; i < nm; i++) {
            an_str s = merges->arr_str[i];
            t->m_off[i] = (uint32_t)b.n;
            /* split at the first space at position >= 1; an entry without one is ("", "")
             * in llama.cpp, which no pair can match; we store it as "" + " " + "" */
            size_t sp = 0;
            for (size_t k = 1; k < s.n; k++)
                if (s.p[k] == ' ') {
                    sp = k;
                    break;
                }
            if (sp) {
                sb_put(&b, s.p, s.n);
                t->m_split[i] = (uint32_t)sp;
            } else {
                sb_put(&b, " ", 1);
                t->m_split[i] = 0;
            }
            if (b.n > UINT32_MAX / 2) {
                free(b.p);
                st = an_err_set(err, AN_E_FORMAT, "%s: tokenizer.ggml.merges: texts too large", path);
                goto fail;
            }
        }
        t->m_off[nm] = (uint32_t)b.n;
        sb_put(&b, "", 1);
        if (b.oom) goto oom;
        t->mtext = b.p;
        t->mmap_mask = table_size((size_t)nm) - 1;
        t->mmap = malloc(((size_t)t->mmap_mask + 1) * sizeof *t->mmap);
        if (!t->mmap) goto oom;
        memset(t->mmap, 0xff, ((size_t)t->mmap_mask + 1) * sizeof *t->mmap);
        for (int32_t i = 0; i < nm; i++) {
            const char *x = t->mtext + t->m_off[i];
            size_t xl = t->m_split[i], xr = t->m_off[i + 1] - t->m_off[i] - xl - 1;
            /* the first of duplicate merges keeps its rank (std::map::emplace) */
            if (an_tok_merge_rank(t, x, xl, x + xl + 1, xr) >= 0) continue;
            uint32_t h = (uint32_t)pair_hash(x, xl, x + xl + 1, xr) & t->mmap_mask;
            while (t->mmap[h] >= 0) h = (h + 1) & t->mmap_mask;
            t->mmap[h] = i;
        }
    }

    /* special ids and flags: file keys override the defaults above */
    if ((st = get_id(g, "tokenizer.ggml.bos_token_id", nv, &t->bos, err)) != AN_OK ||
        (st = get_id(g, "tokenizer.ggml.eos_token_id", nv, &t->eos, err)) != AN_OK ||
        (st = get_id(g, "tokenizer.ggml.unknown_token_id", nv, &t->unk, err)) != AN_OK ||
        (st = get_id(g, "tokenizer.ggml.eot_token_id", nv, &t->eot, err)) != AN_OK ||
        (st = get_id(g, "tokenizer.ggml.eom_token_id", nv, &t->eom, err)) != AN_OK ||
        (st = get_id(g, "tokenizer.ggml.padding_token_id", nv, &t->pad, err)) != AN_OK ||
        (st = get_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) != AN_OK ||
        (st = get_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) != AN_OK ||
        (st = get_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)) != AN_OK)
        goto fail;

    /* end-of-generation tokens recognized by text (forced to CONTROL, as llama.cpp does) */
    for (const char *const *e = k_eog_text; *e; e++) {
        int32_t id = an_tok_lookup(t, *e, strlen(*e));
        if (id < 0) continue;
        t->eog[id] = 1;
        t->type[id] = AN_TOK_CONTROL;
    }
    /* no eot key: llama.cpp picks one of these texts (hash-map order); we take the lowest id */
    if (t->eot < 0) {
        for (int32_t i = 0; i < nv; i++)
            if (t->eog[i]) {
                size_t len;
                const char *s = tok_text(t, i, &len);
                if (!(len == 10 && memcmp(s, "<|eom_id|>", 10) == 0)) {
                    t->eot = i;
                    break;
                }
            }
    }
    if (t->eom < 0) t->eom = an_tok_lookup(t, "<|eom_id|>", 10);
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;

    if (kind == AN_VOCAB_SPM && !an_spm_build_pairs(t)) goto oom;

    /* SPM byte fallback table */
    for (int b = 0; b < 256; b++) {
        char tmp[8];
        snprintf(tmp, sizeof tmp, "<0x%02X>", b);
        int32_t id = an_tok_lookup(t, tmp, 6);
        if (id < 0) {
            char c = (char)b;
            id = an_tok_lookup(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }

    /* special tokens, longest text first (partitioning order) */
    {
        int32_t n = 0;
        for (int32_t i = 0; i < nv; i++)
            n += t->type[i] == AN_TOK_CONTROL || t->type[i] == AN_TOK_USER_DEFINED ||
                 t->type[i] == AN_TOK_UNKNOWN;
        spec_ent *se = malloc(((size_t)n + 1) * sizeof *se);
        t->special = malloc(((size_t)n + 1) * sizeof *t->special);
        if (!se || !t->special) {
            free(se);
            goto oom;
        }
        n = 0;
        for (int32_t i = 0; i < nv; i++)
            if (t->type[i] == AN_TOK_CONTROL || t->type[i] == AN_TOK_USER_DEFINED ||
                t->type[i] == AN_TOK_UNKNOWN) {
                se[n].id = i;
                se[n].len = t->text_off[i + 1] - t->text_off[i];
                n++;
            }
        qsort(se, (size_t)n, sizeof *se, spec_cmp);
        for (int32_t i = 0; i < n; i++) t->special[i] = se[i].id;
        t->n_special = n;
        free(se);
    }

    /* detokenized pieces */
    {
        sbuf b = {0};
        t->piece_off = malloc(((size_t)nv + 1) * sizeof *t->piece_off);
        if (!t->piece_off) goto oom;
        for (int32_t i = 0; i < nv; i++) {
            t->piece_off[i] = (uint32_t)b.n;
            make_piece(t, i, &b);
            if (b.n > UINT32_MAX / 2) {
                free(b.p);
                st = an_err_set(err, AN_E_FORMAT, "%s: tokenizer.ggml.tokens: texts too large", path);
                goto fail;
            }
        }
        t->piece_off[nv] = (uint32_t)b.n;
        sb_put(&b, "", 1);
        if (b.oom) goto oom;
        t->piece = b.p;
    }

    *out = t;
    return AN_OK;
oom:
    st = nomem(g, err);
fail:
    an_tok_free(t);
    return st;
}

/* ---- accessors ---------------------------------------------------------------------------- */

int32_t an_tok_n_vocab(const an_tok *t) { return t ? t->n_vocab : 0; }
int32_t an_tok_bos(const an_tok *t) { return t ? t->bos : -1; }
int32_t an_tok_eos(const an_tok *t) { return t ? t->eos : -1; }
bool an_tok_add_bos(const an_tok *t) { return t && t->add_bos && t->bos >= 0; }

bool an_tok_is_eog(const an_tok *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->eog[id];
}

int an_tok_type(const an_tok *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab ? t->type[id] : AN_TOK_UNDEFINED;
}

const char *an_tok_text(const an_tok *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    size_t l;
    const char *s = tok_text(t, id, &l);
    if (len) *len = l;
    return s;
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct {
    int32_t id; /* -1: raw text */
    size_t off, len;
} frag;

typedef struct {
    frag *v;
    size_t n, cap;
} fvec;

static bool fv_push(fvec *f, frag x) {
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, nc * sizeof *v);
        if (!v) return false;
        f->v = v;
        f->cap = nc;
    }
    f->v[f->n++] = x;
    return true;
}

/* Split the text fragments at every occurrence of each special token, longest tokens first
 * (llama.cpp's tokenizer_st_partition). CONTROL/UNKNOWN tokens only when parse_special. */
static bool partition(const an_tok *t, const char *text, bool parse_special, fvec *fr) {
    fvec tmp = {0};
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != AN_TOK_USER_DEFINED) continue;
        size_t sl;
        const char *s = tok_text(t, id, &sl);
        if (sl == 0) continue;
        bool any = false;
        for (size_t i = 0; i < fr->n && !any; i++)
            any = fr->v[i].id < 0 && memmem(text + fr->v[i].off, fr->v[i].len, s, sl) != NULL;
        if (!any) continue;
        tmp.n = 0;
        for (size_t i = 0; i < fr->n; i++) {
            frag f = fr->v[i];
            if (f.id >= 0) {
                if (!fv_push(&tmp, f)) goto oom;
                continue;
            }
            size_t off = f.off, end = f.off + f.len;
            while (off < end) {
                const char *m = memmem(text + off, end - off, s, sl);
                if (!m) break;
                size_t at = (size_t)(m - text);
                if (at > off && !fv_push(&tmp, (frag){-1, off, at - off})) goto oom;
                if (!fv_push(&tmp, (frag){id, at, sl})) goto oom;
                off = at + sl;
            }
            if (off < end && !fv_push(&tmp, (frag){-1, off, end - off})) goto oom;
        }
        fvec sw = *fr;
        *fr = tmp;
        tmp = sw;
    }
    free(tmp.v);
    return true;
oom:
    free(tmp.v);
    return false;
}

an_status an_tok_encode(const an_tok *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, int32_t *out, size_t cap, size_t *n_out, an_err *err) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!out && cap))
        return an_err_set(err, AN_E_USAGE, "an_tok_encode: NULL argument");
    an_ivec ids = {0};
    fvec fr = {0};
    an_status st = AN_OK;
    if (add_bos && t->bos >= 0 && !an_ivec_push(&ids, t->bos)) goto oom;
    if (len && !fv_push(&fr, (frag){-1, 0, len})) goto oom;
    if (len && !partition(t, text, parse_special, &fr)) goto oom;
    bool prev_special = true; /* SPM: the first text fragment gets the space prefix */
    for (size_t i = 0; i < fr.n && st == AN_OK; i++) {
        frag f = fr.v[i];
        if (f.id >= 0) {
            if (!an_ivec_push(&ids, f.id)) goto oom;
            prev_special = true;
            continue;
        }
        if (t->kind == AN_VOCAB_SPM)
            st = an_spm_encode(t, text + f.off, f.len, t->add_space_prefix && prev_special, &ids);
        else
            st = an_bpe_encode(t, text + f.off, f.len, &ids);
        prev_special = false;
    }
    if (st == AN_E_NOMEM) goto oom;
    if (st != AN_OK) {
        an_err_set(err, st, "tokenize: text of %zu bytes is too long", len);
        goto done;
    }
    *n_out = ids.n;
    if (ids.n > cap) {
        st = an_err_set(err, AN_E_RANGE, "tokenize: %zu tokens do not fit the buffer of %zu",
                        ids.n, cap);
        goto done;
    }
    if (ids.n) memcpy(out, ids.v, ids.n * sizeof *out);
    goto done;
oom:
    st = an_err_set(err, AN_E_NOMEM, "tokenize: out of memory");
done:
    free(ids.v);
    free(fr.v);
    return st;
}

/* ---- decoding ----------------------------------------------------------------------------- */

static const char *piece_of(const an_tok *t, int32_t id, size_t *len) {
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

size_t an_tok_piece(const an_tok *t, int32_t id, bool lstrip, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    size_t len;
    const char *p = piece_of(t, id, &len);
    if (lstrip && len && p[0] == ' ') p++, len--;
    if (buf) memcpy(buf, p, len < cap ? len : cap);
    return len;
}

/* llama.cpp's clean_spaces passes (BPE vocabularies whose pre-type keeps them): drop the space
 * before ?!., ; " ' " -> "'"; drop the space before 's 'm 're 've. Returns the new length. */
static size_t clean_spaces(char *s, size_t n) {
    size_t w, i;
    if (n == 0) return 0;
    w = 1;
    for (i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
        s[w++] = x;
    }
    n = w;
    w = 1;
    for (i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            w--;          /* the space before */
            s[++i] = 0;   /* and the one after (the 0 also stops the next i-1 test) */
        }
        s[w++] = x;
    }
    n = w;
    w = 1;
    for (i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char a = s[i + 1];
            if (a == 's' || a == 'm') w--;
            else if (a != 't' && a != 'd' && i + 2 < n) {
                char b = s[i + 2];
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e')) w--;
            }
        }
        s[w++] = x;
    }
    return w;
}

size_t an_tok_decode(const an_tok *t, const int32_t *ids, size_t n, char *buf, size_t cap) {
    if (!t || (!ids && n)) {
        if (buf && cap) buf[0] = 0;
        return 0;
    }
    /* llama_detokenize(remove_special = false, unparse_special = false): the first token's
     * piece loses one leading space when the vocabulary adds a space prefix (even if that
     * first token is BOS, whose piece is empty: then nothing is stripped) */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char *dst = buf && cap && total < cap - 1 ? buf + total : NULL;
        size_t room = dst ? cap - 1 - total : 0;
        total += an_tok_piece(t, ids[i], i == 0 && t->add_space_prefix, dst, room);
    }
    if (t->clean_spaces && total) {
        if (buf && cap && total <= cap - 1) {
            total = clean_spaces(buf, total);
        } else {
            /* the result does not fit: clean a full copy to learn the needed size */
            char *tmp = malloc(total);
            if (tmp) {
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                    k += an_tok_piece(t, ids[i], i == 0 && t->add_space_prefix, tmp + k, total - k);
                total = clean_spaces(tmp, k);
                if (buf && cap) memcpy(buf, tmp, total < cap - 1 ? total : cap - 1);
                free(tmp);
            }
        }
    }
    if (buf && cap) buf[total < cap - 1 ? total : cap - 1] = 0;
    return total;
}

/* ---- streaming ---------------------------------------------------------------------------- */

/* Total length of a UTF-8 sequence from its lead byte (0: not a valid lead). */
static int seq_len(uint8_t c) {
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Is b acceptable as byte number k (1-based after the lead) of a sequence led by lead? The
 * second byte's range excludes overlongs, surrogates and values above U+10FFFF. */
static bool cont_ok(uint8_t lead, int k, uint8_t b) {
    uint8_t lo = 0x80, hi = 0xBF;
    if (k == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return b >= lo && b <= hi;
}

typedef struct {
    char *out;
    size_t cap, n;
} sink;

/* Whole characters only: if one does not fit, it is dropped rather than cut. */
static void put(sink *k, const void *p, size_t n) {
    if (k->out && k->n + n <= k->cap) {
        memcpy(k->out + k->n, p, n);
        k->n += n;
    }
}

static void stream_byte(uint8_t *pend, int *np, uint8_t b, sink *k) {
    for (;;) {
        if (*np == 0) {
            if (b < 0x80) {
                put(k, &b, 1);
            } else if (seq_len(b)) {
                pend[0] = b;
                *np = 1;
            } else {
                put(k, "\xef\xbf\xbd", 3);
            }
            return;
        }
        if (cont_ok(pend[0], *np, b)) {
            pend[(*np)++] = b;
            if (*np == seq_len(pend[0])) {
                put(k, pend, (size_t)*np);
                *np = 0;
            }
            return;
        }
        /* the held sequence cannot complete: one U+FFFD for it, then b starts afresh */
        put(k, "\xef\xbf\xbd", 3);
        *np = 0;
    }
}

size_t an_tok_stream_push(const an_tok *t, uint8_t pend[8], int *n_pend, int32_t id, char *out,
                          size_t cap) {
    if (!t || !pend || !n_pend) return 0;
    if (*n_pend < 0 || *n_pend > 3 || (*n_pend > 0 && !seq_len(pend[0]))) *n_pend = 0;
    if (id < 0 || id >= t->n_vocab) return 0;
    sink k = {out, cap, 0};
    size_t len;
    const uint8_t *p = (const uint8_t *)piece_of(t, id, &len);
    for (size_t i = 0; i < len; i++) stream_byte(pend, n_pend, p[i], &k);
    return k.n;
}

size_t an_tok_stream_flush(uint8_t pend[8], int *n_pend, char *out, size_t cap) {
    if (!pend || !n_pend) return 0;
    sink k = {out, cap, 0};
    if (*n_pend != 0) put(&k, "\xef\xbf\xbd", 3);
    *n_pend = 0;
    return k.n;
}
