/* fuzz_mil.c — libFuzzer target for the reference MIL executor (`make fuzz-mil`).
 * Input: MIL text, then optionally a NUL byte and a weight file. Without the NUL the text is
 * paired with a fixed valid weight file (blobs at metadata offsets 64: fp16 [4, 8], 192: int8
 * [4, 8], 320: fp16 [4, 1], 448: uint4 [4, 8], 576: fp16 [1, 16]), so mutations of the text
 * alone still reach BLOBFILE consts, constexpr folding and conv. Every input must either be
 * refused with a message or load; a program that loads (and whose buffers are small) is run on
 * every function, with inputs read from an exactly sized copy so ASan sees any overread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/blob.h"
#include "backends/ane/ref/ref.h"

static uint8_t *g_blob;
static size_t g_blob_len;

static void make_blob(void) {
    an_blob_writer *w;
    an_err err;
    an_err_clear(&err);
    if (an_blob_writer_create(&w, &err) != AN_OK) abort();
    uint16_t h[32];
    uint8_t q[32];
    for (int i = 0; i < 32; i++) {
        h[i] = (uint16_t)(0x3000 + 37 * i); /* small positive fp16 values */
        q[i] = (uint8_t)(i * 7);
    }
    uint64_t off;
    an_blob_append(w, AN_BLOB_FP16, h, 32, &off, &err);
    an_blob_append(w, AN_BLOB_INT8, q, 32, &off, &err);
    an_blob_append(w, AN_BLOB_FP16, h, 4, &off, &err);
    an_blob_append(w, AN_BLOB_UINT4, q, 32, &off, &err); /* 16 bytes of packed nibbles */
    an_blob_append(w, AN_BLOB_FP16, h, 16, &off, &err);
    if (err.code != AN_OK) abort();
    size_t n;
    const uint8_t *b = an_blob_bytes(w, &n);
    g_blob = malloc(n);
    memcpy(g_blob, b, n);
    g_blob_len = n;
    an_blob_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_blob) make_blob();
    const uint8_t *nul = memchr(data, 0, size);
    const size_t text_len = nul ? (size_t)(nul - data) : size;
    /* exactly sized copies: a read one past either end is an ASan report */
    char *text = malloc(text_len ? text_len : 1);
    if (!text) return 0;
    memcpy(text, data, text_len);
    uint8_t *blob;
    size_t blob_len;
    if (nul) {
        blob_len = size - text_len - 1;
        blob = malloc(blob_len ? blob_len : 1);
        if (!blob) {
            free(text);
            return 0;
        }
        memcpy(blob, nul + 1, blob_len);
    } else {
        blob_len = g_blob_len;
        blob = malloc(blob_len);
        if (!blob) {
            free(text);
            return 0;
        }
        memcpy(blob, g_blob, blob_len);
    }
    an_mil_ref *r = NULL;
    an_err err;
    an_err_clear(&err);
    an_status st = an_mil_ref_load(&r, text, text_len, blob, blob_len, &err);
    /* the program must not keep pointers into its inputs: free them before running */
    free(text);
    free(blob);
    if (st != AN_OK) {
        if (r || err.code != st || err.msg[0] == 0) abort();
        return 0;
    }
    if (an_mil_ref_n_fns(r) < 1) abort();
    if (an_mil_ref_work_bytes(r) <= (8u << 20)) {
        for (int f = 0; f < an_mil_ref_n_fns(r); f++) {
            const int ni = an_mil_ref_n_inputs(r, f), no = an_mil_ref_n_outputs(r, f);
            uint16_t **in = calloc((size_t)ni + 1, sizeof *in), **out = calloc((size_t)no + 1, sizeof *out);
            bool ok = in && out;
            int64_t total = 0;
            for (int i = 0; i < ni; i++) total += an_mil_ref_input(r, f, i)->n;
            for (int j = 0; j < no; j++) total += an_mil_ref_output(r, f, j)->n;
            ok = ok && total <= (4 << 20);
            for (int i = 0; ok && i < ni; i++) {
                const int64_t n = an_mil_ref_input(r, f, i)->n;
                in[i] = malloc((size_t)n * 2);
                if (!in[i]) ok = false;
                for (int64_t k = 0; ok && k < n; k++) in[i][k] = (uint16_t)(0x3c00 ^ (k * 2654435761u >> 19)); /* varied, some inf/NaN */
            }
            for (int j = 0; ok && j < no; j++) {
                out[j] = malloc((size_t)an_mil_ref_output(r, f, j)->n * 2);
                if (!out[j]) ok = false;
            }
            if (ok) {
                an_err_clear(&err);
                if (an_mil_ref_run(r, f, (const uint16_t *const *)in, out, NULL, &err) != AN_OK && !err.msg[0]) abort();
            }
            for (int i = 0; in && i < ni; i++) free(in[i]);
            for (int j = 0; out && j < no; j++) free(out[j]);
            free(in);
            free(out);
        }
    }
    an_mil_ref_free(r);
    return 0;
}
