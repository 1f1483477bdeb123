/* amx_device.c — the AMX engine as an an_device (backends/backend.h). prepare() repacks a
 * weight once and keeps it in a table keyed by the weight's data pointer; run() multiplies
 * with the packed forms. Decode (n == 1) is declined: the engine pads tokens to a 16-row tile,
 * so one token wastes 15/16 of the tile work, and the CPU GEMV streams the weights at the same
 * memory speed. prepare() must not race with run() (the loader prepares before inference). */
#include <stdlib.h>
#include <string.h>

#include "backends/amx/amx.h"
#include "backends/backend.h"
#include "cache/cache.h"
#include "core/log.h"

/* Bumped whenever an_amx_pack_into's output changes: part of every compile-cache key. */
#define AMX_PACK_LAYOUT_VERSION 2

typedef struct {
    const void *key; /* an_mat.data */
    an_amx_weight *w;
    an_cache_blob *blob; /* the cache mapping w reads from, or NULL (w owns its bytes) */
} entry;

typedef struct {
    entry *tab; /* open addressing, power-of-two capacity, at most half full */
    size_t cap, used;
    an_cache *cache; /* not owned; NULL: no compile cache */
} amx_ctx;

static size_t slot(const amx_ctx *c, const void *key) {
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (c->cap - 1);
    while (c->tab[i].key && c->tab[i].key != key) i = (i + 1) & (c->cap - 1);
    return i;
}

static an_amx_weight *find(const amx_ctx *c, const an_mat *m) {
    if (!c->cap) return NULL;
    const entry *e = &c->tab[slot(c, m->data)];
    if (!e->key) return NULL;
    const an_mat *s = an_amx_weight_mat(e->w); /* same data pointer, same shape: the same weight */
    return s->type == m->type && s->rows == m->rows && s->cols == m->cols ? e->w : NULL;
}

static bool grow(amx_ctx *c) {
    size_t ncap = c->cap ? c->cap * 2 : 64;
    entry *nt = calloc(ncap, sizeof *nt);
    if (!nt) return false;
    amx_ctx n = {nt, ncap, c->used, c->cache};
    for (size_t i = 0; i < c->cap; i++)
        if (c->tab[i].key) nt[slot(&n, c->tab[i].key)] = c->tab[i];
    free(c->tab);
    *c = n;
    return true;
}

static bool amx_supports(an_device *d, const an_op *op, const char **why) {
    (void)d;
    const char *w;
    if (op->ffn) {
        if (why) *why = "amx: runs the FFN as its two matmuls";
        return false;
    }
    if (!an_amx_available(&w)) {
        if (why) *why = w;
        return false;
    }
    if (op->n < 2) {
        if (why) *why = "amx: decode (one token) runs faster as a CPU GEMV";
        return false;
    }
    for (int i = 0; i < op->n_w; i++) {
        if (!an_amx_supports_type(op->w[i]->type)) {
            if (why) *why = "amx: weight format without an AMX kernel";
            return false;
        }
        if (op->w[i]->cols != op->w[0]->cols) {
            if (why) *why = "amx: fused weights differ in K";
            return false;
        }
    }
    return true;
}

/* The packed form of m: from the compile cache when it has it (a verified read-only mapping),
 * else packed now and stored. The key is the weight's content plus everything that shapes the
 * packed bytes, never a pointer or a shape alone (the prototype's shared-weights bug). */
static an_status pack_cached(amx_ctx *c, const an_mat *m, an_amx_weight **out, an_cache_blob **blob_out,
                             an_err *err) {
    *blob_out = NULL;
    if (!c->cache || !an_cache_enabled(c->cache)) return an_amx_pack(m, out, err);
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_weight_key_add(&kb, m);
    an_cache_key_add_str(&kb, "amx-tiles");                           /* target layout */
    an_cache_key_add_str(&kb, "amx");                                 /* device */
    an_cache_key_add_u64(&kb, AMX_PACK_LAYOUT_VERSION);
    const an_cache_key k = an_cache_key_final(&kb);
    an_cache_blob *blob = NULL;
    an_err e = {0};
    if (an_cache_get(c->cache, &k, &blob, &e) == AN_OK && blob) {
        if (an_amx_weight_view(an_cache_blob_data(blob), an_cache_blob_size(blob), m, out, &e) == AN_OK) {
            *blob_out = blob;
            return AN_OK;
        }
        an_log(1, "amx: cached weight %s does not match (%s); repacking\n", m->name ? m->name : "?", e.msg);
        an_cache_blob_free(blob);
    }
    AN_TRY(an_amx_pack(m, out, err));
    /* store the packed bytes for the next process; a failed store only costs a repack later */
    const size_t n = an_amx_packed_size(m);
    void *buf = aligned_alloc(64, (n + 63) / 64 * 64);
    an_err pe = {0};
    if (buf && an_amx_pack_into(m, buf, n, &pe) == AN_OK && an_cache_put(c->cache, &k, buf, n, &pe) != AN_OK)
        an_log(1, "amx: compile cache: %s\n", pe.msg);
    free(buf);
    return AN_OK;
}

static an_status amx_prepare(an_device *d, const an_mat *m, an_err *err) {
    amx_ctx *c = d->ctx;
    if (!an_amx_supports_type(m->type)) return AN_OK; /* the scheduler will not place it here */
    if (find(c, m)) return AN_OK;
    if ((c->used + 1) * 2 > c->cap && !grow(c)) return an_err_set(err, AN_E_NOMEM, "amx: weight table");
    an_amx_weight *w;
    an_cache_blob *blob;
    AN_TRY(pack_cached(c, m, &w, &blob, err));
    entry *e = &c->tab[slot(c, m->data)];
    if (e->key) { /* same pointer, other shape: replace */
        an_amx_weight_free(e->w);
        an_cache_blob_free(e->blob);
    } else {
        c->used++;
    }
    e->key = m->data;
    e->w = w;
    e->blob = blob;
    return AN_OK;
}

/* Removes m's entry (open addressing: the entries after it in its probe run are re-placed). */
static void amx_forget(an_device *d, const an_mat *m) {
    amx_ctx *c = d->ctx;
    if (!c->cap || !find(c, m)) return;
    size_t i = slot(c, m->data);
    an_amx_weight_free(c->tab[i].w);
    an_cache_blob_free(c->tab[i].blob);
    c->tab[i] = (entry){0};
    c->used--;
    for (size_t j = (i + 1) & (c->cap - 1); c->tab[j].key; j = (j + 1) & (c->cap - 1)) {
        entry e = c->tab[j];
        c->tab[j] = (entry){0};
        c->tab[slot(c, e.key)] = e;
    }
}

static an_status amx_run(an_device *d, const an_op *op, const an_mm_out *outs, const float *x, an_pool *pool,
                         void *ws, an_err *err) {
    amx_ctx *c = d->ctx;
    const an_amx_weight *w[AN_OP_MAX_W];
    for (int i = 0; i < op->n_w; i++) {
        if (!find(c, op->w[i])) AN_TRY(amx_prepare(d, op->w[i], err));
        if (!(w[i] = find(c, op->w[i])))
            return an_err_set(err, AN_E_UNSUPPORTED, "amx: %s not prepared", op->w[i]->name ? op->w[i]->name : "weight");
    }
    return an_amx_matmul(pool, w, outs, op->n_w, x, op->n, ws, err);
}

static size_t amx_wsize(an_device *d, int64_t k_max, int n_max, int nth) {
    (void)d;
    return an_amx_wsize(k_max, n_max, nth);
}

static void amx_sync(an_device *d) { (void)d; }

static void amx_free(an_device *d) {
    if (!d) return;
    amx_ctx *c = d->ctx;
    if (c) {
        for (size_t i = 0; i < c->cap; i++)
            if (c->tab[i].key) {
                an_amx_weight_free(c->tab[i].w);
                an_cache_blob_free(c->tab[i].blob);
            }
        free(c->tab);
        free(c);
    }
    free(d);
}

static const an_device_i k_amx = {
    .name = "amx", .supports = amx_supports, .cost = NULL, .prepare = amx_prepare, .run = amx_run,
    .forget = amx_forget, .wsize = amx_wsize, .sync = amx_sync, .free = amx_free,
};

an_device *an_amx_device_create(an_cache *cache) {
    an_device *d = calloc(1, sizeof *d);
    amx_ctx *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return NULL;
    }
    c->cache = cache;
    d->i = &k_amx;
    d->ctx = c;
    return d;
}
