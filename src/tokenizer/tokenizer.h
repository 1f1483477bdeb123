/* tokenizer.h — SentencePiece ("llama") and byte-level BPE ("gpt2") tokenizers built from a
 * GGUF vocabulary (tokenizer.ggml.*), matching llama.cpp's ids exactly. */
#ifndef AN_TOKENIZER_H
#define AN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/status.h"
#include "gguf/gguf.h"

typedef struct an_tok an_tok;

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { AN_TOK_UNDEFINED = 0, AN_TOK_NORMAL = 1, AN_TOK_UNKNOWN = 2, AN_TOK_CONTROL = 3,
       AN_TOK_USER_DEFINED = 4, AN_TOK_UNUSED = 5, AN_TOK_BYTE = 6 };

/* Builds the tokenizer from g's metadata; errors name the offending key. The an_tok keeps
 * its own copies of what it needs (it does not reference g after return). */
an_status an_tok_create(an_tok **out, const an_gguf *g, an_err *err);
void an_tok_free(an_tok *t);

int32_t an_tok_n_vocab(const an_tok *t);
int32_t an_tok_bos(const an_tok *t);  /* -1 if none */
int32_t an_tok_eos(const an_tok *t);  /* -1 if none */
bool an_tok_add_bos(const an_tok *t);
bool an_tok_is_eog(const an_tok *t, int32_t id);
int an_tok_type(const an_tok *t, int32_t id); /* AN_TOK_* */
const char *an_tok_text(const an_tok *t, int32_t id, size_t *len); /* raw vocab string */

/* See an_tokenize in include/anelm.h for the contract. */
an_status an_tok_encode(const an_tok *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, int32_t *out, size_t cap, size_t *n_out, an_err *err);

/* Bytes of one token's text (llama.cpp token_to_piece with special = false: control tokens
 * give nothing, byte tokens their byte, SPM '▁' -> ' ', BPE byte-unicode -> bytes); lstrip
 * removes up to that many leading spaces. Writes at most cap bytes; returns the length. */
size_t an_tok_piece(const an_tok *t, int32_t id, bool lstrip, char *buf, size_t cap);

/* See an_detokenize / an_detok_push in include/anelm.h. */
size_t an_tok_decode(const an_tok *t, const int32_t *ids, size_t n, char *buf, size_t cap);
size_t an_tok_stream_push(const an_tok *t, uint8_t pend[8], int *n_pend, int32_t id, char *out,
                          size_t cap);
size_t an_tok_stream_flush(uint8_t pend[8], int *n_pend, char *out, size_t cap);

#endif
