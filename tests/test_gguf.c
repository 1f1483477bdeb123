/* test_gguf.c — the GGUF reader and writer: round trips through the writer, a corpus of
 * hand-built broken files (each must fail with AN_E_FORMAT and a message that says where),
 * typed getters, and the shared model files when they are present. */
#include "t.h"

#include "gguf/gguf.h"
#include "core/fp16.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== Helpers =============================================================================== */

static char g_dir[64];

/* A private scratch directory, created on first use. */
static const char *tmp_path(const char *name) {
    static char buf[256];
    if (!g_dir[0]) {
        strcpy(g_dir, "/tmp/anelm-gguf-XXXXXX");
        if (!mkdtemp(g_dir)) {
            g_dir[0] = 0;
            return NULL;
        }
    }
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static void tmp_cleanup(void) {
    if (!g_dir[0]) return;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(g_dir);
    g_dir[0] = 0;
}

/* Count entries in the scratch dir whose names contain frag (leftover temp files). */
static int tmp_count(const char *frag) {
    int n = 0;
    DIR *d = g_dir[0] ? opendir(g_dir) : NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, frag) != NULL;
    closedir(d);
    return n;
}

static bool spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Byte builder for hand-made (often broken) files. */
typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void b_put(bb *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void b_le(bb *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    b_put(b, t, (size_t)n);
}
static void b_u8(bb *b, uint8_t v) { b_le(b, v, 1); }
static void b_u32(bb *b, uint32_t v) { b_le(b, v, 4); }
static void b_u64(bb *b, uint64_t v) { b_le(b, v, 8); }
static void b_str(bb *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    b_put(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(bb *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, AN_GGUF_U32);
    b_u32(b, v);
}
static void b_kv_str(bb *b, const char *key, const char *v) {
    b_str(b, key);
    b_u32(b, AN_GGUF_STR);
    b_str(b, v);
}
static void b_tinfo(bb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                    uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, (uint64_t)ne[d]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(bb *b, size_t align) {
    while (b->n % align) b_u8(b, 0);
}
static void b_data(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, (uint8_t)(i * 7 + 1));
}

/* Open a byte image from an exactly sized heap copy, so ASan sees any read past the end. The
 * reader keeps views into that memory, so the caller frees *mem after the handle. */
static an_status open_bytes(const uint8_t *p, size_t n, an_gguf **out, uint8_t **mem, an_err *err) {
    *mem = malloc(n ? n : 1);
    if (n) memcpy(*mem, p, n);
    an_err_clear(err);
    return an_gguf_open_mem(out, n ? *mem : NULL, n, "mem.gguf", err);
}

/* Failure expectation for a broken image: AN_E_FORMAT, the label, "byte " and fragments. */
static void expect_bad_at(const char *file, int line, const bb *b, const char *f1, const char *f2) {
    an_gguf *g = NULL;
    uint8_t *copy = NULL;
    an_err err;
    an_status st = open_bytes(b->p, b->n, &g, &copy, &err);
#ifdef GGUF_TEST_VERBOSE
    t_note("%s", err.msg);
#endif
    if (st != AN_E_FORMAT) {
        t_fail_at(file, line, "expected AN_E_FORMAT (want '%s'), got %d: %s", f1, st, err.msg);
    } else {
        if (!strstr(err.msg, "mem.gguf: byte "))
            t_fail_at(file, line, "message lacks 'mem.gguf: byte ': %s", err.msg);
        if (f1 && !strstr(err.msg, f1)) t_fail_at(file, line, "message lacks '%s': %s", f1, err.msg);
        if (f2 && !strstr(err.msg, f2)) t_fail_at(file, line, "message lacks '%s': %s", f2, err.msg);
        if (g) t_fail_at(file, line, "failed open left a handle");
    }
    an_gguf_free(g);
    free(copy);
}
#define EXPECT_BAD(b, f1, f2) expect_bad_at(__FILE__, __LINE__, (b), (f1), (f2))

static void expect_ok_at(const char *file, int line, const bb *b) {
    an_gguf *g = NULL;
    uint8_t *mem = NULL;
    an_err err;
    an_status st = open_bytes(b->p, b->n, &g, &mem, &err);
    if (st != AN_OK) t_fail_at(file, line, "expected a valid file, got %d: %s", st, err.msg);
    an_gguf_free(g);
    free(mem);
}
#define EXPECT_OK(b) expect_ok_at(__FILE__, __LINE__, (b))

/* ==== Round trip ============================================================================ */

typedef struct rt_tensor {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    uint8_t *data;
} rt_tensor;

static rt_tensor g_rt[] = {
    {"blk.0.norm.weight", AN_TYPE_F32, 2, {7, 3, 1, 1}, 7 * 3 * 4, NULL},
    {"blk.0.attn_q.weight", AN_TYPE_F16, 2, {16, 2, 1, 1}, 16 * 2 * 2, NULL},
    {"blk.0.ffn_up.weight", AN_TYPE_Q8_0, 3, {64, 2, 2, 1}, 2 * 2 * 2 * 34, NULL},
    {"token_embd.weight", AN_TYPE_Q4_K, 4, {256, 3, 1, 1}, 3 * 144, NULL},
};
#define N_RT (sizeof g_rt / sizeof g_rt[0])

static const char *k_strs[] = {"alpha", "", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "z"};

static void rt_fill(void) {
    for (size_t i = 0; i < N_RT; i++) {
        if (!g_rt[i].data) g_rt[i].data = malloc(g_rt[i].nbytes);
        for (uint64_t k = 0; k < g_rt[i].nbytes; k++) g_rt[i].data[k] = (uint8_t)(k * 31 + i * 17 + 5);
    }
}

static void rt_free(void) {
    for (size_t i = 0; i < N_RT; i++) {
        free(g_rt[i].data);
        g_rt[i].data = NULL;
    }
}

/* Writes every metadata type and the tensors above. */
static an_status rt_write(const char *path, uint32_t align, an_err *err) {
    an_gguf_writer *w = NULL;
    AN_TRY(an_gguf_writer_create(&w, err));
    if (align != 32) an_gguf_writer_set_alignment(w, align);
    an_gguf_writer_str(w, "general.architecture", "llama");
    uint8_t u8 = 250;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    uint64_t u64 = UINT64_C(0xfedcba9876543210);
    int64_t i64 = INT64_MIN + 7;
    double f64 = -1.0 / 3.0;
    an_gguf_writer_scalar(w, "t.u8", AN_GGUF_U8, &u8);
    an_gguf_writer_scalar(w, "t.i8", AN_GGUF_I8, &i8);
    an_gguf_writer_scalar(w, "t.u16", AN_GGUF_U16, &u16);
    an_gguf_writer_scalar(w, "t.i16", AN_GGUF_I16, &i16);
    an_gguf_writer_u32(w, "t.u32", 4000000000u);
    an_gguf_writer_i32(w, "t.i32", -2000000000);
    an_gguf_writer_f32(w, "t.f32", 0.1f);
    an_gguf_writer_bool(w, "t.bool", true);
    an_gguf_writer_bool(w, "t.bool0", false);
    an_gguf_writer_str(w, "t.str", "h\xc3\xa9llo");
    an_gguf_writer_str(w, "t.empty", "");
    uint32_t au32[5] = {0, 1, 2, 0xffffffffu, 42};
    float af32[3] = {1.5f, -0.0f, 3.25e-20f};
    an_gguf_writer_arr(w, "t.arr_u32", AN_GGUF_U32, au32, 5);
    an_gguf_writer_arr(w, "t.arr_f32", AN_GGUF_F32, af32, 3);
    an_gguf_writer_arr(w, "t.arr_empty", AN_GGUF_I32, NULL, 0);
    an_str as[4];
    for (int i = 0; i < 4; i++) as[i] = (an_str){k_strs[i], strlen(k_strs[i])};
    an_gguf_writer_arr_str(w, "t.arr_str", as, 4);
    an_gguf_writer_scalar(w, "t.u64", AN_GGUF_U64, &u64);
    an_gguf_writer_scalar(w, "t.i64", AN_GGUF_I64, &i64);
    an_gguf_writer_scalar(w, "t.f64", AN_GGUF_F64, &f64);
    an_gguf_writer_u32(w, "t.replaced", 1);
    an_gguf_writer_u32(w, "t.replaced", 2); /* replaces in place */
    for (size_t i = 0; i < N_RT; i++)
        an_gguf_writer_tensor(w, g_rt[i].name, g_rt[i].type, g_rt[i].n_dims, g_rt[i].ne, g_rt[i].data,
                              g_rt[i].nbytes);
    an_status st = an_gguf_writer_write(w, path, err);
    an_gguf_writer_free(w);
    return st;
}

static void rt_check(const an_gguf *g, uint32_t align, uint32_t version) {
    const an_gguf_kv *kv;
#define KV(k) ((kv = an_gguf_find(g, k)) != NULL)
    /* no '%' inside T_CHECK conditions: the condition text becomes part of a format string */
    bool data_aligned = an_gguf_data_offset(g) % align == 0;
    T_CHECK(an_gguf_version(g) == version);
    T_CHECK(an_gguf_alignment(g) == align, "%" PRIu64, an_gguf_alignment(g));
    T_CHECK(data_aligned);
    T_CHECK(an_gguf_n_kv(g) == 20 + (align != 32), "%" PRId64, an_gguf_n_kv(g));
    T_CHECK(KV("general.architecture") && kv->type == AN_GGUF_STR && an_str_eq(kv->v.s, "llama"));
    T_CHECK(KV("t.u8") && kv->type == AN_GGUF_U8 && kv->v.u == 250);
    T_CHECK(KV("t.i8") && kv->type == AN_GGUF_I8 && kv->v.i == -100);
    T_CHECK(KV("t.u16") && kv->type == AN_GGUF_U16 && kv->v.u == 65000);
    T_CHECK(KV("t.i16") && kv->type == AN_GGUF_I16 && kv->v.i == -32000);
    T_CHECK(KV("t.u32") && kv->type == AN_GGUF_U32 && kv->v.u == 4000000000u);
    T_CHECK(KV("t.i32") && kv->type == AN_GGUF_I32 && kv->v.i == -2000000000);
    T_CHECK(KV("t.f32") && kv->type == AN_GGUF_F32 && kv->v.f == (double)0.1f);
    T_CHECK(KV("t.bool") && kv->type == AN_GGUF_BOOL && kv->v.u == 1);
    T_CHECK(KV("t.bool0") && kv->type == AN_GGUF_BOOL && kv->v.u == 0);
    T_CHECK(KV("t.str") && kv->type == AN_GGUF_STR && an_str_eq(kv->v.s, "h\xc3\xa9llo"));
    T_CHECK(KV("t.empty") && kv->type == AN_GGUF_STR && kv->v.s.n == 0);
    T_CHECK(KV("t.u64") && kv->type == AN_GGUF_U64 && kv->v.u == UINT64_C(0xfedcba9876543210));
    T_CHECK(KV("t.i64") && kv->type == AN_GGUF_I64 && kv->v.i == INT64_MIN + 7);
    T_CHECK(KV("t.f64") && kv->type == AN_GGUF_F64 && kv->v.f == -1.0 / 3.0);
    T_CHECK(KV("t.replaced") && kv->v.u == 2);
    /* replacement kept the first position: right after t.f64 would be wrong */
    T_CHECK(an_str_eq(an_gguf_kv_at(g, an_gguf_n_kv(g) - 1)->key, "t.replaced"));
    T_CHECK(an_str_eq(an_gguf_kv_at(g, 0)->key, align != 32 ? "general.alignment" : "general.architecture"));
    if (KV("t.arr_u32")) {
        T_CHECK(kv->type == AN_GGUF_ARR && kv->arr_type == AN_GGUF_U32 && kv->arr_n == 5);
        T_CHECK(an_gguf_arr_i64(kv, 3) == 0xffffffffll && an_gguf_arr_i64(kv, 4) == 42);
        T_CHECK(an_gguf_arr_i64(kv, 5) == 0, "out of range index gives 0");
    } else T_FAIL("t.arr_u32 missing");
    if (KV("t.arr_f32")) {
        T_CHECK(kv->arr_type == AN_GGUF_F32 && kv->arr_n == 3);
        T_CHECK(an_gguf_arr_f64(kv, 0) == 1.5 && an_gguf_arr_f64(kv, 2) == (double)3.25e-20f);
        T_CHECK(signbit(an_gguf_arr_f64(kv, 1)) && an_gguf_arr_f64(kv, 1) == 0);
    } else T_FAIL("t.arr_f32 missing");
    T_CHECK(KV("t.arr_empty") && kv->type == AN_GGUF_ARR && kv->arr_type == AN_GGUF_I32 && kv->arr_n == 0);
    if (KV("t.arr_str") && kv->type == AN_GGUF_ARR && kv->arr_type == AN_GGUF_STR && kv->arr_n == 4) {
        for (int i = 0; i < 4; i++) T_CHECK(an_str_eq(kv->arr_str[i], k_strs[i]), "element %d", i);
    } else T_FAIL("t.arr_str missing or wrong");
    T_CHECK(an_gguf_find(g, "t.nope") == NULL && an_gguf_find(g, "t.u") == NULL);
#undef KV

    T_CHECK(an_gguf_n_tensors(g) == (int64_t)N_RT);
    uint64_t expect_off = an_gguf_data_offset(g);
    for (size_t i = 0; i < N_RT; i++) {
        const an_gguf_tensor *t = an_gguf_tensor_find(g, g_rt[i].name);
        if (!t) {
            T_FAIL("tensor %s missing", g_rt[i].name);
            continue;
        }
        T_CHECK(t == an_gguf_tensor_at(g, (int64_t)i), "order kept");
        T_CHECK(strcmp(t->name, g_rt[i].name) == 0);
        T_CHECK(t->type == g_rt[i].type && t->n_dims == g_rt[i].n_dims, "%s", t->name);
        for (int d = 0; d < 4; d++) T_CHECK(t->ne[d] == g_rt[i].ne[d], "%s ne[%d]", t->name, d);
        bool aligned = t->off % align == 0;
        T_CHECK(aligned && t->off == expect_off, "%s off %" PRIu64, t->name, t->off);
        T_CHECK(t->nbytes == g_rt[i].nbytes, "%s", t->name);
        T_CHECK(memcmp(t->data, g_rt[i].data, g_rt[i].nbytes) == 0, "%s data", t->name);
        expect_off += (t->nbytes + align - 1) / align * align;
    }
    T_CHECK(expect_off == an_gguf_size(g), "file ends with the padded last tensor");
    T_CHECK(an_gguf_tensor_find(g, "blk.0") == NULL);
}

/* Writer -> reader for two alignments; v2 acceptance; kv_copy reproduces the file exactly. */
static void test_round_trip(void) {
    rt_fill();
    const uint32_t aligns[] = {32, 64};
    for (int a = 0; a < 2; a++) {
        uint32_t align = aligns[a];
        char name[32];
        snprintf(name, sizeof name, "rt%u.gguf", align);
        const char *p = tmp_path(name);
        char path[256];
        if (!p) {
            T_FAIL("no scratch dir");
            return;
        }
        strcpy(path, p);
        an_err err;
        an_err_clear(&err);
        an_status st = rt_write(path, align, &err);
        if (st != AN_OK) {
            T_FAIL("write: %s", err.msg);
            continue;
        }
        T_CHECK(tmp_count(".tmp.") == 0, "temp file left behind");
        struct stat sb;
        T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0444) == 0444, "file is readable");

        an_gguf *g = NULL;
        st = an_gguf_open(&g, path, &err);
        if (st != AN_OK) {
            T_FAIL("open: %s", err.msg);
            continue;
        }
        T_CHECK(strcmp(an_gguf_path(g), path) == 0);
        rt_check(g, align, 3);

        /* kv_copy of every record plus the same tensors must give the same bytes */
        an_gguf_writer *w = NULL;
        T_CHECK(an_gguf_writer_create(&w, &err) == AN_OK);
        for (int64_t i = 0; i < an_gguf_n_kv(g); i++) an_gguf_writer_kv_copy(w, an_gguf_kv_at(g, i));
        for (int64_t i = 0; i < an_gguf_n_tensors(g); i++) {
            const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
            an_gguf_writer_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        }
        char path2[300];
        snprintf(path2, sizeof path2, "%s.copy", path);
        st = an_gguf_writer_write(w, path2, &err);
        T_CHECK(st == AN_OK, "%s", err.msg);
        an_gguf_writer_free(w);
        an_gguf_free(g);
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = (uint8_t *)t_read_file(path, &n1), *b2 = (uint8_t *)t_read_file(path2, &n2);
        T_CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "kv_copy differs (%zu vs %zu bytes)", n1, n2);

        /* v2 is byte-identical apart from the version field */
        if (b1 && n1 > 8) {
            b1[4] = 2;
            g = NULL;
            an_err_clear(&err);
            st = an_gguf_open_mem(&g, b1, n1, "v2.gguf", &err);
            T_CHECK(st == AN_OK, "v2: %s", err.msg);
            if (g) {
                T_CHECK(an_gguf_version(g) == 2);
                rt_check(g, align, 2);
                an_gguf_free(g);
            }
        }
        free(b1);
        free(b2);
    }
    rt_free();
}

/* A vocabulary-sized string array: views must be right at every index. */
static void test_big_string_array(void) {
    enum { N = 150000 };
    char *text = malloc((size_t)N * 8);
    an_str *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) {
        int n = snprintf(text + (size_t)i * 8, 8, "t%d", i);
        v[i] = (an_str){text + (size_t)i * 8, (uint64_t)(i % 97 == 0 ? 0 : n)};
    }
    an_gguf_writer *w = NULL;
    an_err err;
    an_err_clear(&err);
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", v, N);
    const char *path = tmp_path("vocab.gguf");
    an_status st = an_gguf_writer_write(w, path, &err);
    an_gguf_writer_free(w);
    T_CHECK(st == AN_OK, "%s", err.msg);
    an_gguf *g = NULL;
    st = an_gguf_open(&g, path, &err);
    T_CHECK(st == AN_OK, "%s", err.msg);
    if (g) {
        const an_gguf_kv *kv = NULL;
        T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.tokens", AN_GGUF_STR, &kv, NULL, &err) == AN_OK);
        T_CHECK(an_gguf_n_tensors(g) == 0);
        int bad = 0;
        for (int i = 0; kv && i < N; i++)
            bad += kv->arr_str[i].n != v[i].n || memcmp(kv->arr_str[i].p, v[i].p, v[i].n) != 0;
        T_CHECK(kv && kv->arr_n == N && bad == 0, "%d mismatches", bad);
        an_gguf_free(g);
    }
    free(text);
    free(v);
}

/* Writer failures: sticky first error, nothing left on disk. */
static void test_writer_errors(void) {
    an_err err;
    an_gguf_writer *w = NULL;
    an_err_clear(&err);
    an_gguf_writer_create(&w, &err);
    float data[4] = {0};
    int64_t ne[2] = {4, 1};
    an_gguf_writer_tensor(w, "short", AN_TYPE_F32, 2, ne, data, 12); /* 16 bytes needed */
    an_gguf_writer_tensor(w, "later", AN_TYPE_F32, 0, ne, data, 16); /* second error: ignored */
    const char *path = tmp_path("never.gguf");
    char p[256];
    strcpy(p, path);
    an_status st = an_gguf_writer_write(w, p, &err);
    T_CHECK(st == AN_E_USAGE, "%d", st);
    T_CHECK(strstr(err.msg, "'short'") && strstr(err.msg, "16"), "%s", err.msg);
    T_CHECK(access(p, F_OK) != 0, "failed write created the file");
    an_gguf_writer_free(w);

    w = NULL;
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_set_alignment(w, 48);
    an_err_clear(&err);
    T_CHECK(an_gguf_writer_write(w, p, &err) == AN_E_USAGE && strstr(err.msg, "48"), "%s", err.msg);
    an_gguf_writer_free(w);

    w = NULL;
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_str(w, "general.alignment", "32");
    an_err_clear(&err);
    T_CHECK(an_gguf_writer_write(w, p, &err) == AN_E_USAGE && strstr(err.msg, "general.alignment"), "%s", err.msg);
    an_gguf_writer_free(w);

    w = NULL;
    an_gguf_writer_create(&w, &err);
    int64_t ne33 = 33;
    uint8_t q[68] = {0};
    an_gguf_writer_tensor(w, "q", AN_TYPE_Q8_0, 1, &ne33, q, 34);
    an_err_clear(&err);
    T_CHECK(an_gguf_writer_write(w, p, &err) == AN_E_USAGE && strstr(err.msg, "block size"), "%s", err.msg);
    an_gguf_writer_free(w);

    /* unwritable destination: AN_E_IO, no temp file anywhere */
    w = NULL;
    an_gguf_writer_create(&w, &err);
    an_gguf_writer_u32(w, "x", 1);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no-such-dir/x.gguf", g_dir);
    an_err_clear(&err);
    T_CHECK(an_gguf_writer_write(w, bad, &err) == AN_E_IO, "%s", err.msg);
    /* rename onto a directory fails after the data was written: the temp must be removed */
    char dirpath[300];
    snprintf(dirpath, sizeof dirpath, "%s/adir", g_dir);
    mkdir(dirpath, 0700);
    char inner[320];
    snprintf(inner, sizeof inner, "%s/f", dirpath);
    spit(inner, "x", 1); /* non-empty directory: rename over it fails */
    an_err_clear(&err);
    T_CHECK(an_gguf_writer_write(w, dirpath, &err) == AN_E_IO && strstr(err.msg, "rename"), "%s", err.msg);
    T_CHECK(tmp_count(".tmp.") == 0, "temp file left behind");
    unlink(inner);
    rmdir(dirpath);
    an_gguf_writer_free(w);
}

/* ==== Broken files ========================================================================== */

/* A small valid file: KVs of three kinds and two tensors. Returns the file size. */
static void build_small(bb *b) {
    b_hdr(b, 3, 2, 4);
    b_kv_str(b, "general.architecture", "llama");
    b_kv_u32(b, "llama.block_count", 1);
    b_str(b, "tokenizer.ggml.tokens");
    b_u32(b, AN_GGUF_ARR);
    b_u32(b, AN_GGUF_STR);
    b_u64(b, 3);
    b_str(b, "a");
    b_str(b, "");
    b_str(b, "ccc");
    b_str(b, "tokenizer.ggml.scores");
    b_u32(b, AN_GGUF_ARR);
    b_u32(b, AN_GGUF_F32);
    b_u64(b, 2);
    b_u32(b, 0x3f800000);
    b_u32(b, 0);
    int64_t ne1[1] = {8}, ne2[2] = {4, 4};
    b_tinfo(b, "output_norm.weight", 1, ne1, AN_TYPE_F32, 0);
    b_tinfo(b, "output.weight", 2, ne2, AN_TYPE_F16, 32);
    b_pad(b, 32);
    b_data(b, 64);
}

static void test_truncated(void) {
    bb b = {0};
    build_small(&b);
    EXPECT_OK(&b);
    int bad = 0;
    for (size_t len = 0; len < b.n; len++) {
        an_gguf *g = NULL;
        uint8_t *mem = NULL;
        an_err err;
        an_status st = open_bytes(b.p, len, &g, &mem, &err);
        if (st != AN_E_FORMAT || !strstr(err.msg, "mem.gguf: byte ")) {
            if (bad++ < 5) T_FAIL("length %zu of %zu: status %d: %s", len, b.n, st, err.msg);
        }
        an_gguf_free(g);
        free(mem);
    }
    T_CHECK(bad == 0, "%d truncated lengths not rejected cleanly", bad);
    /* spot-check the message of a cut inside a string array element */
    bb c = {0};
    build_small(&c);
    const uint8_t *ccc = memmem(c.p, c.n, "ccc", 3);
    T_CHECK(ccc != NULL);
    c.n = ccc ? (size_t)(ccc - c.p) + 2 : 0;
    EXPECT_BAD(&c, "key 'tokenizer.ggml.tokens'", "truncated");
    free(b.p);
    free(c.p);
}

static void test_broken_header(void) {
    bb b = {0};
    b_hdr(&b, 3, 0, 0);
    EXPECT_OK(&b);
    memcpy(b.p, "GGUX", 4);
    EXPECT_BAD(&b, "bad magic", NULL);
    const uint32_t versions[] = {0, 1, 4, 0x03000000u, 0xffffffffu};
    const char *frags[] = {"version 0", "version 1", "version 4", "byte-swapped", "version 4294967295"};
    for (int i = 0; i < 5; i++) {
        b_hdr(&b, versions[i], 0, 0);
        EXPECT_BAD(&b, frags[i], "byte 4");
    }
    b_hdr(&b, 3, UINT64_C(1) << 62, 0);
    EXPECT_BAD(&b, "tensor count", "cannot fit");
    b_hdr(&b, 3, 0, UINT64_C(1) << 62);
    EXPECT_BAD(&b, "metadata count", "cannot fit");
    b_hdr(&b, 3, UINT64_MAX, UINT64_MAX);
    EXPECT_BAD(&b, "count", NULL);
    /* counts that would fit the bytes but records that are not there */
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "a", 1);
    b_data(&b, 14);
    EXPECT_BAD(&b, "metadata record 1", NULL);
    free(b.p);
}

static void test_broken_kv(void) {
    bb b = {0};
    /* absurd key length */
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, UINT64_C(1) << 63);
    b_u32(&b, AN_GGUF_U8);
    b_u8(&b, 0);
    b_data(&b, 32);
    EXPECT_BAD(&b, "metadata record 0", "exceeds the limit");
    /* key length just past the end */
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 100);
    b_put(&b, "abcdefgh", 8);
    b_data(&b, 10);
    EXPECT_BAD(&b, "truncated", "key");
    /* absurd string value length */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.str");
    b_u32(&b, AN_GGUF_STR);
    b_u64(&b, UINT64_C(1) << 63);
    b_data(&b, 16);
    EXPECT_BAD(&b, "key 'k.str'", "exceeds the limit");
    /* array counts: over the limit, and under it but larger than the file */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.arr");
    b_u32(&b, AN_GGUF_ARR);
    b_u32(&b, AN_GGUF_U32);
    b_u64(&b, UINT64_C(1) << 40);
    b_data(&b, 16);
    EXPECT_BAD(&b, "key 'k.arr'", "exceeds the limit");
    b.n -= 16 + 8;
    b_u64(&b, UINT64_C(1) << 29);
    b_data(&b, 16);
    EXPECT_BAD(&b, "key 'k.arr'", "extends past end of file");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.strs");
    b_u32(&b, AN_GGUF_ARR);
    b_u32(&b, AN_GGUF_STR);
    b_u64(&b, UINT64_C(1) << 30);
    b_data(&b, 64);
    EXPECT_BAD(&b, "key 'k.strs'", "cannot fit");
    /* string array whose counted elements fit by size but whose lengths are bogus */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.strs");
    b_u32(&b, AN_GGUF_ARR);
    b_u32(&b, AN_GGUF_STR);
    b_u64(&b, 4);
    b_str(&b, "x");
    b_u64(&b, 1000);
    b_data(&b, 24);
    EXPECT_BAD(&b, "key 'k.strs'", "string element 1");
    /* unknown value types, scalar and element */
    const uint32_t types[] = {13, 0xffffffffu};
    for (int i = 0; i < 2; i++) {
        b_hdr(&b, 3, 0, 1);
        b_str(&b, "k.t");
        b_u32(&b, types[i]);
        b_u32(&b, 0);
        char frag[64];
        snprintf(frag, sizeof frag, "unknown value type %" PRIu32, types[i]);
        EXPECT_BAD(&b, "key 'k.t'", frag);
        b_hdr(&b, 3, 0, 1);
        b_str(&b, "k.t");
        b_u32(&b, AN_GGUF_ARR);
        b_u32(&b, types[i]);
        b_u64(&b, 0);
        EXPECT_BAD(&b, "key 'k.t'", "unknown array element type");
    }
    /* nested array */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.nest");
    b_u32(&b, AN_GGUF_ARR);
    b_u32(&b, AN_GGUF_ARR);
    b_u64(&b, 1);
    b_u32(&b, AN_GGUF_U8);
    b_u64(&b, 1);
    b_u8(&b, 0);
    EXPECT_BAD(&b, "key 'k.nest'", "nested");
    /* bool 2, scalar and in an array */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.flag");
    b_u32(&b, AN_GGUF_BOOL);
    b_u8(&b, 2);
    b_data(&b, 13);
    EXPECT_BAD(&b, "key 'k.flag'", "must be 0 or 1");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k.flags");
    b_u32(&b, AN_GGUF_ARR);
    b_u32(&b, AN_GGUF_BOOL);
    b_u64(&b, 3);
    b_u8(&b, 1);
    b_u8(&b, 0);
    b_u8(&b, 2);
    EXPECT_BAD(&b, "key 'k.flags'", "element 2");
    /* empty key */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "");
    b_u32(&b, AN_GGUF_U32);
    b_u32(&b, 1);
    b_data(&b, 2);
    EXPECT_BAD(&b, "empty key", "byte 24");
    /* duplicate key */
    b_hdr(&b, 3, 0, 3);
    b_kv_u32(&b, "k.a", 1);
    b_kv_u32(&b, "k.b", 1);
    b_kv_str(&b, "k.a", "again");
    EXPECT_BAD(&b, "key 'k.a'", "duplicate key");
    /* a hostile key is shown escaped and bounded */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "bad\n'key\x01");
    b_u32(&b, 77);
    b_u32(&b, 0);
    b_data(&b, 8);
    EXPECT_BAD(&b, "bad\\x0a\\x27key\\x01", "unknown value type 77");
    free(b.p);
}

/* One tensor file with a caller-chosen directory entry; data_bytes of data after padding. */
static void build_one(bb *b, uint32_t align_kv, const char *name, uint32_t n_dims, const int64_t *ne,
                      uint32_t type, uint64_t off, size_t data_bytes) {
    b_hdr(b, 3, 1, align_kv ? 1 : 0);
    if (align_kv) b_kv_u32(b, "general.alignment", align_kv);
    b_tinfo(b, name, n_dims, ne, type, off);
    b_pad(b, align_kv ? align_kv : 32);
    b_data(b, data_bytes);
}

static void test_broken_tensors(void) {
    bb b = {0};
    int64_t ne[5] = {32, 2, 1, 1, 1};
    build_one(&b, 0, "w", 2, ne, AN_TYPE_F32, 0, 256);
    EXPECT_OK(&b);
    /* two tensors with the same name */
    b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "w", 1, ne, AN_TYPE_F32, 0);
    b_tinfo(&b, "w", 1, ne, AN_TYPE_F32, 128);
    b_pad(&b, 32);
    b_data(&b, 256);
    EXPECT_BAD(&b, "tensor 'w'", "duplicate tensor name");
    /* name length: 63 is fine, 64 is not */
    char name[80];
    memset(name, 'n', sizeof name);
    name[63] = 0;
    build_one(&b, 0, name, 2, ne, AN_TYPE_F32, 0, 256);
    EXPECT_OK(&b);
    name[63] = 'n';
    name[64] = 0;
    build_one(&b, 0, name, 2, ne, AN_TYPE_F32, 0, 256);
    EXPECT_BAD(&b, "nnnnnnnn", "too long");
    /* n_dims */
    build_one(&b, 0, "w", 5, ne, AN_TYPE_F32, 0, 256);
    EXPECT_BAD(&b, "tensor 'w'", "n_dims 5");
    build_one(&b, 0, "w", 0, ne, AN_TYPE_F32, 0, 256);
    EXPECT_BAD(&b, "tensor 'w'", "n_dims 0");
    /* negative dimension */
    int64_t neg[2] = {32, -1};
    build_one(&b, 0, "w", 2, neg, AN_TYPE_F32, 0, 256);
    EXPECT_BAD(&b, "tensor 'w'", "negative");
    /* block size */
    int64_t q33[1] = {33};
    build_one(&b, 0, "blk.0.attn_q.weight", 1, q33, AN_TYPE_Q8_0, 0, 256);
    EXPECT_BAD(&b, "tensor 'blk.0.attn_q.weight'", "not a multiple of the Q8_0 block size 32");
    /* unknown and removed types */
    const uint32_t types[] = {4, 5, 31, 43, 1000, 0xffffffffu};
    for (int i = 0; i < 6; i++) {
        char frag[64];
        snprintf(frag, sizeof frag, "tensor type id %" PRIu32, types[i]);
        build_one(&b, 0, "w", 2, ne, types[i], 0, 256);
        EXPECT_BAD(&b, "tensor 'w'", frag);
    }
    /* offsets: unaligned, far out, wrapping, and data running past the end */
    build_one(&b, 0, "w", 2, ne, AN_TYPE_F32, 16, 512);
    EXPECT_BAD(&b, "tensor 'w'", "not a multiple of the alignment 32");
    build_one(&b, 0, "w", 2, ne, AN_TYPE_F32, UINT64_C(1) << 62, 256);
    EXPECT_BAD(&b, "tensor 'w'", "extends past end of file");
    build_one(&b, 0, "w", 2, ne, AN_TYPE_F32, UINT64_MAX - 31, 256);
    EXPECT_BAD(&b, "tensor 'w'", "overflows");
    int64_t big[2] = {32, 3}; /* 384 bytes into 256 */
    build_one(&b, 0, "blk.0.attn_q.weight", 2, big, AN_TYPE_F32, 0, 256);
    EXPECT_BAD(&b, "tensor 'blk.0.attn_q.weight': data range [", "extends past end of file (size");
    build_one(&b, 0, "w", 2, ne, AN_TYPE_F32, 0, 0);
    b.n -= 1; /* the padding before the data is cut short */
    EXPECT_BAD(&b, "data section", "past end of file");
    /* overlap: same start, and partial */
    for (int k = 0; k < 2; k++) {
        b_hdr(&b, 3, 3, 0);
        b_tinfo(&b, "a", 2, ne, AN_TYPE_F32, 512);
        b_tinfo(&b, "b", 2, ne, AN_TYPE_F32, 0);
        b_tinfo(&b, "c", 2, ne, AN_TYPE_F32, k ? 224 : 0); /* b is [0, 256) */
        b_pad(&b, 32);
        b_data(&b, 1024);
        EXPECT_BAD(&b, "overlaps tensor", k ? "tensor 'c'" : "'b'");
    }
    /* lenient: out of order with gaps, plus an empty tensor, is fine */
    b_hdr(&b, 3, 3, 0);
    int64_t zero[2] = {32, 0};
    b_tinfo(&b, "a", 2, ne, AN_TYPE_F32, 640);
    b_tinfo(&b, "b", 2, ne, AN_TYPE_F32, 64);
    b_tinfo(&b, "z", 2, zero, AN_TYPE_F32, 128);
    b_pad(&b, 32);
    b_data(&b, 1024);
    EXPECT_OK(&b);
    /* alignment key: wrong types and bad values */
    b_hdr(&b, 3, 0, 1);
    b_kv_str(&b, "general.alignment", "32");
    EXPECT_BAD(&b, "key 'general.alignment'", "expected UINT32");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, AN_GGUF_U64);
    b_u64(&b, 32);
    EXPECT_BAD(&b, "key 'general.alignment'", "UINT64, expected UINT32");
    const uint32_t aligns[] = {0, 3, 48};
    for (int i = 0; i < 3; i++) {
        b_hdr(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", aligns[i]);
        EXPECT_BAD(&b, "key 'general.alignment'", "power of two");
    }
    /* alignment 64 governs offsets */
    build_one(&b, 64, "w", 2, ne, AN_TYPE_F32, 32, 512);
    EXPECT_BAD(&b, "tensor 'w'", "alignment 64");
    build_one(&b, 64, "w", 2, ne, AN_TYPE_F32, 64, 512);
    EXPECT_OK(&b);
    /* element count and byte size overflow */
    int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    build_one(&b, 0, "w", 2, huge, AN_TYPE_F32, 0, 64);
    EXPECT_BAD(&b, "tensor 'w'", "element count overflows");
    int64_t huge_bytes[1] = {INT64_C(1) << 61};
    build_one(&b, 0, "w", 1, huge_bytes, AN_TYPE_F32, 0, 64);
    EXPECT_BAD(&b, "tensor 'w'", "byte size overflows");
    /* a NUL inside a name would make lookups by name ambiguous */
    b_hdr(&b, 3, 1, 0);
    b_u64(&b, 3);
    b_put(&b, "a\0b", 3);
    b_u32(&b, 1);
    b_u64(&b, 32);
    b_u32(&b, AN_TYPE_F32);
    b_u64(&b, 0);
    b_pad(&b, 32);
    b_data(&b, 128);
    EXPECT_BAD(&b, "tensor 'a\\x00b'", "NUL");
    free(b.p);
}

/* Files on disk: missing, empty, too short, a directory. */
static void test_open_files(void) {
    an_gguf *g = NULL;
    an_err err;
    an_err_clear(&err);
    T_CHECK(an_gguf_open(&g, "/nonexistent/x.gguf", &err) == AN_E_IO && strstr(err.msg, "/nonexistent/x.gguf"),
            "%s", err.msg);
    T_CHECK(g == NULL);
    char path[256];
    strcpy(path, tmp_path("empty.gguf"));
    spit(path, "", 0);
    an_err_clear(&err);
    T_CHECK(an_gguf_open(&g, path, &err) == AN_E_FORMAT && strstr(err.msg, "empty"), "%s", err.msg);
    spit(path, "GGUF\3\0\0\0\0\0", 10);
    an_err_clear(&err);
    T_CHECK(an_gguf_open(&g, path, &err) == AN_E_FORMAT && strstr(err.msg, "byte 8: truncated"), "%s", err.msg);
    an_err_clear(&err);
    T_CHECK(an_gguf_open(&g, g_dir, &err) == AN_E_IO, "%s", err.msg);
    /* the first error recorded wins */
    an_err_clear(&err);
    an_gguf_open(&g, "/nonexistent/a", &err);
    an_gguf_open(&g, "/nonexistent/b", &err);
    T_CHECK(strstr(err.msg, "/a") != NULL, "%s", err.msg);
}

/* ==== Typed getters ========================================================================= */

static void test_getters(void) {
    an_gguf_writer *w = NULL;
    an_err err;
    an_err_clear(&err);
    an_gguf_writer_create(&w, &err);
    uint8_t u8 = 200;
    uint64_t u64big = UINT64_C(1) << 33, u64huge = UINT64_C(1) << 63;
    int64_t i64 = -5;
    double f64 = 1e300;
    an_gguf_writer_u32(w, "a.u32", 7);
    an_gguf_writer_i32(w, "a.neg", -1);
    an_gguf_writer_scalar(w, "a.u8", AN_GGUF_U8, &u8);
    an_gguf_writer_scalar(w, "a.big", AN_GGUF_U64, &u64big);
    an_gguf_writer_scalar(w, "a.huge", AN_GGUF_U64, &u64huge);
    an_gguf_writer_scalar(w, "a.i64", AN_GGUF_I64, &i64);
    an_gguf_writer_scalar(w, "a.f64", AN_GGUF_F64, &f64);
    an_gguf_writer_f32(w, "a.f", 1.5f);
    an_gguf_writer_bool(w, "a.b", true);
    an_gguf_writer_str(w, "a.str", "text");
    float fa[2] = {1, 2};
    an_gguf_writer_arr(w, "a.arr", AN_GGUF_F32, fa, 2);
    const char *path = tmp_path("getters.gguf");
    T_CHECK(an_gguf_writer_write(w, path, &err) == AN_OK, "%s", err.msg);
    an_gguf_writer_free(w);
    an_gguf *g = NULL;
    if (an_gguf_open(&g, path, &err) != AN_OK) {
        T_FAIL("open: %s", err.msg);
        return;
    }
    uint32_t u = 0;
    int64_t i = 0;
    float f = 0;
    bool b = false, found = false;
    an_str s = {0};
    const an_gguf_kv *kv = NULL;
#define OK(call) (an_err_clear(&err), (call) == AN_OK)
#define BAD(call, frag) (an_err_clear(&err), (call) == AN_E_FORMAT && strstr(err.msg, frag) && strstr(err.msg, "byte "))
    T_CHECK(OK(an_gguf_get_u32(g, "a.u32", &u, NULL, &err)) && u == 7, "%s", err.msg);
    T_CHECK(OK(an_gguf_get_u32(g, "a.u8", &u, &found, &err)) && u == 200 && found, "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_u32(g, "a.neg", &u, NULL, &err), "'a.neg'") && strstr(err.msg, "-1"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_u32(g, "a.big", &u, NULL, &err), "'a.big'") && strstr(err.msg, "8589934592"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_u32(g, "a.str", &u, NULL, &err), "'a.str'") && strstr(err.msg, "STRING"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_u32(g, "a.f", &u, NULL, &err), "FLOAT32"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_u32(g, "a.b", &u, NULL, &err), "BOOL"), "%s", err.msg);
    T_CHECK(u == 200, "failed getters must not write the output");
    /* absent keys: required -> error naming the key; optional -> found=false, output untouched */
    an_err_clear(&err);
    T_CHECK(an_gguf_get_u32(g, "a.missing", &u, NULL, &err) == AN_E_FORMAT && strstr(err.msg, "missing key 'a.missing'"),
            "%s", err.msg);
    found = true;
    T_CHECK(OK(an_gguf_get_u32(g, "a.missing", &u, &found, &err)) && !found && u == 200);
    found = true;
    T_CHECK(OK(an_gguf_get_str(g, "a.missing", &s, &found, &err)) && !found && s.p == NULL);
    T_CHECK(OK(an_gguf_get_i64(g, "a.i64", &i, NULL, &err)) && i == -5);
    T_CHECK(OK(an_gguf_get_i64(g, "a.neg", &i, NULL, &err)) && i == -1);
    T_CHECK(OK(an_gguf_get_i64(g, "a.big", &i, NULL, &err)) && i == INT64_C(1) << 33);
    T_CHECK(BAD(an_gguf_get_i64(g, "a.huge", &i, NULL, &err), "'a.huge'"), "%s", err.msg);
    T_CHECK(OK(an_gguf_get_f32(g, "a.f", &f, NULL, &err)) && f == 1.5f);
    T_CHECK(OK(an_gguf_get_f32(g, "a.neg", &f, NULL, &err)) && f == -1.0f);
    T_CHECK(BAD(an_gguf_get_f32(g, "a.f64", &f, NULL, &err), "'a.f64'"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_f32(g, "a.str", &f, NULL, &err), "'a.str'"), "%s", err.msg);
    T_CHECK(OK(an_gguf_get_bool(g, "a.b", &b, &found, &err)) && b && found);
    T_CHECK(BAD(an_gguf_get_bool(g, "a.u8", &b, NULL, &err), "'a.u8' has type UINT8, expected BOOL"), "%s", err.msg);
    T_CHECK(OK(an_gguf_get_str(g, "a.str", &s, NULL, &err)) && an_str_eq(s, "text"));
    T_CHECK(BAD(an_gguf_get_str(g, "a.arr", &s, NULL, &err), "ARRAY of FLOAT32, expected STRING"), "%s", err.msg);
    T_CHECK(OK(an_gguf_get_arr(g, "a.arr", AN_GGUF_F32, &kv, NULL, &err)) && kv && kv->arr_n == 2);
    T_CHECK(OK(an_gguf_get_arr(g, "a.arr", AN_GGUF_VTYPE_COUNT, &kv, NULL, &err)) && kv);
    T_CHECK(BAD(an_gguf_get_arr(g, "a.arr", AN_GGUF_U32, &kv, NULL, &err), "expected ARRAY of UINT32"), "%s", err.msg);
    T_CHECK(BAD(an_gguf_get_arr(g, "a.u32", AN_GGUF_VTYPE_COUNT, &kv, NULL, &err), "'a.u32' has type UINT32"), "%s",
            err.msg);
#undef OK
#undef BAD
    T_CHECK(strcmp(an_gguf_vtype_name(AN_GGUF_F64), "FLOAT64") == 0 && strcmp(an_gguf_vtype_name(99), "unknown") == 0);
    an_str e = {"", 0};
    T_CHECK(an_str_eq(e, "") && !an_str_eq(e, "x") && !an_str_eq((an_str){"ab", 2}, "abc"));
    an_gguf_free(g);
}

/* ==== Shared model files ==================================================================== */

static void test_shared_models(void) {
    const char *p = t_shared_path("models/tinyscribe-28m-f16.gguf");
    if (!p) {
        t_skip("shared models/tinyscribe-28m-f16.gguf is absent (set ANELM_SHARED)");
        return;
    }
    an_gguf *g = NULL;
    an_err err;
    an_err_clear(&err);
    if (an_gguf_open(&g, p, &err) != AN_OK) {
        T_FAIL("open %s: %s", p, err.msg);
        return;
    }
    T_CHECK(an_gguf_version(g) == 3);
    T_CHECK(an_gguf_n_tensors(g) == 74, "%" PRId64, an_gguf_n_tensors(g));
    T_CHECK(an_gguf_alignment(g) == 32);
    an_str arch = {0};
    T_CHECK(an_gguf_get_str(g, "general.architecture", &arch, NULL, &err) == AN_OK && an_str_eq(arch, "llama"),
            "%s", err.msg);
    const an_gguf_kv *tok = NULL;
    T_CHECK(an_gguf_get_arr(g, "tokenizer.ggml.tokens", AN_GGUF_STR, &tok, NULL, &err) == AN_OK && tok &&
                tok->arr_n == 8192, "%s", err.msg);
    const an_gguf_tensor *t = an_gguf_tensor_find(g, "token_embd.weight");
    T_CHECK(t && t->type == AN_TYPE_F16 && t->n_dims == 2 && t->ne[0] == 512 && t->ne[1] == 8192 &&
            t->nbytes == 512u * 8192 * 2);
    uint64_t total = 0;
    for (int64_t i = 0; i < an_gguf_n_tensors(g); i++) total += an_gguf_tensor_at(g, i)->nbytes;
    T_CHECK(total <= an_gguf_size(g));
    an_gguf_free(g);

    p = t_shared_path("models/vocab/bpe-digits-qwen2.vocab.gguf");
    if (!p) {
        t_skip("shared models/vocab/bpe-digits-qwen2.vocab.gguf is absent");
        return;
    }
    an_err_clear(&err);
    T_CHECK(an_gguf_open(&g, p, &err) == AN_OK, "%s", err.msg);
    if (g) {
        T_CHECK(an_gguf_n_tensors(g) == 0);
        T_CHECK(an_gguf_find(g, "tokenizer.ggml.tokens") != NULL);
        an_gguf_free(g);
    }
}

static void test_cleanup(void) {
    tmp_cleanup();
    T_CHECK(access("/tmp", F_OK) == 0);
}

const t_case t_suite_gguf[] = {
    {"round_trip", test_round_trip},
    {"big_string_array", test_big_string_array},
    {"writer_errors", test_writer_errors},
    {"truncated", test_truncated},
    {"broken_header", test_broken_header},
    {"broken_kv", test_broken_kv},
    {"broken_tensors", test_broken_tensors},
    {"open_files", test_open_files},
    {"getters", test_getters},
    {"shared_models", test_shared_models},
    {"cleanup", test_cleanup},
    {0, 0},
};
