/* blob.h — MIL Blob Storage v2 weight files (research/ane.md §4), written by the MIL emitter
 * and read by the reference executor and the macOS bridge. Little-endian throughout:
 *
 *   file header (64 B):  u32 count, u32 version = 2, 7 x u64 reserved = 0
 *   per blob, each part starting on a 64-byte boundary (zero padding between):
 *     metadata (64 B):   u32 sentinel 0xDEADBEEF, u32 mil dtype, u64 size in bytes,
 *                        u64 absolute data offset (= metadata offset + 64),
 *                        u64 padding_size_in_bits (unused trailing bits of sub-byte data),
 *                        4 x u64 reserved = 0
 *     data:              size bytes; sub-byte types are an LSB-first bit stream
 *
 * A MIL `BLOBFILE(path=..., offset=uint64(X))` names the *metadata* offset X, not the data. */
#ifndef AN_ANE_BLOB_H
#define AN_ANE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* mil_dtype codes (coremltools BlobDataType.hpp) */
typedef enum an_blob_dtype {
    AN_BLOB_FP16 = 1, AN_BLOB_FP32 = 2, AN_BLOB_UINT8 = 3, AN_BLOB_INT8 = 4, AN_BLOB_BF16 = 5,
    AN_BLOB_INT16 = 6, AN_BLOB_UINT16 = 7, AN_BLOB_INT4 = 8, AN_BLOB_UINT1 = 9, AN_BLOB_UINT2 = 10,
    AN_BLOB_UINT4 = 11, AN_BLOB_UINT3 = 12, AN_BLOB_UINT6 = 13, AN_BLOB_INT32 = 14, AN_BLOB_UINT32 = 15,
} an_blob_dtype;

/* Bits per element of a dtype (16 for FP16, 6 for UINT6, ...); 0 for unknown codes. */
int an_blob_dtype_bits(uint32_t dtype);
/* MIL spelling of a dtype ("fp16", "uint6", ...); NULL for unknown codes. */
const char *an_blob_dtype_name(uint32_t dtype);

/* Sub-byte streams (LSB-first: element i in bits [bits*i, bits*i + bits) of the byte array, so
 * it may straddle two bytes for 3 and 6 bits). an_blob_pack_bits writes n values (each below
 * 1 << bits, 1 <= bits <= 8) into ceil(n*bits/8) bytes of out, unused trailing bits zero;
 * an_blob_get_bits reads element i back. */
void an_blob_pack_bits(const uint8_t *vals, uint64_t n, int bits, uint8_t *out);
static inline unsigned an_blob_get_bits(const uint8_t *data, uint64_t i, int bits) {
    const uint64_t bit = i * (uint64_t)bits;
    const unsigned lo = data[bit / 8], hi = (bit % 8) + (unsigned)bits > 8 ? data[bit / 8 + 1] : 0u;
    return ((lo | hi << 8) >> (bit % 8)) & ((1u << bits) - 1u);
}

/* ---- writing ---------------------------------------------------------------------------- */
typedef struct an_blob_writer an_blob_writer;
an_status an_blob_writer_create(an_blob_writer **out, an_err *err);
void an_blob_writer_free(an_blob_writer *w);
/* Appends n_elems elements of dtype from data (sub-byte types already packed LSB-first, i.e.
 * ceil(n_elems * bits / 8) bytes); *meta_offset gets the offset to put in BLOBFILE(...). */
an_status an_blob_append(an_blob_writer *w, an_blob_dtype dtype, const void *data, uint64_t n_elems,
                         uint64_t *meta_offset, an_err *err);
/* The file so far (header with the final count included); valid until the next append/free. */
const uint8_t *an_blob_bytes(const an_blob_writer *w, size_t *size);
/* Ends writing without a copy: returns the file (the caller frees it with free()) and frees w.
 * Weight files reach gigabytes, so handing the buffer over beats copying it. */
uint8_t *an_blob_writer_release(an_blob_writer *w, size_t *size);

/* ---- reading ---------------------------------------------------------------------------- */
typedef struct an_blob_entry {
    uint32_t dtype;
    uint64_t meta_offset, data_offset, size, padding_bits;
    const uint8_t *data; /* points into the file bytes given to an_blob_parse */
} an_blob_entry;

typedef struct an_blob_file {
    uint32_t count;
    an_blob_entry *blob; /* count entries, in file order */
} an_blob_file;

/* Validates and indexes a whole file (header, version, every sentinel, dtype, offsets inside
 * the file and 64-aligned, no overlaps, zero reserved fields); errors name `name` and the byte
 * offset. The result borrows bytes; free with an_blob_file_free. */
an_status an_blob_parse(const uint8_t *bytes, size_t size, const char *name, an_blob_file *out, an_err *err);
void an_blob_file_free(an_blob_file *f);
/* The blob whose metadata is at meta_offset, or NULL. */
const an_blob_entry *an_blob_find(const an_blob_file *f, uint64_t meta_offset);

#endif
