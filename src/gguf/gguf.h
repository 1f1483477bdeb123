/* gguf.h — bounds-checked GGUF reader (v2, v3) over a read-only mmap, and a writer for tools.
 *
 * Reader contract: an_gguf_open maps the file PROT_READ and validates everything before
 * returning: header, every metadata record (types, string and array lengths), the tensor
 * directory (names unique and < 64 bytes, n_dims <= 4, dims >= 0, known type ids, ne[0] a
 * multiple of the block size, no size overflow), general.alignment (UINT32, power of two),
 * and every tensor's data range (aligned, inside the file, not overlapping another tensor).
 * All arithmetic on file-supplied numbers is overflow-checked. Any error names the byte offset
 * and the key or tensor concerned. Nothing in the file is ever modified.
 * Views (an_str, tensor data) point into the map and live as long as the an_gguf. */
#ifndef AN_GGUF_H
#define AN_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/status.h"
#include "core/types.h"

typedef enum an_gguf_vtype {
    AN_GGUF_U8 = 0, AN_GGUF_I8 = 1, AN_GGUF_U16 = 2, AN_GGUF_I16 = 3, AN_GGUF_U32 = 4,
    AN_GGUF_I32 = 5, AN_GGUF_F32 = 6, AN_GGUF_BOOL = 7, AN_GGUF_STR = 8, AN_GGUF_ARR = 9,
    AN_GGUF_U64 = 10, AN_GGUF_I64 = 11, AN_GGUF_F64 = 12, AN_GGUF_VTYPE_COUNT = 13,
} an_gguf_vtype;

const char *an_gguf_vtype_name(uint32_t t); /* "UINT32", "ARRAY", ... or "unknown" */

/* A byte string inside the map (not NUL-terminated). */
typedef struct an_str {
    const char *p;
    uint64_t n;
} an_str;

typedef struct an_gguf_kv {
    an_str key;
    uint32_t type;      /* an_gguf_vtype */
    uint64_t off;       /* file offset of the record (its key) */
    /* scalar value (type != ARR): integers in u/i (both filled, sign- or zero-extended),
     * floats in f (F32 widened), bools in u (0/1), strings in s */
    union { uint64_t u; int64_t i; double f; an_str s; } v;
    /* arrays (type == ARR) */
    uint32_t arr_type;  /* element type (never ARR: nested arrays are rejected) */
    uint64_t arr_n;     /* element count */
    const uint8_t *arr; /* fixed-size elements: the first element in the map (little-endian) */
    an_str *arr_str;    /* string elements: a table of arr_n views (owned by the an_gguf) */
} an_gguf_kv;

typedef struct an_gguf_tensor {
    char name[64];   /* NUL-terminated */
    uint32_t type;   /* an_type; known to an_type_traits_get (not necessarily computable) */
    uint32_t n_dims; /* 1..4 */
    int64_t ne[4];   /* ne[0] fastest; unused dims are 1 */
    uint64_t off;    /* absolute file offset of the data */
    uint64_t nbytes;
    const void *data; /* into the map */
} an_gguf_tensor;

typedef struct an_gguf an_gguf;

/* Open and fully validate a file. */
an_status an_gguf_open(an_gguf **out, const char *path, an_err *err);
/* Same, over caller memory (fuzzing, tests); label names it in errors. The memory must
 * outlive the an_gguf. */
an_status an_gguf_open_mem(an_gguf **out, const void *data, size_t size, const char *label,
                           an_err *err);
void an_gguf_free(an_gguf *g);

const char *an_gguf_path(const an_gguf *g);
uint32_t an_gguf_version(const an_gguf *g);
uint64_t an_gguf_size(const an_gguf *g);        /* file size */
uint64_t an_gguf_alignment(const an_gguf *g);
uint64_t an_gguf_data_offset(const an_gguf *g); /* absolute start of the tensor data section */

int64_t an_gguf_n_kv(const an_gguf *g);
const an_gguf_kv *an_gguf_kv_at(const an_gguf *g, int64_t i);
const an_gguf_kv *an_gguf_find(const an_gguf *g, const char *key); /* NULL if absent */

int64_t an_gguf_n_tensors(const an_gguf *g);
const an_gguf_tensor *an_gguf_tensor_at(const an_gguf *g, int64_t i);
const an_gguf_tensor *an_gguf_tensor_find(const an_gguf *g, const char *name);

/* Typed getters. found == NULL means the key is required: absence is an AN_E_FORMAT error
 * ("missing key K"). A present key of the wrong type is always an AN_E_FORMAT error naming the
 * key, its offset, its type and the expected type. Integer getters accept any integer type
 * whose value fits; float getters accept F32/F64 (and integers). */
an_status an_gguf_get_u32(const an_gguf *g, const char *key, uint32_t *out, bool *found, an_err *err);
an_status an_gguf_get_i64(const an_gguf *g, const char *key, int64_t *out, bool *found, an_err *err);
an_status an_gguf_get_f32(const an_gguf *g, const char *key, float *out, bool *found, an_err *err);
an_status an_gguf_get_bool(const an_gguf *g, const char *key, bool *out, bool *found, an_err *err);
an_status an_gguf_get_str(const an_gguf *g, const char *key, an_str *out, bool *found, an_err *err);
/* An array; elem_type: required element type, or AN_GGUF_VTYPE_COUNT for any. */
an_status an_gguf_get_arr(const an_gguf *g, const char *key, uint32_t elem_type,
                          const an_gguf_kv **out, bool *found, an_err *err);

/* Element i of a fixed-size numeric array as double / int64 (little-endian decode). */
double an_gguf_arr_f64(const an_gguf_kv *kv, uint64_t i);
int64_t an_gguf_arr_i64(const an_gguf_kv *kv, uint64_t i);

/* True if s equals the NUL-terminated c. */
bool an_str_eq(an_str s, const char *c);

/* ---- writer ------------------------------------------------------------------------------ */

/* Builds a GGUF v3 file in memory order: KVs, tensor infos, aligned data. The writer copies
 * keys and metadata values; tensor data pointers must stay valid until an_gguf_writer_write.
 * Output goes to a temporary file in the same directory, is fsynced, then renamed over path,
 * so a failed write never leaves a half file and never touches the input. */
typedef struct an_gguf_writer an_gguf_writer;

an_status an_gguf_writer_create(an_gguf_writer **out, an_err *err);
void an_gguf_writer_free(an_gguf_writer *w);
void an_gguf_writer_set_alignment(an_gguf_writer *w, uint32_t alignment); /* default 32 */
/* Metadata (a repeated key replaces the earlier value). Errors are sticky and reported by
 * an_gguf_writer_write. */
void an_gguf_writer_u32(an_gguf_writer *w, const char *key, uint32_t v);
void an_gguf_writer_i32(an_gguf_writer *w, const char *key, int32_t v);
void an_gguf_writer_f32(an_gguf_writer *w, const char *key, float v);
void an_gguf_writer_bool(an_gguf_writer *w, const char *key, bool v);
void an_gguf_writer_str(an_gguf_writer *w, const char *key, const char *v);
/* Any fixed-size scalar type (not STR/ARR): v points to a value of the matching C type
 * (uint8_t, int16_t, uint64_t, double, bool, ...) in host byte order. */
void an_gguf_writer_scalar(an_gguf_writer *w, const char *key, uint32_t type, const void *v);
/* Array of fixed-size elements (elem_type not STR/ARR), n elements at data (little-endian). */
void an_gguf_writer_arr(an_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                        uint64_t n);
void an_gguf_writer_arr_str(an_gguf_writer *w, const char *key, const an_str *v, uint64_t n);
/* Copy a KV record (any type) from a reader, e.g. to carry metadata over in quantize. */
void an_gguf_writer_kv_copy(an_gguf_writer *w, const an_gguf_kv *kv);
/* Tensor of the given type and dims (ne[0] fastest); nbytes must match the type and dims. */
void an_gguf_writer_tensor(an_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes);
an_status an_gguf_writer_write(an_gguf_writer *w, const char *path, an_err *err);

#endif
