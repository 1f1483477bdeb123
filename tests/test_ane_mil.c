/* test_ane_mil.c — the MIL emitter's outputs: Blob Storage v2 files checked byte by byte
 * against offsets computed by hand from research/ane.md §4, the reader's refusals, golden MIL
 * texts (tests/golden/ane/, rewritten with ANELM_UPDATE_GOLDEN=1), the planning functions, and
 * the lossless Q8_0/Q4_0 mapping. */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/blob.h"
#include "t.h"

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static bool zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* Checks one blob's 64-byte metadata at meta: sentinel, dtype, size, absolute data offset,
 * padding bits, reserved zero. */
static void check_meta(const uint8_t *f, uint64_t meta, uint32_t dtype, uint64_t size, uint64_t pad) {
    const uint8_t *m = f + meta;
    T_CHECK(m[0] == 0xEF && m[1] == 0xBE && m[2] == 0xAD && m[3] == 0xDE, "sentinel bytes at %llu",
            (unsigned long long)meta);
    T_CHECK(rd32(m + 4) == dtype, "dtype %u, want %u", rd32(m + 4), dtype);
    T_CHECK(rd64(m + 8) == size, "size %llu, want %llu", (unsigned long long)rd64(m + 8), (unsigned long long)size);
    T_CHECK(rd64(m + 16) == meta + 64, "data offset %llu", (unsigned long long)rd64(m + 16));
    T_CHECK(rd64(m + 24) == pad, "padding bits %llu, want %llu", (unsigned long long)rd64(m + 24),
            (unsigned long long)pad);
    T_CHECK(zero(m + 32, 32), "reserved metadata at %llu", (unsigned long long)meta);
}

/* Three blobs: fp16 x3 (6 B), uint4 x5 (20 bits -> 3 B, 4 padding bits), uint6 x5 (30 bits ->
 * 4 B, 2 padding bits). Hand layout: header 0-63; blob 0 meta 64, data 128-133; zero pad to
 * 192; blob 1 meta 192, data 256-258; pad to 320; blob 2 meta 320, data 384-387; 388 bytes. */
static uint8_t *three_blob_file(size_t *len) {
    an_err err = {0};
    an_blob_writer *w = NULL;
    T_CHECK(an_blob_writer_create(&w, &err) == AN_OK, "%s", err.msg);
    if (!w) return NULL;
    const uint16_t h[3] = {0x3c00, 0x4000, 0xbc00};
    const uint8_t v4[5] = {1, 2, 3, 4, 5}, v6[5] = {1, 63, 2, 40, 7};
    uint8_t p4[3], p6[4];
    an_blob_pack_bits(v4, 5, 4, p4);
    an_blob_pack_bits(v6, 5, 6, p6);
    uint64_t off[3] = {0};
    T_CHECK(an_blob_append(w, AN_BLOB_FP16, h, 3, &off[0], &err) == AN_OK, "%s", err.msg);
    T_CHECK(an_blob_append(w, AN_BLOB_UINT4, p4, 5, &off[1], &err) == AN_OK, "%s", err.msg);
    T_CHECK(an_blob_append(w, AN_BLOB_UINT6, p6, 5, &off[2], &err) == AN_OK, "%s", err.msg);
    T_CHECK(off[0] == 64 && off[1] == 192 && off[2] == 320, "BLOBFILE offsets %llu %llu %llu",
            (unsigned long long)off[0], (unsigned long long)off[1], (unsigned long long)off[2]);
    const uint8_t *b = an_blob_bytes(w, len);
    uint8_t *copy = malloc(*len);
    memcpy(copy, b, *len);
    an_blob_writer_free(w);
    return copy;
}

static void blob_layout(void) {
    size_t len = 0;
    uint8_t *f = three_blob_file(&len);
    if (!f) return;
    T_CHECK(len == 388, "file is %zu bytes, want 388", len);
    if (len != 388) { free(f); return; }
    T_CHECK(rd32(f) == 3 && rd32(f + 4) == 2, "header count %u version %u", rd32(f), rd32(f + 4));
    T_CHECK(zero(f + 8, 56), "header reserved");
    check_meta(f, 64, 1, 6, 0);
    check_meta(f, 192, 11, 3, 4);
    check_meta(f, 320, 13, 4, 2);
    /* fp16 little-endian */
    const uint8_t fp[6] = {0x00, 0x3c, 0x00, 0x40, 0x00, 0xbc};
    T_CHECK(!memcmp(f + 128, fp, 6), "fp16 payload");
    T_CHECK(zero(f + 134, 192 - 134) && zero(f + 259, 320 - 259), "alignment padding is zero");
    /* uint4: idx[2j] | idx[2j+1] << 4; the last byte's high nibble is padding (zero) */
    T_CHECK(f[256] == 0x21 && f[257] == 0x43 && f[258] == 0x05, "uint4 bytes %02x %02x %02x", f[256], f[257], f[258]);
    /* uint6 {1, 63, 2, 40, 7}: bits 0-5 = 1, 6-11 = 63, 12-17 = 2, 18-23 = 40, 24-29 = 7:
     * byte0 = 1 | (63 & 3) << 6 = 0xC1; byte1 = 63 >> 2 | (2 & 15) << 4 = 0x2F;
     * byte2 = 2 >> 4 | 40 << 2 = 0xA0; byte3 = 7, top 2 bits padding */
    T_CHECK(f[384] == 0xC1 && f[385] == 0x2F && f[386] == 0xA0 && f[387] == 0x07, "uint6 bytes %02x %02x %02x %02x",
            f[384], f[385], f[386], f[387]);
    const uint8_t v6[5] = {1, 63, 2, 40, 7};
    for (int i = 0; i < 5; i++) T_CHECK(an_blob_get_bits(f + 384, (uint64_t)i, 6) == v6[i], "uint6 element %d", i);

    an_blob_file bf;
    an_err err = {0};
    T_CHECK(an_blob_parse(f, len, "t.bin", &bf, &err) == AN_OK, "%s", err.msg);
    T_CHECK(bf.count == 3, "count %u", bf.count);
    if (bf.count == 3) {
        T_CHECK(bf.blob[1].dtype == AN_BLOB_UINT4 && bf.blob[1].data_offset == 256 && bf.blob[1].size == 3 &&
                    bf.blob[1].padding_bits == 4 && bf.blob[1].data == f + 256, "entry 1");
        T_CHECK(an_blob_find(&bf, 320) == &bf.blob[2] && an_blob_find(&bf, 64) == &bf.blob[0], "find");
        T_CHECK(an_blob_find(&bf, 128) == NULL && an_blob_find(&bf, 384) == NULL, "find data offset -> NULL");
    }
    an_blob_file_free(&bf);
    free(f);
}

/* A payload that is already a multiple of 64 bytes leaves no padding: the next metadata
 * follows the data directly (the StorageFormat.hpp example: metadata 64/data 128, then 256/320). */
static void blob_exact_multiple(void) {
    an_err err = {0};
    an_blob_writer *w = NULL;
    T_CHECK(an_blob_writer_create(&w, &err) == AN_OK, "%s", err.msg);
    if (!w) return;
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = (uint16_t)i;
    uint64_t o0 = 0, o1 = 0;
    an_blob_append(w, AN_BLOB_FP16, h, 64, &o0, &err);
    an_blob_append(w, AN_BLOB_INT8, h, 5, &o1, &err);
    size_t len;
    const uint8_t *f = an_blob_bytes(w, &len);
    T_CHECK(o0 == 64 && o1 == 256 && len == 325, "offsets %llu %llu len %zu", (unsigned long long)o0,
            (unsigned long long)o1, len);
    check_meta(f, 256, 4, 5, 0);
    an_blob_writer_free(w);
}

/* Each malformation is refused with a message that names the file and says what is wrong. */
static void expect_reject(const uint8_t *f, size_t len, const char *what, const char *needle) {
    an_blob_file bf;
    an_err err = {0};
    an_status s = an_blob_parse(f, len, "w.bin", &bf, &err);
    T_CHECK(s == AN_E_FORMAT, "%s: accepted (status %d)", what, (int)s);
    T_CHECK(strstr(err.msg, "w.bin") && strstr(err.msg, needle), "%s: message '%s' lacks '%s'", what, err.msg, needle);
    T_CHECK(bf.blob == NULL && bf.count == 0, "%s: result not cleared", what);
    t_note("%s -> %s", what, err.msg);
}

static void blob_reject(void) {
    size_t len = 0;
    uint8_t *good = three_blob_file(&len);
    if (!good || len != 388) { free(good); return; }
    uint8_t *f = malloc(len + 64);
#define FRESH() memcpy(f, good, len)
    FRESH(); f[4] = 1;
    expect_reject(f, len, "version 1", "version 1");
    FRESH(); f[192] = 0xEE;
    expect_reject(f, len, "bad sentinel", "sentinel");
    FRESH(); wr64(f + 320 + 16, 4096);
    expect_reject(f, len, "offset past the end", "outside the file");
    FRESH(); wr64(f + 192 + 8, 1000);
    expect_reject(f, len, "size past the end", "outside the file");
    FRESH(); wr64(f + 192 + 16, 260);
    expect_reject(f, len, "misaligned data", "not 64-byte aligned");
    FRESH(); wr64(f + 192 + 16, 128);
    expect_reject(f, len, "data overlapping an earlier blob", "overlaps");
    FRESH(); wr64(f + 192 + 16, 192);
    expect_reject(f, len, "data overlapping its metadata", "overlaps its own metadata");
    FRESH();
    expect_reject(f, 386, "truncated data", "truncated");
    expect_reject(f, 340, "truncated metadata", "truncated");
    expect_reject(f, 40, "truncated header", "truncated");
    FRESH(); f[0] = 200;
    expect_reject(f, len, "count beyond the file", "count");
    FRESH(); f[0] = 2;
    expect_reject(f, len, "count too small", "after the last");
    FRESH(); f[68] = 99;
    expect_reject(f, len, "unknown dtype", "dtype 99");
    FRESH(); f[192 + 24] = 9;
    expect_reject(f, len, "padding bits too large", "padding_size_in_bits");
    FRESH(); f[64 + 24] = 1;
    expect_reject(f, len, "padding bits on fp16", "padding_size_in_bits");
    FRESH(); f[64 + 8] = 5;
    expect_reject(f, len, "odd fp16 size", "whole number");
    FRESH(); f[20] = 1;
    expect_reject(f, len, "reserved header", "reserved");
    FRESH(); f[192 + 40] = 1;
    expect_reject(f, len, "reserved metadata", "reserved");
    FRESH(); f[150] = 1;
    expect_reject(f, len, "garbage in padding", "padding");
    FRESH(); memset(f + len, 0, 64);
    expect_reject(f, len + 64, "64 extra bytes", "after the last");
#undef FRESH
    /* zero padding up to the next boundary after the last blob is fine */
    memcpy(f, good, len);
    memset(f + len, 0, 60);
    an_blob_file bf;
    an_err err = {0};
    T_CHECK(an_blob_parse(f, 448, "w.bin", &bf, &err) == AN_OK, "tail padding: %s", err.msg);
    an_blob_file_free(&bf);
    free(f);
    free(good);
}

const t_case t_suite_ane_mil[] = {
    {"blob_layout", blob_layout},
    {"blob_exact_multiple", blob_exact_multiple},
    {"blob_reject", blob_reject},
    {0},
};
