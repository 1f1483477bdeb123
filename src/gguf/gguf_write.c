/* gguf_write.c — the GGUF v3 writer used by tools (quantize, test fixtures).
 *
 * Metadata values are encoded when they are set, so the writer owns no pointers into caller
 * memory except tensor data. The file is written to a temporary sibling and renamed into
 * place only after an fsync, so readers never see a partial file and a failure leaves the
 * destination untouched. Errors are sticky: the first one is kept and reported by
 * an_gguf_writer_write, which lets callers chain setters without checking each one. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STRING (UINT64_C(1) << 30) /* what our reader (and ggml's) accepts */
#define MAX_ARRAY (UINT64_C(1) << 30)
#define MAX_NAME 64

static const uint8_t k_size[AN_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ==== Byte buffer =========================================================================== */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void buf_le(buf *b, uint64_t v, unsigned n) {
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, t, n);
}

static void buf_str(buf *b, const void *p, uint64_t n) {
    buf_le(b, n, 8);
    buf_put(b, p, (size_t)n);
}

/* ==== Writer state ========================================================================== */

typedef struct wkv {
    char *key;
    uint32_t type;
    buf val; /* encoded value as it appears after the type field */
} wkv;

typedef struct wtensor {
    char name[MAX_NAME];
    uint32_t type, n_dims;
    int64_t ne[4];
    const void *data;
    uint64_t nbytes;
} wtensor;

struct an_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint32_t alignment;
    an_err err;
};

AN_PRINTF(3, 4)
static void werr(an_gguf_writer *w, an_status code, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    an_err_set(&w->err, code, "gguf writer: %s", msg);
}

an_status an_gguf_writer_create(an_gguf_writer **out, an_err *err) {
    if (!out) return an_err_set(err, AN_E_USAGE, "an_gguf_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return an_err_set(err, AN_E_NOMEM, "gguf writer: out of memory");
    (*out)->alignment = 32;
    an_err_clear(&(*out)->err);
    return AN_OK;
}

void an_gguf_writer_free(an_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* ==== Metadata ============================================================================== */

/* Start a KV: replaces the value of an existing key in place (keeping its position), else
 * appends. Returns the value buffer to fill, or NULL after recording an error. */
static buf *kv_begin(an_gguf_writer *w, const char *key, uint32_t type) {
    if (w->err.code) return NULL;
    if (!key || !*key) {
        werr(w, AN_E_USAGE, "empty or NULL key");
        return NULL;
    }
    if (strlen(key) > MAX_STRING) {
        werr(w, AN_E_USAGE, "key of %zu bytes is too long", strlen(key));
        return NULL;
    }
    wkv *kv = NULL;
    for (size_t i = 0; i < w->n_kv && !kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) kv = &w->kv[i];
    if (!kv) {
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
            wkv *p = realloc(w->kv, cap * sizeof *p);
            if (!p) {
                werr(w, AN_E_NOMEM, "out of memory");
                return NULL;
            }
            w->kv = p;
            w->cap_kv = cap;
        }
        char *k = strdup(key);
        if (!k) {
            werr(w, AN_E_NOMEM, "out of memory");
            return NULL;
        }
        kv = &w->kv[w->n_kv++];
        memset(kv, 0, sizeof *kv);
        kv->key = k;
    }
    kv->type = type;
    kv->val.n = 0;
    kv->val.oom = false;
    return &kv->val;
}

static void kv_end(an_gguf_writer *w, buf *b) {
    if (b && b->oom) werr(w, AN_E_NOMEM, "out of memory");
}

/* general.alignment drives the layout, so the KV and the writer's alignment stay in sync. */
static bool alignment_key_ok(an_gguf_writer *w, const char *key, uint32_t type, uint64_t v) {
    if (!key || strcmp(key, "general.alignment") != 0) return true;
    if (type != AN_GGUF_U32) {
        werr(w, AN_E_USAGE, "key 'general.alignment' must be UINT32, not %s", an_gguf_vtype_name(type));
        return false;
    }
    if (v == 0 || (v & (v - 1)) != 0) {
        werr(w, AN_E_USAGE, "alignment %" PRIu64 " is not a non-zero power of two", v);
        return false;
    }
    w->alignment = (uint32_t)v;
    return true;
}

/* Host-order value of a fixed-size type -> its raw bits. */
static uint64_t scalar_bits(uint32_t type, const void *v) {
    switch (type) {
    case AN_GGUF_U8: return *(const uint8_t *)v;
    case AN_GGUF_I8: return (uint8_t) * (const int8_t *)v;
    case AN_GGUF_U16: return *(const uint16_t *)v;
    case AN_GGUF_I16: return (uint16_t) * (const int16_t *)v;
    case AN_GGUF_U32: return *(const uint32_t *)v;
    case AN_GGUF_I32: return (uint32_t) * (const int32_t *)v;
    case AN_GGUF_BOOL: return *(const bool *)v ? 1 : 0;
    case AN_GGUF_U64: return *(const uint64_t *)v;
    case AN_GGUF_I64: return (uint64_t) * (const int64_t *)v;
    case AN_GGUF_F32: {
        uint32_t u;
        memcpy(&u, v, 4);
        return u;
    }
    case AN_GGUF_F64: {
        uint64_t u;
        memcpy(&u, v, 8);
        return u;
    }
    }
    return 0;
}

static void put_scalar_bits(an_gguf_writer *w, const char *key, uint32_t type, uint64_t bits) {
    if (w->err.code) return;
    if (!alignment_key_ok(w, key, type, bits)) return;
    buf *b = kv_begin(w, key, type);
    if (!b) return;
    buf_le(b, bits, k_size[type]);
    kv_end(w, b);
}

void an_gguf_writer_scalar(an_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    if (!w || w->err.code) return;
    if (type >= AN_GGUF_VTYPE_COUNT || !k_size[type] || !v) {
        werr(w, AN_E_USAGE, "key '%s': an_gguf_writer_scalar needs a fixed-size type and a value (type %" PRIu32 ")",
             key ? key : "(null)", type);
        return;
    }
    put_scalar_bits(w, key, type, scalar_bits(type, v));
}

void an_gguf_writer_u32(an_gguf_writer *w, const char *key, uint32_t v) {
    an_gguf_writer_scalar(w, key, AN_GGUF_U32, &v);
}
void an_gguf_writer_i32(an_gguf_writer *w, const char *key, int32_t v) {
    an_gguf_writer_scalar(w, key, AN_GGUF_I32, &v);
}
void an_gguf_writer_f32(an_gguf_writer *w, const char *key, float v) {
    an_gguf_writer_scalar(w, key, AN_GGUF_F32, &v);
}
void an_gguf_writer_bool(an_gguf_writer *w, const char *key, bool v) {
    an_gguf_writer_scalar(w, key, AN_GGUF_BOOL, &v);
}

static void put_str(an_gguf_writer *w, const char *key, const char *p, uint64_t n) {
    if (!w || w->err.code) return;
    if (!alignment_key_ok(w, key, AN_GGUF_STR, 0)) return;
    if (n > MAX_STRING) {
        werr(w, AN_E_USAGE, "key '%s': string of %" PRIu64 " bytes is too long", key ? key : "(null)", n);
        return;
    }
    buf *b = kv_begin(w, key, AN_GGUF_STR);
    if (!b) return;
    buf_str(b, p, n);
    kv_end(w, b);
}

void an_gguf_writer_str(an_gguf_writer *w, const char *key, const char *v) {
    if (w && !v) {
        werr(w, AN_E_USAGE, "key '%s': NULL string", key ? key : "(null)");
        return;
    }
    put_str(w, key, v, v ? strlen(v) : 0);
}

/* Fixed-size elements are copied as given (already little-endian); bools are checked because
 * a reader rejects anything but 0 and 1. */
static void put_arr(an_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                    uint64_t n) {
    if (!w || w->err.code) return;
    if (!alignment_key_ok(w, key, AN_GGUF_ARR, 0)) return;
    if (elem_type >= AN_GGUF_VTYPE_COUNT || !k_size[elem_type]) {
        werr(w, AN_E_USAGE, "key '%s': array element type %" PRIu32 " is not a fixed-size type",
             key ? key : "(null)", elem_type);
        return;
    }
    if (n > MAX_ARRAY || (n && !data)) {
        werr(w, AN_E_USAGE, "key '%s': bad array (%" PRIu64 " elements, data %s)", key ? key : "(null)",
             n, data ? "set" : "NULL");
        return;
    }
    if (elem_type == AN_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1) {
                werr(w, AN_E_USAGE, "key '%s': bool element %" PRIu64 " is not 0 or 1", key, i);
                return;
            }
    buf *b = kv_begin(w, key, AN_GGUF_ARR);
    if (!b) return;
    buf_le(b, elem_type, 4);
    buf_le(b, n, 8);
    buf_put(b, data, (size_t)(n * k_size[elem_type]));
    kv_end(w, b);
}

void an_gguf_writer_arr(an_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                        uint64_t n) {
    put_arr(w, key, elem_type, data, n);
}

void an_gguf_writer_arr_str(an_gguf_writer *w, const char *key, const an_str *v, uint64_t n) {
    if (!w || w->err.code) return;
    if (!alignment_key_ok(w, key, AN_GGUF_ARR, 0)) return;
    if (n > MAX_ARRAY || (n && !v)) {
        werr(w, AN_E_USAGE, "key '%s': bad string array (%" PRIu64 " elements)", key ? key : "(null)", n);
        return;
    }
    for (uint64_t i = 0; i < n; i++)
        if (v[i].n > MAX_STRING || (v[i].n && !v[i].p)) {
            werr(w, AN_E_USAGE, "key '%s': bad string element %" PRIu64, key, i);
            return;
        }
    buf *b = kv_begin(w, key, AN_GGUF_ARR);
    if (!b) return;
    buf_le(b, AN_GGUF_STR, 4);
    buf_le(b, n, 8);
    for (uint64_t i = 0; i < n; i++) buf_str(b, v[i].p, v[i].n);
    kv_end(w, b);
}

void an_gguf_writer_kv_copy(an_gguf_writer *w, const an_gguf_kv *kv) {
    if (!w || w->err.code) return;
    if (!kv || kv->type >= AN_GGUF_VTYPE_COUNT) {
        werr(w, AN_E_USAGE, "kv_copy: bad record");
        return;
    }
    /* the reader's keys are not NUL-terminated */
    if (kv->key.n == 0 || kv->key.n > MAX_STRING || memchr(kv->key.p, 0, (size_t)kv->key.n)) {
        werr(w, AN_E_USAGE, "kv_copy: key cannot be copied");
        return;
    }
    char *key = malloc((size_t)kv->key.n + 1);
    if (!key) {
        werr(w, AN_E_NOMEM, "out of memory");
        return;
    }
    memcpy(key, kv->key.p, (size_t)kv->key.n);
    key[kv->key.n] = 0;
    if (kv->type == AN_GGUF_STR) put_str(w, key, kv->v.s.p, kv->v.s.n);
    else if (kv->type == AN_GGUF_ARR && kv->arr_type == AN_GGUF_STR)
        an_gguf_writer_arr_str(w, key, kv->arr_str, kv->arr_n);
    else if (kv->type == AN_GGUF_ARR) put_arr(w, key, kv->arr_type, kv->arr, kv->arr_n);
    else {
        /* the reader widened the value; narrow it back to its own width */
        uint64_t bits = kv->v.u;
        if (kv->type == AN_GGUF_F32) {
            float f = (float)kv->v.f;
            uint32_t u;
            memcpy(&u, &f, 4);
            bits = u;
        } else if (kv->type == AN_GGUF_F64) {
            memcpy(&bits, &kv->v.f, 8);
        } else if (k_size[kv->type] < 8) {
            bits &= (UINT64_C(1) << (8 * k_size[kv->type])) - 1;
        }
        put_scalar_bits(w, key, kv->type, bits);
    }
    free(key);
}

void an_gguf_writer_set_alignment(an_gguf_writer *w, uint32_t alignment) {
    put_scalar_bits(w, "general.alignment", AN_GGUF_U32, alignment);
}

/* ==== Tensors =============================================================================== */

void an_gguf_writer_tensor(an_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes) {
    if (!w || w->err.code) return;
    if (!name || strlen(name) >= MAX_NAME) {
        werr(w, AN_E_USAGE, "tensor name %s is NULL or longer than %d bytes", name ? name : "", MAX_NAME - 1);
        return;
    }
    const an_type_traits *tt = an_type_traits_get(type);
    if (!tt) {
        werr(w, AN_E_USAGE, "tensor '%s': unknown type id %" PRIu32, name, type);
        return;
    }
    if (n_dims < 1 || n_dims > 4 || !ne) {
        werr(w, AN_E_USAGE, "tensor '%s': n_dims %" PRIu32 " is out of range (1..4)", name, n_dims);
        return;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            werr(w, AN_E_USAGE, "tensor '%s' added twice", name);
            return;
        }
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}, .data = data, .nbytes = nbytes};
    strcpy(t.name, name);
    uint64_t want = 0;
    bool bad = false;
    for (uint32_t d = 0; d < n_dims; d++) {
        bad |= ne[d] < 0;
        t.ne[d] = ne[d];
    }
    if (!bad && t.ne[0] % tt->blck != 0) {
        werr(w, AN_E_USAGE, "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRIu32,
             name, t.ne[0], tt->name, tt->blck);
        return;
    }
    if (!bad) {
        want = an_row_bytes(tt, (uint64_t)t.ne[0]);
        for (int d = 1; d < 4; d++) bad |= __builtin_mul_overflow(want, (uint64_t)t.ne[d], &want);
    }
    if (bad || want != nbytes || (nbytes && !data)) {
        werr(w, AN_E_USAGE, "tensor '%s': %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] needs %" PRIu64
             " bytes, got %" PRIu64 "%s", name, tt->name, t.ne[0], t.ne[1], t.ne[2], t.ne[3], want, nbytes,
             nbytes && !data ? " (NULL data)" : "");
        return;
    }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) {
            werr(w, AN_E_NOMEM, "out of memory");
            return;
        }
        w->t = p;
        w->cap_t = cap;
    }
    w->t[w->n_t++] = t;
}

/* ==== Output ================================================================================ */

static uint64_t pad_to(uint64_t n, uint64_t a) { return (a - n % a) % a; }

static bool write_all(int fd, const void *p, uint64_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        size_t chunk = n > (UINT64_C(1) << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t k = write(fd, b, chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        b += k;
        n -= (uint64_t)k;
    }
    return true;
}

static bool write_zeros(int fd, uint64_t n) {
    static const uint8_t z[256];
    while (n > 0) {
        uint64_t k = n < sizeof z ? n : sizeof z;
        if (!write_all(fd, z, k)) return false;
        n -= k;
    }
    return true;
}

/* Header: magic, version, counts, KVs, tensor infos with contiguous padded offsets. */
static an_status build_header(an_gguf_writer *w, buf *h, an_err *err) {
    buf_put(h, "GGUF", 4);
    buf_le(h, 3, 4);
    buf_le(h, w->n_t, 8);
    buf_le(h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(h, w->kv[i].key, strlen(w->kv[i].key));
        buf_le(h, w->kv[i].type, 4);
        buf_put(h, w->kv[i].val.p, w->kv[i].val.n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        buf_str(h, t->name, strlen(t->name));
        buf_le(h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_le(h, (uint64_t)t->ne[d], 8);
        buf_le(h, t->type, 4);
        buf_le(h, off, 8);
        if (__builtin_add_overflow(off, t->nbytes, &off) ||
            __builtin_add_overflow(off, pad_to(off, w->alignment), &off))
            return an_err_set(err, AN_E_USAGE, "gguf writer: tensor data size overflows");
    }
    if (h->oom) return an_err_set(err, AN_E_NOMEM, "gguf writer: out of memory");
    return AN_OK;
}

an_status an_gguf_writer_write(an_gguf_writer *w, const char *path, an_err *err) {
    if (!w || !path) return an_err_set(err, AN_E_USAGE, "an_gguf_writer_write: NULL argument");
    if (w->err.code) return an_err_set(err, w->err.code, "%s: %s", path, w->err.msg);

    buf h = {0};
    an_status st = build_header(w, &h, err);
    if (st != AN_OK) {
        free(h.p);
        return st;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        free(h.p);
        return an_err_set(err, AN_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = an_err_set(err, AN_E_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        free(h.p);
        return st;
    }
    const char *what = NULL;
    int e = 0;
    bool ok = write_all(fd, h.p, h.n) && write_zeros(fd, pad_to(h.n, w->alignment));
    for (size_t i = 0; ok && i < w->n_t; i++)
        ok = write_all(fd, w->t[i].data, w->t[i].nbytes) &&
             write_zeros(fd, pad_to(w->t[i].nbytes, w->alignment));
    if (!ok) what = "write", e = errno;
    /* mkstemp makes the file private; a model file should be readable like any other */
    if (!what && fchmod(fd, 0644) != 0) what = "chmod", e = errno;
    if (!what && fsync(fd) != 0) what = "fsync", e = errno;
    if (close(fd) != 0 && !what) what = "close", e = errno;
    if (!what && rename(tmp, path) != 0) what = "rename", e = errno;
    if (what) {
        st = an_err_set(err, AN_E_IO, "%s: %s failed: %s", path, what, e ? strerror(e) : "short write");
        unlink(tmp);
    } else {
        /* make the rename itself durable */
        char *slash = strrchr(tmp, '/');
        const char *dir = ".";
        if (slash) {
            *(slash == tmp ? slash + 1 : slash) = 0;
            dir = tmp;
        }
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(tmp);
    free(h.p);
    return st;
}
