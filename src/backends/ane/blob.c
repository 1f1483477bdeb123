/* blob.c — MIL Blob Storage v2 files (layout in blob.h): a growing in-memory writer and a
 * strict reader. The reader walks the file the way the writer lays it out (header, then each
 * blob's metadata at the next 64-byte boundary after the previous blob's data) and refuses
 * anything else, so a file that parses here is one the ANE compiler reads the same way: the
 * published projects that got this format slightly wrong (unaligned data, count left at 1,
 * size or offset fields not set) compiled on one chip and failed on another (ane.md §4, §6.1). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/blob.h"

#define BLOB_ALIGN 64u
#define BLOB_HEADER 64u
#define BLOB_META 64u
#define BLOB_VERSION 2u
#define BLOB_SENTINEL 0xDEADBEEFu

static uint64_t align_up(uint64_t x) { return (x + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN; }

/* Little-endian field access, independent of the host's byte order. */
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int an_blob_dtype_bits(uint32_t dtype) {
    switch (dtype) {
    case AN_BLOB_FP16: case AN_BLOB_BF16: case AN_BLOB_INT16: case AN_BLOB_UINT16: return 16;
    case AN_BLOB_FP32: case AN_BLOB_INT32: case AN_BLOB_UINT32: return 32;
    case AN_BLOB_UINT8: case AN_BLOB_INT8: return 8;
    case AN_BLOB_INT4: case AN_BLOB_UINT4: return 4;
    case AN_BLOB_UINT1: return 1;
    case AN_BLOB_UINT2: return 2;
    case AN_BLOB_UINT3: return 3;
    case AN_BLOB_UINT6: return 6;
    default: return 0;
    }
}

const char *an_blob_dtype_name(uint32_t dtype) {
    switch (dtype) {
    case AN_BLOB_FP16: return "fp16";
    case AN_BLOB_FP32: return "fp32";
    case AN_BLOB_UINT8: return "uint8";
    case AN_BLOB_INT8: return "int8";
    case AN_BLOB_BF16: return "bf16";
    case AN_BLOB_INT16: return "int16";
    case AN_BLOB_UINT16: return "uint16";
    case AN_BLOB_INT4: return "int4";
    case AN_BLOB_UINT1: return "uint1";
    case AN_BLOB_UINT2: return "uint2";
    case AN_BLOB_UINT4: return "uint4";
    case AN_BLOB_UINT3: return "uint3";
    case AN_BLOB_UINT6: return "uint6";
    case AN_BLOB_INT32: return "int32";
    case AN_BLOB_UINT32: return "uint32";
    default: return NULL;
    }
}

void an_blob_pack_bits(const uint8_t *vals, uint64_t n, int bits, uint8_t *out) {
    memset(out, 0, (size_t)((n * (uint64_t)bits + 7) / 8));
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t bit = i * (uint64_t)bits;
        const unsigned v = (unsigned)(vals[i] & ((1u << bits) - 1u)) << (bit % 8); /* up to 15 bits */
        out[bit / 8] |= (uint8_t)v;
        if (v >> 8) out[bit / 8 + 1] |= (uint8_t)(v >> 8);
    }
}

/* ---- writing ---------------------------------------------------------------------------- */

struct an_blob_writer {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
};

static bool reserve(an_blob_writer *w, size_t need) {
    if (need <= w->cap) return true;
    size_t ncap = w->cap ? w->cap : 4096;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return false;
        ncap *= 2;
    }
    uint8_t *nb = realloc(w->buf, ncap);
    if (!nb) return false;
    w->buf = nb;
    w->cap = ncap;
    return true;
}

an_status an_blob_writer_create(an_blob_writer **out, an_err *err) {
    *out = NULL;
    an_blob_writer *w = calloc(1, sizeof *w);
    if (!w || !reserve(w, BLOB_HEADER)) {
        free(w);
        return an_err_set(err, AN_E_NOMEM, "blob writer: out of memory");
    }
    memset(w->buf, 0, BLOB_HEADER); /* count 0, reserved fields 0 */
    put_u32(w->buf + 4, BLOB_VERSION);
    w->len = BLOB_HEADER;
    *out = w;
    return AN_OK;
}

void an_blob_writer_free(an_blob_writer *w) {
    if (!w) return;
    free(w->buf);
    free(w);
}

an_status an_blob_append(an_blob_writer *w, an_blob_dtype dtype, const void *data, uint64_t n_elems,
                         uint64_t *meta_offset, an_err *err) {
    const int bits = an_blob_dtype_bits((uint32_t)dtype);
    if (!bits) return an_err_set(err, AN_E_USAGE, "blob writer: unknown mil dtype %u", (unsigned)dtype);
    if (n_elems > UINT64_MAX / 32) return an_err_set(err, AN_E_RANGE, "blob writer: %llu elements is too many",
                                                     (unsigned long long)n_elems);
    const uint64_t n_bits = n_elems * (uint64_t)bits;
    const uint64_t size = (n_bits + 7) / 8;
    const uint64_t pad_bits = size * 8 - n_bits;
    if (size && !data) return an_err_set(err, AN_E_USAGE, "blob writer: NULL data for %llu bytes",
                                         (unsigned long long)size);
    const uint64_t meta = align_up(w->len);
    if (meta > SIZE_MAX - BLOB_META - size || !reserve(w, (size_t)(meta + BLOB_META + size)))
        return an_err_set(err, AN_E_NOMEM, "blob writer: out of memory growing the file to %llu bytes",
                          (unsigned long long)(meta + BLOB_META + size));
    memset(w->buf + w->len, 0, (size_t)(meta - w->len)); /* zero padding to the boundary */
    uint8_t *m = w->buf + meta;
    memset(m, 0, BLOB_META);
    put_u32(m + 0, BLOB_SENTINEL);
    put_u32(m + 4, (uint32_t)dtype);
    put_u64(m + 8, size);
    put_u64(m + 16, meta + BLOB_META); /* absolute, not relative to the metadata */
    put_u64(m + 24, pad_bits);
    if (size) {
        memcpy(m + BLOB_META, data, (size_t)size);
        /* the unused high bits of the last byte are zero, so equal weights give equal files */
        if (pad_bits) m[BLOB_META + size - 1] &= (uint8_t)(0xFFu >> pad_bits);
    }
    w->len = (size_t)(meta + BLOB_META + size);
    w->count++;
    put_u32(w->buf, w->count);
    if (meta_offset) *meta_offset = meta;
    return AN_OK;
}

const uint8_t *an_blob_bytes(const an_blob_writer *w, size_t *size) {
    *size = w->len;
    return w->buf;
}

uint8_t *an_blob_writer_release(an_blob_writer *w, size_t *size) {
    uint8_t *b = w->buf;
    *size = w->len;
    free(w);
    return b;
}

/* ---- reading ---------------------------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

#define BAD(...) (an_blob_file_free(out), an_err_set(err, AN_E_FORMAT, __VA_ARGS__))

an_status an_blob_parse(const uint8_t *bytes, size_t size, const char *name, an_blob_file *out, an_err *err) {
    memset(out, 0, sizeof *out);
    if (!name) name = "weight blob";
    if (size < BLOB_HEADER)
        return BAD("%s: truncated: %zu bytes, shorter than the 64-byte file header", name, size);
    const uint32_t count = get_u32(bytes);
    const uint32_t version = get_u32(bytes + 4);
    if (version != BLOB_VERSION)
        return BAD("%s: byte 4: storage version %u, expected 2 (MIL Blob Storage v2)", name, (unsigned)version);
    if (!all_zero(bytes + 8, BLOB_HEADER - 8)) return BAD("%s: bytes 8-63: reserved header fields are not zero", name);
    /* every blob takes at least 64 bytes of metadata: bound count by the file before allocating */
    if (count > (size - BLOB_HEADER) / BLOB_META)
        return BAD("%s: byte 0: count %u blobs cannot fit in %zu bytes", name, (unsigned)count, size);
    out->blob = calloc(count ? count : 1, sizeof *out->blob);
    if (!out->blob) return an_err_set(err, AN_E_NOMEM, "%s: out of memory indexing %u blobs", name, (unsigned)count);
    out->count = count;

    uint64_t pos = BLOB_HEADER; /* end of the previous part */
    for (uint32_t i = 0; i < count; i++) {
        const uint64_t meta = align_up(pos);
        if (!all_zero(bytes + pos, (size_t)((meta < size ? meta : size) - pos)))
            return BAD("%s: byte %llu: non-zero bytes in the alignment padding before blob %u", name,
                       (unsigned long long)pos, (unsigned)i);
        if (meta + BLOB_META > size)
            return BAD("%s: truncated: blob %u of %u: metadata at byte %llu runs past the end of the file (%zu bytes)",
                       name, (unsigned)i, (unsigned)count, (unsigned long long)meta, size);
        const uint8_t *m = bytes + meta;
        const uint32_t sentinel = get_u32(m);
        if (sentinel != BLOB_SENTINEL)
            return BAD("%s: byte %llu: blob %u: bad sentinel 0x%08X, expected 0xDEADBEEF", name,
                       (unsigned long long)meta, (unsigned)i, (unsigned)sentinel);
        const uint32_t dtype = get_u32(m + 4);
        const int bits = an_blob_dtype_bits(dtype);
        if (!bits)
            return BAD("%s: byte %llu: blob %u: unknown mil dtype %u", name, (unsigned long long)(meta + 4),
                       (unsigned)i, (unsigned)dtype);
        const uint64_t dsize = get_u64(m + 8), doff = get_u64(m + 16), pad = get_u64(m + 24);
        if (!all_zero(m + 32, BLOB_META - 32))
            return BAD("%s: byte %llu: blob %u: reserved metadata fields are not zero", name,
                       (unsigned long long)(meta + 32), (unsigned)i);
        if (doff > size || dsize > size - doff)
            return BAD("%s: byte %llu: blob %u: data [%llu, +%llu) lies outside the file (%zu bytes)%s", name,
                       (unsigned long long)(meta + 16), (unsigned)i, (unsigned long long)doff,
                       (unsigned long long)dsize, size, doff <= size ? ": truncated" : "");
        if (doff % BLOB_ALIGN)
            return BAD("%s: byte %llu: blob %u: data offset %llu is not 64-byte aligned", name,
                       (unsigned long long)(meta + 16), (unsigned)i, (unsigned long long)doff);
        if (doff < meta + BLOB_META)
            return BAD("%s: byte %llu: blob %u: data offset %llu overlaps %s (metadata at %llu)", name,
                       (unsigned long long)(meta + 16), (unsigned)i, (unsigned long long)doff,
                       doff >= meta ? "its own metadata" : "the header or an earlier blob", (unsigned long long)meta);
        if (!all_zero(bytes + meta + BLOB_META, (size_t)(doff - meta - BLOB_META)))
            return BAD("%s: byte %llu: blob %u: non-zero bytes between metadata and data", name,
                       (unsigned long long)(meta + BLOB_META), (unsigned)i);
        /* sizes: whole elements for byte types; sub-byte streams leave fewer than 8 unused bits */
        if (bits >= 8) {
            if (pad) return BAD("%s: byte %llu: blob %u: padding_size_in_bits %llu for the whole-byte type %s", name,
                                (unsigned long long)(meta + 24), (unsigned)i, (unsigned long long)pad,
                                an_blob_dtype_name(dtype));
            if (dsize % (uint64_t)(bits / 8))
                return BAD("%s: byte %llu: blob %u: %llu bytes is not a whole number of %s elements", name,
                           (unsigned long long)(meta + 8), (unsigned)i, (unsigned long long)dsize,
                           an_blob_dtype_name(dtype));
        } else if (pad >= 8 || pad > dsize * 8 || (dsize * 8 - pad) % (uint64_t)bits) {
            return BAD("%s: byte %llu: blob %u: padding_size_in_bits %llu does not fit %llu bytes of %s", name,
                       (unsigned long long)(meta + 24), (unsigned)i, (unsigned long long)pad,
                       (unsigned long long)dsize, an_blob_dtype_name(dtype));
        }
        an_blob_entry *e = &out->blob[i];
        e->dtype = dtype;
        e->meta_offset = meta;
        e->data_offset = doff;
        e->size = dsize;
        e->padding_bits = pad;
        e->data = bytes + doff;
        pos = doff + dsize;
    }
    /* after the last blob only zero padding up to the next boundary is allowed */
    if (size > align_up(pos) || !all_zero(bytes + pos, size - (size_t)pos))
        return BAD("%s: byte %llu: %llu bytes after the last of %u blobs (count too small?)", name,
                   (unsigned long long)pos, (unsigned long long)(size - pos), (unsigned)count);
    return AN_OK;
}

#undef BAD

void an_blob_file_free(an_blob_file *f) {
    if (!f) return;
    free(f->blob);
    f->blob = NULL;
    f->count = 0;
}

const an_blob_entry *an_blob_find(const an_blob_file *f, uint64_t meta_offset) {
    size_t lo = 0, hi = f->count; /* entries are in file order, so sorted by offset */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->blob[mid].meta_offset < meta_offset) lo = mid + 1;
        else hi = mid;
    }
    return lo < f->count && f->blob[lo].meta_offset == meta_offset ? &f->blob[lo] : NULL;
}
