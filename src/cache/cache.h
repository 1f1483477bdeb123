/* cache.h — the on-disk compile cache: compiled/repacked weights stored by content.
 *
 * Key: a 128-bit hash of everything that determines the compiled bytes — the weight bytes
 * themselves, source format, target layout, device and its version, codegen/layout version —
 * never a pointer or a shape (an earlier design keyed by shape, then by pointer, and silently
 * shared one layer's weights between same-shaped layers). Build it with an_cache_key_*.
 *
 * On disk, under the cache directory D ($ANELM_CACHE, else $XDG_CACHE_HOME/anelm, else
 * ~/.cache/anelm), one file per entry (one per tensor: a 1B model is ~2 GB of packed weights,
 * which should not be one file) at D/v1/<first 2 hex of key>/<32 hex of key>.bin:
 *     off  size
 *       0     8  magic "ANELMC01"
 *       8     4  entry format version (AN_CACHE_FORMAT_VERSION), host order
 *      12     4  header size (64)
 *      16    16  key
 *      32     8  payload size in bytes
 *      40    16  payload hash (an_h128, seed AN_CACHE_PAYLOAD_SEED)
 *      56     8  header hash (first word of an_h128 over bytes 0..55, seed AN_CACHE_HEADER_SEED)
 *      64     n  payload (starts 64-byte aligned in the mapping, ready for SIMD loads)
 * The file must be exactly 64 + n bytes. Other files in D (limits.json, ...) are not ours.
 *
 * Writes go to a temporary file in the same directory, are fsynced and renamed over the final
 * name (then the directory is fsynced), so a reader sees either no entry or a whole one;
 * entries are never modified in place. Several processes may share D without locks: two
 * writers of one key produce identical files and the last rename wins. Eviction (least
 * recently used first, by mtime, which a hit refreshes) takes an flock on D/v1/.evict.lock
 * only so that two processes do not evict at once; readers and writers never wait for it.
 *
 * Reads mmap the entry read-only and verify header and payload hash before returning it; an
 * entry that fails (truncated, flipped bits, wrong magic/version/key) is logged, deleted and
 * reported as a miss, so the caller rebuilds it. Never used.
 *
 * Thread safety: one an_cache may be used by several threads at once (preparing tensors in
 * parallel also parallelizes hashing and verification, which run at ~7 GB/s per thread).
 *
 * Typical use, in a device's prepare loop (the loop prints the progress line, since only it
 * knows how many tensors there are):
 *     an_cache_keyer kb; an_cache_key_init(&kb);
 *     an_cache_key_add(&kb, w->data, w->nbytes);        // the weight bytes, one field
 *     an_cache_key_add_str(&kb, "q4_0");                // source format
 *     an_cache_key_add_str(&kb, "amx-vnni-16x64");      // target layout
 *     an_cache_key_add_str(&kb, "amx"); an_cache_key_add_u64(&kb, LAYOUT_VERSION);
 *     an_cache_key k = an_cache_key_final(&kb);
 *     if (an_cache_get(c, &k, &blob, &err) == AN_OK && blob) use(an_cache_blob_data(blob));
 *     else { compile(...); an_cache_put(c, &k, packed, n, &err); }   // errors: log, go on
 *     an_progress("compiling weights", i + 1, n_tensors);
 *
 * Caveat: a mapping is only as stable as the file; entries are never truncated in place by
 * anelm, but a user truncating an entry file while it is mapped would make reads fault (SIGBUS),
 * as with any mmap'ed file. */
#ifndef AN_CACHE_CACHE_H
#define AN_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/hash.h"
#include "core/status.h"

#define AN_CACHE_MAGIC "ANELMC01"
#define AN_CACHE_FORMAT_VERSION 1u
#define AN_CACHE_HEADER_SIZE 64u
#define AN_CACHE_PAYLOAD_SEED 0x616e656c6d70796cull /* "anelmpyl" */
#define AN_CACHE_HEADER_SEED 0x616e656c6d686472ull  /* "anelmhdr" */
#define AN_CACHE_KEY_SEED 0x616e656c6d6b6579ull     /* "anelmkey" */
#define AN_CACHE_DEFAULT_MAX (8ull << 30)           /* 8 GiB; $ANELM_CACHE_MAX overrides */

/* ---- keys ------------------------------------------------------------------------------- */

typedef struct an_cache_key {
    uint8_t b[16];
} an_cache_key;

/* A key under construction. Each add is one length-prefixed field, so ("ab","c") and
 * ("a","bc") give different keys; add a tensor's bytes in one call (or use the same split
 * every time). */
typedef struct an_cache_keyer {
    an_h128 h;
} an_cache_keyer;

void an_cache_key_init(an_cache_keyer *k);
void an_cache_key_add(an_cache_keyer *k, const void *data, size_t n);
void an_cache_key_add_str(an_cache_keyer *k, const char *s); /* NULL adds a distinct marker */
void an_cache_key_add_u64(an_cache_keyer *k, uint64_t v);
an_cache_key an_cache_key_final(const an_cache_keyer *k);
/* 32 lowercase hex digits and a NUL. */
void an_cache_key_hex(const an_cache_key *k, char out[33]);
bool an_cache_key_parse(const char *hex, an_cache_key *out); /* exactly 32 hex digits */

/* ---- the cache -------------------------------------------------------------------------- */

typedef struct an_cache an_cache;

typedef struct an_cache_params {
    const char *dir;    /* NULL: an_cache_dir() (ANELM_CACHE / XDG_CACHE_HOME / HOME) */
    uint64_t max_bytes; /* size cap; 0: $ANELM_CACHE_MAX (bytes, or with K/M/G/T), else 8 GiB */
    bool disabled;      /* --no-cache: every get misses, put stores nothing, disk untouched */
} an_cache_params;

/* p may be NULL (all defaults). Nothing is created on disk until the first put. */
an_status an_cache_open(an_cache **out, const an_cache_params *p, an_err *err);
void an_cache_free(an_cache *c);

const char *an_cache_path(const an_cache *c); /* the cache directory D */
uint64_t an_cache_max_bytes(const an_cache *c);
bool an_cache_enabled(const an_cache *c);

/* A verified entry: a read-only mapping that stays valid until an_cache_blob_free, even if the
 * entry is evicted or replaced meanwhile. The data pointer is 64-byte aligned. */
typedef struct an_cache_blob an_cache_blob;
const void *an_cache_blob_data(const an_cache_blob *b);
size_t an_cache_blob_size(const an_cache_blob *b);
void an_cache_blob_free(an_cache_blob *b);

/* Hit: *out = a verified blob (and the entry counts as just used). Miss, disabled cache (or
 * c == NULL), or a corrupt entry (logged at level 1, deleted): AN_OK with *out = NULL. Fails
 * only when the entry exists but cannot be opened or mapped (permissions, out of memory);
 * callers should then log and compile anyway — a cache is never a reason to stop. */
an_status an_cache_get(an_cache *c, const an_cache_key *k, an_cache_blob **out, an_err *err);

/* Stores payload under k (atomically; see above), then evicts least recently used entries
 * while the cache exceeds its cap (never the entry just written). No-op when disabled or
 * c == NULL. Fails on I/O errors (disk full...) with the path; the cache is left as it was. */
an_status an_cache_put(an_cache *c, const an_cache_key *k, const void *payload, size_t n, an_err *err);

/* Counters since open (for tests and -v summaries). */
typedef struct an_cache_stats {
    uint64_t hits, misses, corrupt, puts, evicted;
    uint64_t bytes_read, bytes_written, bytes_evicted;
} an_cache_stats;
an_cache_stats an_cache_get_stats(const an_cache *c);

/* ---- maintenance (anelm cache ls|verify|clear) ------------------------------------------ */

typedef struct an_cache_entry {
    const char *path;
    char key_hex[33];
    uint64_t bytes;        /* file size, header included */
    int64_t last_use_ns;   /* mtime: written or last hit, ns since the epoch */
} an_cache_entry;

/* Calls fn for every entry file (sorted most recently used first); fn returns nonzero to stop.
 * Temporary files and foreign files are skipped. A missing directory has no entries. */
an_status an_cache_list(an_cache *c, int (*fn)(const an_cache_entry *e, void *ud), void *ud, an_err *err);

typedef struct an_cache_verify_report {
    uint64_t n_ok, n_corrupt, bytes_ok, bytes_corrupt;
} an_cache_verify_report;
/* Verifies every entry in full; corrupt ones are deleted and passed to on_bad (may be NULL)
 * with the reason. */
an_status an_cache_verify_all(an_cache *c, an_cache_verify_report *r,
                              void (*on_bad)(const char *path, const char *reason, void *ud), void *ud,
                              an_err *err);

/* Deletes every entry (and temporary files a dead writer left); *n_removed / *bytes_freed may be NULL. */
an_status an_cache_clear(an_cache *c, uint64_t *n_removed, uint64_t *bytes_freed, an_err *err);

/* Header hash of an entry's first 56 bytes (exposed so tests can forge well-formed headers). */
uint64_t an_cache_header_hash(const uint8_t hdr[56]);

#endif
