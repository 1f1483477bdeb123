/* make_seeds.c — writes the fuzz seeds in tests/fuzz/seeds with the library's own writer.
 * Not part of any build; regenerate with:
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/fuzz/make_seeds.c src/core/status.c \
 *      src/core/types.c src/gguf/gguf.c src/gguf/gguf_write.c -lm -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz/seeds */
#include "gguf/gguf.h"

#include <stdio.h>
#include <string.h>

static int write_seed(an_gguf_writer *w, const char *dir, const char *name) {
    char path[512];
    an_err err;
    an_err_clear(&err);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    an_status st = an_gguf_writer_write(w, path, &err);
    an_gguf_writer_free(w);
    if (st != AN_OK) fprintf(stderr, "%s\n", err.msg);
    return st != AN_OK;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    int bad = 0;
    an_gguf_writer *w;
    an_err err;

    /* a model-like file: every metadata kind and several tensor types */
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_str(w, "general.architecture", "llama");
    an_gguf_writer_u32(w, "llama.block_count", 1);
    an_gguf_writer_f32(w, "llama.rope.freq_base", 10000.0f);
    an_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", true);
    int16_t i16 = -3;
    uint64_t u64 = 1u << 20;
    double f64 = 0.5;
    an_gguf_writer_scalar(w, "t.i16", AN_GGUF_I16, &i16);
    an_gguf_writer_scalar(w, "t.u64", AN_GGUF_U64, &u64);
    an_gguf_writer_scalar(w, "t.f64", AN_GGUF_F64, &f64);
    an_str toks[4] = {{"<s>", 3}, {"", 0}, {"\xc3\xa9", 2}, {"ab", 2}};
    an_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    float scores[4] = {0, -1, -2, -3};
    an_gguf_writer_arr(w, "tokenizer.ggml.scores", AN_GGUF_F32, scores, 4);
    static uint8_t data[1024];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 13);
    int64_t ne_f32[1] = {8}, ne_f16[2] = {8, 2}, ne_q8[2] = {32, 2}, ne_q4k[1] = {256};
    an_gguf_writer_tensor(w, "output_norm.weight", AN_TYPE_F32, 1, ne_f32, data, 32);
    an_gguf_writer_tensor(w, "token_embd.weight", AN_TYPE_F16, 2, ne_f16, data, 32);
    an_gguf_writer_tensor(w, "blk.0.attn_q.weight", AN_TYPE_Q8_0, 2, ne_q8, data, 68);
    an_gguf_writer_tensor(w, "blk.0.ffn_down.weight", AN_TYPE_Q4_K, 1, ne_q4k, data, 144);
    bad |= write_seed(w, dir, "model.gguf");

    /* vocabulary only: no tensors */
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_str(w, "tokenizer.ggml.model", "gpt2");
    an_str merges[2] = {{"a b", 3}, {"ab c", 4}};
    an_gguf_writer_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    int32_t types[3] = {1, 3, 1};
    an_gguf_writer_arr(w, "tokenizer.ggml.token_type", AN_GGUF_I32, types, 3);
    bad |= write_seed(w, dir, "vocab.gguf");

    /* alignment 64 with an empty tensor */
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_set_alignment(w, 64);
    int64_t ne_e[2] = {4, 0}, ne_b[1] = {3};
    an_gguf_writer_tensor(w, "empty", AN_TYPE_F32, 2, ne_e, NULL, 0);
    an_gguf_writer_tensor(w, "bf", AN_TYPE_BF16, 1, ne_b, data, 6);
    bad |= write_seed(w, dir, "align64.gguf");
    return bad;
}
