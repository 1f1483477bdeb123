/* fuzz_gguf.c — libFuzzer target for the GGUF reader (`make fuzz`).
 * Any input must either be rejected with a message or open into a handle whose every view is
 * inside the input: the walk below touches each of them so ASan catches any that is not. */
#include "gguf/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t g_sink; /* keeps the reads from being optimized away */

static void touch(const void *p, uint64_t n) {
    if (n == 0) return;
    const uint8_t *b = p;
    g_sink += b[0] + b[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exactly sized copy, so a read one past the end is an ASan report */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    an_gguf *g = NULL;
    an_err err;
    an_err_clear(&err);
    an_status st = an_gguf_open_mem(&g, copy, size, "fuzz", &err);
    if (st != AN_OK) {
        /* a failure must always say something */
        if (g || err.code != st || err.msg[0] == 0) abort();
        free(copy);
        return 0;
    }
    const uint8_t *end = copy + size;
    for (int64_t i = 0; i < an_gguf_n_kv(g); i++) {
        const an_gguf_kv *kv = an_gguf_kv_at(g, i);
        touch(kv->key.p, kv->key.n);
        /* lookup by name must find every key that a C string can spell */
        char key[256];
        if (kv->key.n < sizeof key && !memchr(kv->key.p, 0, kv->key.n)) {
            memcpy(key, kv->key.p, kv->key.n);
            key[kv->key.n] = 0;
            if (an_gguf_find(g, key) != kv) abort();
        }
        if (kv->type == AN_GGUF_STR) touch(kv->v.s.p, kv->v.s.n);
        if (kv->type != AN_GGUF_ARR) continue;
        if (kv->arr_type == AN_GGUF_STR) {
            for (uint64_t k = 0; k < kv->arr_n; k++) touch(kv->arr_str[k].p, kv->arr_str[k].n);
        } else if (kv->arr_n > 0) {
            g_sink += (uint64_t)an_gguf_arr_i64(kv, 0) + (uint64_t)an_gguf_arr_i64(kv, kv->arr_n - 1);
            double f = an_gguf_arr_f64(kv, kv->arr_n - 1);
            g_sink += f == f && f > -1e18 && f < 1e18 ? (uint64_t)(int64_t)f : 0; /* defined conversions only */
        }
    }
    uint32_t u;
    int64_t i64;
    float f;
    bool b, found;
    an_str s;
    an_gguf_get_u32(g, "general.alignment", &u, &found, NULL);
    an_gguf_get_i64(g, "general.file_type", &i64, &found, NULL);
    an_gguf_get_f32(g, "llama.rope.freq_base", &f, &found, NULL);
    an_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &found, NULL);
    an_gguf_get_str(g, "general.architecture", &s, &found, NULL);
    for (int64_t i = 0; i < an_gguf_n_tensors(g); i++) {
        const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
        if (an_gguf_tensor_find(g, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (p < copy || p > end || t->nbytes > (uint64_t)(end - p)) abort();
        if (t->off % an_gguf_alignment(g) != 0) abort();
        touch(p, t->nbytes);
    }
    an_gguf_free(g);
    free(copy);
    return 0;
}
