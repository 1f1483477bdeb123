/* gguf.c — the GGUF reader: parse and fully validate a file mapped read-only, then serve
 * lookups. The format facts are in shared/research/ggml.md section 1.
 *
 * Everything in a file is hostile until checked: every read goes through the cursor below,
 * which bounds-checks against the mapping, and every sum or product of file numbers is
 * overflow-checked. Allocations are sized by what has actually been parsed (or proven present
 * in the remaining bytes), never by a count the file merely claims. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== Limits ================================================================================ */

#define MAX_STRING (UINT64_C(1) << 30) /* bytes: same bound as ggml, keeps lengths sane */
#define MAX_ARRAY (UINT64_C(1) << 30)  /* elements */
#define MAX_NAME 64                    /* tensor names: at most 63 bytes plus NUL */
#define DEFAULT_ALIGNMENT 32
/* Smallest possible encodings, used to reject counts that cannot fit in the remaining bytes
 * before anything is allocated for them. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)         /* key length, 1-byte key, type, 1-byte value */
#define MIN_TENSOR_BYTES (8 + 4 + 8 + 4 + 8) /* name length, n_dims, one ne, type, offset */

/* ==== Value types =========================================================================== */

static const char *const k_vtype_names[AN_GGUF_VTYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

/* Encoded size of fixed-size types; 0 for STRING and ARRAY. */
static const uint8_t k_vtype_size[AN_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *an_gguf_vtype_name(uint32_t t) {
    return t < AN_GGUF_VTYPE_COUNT ? k_vtype_names[t] : "unknown";
}

static bool vtype_is_int(uint32_t t) {
    return t <= AN_GGUF_I32 || t == AN_GGUF_U64 || t == AN_GGUF_I64;
}

static bool vtype_is_signed(uint32_t t) {
    return t == AN_GGUF_I8 || t == AN_GGUF_I16 || t == AN_GGUF_I32 || t == AN_GGUF_I64;
}

/* Little-endian decode, independent of host byte order. */
static uint64_t ld_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

/* Decode one fixed-size element into the kv value slots. */
static void decode_scalar(uint32_t type, const uint8_t *p, an_gguf_kv *kv) {
    uint64_t raw = ld_le(p, k_vtype_size[type]);
    switch (type) {
    case AN_GGUF_I8: kv->v.i = (int8_t)(uint8_t)raw; break;
    case AN_GGUF_I16: kv->v.i = (int16_t)(uint16_t)raw; break;
    case AN_GGUF_I32: kv->v.i = (int32_t)(uint32_t)raw; break;
    case AN_GGUF_I64: kv->v.i = (int64_t)raw; break;
    case AN_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        kv->v.f = f;
        break;
    }
    case AN_GGUF_F64: memcpy(&kv->v.f, &raw, 8); break;
    default: kv->v.u = raw; break; /* unsigned types and bool */
    }
}

bool an_str_eq(an_str s, const char *c) {
    size_t n = strlen(c);
    return s.n == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* ==== The handle ============================================================================ */

struct an_gguf {
    char *label; /* path or caller's label, for errors and an_gguf_path */
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when we own an mmap of map_len bytes */
    size_t map_len;
    uint32_t version;
    uint64_t alignment, data_off;
    an_gguf_kv *kv;
    int64_t n_kv;
    an_gguf_tensor *t;
    int64_t n_t;
    /* open-addressing hash indexes: slot holds index + 1, 0 is empty */
    size_t *kv_slot, *t_slot;
    size_t kv_mask, t_mask;
};

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* ==== Parse context and errors ============================================================== */

typedef struct pctx {
    an_gguf *g;
    uint64_t pos;
    an_err *err;
    char where[192]; /* "key 'x': " or "tensor 'y': " while inside that record */
} pctx;

/* Render a file-supplied name for a message: bounded, with control bytes, quotes and
 * non-ASCII escaped so a hostile name cannot garble the message. */
static void fmt_name(char *buf, size_t cap, const char *p, uint64_t n) {
    size_t o = 0;
    const size_t shown = 80;
    for (uint64_t i = 0; i < n && i < shown && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\') buf[o++] = (char)ch;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (n > shown && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < cap ? o : cap - 1] = 0;
}

static void set_where(pctx *c, const char *kind, const char *p, uint64_t n) {
    char name[128];
    fmt_name(name, sizeof name, p, n);
    snprintf(c->where, sizeof c->where, "%s '%s': ", kind, name);
}

/* Records "LABEL: byte AT: WHERE message" as an AN_E_FORMAT error. */
AN_PRINTF(3, 4)
static an_status fail(pctx *c, uint64_t at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return an_err_set(c->err, AN_E_FORMAT, "%s: byte %" PRIu64 ": %s%s", c->g->label, at,
                      c->where, msg);
}

/* ==== Bounds-checked cursor ================================================================= */

static uint64_t remaining(const pctx *c) { return c->g->size - c->pos; }

static an_status need(pctx *c, uint64_t n, const char *what) {
    if (n > remaining(c))
        return fail(c, c->pos, "truncated: %s needs %" PRIu64 " bytes but the file ends at byte %" PRIu64,
                    what, n, c->g->size);
    return AN_OK;
}

static an_status rd_u32(pctx *c, uint32_t *v, const char *what) {
    AN_TRY(need(c, 4, what));
    *v = (uint32_t)ld_le(c->g->base + c->pos, 4);
    c->pos += 4;
    return AN_OK;
}

static an_status rd_u64(pctx *c, uint64_t *v, const char *what) {
    AN_TRY(need(c, 8, what));
    *v = ld_le(c->g->base + c->pos, 8);
    c->pos += 8;
    return AN_OK;
}

/* A GGUF string: u64 length then bytes; the view points into the map. */
static an_status rd_str(pctx *c, an_str *s, const char *what) {
    uint64_t at = c->pos, n;
    AN_TRY(rd_u64(c, &n, what));
    if (n > MAX_STRING)
        return fail(c, at, "%s length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes", what, n,
                    MAX_STRING);
    AN_TRY(need(c, n, what));
    s->p = (const char *)c->g->base + c->pos;
    s->n = n;
    c->pos += n;
    return AN_OK;
}

/* ==== Metadata ============================================================================== */

/* Array of strings: a first pass proves every element is in the file, so the view table is
 * only allocated for data that exists (an absurd count cannot cause a huge allocation). */
static an_status parse_str_array(pctx *c, an_gguf_kv *kv) {
    uint64_t start = c->pos;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        an_str s;
        char what[64];
        snprintf(what, sizeof what, "string element %" PRIu64, i);
        AN_TRY(rd_str(c, &s, what));
    }
    if (kv->arr_n == 0) return AN_OK;
    kv->arr_str = malloc((size_t)kv->arr_n * sizeof *kv->arr_str);
    if (!kv->arr_str)
        return an_err_set(c->err, AN_E_NOMEM, "%s: %sout of memory for %" PRIu64 " strings",
                          c->g->label, c->where, kv->arr_n);
    uint64_t p = start;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        uint64_t n = ld_le(c->g->base + p, 8);
        kv->arr_str[i].p = (const char *)c->g->base + p + 8;
        kv->arr_str[i].n = n;
        p += 8 + n;
    }
    return AN_OK;
}

static an_status parse_array(pctx *c, an_gguf_kv *kv) {
    uint64_t at = c->pos;
    AN_TRY(rd_u32(c, &kv->arr_type, "array element type"));
    if (kv->arr_type == AN_GGUF_ARR)
        return fail(c, at, "nested arrays are not supported");
    if (kv->arr_type >= AN_GGUF_VTYPE_COUNT)
        return fail(c, at, "unknown array element type %" PRIu32, kv->arr_type);
    at = c->pos;
    AN_TRY(rd_u64(c, &kv->arr_n, "array element count"));
    if (kv->arr_n > MAX_ARRAY)
        return fail(c, at, "array of %" PRIu64 " elements exceeds the limit of %" PRIu64, kv->arr_n,
                    MAX_ARRAY);
    kv->arr = c->g->base + c->pos;
    if (kv->arr_type == AN_GGUF_STR) {
        /* each string takes at least its 8-byte length */
        if (kv->arr_n > remaining(c) / 8)
            return fail(c, at, "array of %" PRIu64 " strings cannot fit in the %" PRIu64
                        " bytes left in the file", kv->arr_n, remaining(c));
        return parse_str_array(c, kv);
    }
    uint64_t esz = k_vtype_size[kv->arr_type], bytes = kv->arr_n * esz; /* <= 2^33: no overflow */
    if (bytes > remaining(c))
        return fail(c, at, "array of %" PRIu64 " %s elements (%" PRIu64 " bytes) extends past end of file (size %" PRIu64 ")",
                    kv->arr_n, k_vtype_names[kv->arr_type], bytes, c->g->size);
    if (kv->arr_type == AN_GGUF_BOOL) {
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (kv->arr[i] > 1)
                return fail(c, c->pos + i, "bool array element %" PRIu64 " has value %u (must be 0 or 1)",
                            i, kv->arr[i]);
    }
    c->pos += bytes;
    return AN_OK;
}

static an_status parse_kv(pctx *c, an_gguf_kv *kv, uint64_t index) {
    memset(kv, 0, sizeof *kv);
    kv->off = c->pos;
    snprintf(c->where, sizeof c->where, "metadata record %" PRIu64 ": ", index);
    AN_TRY(rd_str(c, &kv->key, "key"));
    if (kv->key.n == 0) return fail(c, kv->off, "empty key");
    set_where(c, "key", kv->key.p, kv->key.n);
    uint64_t at = c->pos;
    AN_TRY(rd_u32(c, &kv->type, "value type"));
    if (kv->type >= AN_GGUF_VTYPE_COUNT)
        return fail(c, at, "unknown value type %" PRIu32, kv->type);
    at = c->pos;
    if (kv->type == AN_GGUF_ARR) return parse_array(c, kv);
    if (kv->type == AN_GGUF_STR) return rd_str(c, &kv->v.s, "string value");
    AN_TRY(need(c, k_vtype_size[kv->type], k_vtype_names[kv->type]));
    decode_scalar(kv->type, c->g->base + at, kv);
    c->pos += k_vtype_size[kv->type];
    if (kv->type == AN_GGUF_BOOL && kv->v.u > 1)
        return fail(c, at, "bool value %" PRIu64 " (must be 0 or 1)", kv->v.u);
    return AN_OK;
}

/* ==== Tensor directory ====================================================================== */

static an_status parse_tensor(pctx *c, an_gguf_tensor *t, uint64_t index) {
    memset(t, 0, sizeof *t);
    uint64_t rec = c->pos;
    an_str name;
    snprintf(c->where, sizeof c->where, "tensor info %" PRIu64 ": ", index);
    AN_TRY(rd_str(c, &name, "tensor name"));
    if (name.n >= MAX_NAME) {
        set_where(c, "tensor", name.p, name.n);
        return fail(c, rec, "name of %" PRIu64 " bytes is too long (at most %d)", name.n, MAX_NAME - 1);
    }
    set_where(c, "tensor", name.p, name.n);
    if (memchr(name.p, 0, (size_t)name.n)) return fail(c, rec, "name contains a NUL byte");
    memcpy(t->name, name.p, (size_t)name.n);
    t->name[name.n] = 0;

    uint64_t at = c->pos;
    AN_TRY(rd_u32(c, &t->n_dims, "n_dims"));
    if (t->n_dims < 1 || t->n_dims > 4)
        return fail(c, at, "n_dims %" PRIu32 " is out of range (1..4)", t->n_dims);
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        at = c->pos;
        AN_TRY(rd_u64(c, &v, "dimension"));
        if (v > (uint64_t)INT64_MAX)
            return fail(c, at, "ne[%" PRIu32 "] = %" PRId64 " is negative", d, (int64_t)v);
        t->ne[d] = (int64_t)v;
    }
    at = c->pos;
    AN_TRY(rd_u32(c, &t->type, "tensor type"));
    const an_type_traits *tt = an_type_traits_get(t->type);
    if (!tt) return fail(c, at, "unknown or removed tensor type id %" PRIu32, t->type);
    if (t->ne[0] % tt->blck != 0)
        return fail(c, rec, "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRIu32,
                    t->ne[0], tt->name, tt->blck);

    /* element count and byte size must fit in int64 (what the rest of the runtime indexes with) */
    uint64_t nel = 1, nbytes = an_row_bytes(tt, (uint64_t)t->ne[0]);
    for (int d = 0; d < 4; d++)
        if (__builtin_mul_overflow(nel, (uint64_t)t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return fail(c, rec, "element count overflows (ne = [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "])",
                        t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    for (int d = 1; d < 4; d++)
        if (__builtin_mul_overflow(nbytes, (uint64_t)t->ne[d], &nbytes) || nbytes > (uint64_t)INT64_MAX)
            return fail(c, rec, "byte size overflows (ne = [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "])",
                        t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    t->nbytes = nbytes;

    at = c->pos;
    AN_TRY(rd_u64(c, &t->off, "tensor data offset"));
    if (t->off % c->g->alignment != 0)
        return fail(c, at, "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                    t->off, c->g->alignment);
    return AN_OK;
}

/* ==== Indexes =============================================================================== */

static size_t *index_alloc(int64_t n, size_t *mask) {
    size_t cap = 8;
    while (cap < (size_t)n * 2) cap *= 2;
    *mask = cap - 1;
    return calloc(cap, sizeof(size_t));
}

static const an_gguf_kv *kv_lookup(const an_gguf *g, const char *key, size_t n) {
    if (!g->kv_slot) return NULL;
    for (size_t h = hash_bytes(key, n) & g->kv_mask;; h = (h + 1) & g->kv_mask) {
        size_t s = g->kv_slot[h];
        if (!s) return NULL;
        const an_gguf_kv *kv = &g->kv[s - 1];
        if (kv->key.n == n && memcmp(kv->key.p, key, n) == 0) return kv;
    }
}

static const an_gguf_tensor *t_lookup(const an_gguf *g, const char *name, size_t n) {
    if (!g->t_slot) return NULL;
    for (size_t h = hash_bytes(name, n) & g->t_mask;; h = (h + 1) & g->t_mask) {
        size_t s = g->t_slot[h];
        if (!s) return NULL;
        const an_gguf_tensor *t = &g->t[s - 1];
        if (strlen(t->name) == n && memcmp(t->name, name, n) == 0) return t;
    }
}

static an_status build_kv_index(pctx *c) {
    an_gguf *g = c->g;
    g->kv_slot = index_alloc(g->n_kv, &g->kv_mask);
    if (!g->kv_slot) return an_err_set(c->err, AN_E_NOMEM, "%s: out of memory", g->label);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const an_gguf_kv *kv = &g->kv[i];
        const an_gguf_kv *prev = kv_lookup(g, kv->key.p, (size_t)kv->key.n);
        if (prev) {
            set_where(c, "key", kv->key.p, kv->key.n);
            return fail(c, kv->off, "duplicate key (first defined at byte %" PRIu64 ")", prev->off);
        }
        size_t h = hash_bytes(kv->key.p, (size_t)kv->key.n) & g->kv_mask;
        while (g->kv_slot[h]) h = (h + 1) & g->kv_mask;
        g->kv_slot[h] = (size_t)i + 1;
    }
    return AN_OK;
}

static an_status build_tensor_index(pctx *c, const uint64_t *rec) {
    an_gguf *g = c->g;
    g->t_slot = index_alloc(g->n_t, &g->t_mask);
    if (!g->t_slot) return an_err_set(c->err, AN_E_NOMEM, "%s: out of memory", g->label);
    for (int64_t i = 0; i < g->n_t; i++) {
        size_t n = strlen(g->t[i].name);
        const an_gguf_tensor *prev = t_lookup(g, g->t[i].name, n);
        if (prev) {
            set_where(c, "tensor", g->t[i].name, n);
            return fail(c, rec[i], "duplicate tensor name (first defined at byte %" PRIu64 ")",
                        rec[prev - g->t]);
        }
        size_t h = hash_bytes(g->t[i].name, n) & g->t_mask;
        while (g->t_slot[h]) h = (h + 1) & g->t_mask;
        g->t_slot[h] = (size_t)i + 1;
    }
    return AN_OK;
}

/* ==== Alignment and data ranges ============================================================= */

static an_status read_alignment(pctx *c) {
    const an_gguf_kv *kv = kv_lookup(c->g, "general.alignment", 17);
    c->g->alignment = DEFAULT_ALIGNMENT;
    if (!kv) return AN_OK;
    set_where(c, "key", kv->key.p, kv->key.n);
    if (kv->type != AN_GGUF_U32)
        return fail(c, kv->off, "has type %s, expected UINT32", an_gguf_vtype_name(kv->type));
    if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) != 0)
        return fail(c, kv->off, "alignment %" PRIu64 " is not a non-zero power of two", kv->v.u);
    c->g->alignment = kv->v.u;
    c->where[0] = 0;
    return AN_OK;
}

typedef struct span {
    uint64_t off, end;
    int64_t i;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Lenient about order and gaps (unlike ggml), strict about bounds and overlap, so a tensor
 * view can never reach outside the file or alias another tensor. */
static an_status check_data_ranges(pctx *c, const uint64_t *rec) {
    an_gguf *g = c->g;
    for (int64_t i = 0; i < g->n_t; i++) {
        an_gguf_tensor *t = &g->t[i];
        uint64_t end;
        set_where(c, "tensor", t->name, strlen(t->name));
        if (__builtin_add_overflow(g->data_off, t->off, &t->off) ||
            __builtin_add_overflow(t->off, t->nbytes, &end))
            return fail(c, rec[i], "data offset overflows");
        if (end > g->size)
            return fail(c, rec[i], "data range [%" PRIu64 ", %" PRIu64 ") extends past end of file (size %" PRIu64 ")",
                        t->off, end, g->size);
        t->data = g->base + t->off;
    }
    c->where[0] = 0;
    if (g->n_t < 2) return AN_OK;
    span *sp = malloc((size_t)g->n_t * sizeof *sp);
    if (!sp) return an_err_set(c->err, AN_E_NOMEM, "%s: out of memory", g->label);
    for (int64_t i = 0; i < g->n_t; i++)
        sp[i] = (span){g->t[i].off, g->t[i].off + g->t[i].nbytes, i};
    qsort(sp, (size_t)g->n_t, sizeof *sp, cmp_span);
    /* sweep: the tensor reaching furthest so far must end before the next one starts */
    const span *far = NULL;
    an_status st = AN_OK;
    for (int64_t k = 0; k < g->n_t && st == AN_OK; k++) {
        const span *s = &sp[k];
        if (s->end == s->off) continue; /* an empty range overlaps nothing */
        if (far && s->off < far->end) {
            const an_gguf_tensor *t = &g->t[s->i], *o = &g->t[far->i];
            char other[128];
            fmt_name(other, sizeof other, o->name, strlen(o->name));
            set_where(c, "tensor", t->name, strlen(t->name));
            st = fail(c, rec[s->i], "data range [%" PRIu64 ", %" PRIu64 ") overlaps tensor '%s' at [%" PRIu64 ", %" PRIu64 ")",
                      s->off, s->end, other, far->off, far->end);
        }
        if (!far || s->end > far->end) far = s;
    }
    free(sp);
    return st;
}

/* ==== Top-level parse ======================================================================= */

static an_status check_version(pctx *c, uint32_t v) {
    if (v == 0) return fail(c, 4, "invalid version 0");
    if ((v & 0xffff) == 0)
        return fail(c, 4, "version 0x%08" PRIx32 " looks byte-swapped: big-endian GGUF files are not supported", v);
    if (v == 1) return fail(c, 4, "GGUF version 1 is no longer supported (need 2 or 3)");
    if (v > 3) return fail(c, 4, "unsupported GGUF version %" PRIu32 " (need 2 or 3)", v);
    return AN_OK;
}

/* Grow a parsed-record array geometrically: memory tracks records actually read. */
static an_status grow(pctx *c, void **arr, int64_t *cap, int64_t n, size_t elem) {
    if (n < *cap) return AN_OK;
    int64_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return an_err_set(c->err, AN_E_NOMEM, "%s: out of memory", c->g->label);
    *arr = p;
    *cap = nc;
    return AN_OK;
}

static an_status parse(pctx *c) {
    an_gguf *g = c->g;
    if (g->size == 0) return fail(c, 0, "file is empty, not a GGUF file");
    AN_TRY(need(c, 4, "magic"));
    if (memcmp(g->base, "GGUF", 4) != 0)
        return fail(c, 0, "bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file",
                    g->base[0], g->base[1], g->base[2], g->base[3]);
    c->pos = 4;
    AN_TRY(rd_u32(c, &g->version, "version"));
    AN_TRY(check_version(c, g->version));
    uint64_t n_t, n_kv;
    AN_TRY(rd_u64(c, &n_t, "tensor count"));
    AN_TRY(rd_u64(c, &n_kv, "metadata count"));
    if (n_t > remaining(c) / MIN_TENSOR_BYTES)
        return fail(c, 8, "tensor count %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file",
                    n_t, remaining(c));
    if (n_kv > remaining(c) / MIN_KV_BYTES)
        return fail(c, 16, "metadata count %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file",
                    n_kv, remaining(c));

    int64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        AN_TRY(grow(c, (void **)&g->kv, &cap, g->n_kv, sizeof *g->kv));
        an_status st = parse_kv(c, &g->kv[g->n_kv], i);
        /* count it even on failure so a partial string table is freed */
        g->n_kv++;
        if (st) return st;
    }
    c->where[0] = 0;
    AN_TRY(build_kv_index(c));
    AN_TRY(read_alignment(c));

    /* record offsets kept only while parsing, to place errors found after the directory */
    uint64_t *rec = NULL;
    int64_t rec_cap = 0;
    an_status st = AN_OK;
    cap = 0;
    for (uint64_t i = 0; i < n_t && st == AN_OK; i++) {
        if ((st = grow(c, (void **)&g->t, &cap, g->n_t, sizeof *g->t))) break;
        if ((st = grow(c, (void **)&rec, &rec_cap, g->n_t, sizeof *rec))) break;
        rec[g->n_t] = c->pos;
        if ((st = parse_tensor(c, &g->t[g->n_t], i))) break;
        g->n_t++;
    }
    c->where[0] = 0;
    if (st == AN_OK) st = build_tensor_index(c, rec);
    if (st == AN_OK) {
        uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
        if (__builtin_add_overflow(c->pos, pad, &g->data_off)) g->data_off = UINT64_MAX;
        if (g->data_off > g->size) {
            if (g->n_t > 0)
                st = fail(c, c->pos, "data section would start at byte %" PRIu64 ", past end of file (size %" PRIu64 ")",
                          g->data_off, g->size);
            else
                g->data_off = g->size; /* vocabulary-only files may stop right after metadata */
        }
    }
    if (st == AN_OK) st = check_data_ranges(c, rec);
    free(rec);
    return st;
}

/* ==== Open / free =========================================================================== */

static an_status open_common(an_gguf **out, an_gguf *g, an_err *err) {
    pctx c = {.g = g, .pos = 0, .err = err};
    c.where[0] = 0;
    an_status st = parse(&c);
    if (st != AN_OK) {
        an_gguf_free(g);
        return st;
    }
    *out = g;
    return AN_OK;
}

an_status an_gguf_open_mem(an_gguf **out, const void *data, size_t size, const char *label,
                           an_err *err) {
    if (!out) return an_err_set(err, AN_E_USAGE, "an_gguf_open_mem: out is NULL");
    *out = NULL;
    if (!data && size) return an_err_set(err, AN_E_USAGE, "an_gguf_open_mem: data is NULL");
    an_gguf *g = calloc(1, sizeof *g);
    if (g) g->label = strdup(label ? label : "<memory>");
    if (!g || !g->label) {
        an_gguf_free(g);
        return an_err_set(err, AN_E_NOMEM, "%s: out of memory", label ? label : "<memory>");
    }
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    return open_common(out, g, err);
}

an_status an_gguf_open(an_gguf **out, const char *path, an_err *err) {
    if (!out || !path) return an_err_set(err, AN_E_USAGE, "an_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return an_err_set(err, AN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return an_err_set(err, AN_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return an_err_set(err, AN_E_IO, "%s: not a regular file", path);
    }
    an_gguf *g = calloc(1, sizeof *g);
    if (g) g->label = strdup(path);
    if (!g || !g->label) {
        close(fd);
        an_gguf_free(g);
        return an_err_set(err, AN_E_NOMEM, "%s: out of memory", path);
    }
    g->size = (uint64_t)sb.st_size;
    g->base = (const uint8_t *)"";
    if (sb.st_size > 0) {
        if ((uint64_t)sb.st_size > SIZE_MAX) {
            close(fd);
            an_gguf_free(g);
            return an_err_set(err, AN_E_IO, "%s: too large to map", path);
        }
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            an_gguf_free(g);
            return an_err_set(err, AN_E_IO, "%s: cannot mmap %" PRIu64 " bytes: %s", path,
                              (uint64_t)sb.st_size, strerror(e));
        }
        g->map = m;
        g->map_len = (size_t)sb.st_size;
        g->base = m;
    }
    close(fd); /* the mapping keeps the file alive */
    return open_common(out, g, err);
}

void an_gguf_free(an_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].arr_str);
    free(g->kv);
    free(g->t);
    free(g->kv_slot);
    free(g->t_slot);
    if (g->map) munmap(g->map, g->map_len);
    free(g->label);
    free(g);
}

/* ==== Accessors ============================================================================= */

const char *an_gguf_path(const an_gguf *g) { return g->label; }
uint32_t an_gguf_version(const an_gguf *g) { return g->version; }
uint64_t an_gguf_size(const an_gguf *g) { return g->size; }
uint64_t an_gguf_alignment(const an_gguf *g) { return g->alignment; }
uint64_t an_gguf_data_offset(const an_gguf *g) { return g->data_off; }
int64_t an_gguf_n_kv(const an_gguf *g) { return g->n_kv; }
int64_t an_gguf_n_tensors(const an_gguf *g) { return g->n_t; }

const an_gguf_kv *an_gguf_kv_at(const an_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const an_gguf_tensor *an_gguf_tensor_at(const an_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_t ? &g->t[i] : NULL;
}

const an_gguf_kv *an_gguf_find(const an_gguf *g, const char *key) {
    return key ? kv_lookup(g, key, strlen(key)) : NULL;
}

const an_gguf_tensor *an_gguf_tensor_find(const an_gguf *g, const char *name) {
    return name ? t_lookup(g, name, strlen(name)) : NULL;
}

double an_gguf_arr_f64(const an_gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != AN_GGUF_ARR || i >= kv->arr_n || kv->arr_type >= AN_GGUF_VTYPE_COUNT)
        return 0;
    unsigned esz = k_vtype_size[kv->arr_type];
    if (!esz) return 0;
    an_gguf_kv e;
    decode_scalar(kv->arr_type, kv->arr + i * esz, &e);
    if (kv->arr_type == AN_GGUF_F32 || kv->arr_type == AN_GGUF_F64) return e.v.f;
    return vtype_is_signed(kv->arr_type) ? (double)e.v.i : (double)e.v.u;
}

int64_t an_gguf_arr_i64(const an_gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != AN_GGUF_ARR || i >= kv->arr_n || kv->arr_type >= AN_GGUF_VTYPE_COUNT)
        return 0;
    unsigned esz = k_vtype_size[kv->arr_type];
    if (!esz) return 0;
    an_gguf_kv e;
    decode_scalar(kv->arr_type, kv->arr + i * esz, &e);
    if (kv->arr_type == AN_GGUF_F32 || kv->arr_type == AN_GGUF_F64) {
        /* saturate: converting an out-of-range float to an integer is undefined behaviour */
        double f = e.v.f;
        if (!(f == f)) return 0;
        if (f >= 9223372036854775807.0) return INT64_MAX;
        if (f <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)f;
    }
    return e.v.i;
}

/* ==== Typed getters ========================================================================= */

/* Common head of the getters: absent keys are fine only when the caller passes found. */
static an_status get_kv(const an_gguf *g, const char *key, bool *found, const an_gguf_kv **kv,
                        an_err *err) {
    *kv = an_gguf_find(g, key);
    if (found) *found = *kv != NULL;
    if (!*kv && !found)
        return an_err_set(err, AN_E_FORMAT, "%s: missing key '%s'", g->label, key ? key : "(null)");
    return AN_OK;
}

static an_status wrong_type(const an_gguf *g, const an_gguf_kv *kv, const char *expected,
                            an_err *err) {
    char name[128];
    fmt_name(name, sizeof name, kv->key.p, kv->key.n);
    if (kv->type == AN_GGUF_ARR)
        return an_err_set(err, AN_E_FORMAT, "%s: byte %" PRIu64 ": key '%s' has type ARRAY of %s, expected %s",
                          g->label, kv->off, name, an_gguf_vtype_name(kv->arr_type), expected);
    return an_err_set(err, AN_E_FORMAT, "%s: byte %" PRIu64 ": key '%s' has type %s, expected %s",
                      g->label, kv->off, name, an_gguf_vtype_name(kv->type), expected);
}

static an_status out_of_range(const an_gguf *g, const an_gguf_kv *kv, const char *target,
                              an_err *err) {
    char name[128], val[48];
    fmt_name(name, sizeof name, kv->key.p, kv->key.n);
    if (kv->type == AN_GGUF_F32 || kv->type == AN_GGUF_F64) snprintf(val, sizeof val, "%g", kv->v.f);
    else if (vtype_is_signed(kv->type)) snprintf(val, sizeof val, "%" PRId64, kv->v.i);
    else snprintf(val, sizeof val, "%" PRIu64, kv->v.u);
    return an_err_set(err, AN_E_FORMAT, "%s: byte %" PRIu64 ": key '%s': value %s (%s) does not fit in %s",
                      g->label, kv->off, name, val, an_gguf_vtype_name(kv->type), target);
}

an_status an_gguf_get_u32(const an_gguf *g, const char *key, uint32_t *out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (!vtype_is_int(kv->type)) return wrong_type(g, kv, "an integer (UINT32)", err);
    if (vtype_is_signed(kv->type) ? (kv->v.i < 0 || kv->v.i > (int64_t)UINT32_MAX) : kv->v.u > UINT32_MAX)
        return out_of_range(g, kv, "UINT32", err);
    *out = (uint32_t)kv->v.u;
    return AN_OK;
}

an_status an_gguf_get_i64(const an_gguf *g, const char *key, int64_t *out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (!vtype_is_int(kv->type)) return wrong_type(g, kv, "an integer (INT64)", err);
    if (!vtype_is_signed(kv->type) && kv->v.u > (uint64_t)INT64_MAX)
        return out_of_range(g, kv, "INT64", err);
    *out = kv->v.i;
    return AN_OK;
}

an_status an_gguf_get_f32(const an_gguf *g, const char *key, float *out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (kv->type == AN_GGUF_F32 || kv->type == AN_GGUF_F64) {
        if (isfinite(kv->v.f) && fabs(kv->v.f) > FLT_MAX) return out_of_range(g, kv, "FLOAT32", err);
        *out = (float)kv->v.f;
    } else if (vtype_is_int(kv->type)) {
        *out = vtype_is_signed(kv->type) ? (float)kv->v.i : (float)kv->v.u;
    } else {
        return wrong_type(g, kv, "a number (FLOAT32)", err);
    }
    return AN_OK;
}

an_status an_gguf_get_bool(const an_gguf *g, const char *key, bool *out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (kv->type != AN_GGUF_BOOL) return wrong_type(g, kv, "BOOL", err);
    *out = kv->v.u != 0;
    return AN_OK;
}

an_status an_gguf_get_str(const an_gguf *g, const char *key, an_str *out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (kv->type != AN_GGUF_STR) return wrong_type(g, kv, "STRING", err);
    *out = kv->v.s;
    return AN_OK;
}

an_status an_gguf_get_arr(const an_gguf *g, const char *key, uint32_t elem_type,
                          const an_gguf_kv **out, bool *found, an_err *err) {
    const an_gguf_kv *kv;
    AN_TRY(get_kv(g, key, found, &kv, err));
    if (!kv) return AN_OK;
    if (kv->type != AN_GGUF_ARR || (elem_type < AN_GGUF_VTYPE_COUNT && kv->arr_type != elem_type)) {
        char want[48];
        if (elem_type < AN_GGUF_VTYPE_COUNT)
            snprintf(want, sizeof want, "ARRAY of %s", an_gguf_vtype_name(elem_type));
        else
            snprintf(want, sizeof want, "ARRAY");
        return wrong_type(g, kv, want, err);
    }
    *out = kv;
    return AN_OK;
}
