/* test_ane_mil.c — the MIL emitter's outputs: Blob Storage v2 files checked byte by byte
 * against offsets computed by hand from research/ane.md §4, the reader's refusals, golden MIL
 * texts (tests/golden/ane/, rewritten with ANELM_UPDATE_GOLDEN=1), the planning functions, and
 * the lossless Q8_0/Q4_0 mapping. */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/blob.h"
#include "backends/ane/mil/mil.h"
#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"
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

/* ---- planning ---------------------------------------------------------------------------- */

static void plan_bucket(void) {
    T_CHECK(an_ane_bucket(1) == 32, "%d", an_ane_bucket(1));
    T_CHECK(an_ane_bucket(32) == 32, "%d", an_ane_bucket(32));
    T_CHECK(an_ane_bucket(33) == 64, "%d", an_ane_bucket(33));
    T_CHECK(an_ane_bucket(0) == 32 && an_ane_bucket(-5) == 32, "n < 1");
    T_CHECK(an_ane_bucket(512) == 512 && an_ane_bucket(513) == 544, "512/513");
    T_CHECK(an_ane_spatial_cap(AN_ANE_M1_M3) == 16384 && an_ane_spatial_cap(AN_ANE_M4_PLUS) == 65536, "caps");
}

static void plan_tile(void) {
    an_ane_tiling t = an_ane_tile(32000, 2048, 16384);
    T_CHECK(t.n_m == 2 && t.m_tile == 16000 && t.n_k == 1 && t.k_tile == 2048, "32000 @16384: %d x %lld, %d x %lld",
            t.n_m, (long long)t.m_tile, t.n_k, (long long)t.k_tile);
    t = an_ane_tile(32000, 2048, 65536);
    T_CHECK(t.n_m == 1 && t.m_tile == 32000, "32000 @65536: %d x %lld", t.n_m, (long long)t.m_tile);
    t = an_ane_tile(40000, 64, 16384);
    T_CHECK(t.n_m == 3 && t.m_tile == 13376, "40000: %d x %lld", t.n_m, (long long)t.m_tile);
    t = an_ane_tile(151936, 896, 65536);
    T_CHECK(t.n_m == 3, "qwen head @65536: %d", t.n_m);
    t = an_ane_tile(128256, 20000, 16384);
    T_CHECK(t.n_m == 8 && t.n_k == 2 && t.k_tile == 10048, "llama3 head: %d, k %d x %lld", t.n_m, t.n_k,
            (long long)t.k_tile);
    /* every extent: pieces within the cap, the fewest possible, all but the last equal and
     * multiples of 64, the last non-empty */
    const int64_t caps[2] = {16384, 65536};
    for (int c = 0; c < 2; c++)
        for (int64_t x = 1; x < 300000; x += 997) {
            t = an_ane_tile(x, 1, caps[c]);
            const int64_t last = x - (int64_t)(t.n_m - 1) * t.m_tile;
            T_CHECK(t.m_tile <= caps[c] && last > 0 && last <= t.m_tile, "x %lld cap %lld", (long long)x,
                    (long long)caps[c]);
            T_CHECK(t.n_m == (x + caps[c] - 1) / caps[c], "x %lld: %d tiles", (long long)x, t.n_m);
            T_CHECK(t.n_m == 1 || (t.m_tile & 63) == 0, "x %lld: tile %lld", (long long)x, (long long)t.m_tile);
        }
}

static void plan_banks(void) {
    an_err err = {0};
    enum { N = 300 };
    static uint64_t bytes[N];
    static int fns[N], bank[N];
    int nb = -1;
    /* 200 MB programs: five fit under 1 GiB, the sixth starts a new bank */
    for (int i = 0; i < 10; i++) bytes[i] = 200ull << 20, fns[i] = 2;
    T_CHECK(an_ane_bank_plan(bytes, fns, 10, AN_ANE_COMPILE_BUDGET, bank, &nb, &err) == AN_OK, "%s", err.msg);
    T_CHECK(nb == 2, "%d banks", nb);
    for (int i = 0; i < 10; i++) T_CHECK(bank[i] == i / 5, "item %d in bank %d", i, bank[i]);
    /* the function cap: 300 one-function programs -> 256 + 44 */
    for (int i = 0; i < N; i++) bytes[i] = 1 << 20, fns[i] = 1;
    T_CHECK(an_ane_bank_plan(bytes, fns, N, AN_ANE_COMPILE_BUDGET, bank, &nb, &err) == AN_OK, "%s", err.msg);
    T_CHECK(nb == 2 && bank[255] == 0 && bank[256] == 1 && bank[N - 1] == 1, "%d banks", nb);
    /* over budget: 300 programs of 600 MB need 300 compiles */
    for (int i = 0; i < N; i++) bytes[i] = 600ull << 20;
    an_err e2 = {0};
    T_CHECK(an_ane_bank_plan(bytes, fns, N, AN_ANE_COMPILE_BUDGET, bank, &nb, &e2) == AN_E_UNSUPPORTED, "accepted");
    T_CHECK(strstr(e2.msg, "300") && strstr(e2.msg, "budget"), "%s", e2.msg);
    t_note("%s", e2.msg);
    /* a tighter budget fails where the default passes */
    for (int i = 0; i < 10; i++) bytes[i] = 200ull << 20;
    an_err e3 = {0};
    T_CHECK(an_ane_bank_plan(bytes, fns, 10, 1, bank, &nb, &e3) == AN_E_UNSUPPORTED, "budget 1 accepted 2 banks");
    /* one program larger than a bank */
    bytes[3] = (1ull << 30) + 1;
    an_err e4 = {0};
    T_CHECK(an_ane_bank_plan(bytes, fns, 10, AN_ANE_COMPILE_BUDGET, bank, &nb, &e4) == AN_E_UNSUPPORTED, "huge item");
    T_CHECK(strstr(e4.msg, "program 3"), "%s", e4.msg);
    T_CHECK(an_ane_bank_plan(NULL, NULL, 0, 1, NULL, &nb, &err) == AN_OK && nb == 0, "no items");
}

/* ---- deterministic weights ---------------------------------------------------------------- */

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 20);
}
static float rndf(void) { return ((float)(rnd() % 20001) - 10000.0f) * 1e-4f; } /* [-1, 1] */

/* An owned weight: the an_mat plus the buffers it points at. */
typedef struct tw {
    an_mat m;
    void *data;
    uint16_t *lut, *rs;
} tw;

static tw make_w(uint32_t type, int64_t rows, int64_t cols, const char *name) {
    tw w = {0};
    const an_type_traits *tt = an_type_traits_get(type);
    w.m.type = type;
    w.m.rows = rows;
    w.m.cols = cols;
    w.m.name = name;
    w.m.row_bytes = an_row_bytes(tt, (uint64_t)cols);
    w.data = malloc(w.m.row_bytes * (uint64_t)rows);
    float *row = malloc((size_t)cols * sizeof *row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) row[k] = rndf() * 0.5f;
        an_quant_row_ref((an_type)type, row, (uint8_t *)w.data + w.m.row_bytes * (uint64_t)r, cols);
    }
    free(row);
    w.m.data = w.data;
    return w;
}

static tw make_lut(int bits, int64_t rows, int64_t cols, int group, bool scaled, const char *name) {
    tw w = {0};
    w.m.type = bits == 4 ? AN_TYPE_LUT4 : bits == 6 ? AN_TYPE_LUT6 : AN_TYPE_LUT8;
    w.m.rows = rows;
    w.m.cols = cols;
    w.m.name = name;
    w.m.row_bytes = an_lut_row_bytes(bits, cols);
    w.data = malloc(w.m.row_bytes * (uint64_t)rows);
    uint8_t *idx = malloc((size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) idx[k] = (uint8_t)(rnd() & ((1u << bits) - 1));
        an_lut_pack_row(idx, cols, bits, (uint8_t *)w.data + w.m.row_bytes * (uint64_t)r);
    }
    free(idx);
    const int64_t ng = (rows + group - 1) / group, ent = 1 << bits;
    w.lut = malloc((size_t)(ng * ent) * 2);
    for (int64_t i = 0; i < ng * ent; i++) w.lut[i] = an_f32_to_f16(rndf());
    if (scaled) {
        w.rs = malloc((size_t)rows * 2);
        for (int64_t r = 0; r < rows; r++) w.rs[r] = an_f32_to_f16(0.5f + 0.5f * (rndf() + 1.0f));
    }
    w.m.data = w.data;
    w.m.lut = w.lut;
    w.m.lut_group = group;
    w.m.row_scale = w.rs;
    return w;
}

static void free_w(tw *w) {
    free(w->data);
    free(w->lut);
    free(w->rs);
}

/* ---- golden texts ------------------------------------------------------------------------- */

/* Compares text with tests/golden/ane/NAME.mil byte for byte, or rewrites the file when
 * ANELM_UPDATE_GOLDEN=1 (then review the diff by hand before committing it). */
static void golden(const char *name, const an_mil_program *p) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/ane/%s.mil", name);
    const char *up = getenv("ANELM_UPDATE_GOLDEN");
    if (up && !strcmp(up, "1")) {
        FILE *f = fopen(path, "wb");
        T_CHECK(f && fwrite(p->text, 1, p->text_len, f) == p->text_len, "writing %s", path);
        if (f) fclose(f);
        t_note("rewrote %s (%zu bytes)", path, p->text_len);
        return;
    }
    size_t len = 0;
    char *g = t_read_file(path, &len);
    if (!g) {
        T_FAIL("%s is missing (run from the repository root; ANELM_UPDATE_GOLDEN=1 writes it)", path);
        return;
    }
    if (len != p->text_len || memcmp(g, p->text, len)) {
        size_t i = 0, line = 1, col = 1;
        while (i < len && i < p->text_len && g[i] == p->text[i]) {
            if (g[i] == '\n') line++, col = 0;
            i++, col++;
        }
        T_FAIL("%s differs at line %zu column %zu (golden %zu bytes, emitted %zu)", path, line, col, len, p->text_len);
    }
    free(g);
}

/* Every weight file the emitter writes parses, and its count matches what the text names. */
static void check_blob(const an_mil_program *p, uint32_t want_count) {
    an_blob_file f;
    an_err err = {0};
    T_CHECK(an_blob_parse(p->blob, p->blob_len, "emitted", &f, &err) == AN_OK, "%s", err.msg);
    T_CHECK(f.count == want_count, "%u blobs, want %u", f.count, want_count);
    /* every BLOBFILE offset in the text names a blob */
    const char *s = p->text;
    while ((s = strstr(s, "offset = uint64(")) != NULL) {
        s += strlen("offset = uint64(");
        unsigned long long off = strtoull(s, NULL, 10);
        T_CHECK(an_blob_find(&f, off) != NULL, "text names offset %llu, no blob there", off);
    }
    an_blob_file_free(&f);
}

static bool emit1(const an_mil_fn *fns, int n, an_ane_family fam, an_mil_program *p) {
    an_err err = {0};
    an_status s = an_mil_emit(fns, n, fam, p, &err);
    T_CHECK(s == AN_OK, "emit: %s", err.msg);
    return s == AN_OK;
}

static void golden_linear(void) {
    tw w = make_w(AN_TYPE_F16, 96, 64, "blk.0.attn_output.weight");
    an_mil_fn fn = {AN_MIL_LINEAR, {&w.m}, 1, 32};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("linear_f16", &p);
        check_blob(&p, 1);
        /* one fp16 blob: metadata at 64, data at 128, 96*64*2 bytes, the rows verbatim */
        T_CHECK(p.blob_len == 128 + 96 * 64 * 2, "blob %zu bytes", p.blob_len);
        T_CHECK(rd32(p.blob) == 1 && rd32(p.blob + 4) == 2, "header");
        check_meta(p.blob, 64, AN_BLOB_FP16, 96 * 64 * 2, 0);
        T_CHECK(!memcmp(p.blob + 128, w.data, 96 * 64 * 2), "fp16 payload is the rows as stored");
        T_CHECK(p.n_fns == 1 && p.io[0].n == 32 && p.io[0].n_in == 1 && p.io[0].in_width[0] == 64 &&
                    p.io[0].n_out == 1 && p.io[0].out_width[0] == 96, "io");
        an_mil_program_free(&p);
    }
    free_w(&w);
}

static void golden_qkv(void) {
    tw q = make_w(AN_TYPE_F16, 64, 64, "blk.0.attn_q.weight");
    tw k = make_w(AN_TYPE_F16, 32, 64, "blk.0.attn_k.weight");
    tw v = make_w(AN_TYPE_F16, 32, 64, "blk.0.attn_v.weight");
    an_mil_fn fn = {AN_MIL_LINEAR, {&q.m, &k.m, &v.m}, 3, 64};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("qkv_f16", &p);
        check_blob(&p, 3);
        /* q: meta 64, data 128..8320; k: meta 8320 (64-aligned already), data 8384..12480;
         * v: meta 12480, data 12544..16640 */
        check_meta(p.blob, 64, AN_BLOB_FP16, 8192, 0);
        check_meta(p.blob, 8320, AN_BLOB_FP16, 4096, 0);
        check_meta(p.blob, 12480, AN_BLOB_FP16, 4096, 0);
        T_CHECK(p.blob_len == 16640, "%zu", p.blob_len);
        T_CHECK(p.io[0].n_out == 3 && p.io[0].out_width[1] == 32 && p.io[0].out_w[2] == 2, "io");
        an_mil_program_free(&p);
    }
    free_w(&q), free_w(&k), free_w(&v);
}

static void golden_formats(void) {
    tw a = make_w(AN_TYPE_Q8_0, 64, 64, "a.q8_0");
    tw b = make_w(AN_TYPE_Q4_0, 64, 64, "b.q4_0");
    tw c = make_lut(4, 64, 64, 8, true, "c.lut4");
    tw d = make_lut(6, 48, 64, 16, false, "d.lut6");
    an_mil_fn fn = {AN_MIL_LINEAR, {&a.m, &b.m, &c.m, &d.m}, 4, 32};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("linear_formats", &p);
        check_blob(&p, 2 + 2 + 3 + 2);
        /* hand offsets: a data int8 4096 B @128 (meta 64); a scale fp16 [64,2] 256 B: meta 4224,
         * data 4288..4544; b data int4 2048 B: meta 4544, data 4608..6656; b scale: meta 6656,
         * data 6720..6976; c idx uint4 2048 B: meta 6976, data 7040..9088; c lut fp16 [8,16]
         * 256 B: meta 9088, data 9152..9408; c row scale 128 B: meta 9408, data 9472..9600;
         * d idx uint6 48*64*6/8 = 2304 B: meta 9600, data 9664..11968; d lut [3,64] 384 B:
         * meta 11968, data 12032..12416 */
        check_meta(p.blob, 64, AN_BLOB_INT8, 4096, 0);
        check_meta(p.blob, 4224, AN_BLOB_FP16, 256, 0);
        check_meta(p.blob, 4544, AN_BLOB_INT4, 2048, 0);
        check_meta(p.blob, 6656, AN_BLOB_FP16, 256, 0);
        check_meta(p.blob, 6976, AN_BLOB_UINT4, 2048, 0);
        check_meta(p.blob, 9088, AN_BLOB_FP16, 256, 0);
        check_meta(p.blob, 9408, AN_BLOB_FP16, 128, 0);
        check_meta(p.blob, 9600, AN_BLOB_UINT6, 2304, 0);
        check_meta(p.blob, 11968, AN_BLOB_FP16, 384, 0);
        T_CHECK(p.blob_len == 12416, "%zu", p.blob_len);
        /* the LUT index blobs are the rows' bit streams back to back (rows are whole bytes) */
        T_CHECK(!memcmp(p.blob + 7040, c.data, 2048) && !memcmp(p.blob + 9664, d.data, 2304), "index streams");
        T_CHECK(!memcmp(p.blob + 9152, c.lut, 256) && !memcmp(p.blob + 9472, c.rs, 128) &&
                    !memcmp(p.blob + 12032, d.lut, 384), "tables and row scales");
        an_mil_program_free(&p);
    }
    free_w(&a), free_w(&b), free_w(&c), free_w(&d);
}

static void golden_ffn(void) {
    tw g = make_w(AN_TYPE_F16, 128, 64, "blk.0.ffn_gate.weight");
    tw u = make_w(AN_TYPE_F16, 128, 64, "blk.0.ffn_up.weight");
    tw d = make_w(AN_TYPE_F16, 64, 128, "blk.0.ffn_down.weight");
    an_mil_fn fn = {AN_MIL_FFN, {&g.m, &u.m, &d.m}, 3, 32};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("ffn_f16", &p);
        check_blob(&p, 3);
        T_CHECK(p.io[0].n_out == 1 && p.io[0].out_width[0] == 64 && p.io[0].in_width[0] == 64, "io");
        an_mil_program_free(&p);
    }
    free_w(&g), free_w(&u), free_w(&d);
}

/* A bank: the same weight at two buckets and an FFN; the shared weight is stored once and
 * both functions point at it. */
static void golden_bank(void) {
    tw o = make_w(AN_TYPE_Q8_0, 64, 64, "blk.0.attn_output.weight");
    tw g = make_w(AN_TYPE_F16, 128, 64, "blk.0.ffn_gate.weight");
    tw u = make_w(AN_TYPE_F16, 128, 64, "blk.0.ffn_up.weight");
    tw d = make_w(AN_TYPE_F16, 64, 128, "blk.0.ffn_down.weight");
    an_mat o_copy = o.m; /* a copy of the an_mat still names the same weight */
    an_mil_fn fns[3] = {{AN_MIL_LINEAR, {&o.m}, 1, 32}, {AN_MIL_LINEAR, {&o_copy}, 1, 64},
                        {AN_MIL_FFN, {&g.m, &u.m, &d.m}, 3, 32}};
    an_mil_program p;
    if (emit1(fns, 3, AN_ANE_M1_M3, &p)) {
        golden("bank", &p);
        check_blob(&p, 2 + 3); /* o's data and scale once, then gate, up, down */
        T_CHECK(strstr(p.text, "func procedure000<ios18>") && strstr(p.text, "func procedure002<ios18>") &&
                    !strstr(p.text, "func main"), "procedure names");
        int refs = 0;
        for (const char *s = p.text; (s = strstr(s, "offset = uint64(64)")) != NULL; s++) refs++;
        T_CHECK(refs == 2, "the shared weight is referenced %d times, want 2", refs);
        T_CHECK(p.n_fns == 3 && p.io[1].n == 64, "io");
        an_mil_program_free(&p);
    }
    free_w(&o), free_w(&g), free_w(&u), free_w(&d);
}

/* The LM head, vocab 40000 x 64: three output tiles under M1-M3's 16384 cap, one on M4. */
static void golden_lm_head(void) {
    tw h = make_w(AN_TYPE_F16, 40000, 64, "output.weight");
    an_mil_fn fn = {AN_MIL_LINEAR, {&h.m}, 1, 32};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("lm_head_tiled", &p);
        check_blob(&p, 3);
        const struct an_mil_io *io = &p.io[0];
        T_CHECK(io->n_out == 3 && io->out_width[0] == 13376 && io->out_width[2] == 13248 && io->out_col0[1] == 13376 &&
                    io->out_col0[2] == 26752, "tiles %d: %lld %lld", io->n_out, (long long)io->out_width[0],
                (long long)io->out_width[2]);
        /* tile 1's blob holds rows 13376.. verbatim: metadata after tile 0 (64 + 64 + 1712128) */
        const uint64_t meta1 = 128 + 13376ull * 64 * 2;
        check_meta(p.blob, meta1, AN_BLOB_FP16, 13376ull * 64 * 2, 0);
        T_CHECK(!memcmp(p.blob + meta1 + 64, (uint8_t *)h.data + 13376 * 128, 13376 * 128), "tile 1 rows");
        an_mil_program_free(&p);
    }
    if (emit1(&fn, 1, AN_ANE_M4_PLUS, &p)) {
        T_CHECK(p.io[0].n_out == 1 && p.io[0].out_width[0] == 40000, "M4: one output");
        an_mil_program_free(&p);
    }
    free_w(&h);
}

/* Contractions above the cap: a linear with K = 20000 takes its input as two column slices;
 * an FFN with d_ff = 20000 slices h on the channel axis for down. */
static void golden_ksplit(void) {
    tw w = make_w(AN_TYPE_F16, 64, 20000, "wide_k");
    an_mil_fn fn = {AN_MIL_LINEAR, {&w.m}, 1, 32};
    an_mil_program p;
    if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
        golden("linear_ksplit", &p);
        check_blob(&p, 2);
        T_CHECK(p.io[0].n_in == 2 && p.io[0].in_width[0] == 10048 && p.io[0].in_width[1] == 9952 &&
                    p.io[0].in_col0[1] == 10048, "inputs");
        an_mil_program_free(&p);
    }
    tw g = make_w(AN_TYPE_F16, 20000, 64, "gate"), u = make_w(AN_TYPE_F16, 20000, 64, "up");
    tw d = make_w(AN_TYPE_F16, 64, 20000, "down");
    an_mil_fn ff = {AN_MIL_FFN, {&g.m, &u.m, &d.m}, 3, 32};
    if (emit1(&ff, 1, AN_ANE_M1_M3, &p)) {
        golden("ffn_sliced", &p);
        check_blob(&p, 4);
        an_mil_program_free(&p);
    }
    free_w(&w), free_w(&g), free_w(&u), free_w(&d);
}

/* ---- weight values ------------------------------------------------------------------------ */

/* Q8_0 and Q4_0 blobs hold the GGUF values exactly: scale * data, computed in float, equals
 * an_dequant_row bit for bit (the int8/int4 data and fp16 scales are the blocks' own). */
static void quant_lossless(void) {
    const uint32_t types[2] = {AN_TYPE_Q8_0, AN_TYPE_Q4_0};
    for (int ti = 0; ti < 2; ti++) {
        const int64_t M = 48, K = 256;
        tw w = make_w(types[ti], M, K, "q");
        an_mil_fn fn = {AN_MIL_LINEAR, {&w.m}, 1, 32};
        an_mil_program p;
        if (!emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
            free_w(&w);
            continue;
        }
        an_blob_file f;
        an_err err = {0};
        T_CHECK(an_blob_parse(p.blob, p.blob_len, "q", &f, &err) == AN_OK && f.count == 2, "%s", err.msg);
        if (f.count == 2) {
            const an_blob_entry *data = &f.blob[0], *scale = &f.blob[1];
            T_CHECK(data->dtype == (ti ? AN_BLOB_INT4 : AN_BLOB_INT8) && scale->dtype == AN_BLOB_FP16 &&
                        scale->size == (uint64_t)(M * K / 32) * 2, "dtypes");
            float *ref = malloc((size_t)K * sizeof *ref);
            int64_t bad = 0;
            for (int64_t r = 0; r < M; r++) {
                an_dequant_row((an_type)types[ti], (const uint8_t *)w.data + w.m.row_bytes * (uint64_t)r, ref, K);
                for (int64_t k = 0; k < K; k++) {
                    const uint64_t i = (uint64_t)(r * K + k);
                    int q;
                    if (ti == 0) q = (int8_t)data->data[i];
                    else {
                        q = (int)an_blob_get_bits(data->data, i, 4);
                        if (q >= 8) q -= 16; /* int4 two's complement */
                    }
                    uint16_t sh;
                    memcpy(&sh, scale->data + (i / 32) * 2, 2);
                    const float v = an_f16_to_f32(sh) * (float)q;
                    if (an_f32_bits(v) != an_f32_bits(ref[k])) bad++;
                }
            }
            T_CHECK(bad == 0, "%s: %lld of %lld values differ from an_dequant_row", an_type_name(types[ti]),
                    (long long)bad, (long long)(M * K));
            free(ref);
        }
        an_blob_file_free(&f);
        an_mil_program_free(&p);
        free_w(&w);
    }
}

/* Reads w[r][k] of the dense fp16 weight a tile describes, from its blobs, as the
 * constexpr ops define it (lut_to_dense then the row scale). */
static float lut_tile_value(const an_blob_entry *idx, const an_blob_entry *lut, const an_blob_entry *rs, int bits,
                            int64_t mt, int64_t kt, int64_t r, int64_t k) {
    const int64_t ng = (int64_t)(lut->size / 2) >> bits, g = mt / ng;
    const unsigned ix = an_blob_get_bits(idx->data, (uint64_t)(r * kt + k), bits);
    uint16_t h;
    memcpy(&h, lut->data + ((uint64_t)(r / g) << bits) * 2 + ix * 2, 2);
    float v = an_f16_to_f32(h);
    if (rs) {
        memcpy(&h, rs->data + r * 2, 2);
        v *= an_f16_to_f32(h);
    }
    return v;
}

/* LUT tiles whose row boundaries fall inside a group (group 24, tiles of 13376 rows) and a
 * short last group: every tile's blobs still decode to the matrix's own values. */
static void lut_tiles(void) {
    for (int bits = 4; bits <= 6; bits += 2) {
        const int64_t M = 40000, K = 32;
        tw w = make_lut(bits, M, K, 24, bits == 4, "lut_head");
        an_mil_fn fn = {AN_MIL_LINEAR, {&w.m}, 1, 32};
        an_mil_program p;
        if (!emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
            free_w(&w);
            continue;
        }
        an_blob_file f;
        an_err err = {0};
        const uint32_t per = bits == 4 ? 3 : 2;
        T_CHECK(an_blob_parse(p.blob, p.blob_len, "lut", &f, &err) == AN_OK && f.count == 3 * per, "%s", err.msg);
        float *ref = malloc((size_t)K * sizeof *ref);
        int64_t bad = 0;
        for (int t = 0; t < p.io[0].n_out && f.count == 3 * per; t++) {
            const int64_t m0 = p.io[0].out_col0[t], mt = p.io[0].out_width[t];
            const an_blob_entry *b = &f.blob[t * per];
            for (int64_t r = 0; r < mt; r++) {
                an_lut_dequant_row(&w.m, m0 + r, ref);
                for (int64_t k = 0; k < K; k++) {
                    float v = lut_tile_value(&b[0], &b[1], bits == 4 ? &b[2] : NULL, bits, mt, K, r, k);
                    if (bits == 4) v = an_round_f16(v); /* the scaled op's output is fp16 */
                    const float want = bits == 4 ? an_round_f16(ref[k]) : ref[k];
                    if (an_f32_bits(v) != an_f32_bits(want)) bad++;
                }
            }
        }
        T_CHECK(bad == 0, "LUT%d: %lld values differ", bits, (long long)bad);
        T_CHECK(strstr(p.text, bits == 4 ? "tensor<fp16, [1672, 1, 1, 1, 16, 1]>" : "[1672, 1, 1, 1, 64, 1]") != NULL,
                "tile 0 (13376 rows) in sub-groups of gcd(24, 13376) = 8 rows");
        free(ref);
        an_blob_file_free(&f);
        an_mil_program_free(&p);
        free_w(&w);
    }
}

/* Formats without a lossless mapping: dequantized, then rounded to fp16. */
static void dequant_formats(void) {
    const uint32_t types[3] = {AN_TYPE_Q4_K, AN_TYPE_BF16, AN_TYPE_F32};
    for (int ti = 0; ti < 3; ti++) {
        const int64_t M = 8, K = 256;
        tw w = make_w(types[ti], M, K, "dq");
        an_mil_fn fn = {AN_MIL_LINEAR, {&w.m}, 1, 32};
        an_mil_program p;
        if (emit1(&fn, 1, AN_ANE_M1_M3, &p)) {
            check_meta(p.blob, 64, AN_BLOB_FP16, (uint64_t)(M * K) * 2, 0);
            float *ref = malloc((size_t)K * sizeof *ref);
            int64_t bad = 0;
            for (int64_t r = 0; r < M; r++) {
                an_dequant_row((an_type)types[ti], (const uint8_t *)w.data + w.m.row_bytes * (uint64_t)r, ref, K);
                for (int64_t k = 0; k < K; k++) {
                    uint16_t h;
                    memcpy(&h, p.blob + 128 + (r * K + k) * 2, 2);
                    if (h != an_f32_to_f16(ref[k])) bad++;
                }
            }
            T_CHECK(bad == 0, "%s: %lld values", an_type_name(types[ti]), (long long)bad);
            free(ref);
            an_mil_program_free(&p);
        }
        free_w(&w);
    }
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void expect_emit_error(const an_mil_fn *fn, an_ane_family fam, an_status want, const char *needle) {
    an_mil_program p;
    an_err err = {0};
    an_status s = an_mil_emit(fn, 1, fam, &p, &err);
    T_CHECK(s == want, "status %d, want %d (%s)", (int)s, (int)want, err.msg);
    T_CHECK(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    T_CHECK(!p.text && !p.blob && !p.io, "output not empty on error");
    if (s == AN_OK) an_mil_program_free(&p);
    t_note("%s", err.msg);
}

static void emit_errors(void) {
    tw q = make_w(AN_TYPE_F16, 64, 64, "blk.3.attn_q.weight");
    tw k = make_w(AN_TYPE_F16, 32, 128, "blk.3.attn_k.weight");
    an_mil_fn fn = {AN_MIL_LINEAR, {&q.m, &k.m}, 2, 32};
    expect_emit_error(&fn, AN_ANE_M1_M3, AN_E_USAGE, "blk.3.attn_k.weight: K = 128");
    an_mil_fn ffn = {AN_MIL_FFN, {&q.m, &q.m, &k.m}, 3, 32};
    expect_emit_error(&ffn, AN_ANE_M1_M3, AN_E_USAGE, "blk.3.attn_k.weight: K = 128, but the FFN's hidden size");
    ffn.n_w = 2;
    expect_emit_error(&ffn, AN_ANE_M1_M3, AN_E_USAGE, "fused FFN");
    an_mil_fn odd = {AN_MIL_LINEAR, {&q.m}, 1, 48};
    expect_emit_error(&odd, AN_ANE_M1_M3, AN_E_USAGE, "N = 48");
    odd.n = 32768;
    expect_emit_error(&odd, AN_ANE_M1_M3, AN_E_USAGE, "at most 16384");
    an_mat bad = q.m;
    bad.type = AN_TYPE_IQ4_NL;
    bad.row_bytes = 64 / 32 * 18;
    an_mil_fn un = {AN_MIL_LINEAR, {&bad}, 1, 32};
    expect_emit_error(&un, AN_ANE_M1_M3, AN_E_UNSUPPORTED, "blk.3.attn_q.weight: type IQ4_NL");
    bad = q.m;
    bad.row_bytes = 100;
    expect_emit_error(&un, AN_ANE_M1_M3, AN_E_USAGE, "row_bytes 100");
    bad = q.m;
    bad.cols = 70000;
    bad.row_bytes = 140000;
    expect_emit_error(&un, AN_ANE_M1_M3, AN_E_RANGE, "exceeds the ANE's 65536 channels");
    /* a 300000-row head on M1-M3 would need 19 outputs */
    bad = q.m;
    bad.rows = 300000;
    expect_emit_error(&un, AN_ANE_M1_M3, AN_E_RANGE, "19 outputs, more than 16");
    bad = q.m;
    bad.data = NULL;
    expect_emit_error(&un, AN_ANE_M1_M3, AN_E_USAGE, "blk.3.attn_q.weight: empty");
    free_w(&q), free_w(&k);
}

const t_case t_suite_ane_mil[] = {
    {"blob_layout", blob_layout},
    {"blob_exact_multiple", blob_exact_multiple},
    {"blob_reject", blob_reject},
    {"plan_bucket", plan_bucket},
    {"plan_tile", plan_tile},
    {"plan_banks", plan_banks},
    {"golden_linear", golden_linear},
    {"golden_qkv", golden_qkv},
    {"golden_formats", golden_formats},
    {"golden_ffn", golden_ffn},
    {"golden_bank", golden_bank},
    {"golden_lm_head", golden_lm_head},
    {"golden_ksplit", golden_ksplit},
    {"quant_lossless", quant_lossless},
    {"lut_tiles", lut_tiles},
    {"dequant_formats", dequant_formats},
    {"emit_errors", emit_errors},
    {0},
};
