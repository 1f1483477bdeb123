/* ref.h — the reference MIL executor: parses the MIL subset that mil/mil.h documents and the
 * Blob Storage v2 weight file (blob.h), rejects anything malformed with a clear error (what,
 * and where: line and column of the text, byte offset of the blob), and runs functions with
 * ANE numerics: every op output is stored as fp16 (round to nearest even; values past the fp16
 * range become ±inf), conv accumulates in fp32 internally. constexpr_* ops are folded when the
 * program is loaded (as the ANE compiler does) into fp16 weights. Portable C. */
#ifndef AN_ANE_REF_H
#define AN_ANE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/status.h"

typedef struct an_mil_ref an_mil_ref;

/* Parses and loads a program; weights are read from blob (the file named
 * "@model_path/weights/weight.bin"; other paths are refused). Keeps no pointer into text or
 * blob after returning. */
an_status an_mil_ref_load(an_mil_ref **out, const char *text, size_t text_len, const uint8_t *blob,
                          size_t blob_len, an_err *err);
void an_mil_ref_free(an_mil_ref *r);

int an_mil_ref_n_fns(const an_mil_ref *r);
/* Index of the function called name, or -1. */
int an_mil_ref_find(const an_mil_ref *r, const char *name);

/* Runs function fn: in[i] holds input i as fp16 in its declared shape (row-major), out[j]
 * receives output j as fp16. pool may be NULL (one thread). */
an_status an_mil_ref_run(an_mil_ref *r, int fn, const uint16_t *const *in, uint16_t *const *out, an_pool *pool,
                         an_err *err);

#endif
