/* cache.c — the on-disk compile cache (see cache.h for the format and the concurrency rules). */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/paths.h"

/* A temporary file this old was left by a writer that died (a 2 GB write takes seconds). */
#define STALE_TMP_NS (3600ll * 1000000000ll)
#define TMP_PREFIX ".tmp-"

struct an_cache {
    char root[PATH_MAX];  /* D */
    char vdir[PATH_MAX];  /* D/v1: bumping the format version starts a fresh tree */
    uint64_t cap;
    bool disabled;
    /* Bytes in the cache as this process last counted them plus what it wrote since; -1 until
     * the first put counts. Other processes' writes show up at the next count, so the cap is
     * enforced per process and made exact whenever someone evicts. */
    _Atomic int64_t known_total;
    _Atomic uint64_t tmp_seq;
    _Atomic uint64_t hits, misses, corrupt, puts, evicted, bytes_read, bytes_written, bytes_evicted;
};

struct an_cache_blob {
    void *map;
    size_t map_len;
};

/* ---- keys ------------------------------------------------------------------------------- */

void an_cache_key_init(an_cache_keyer *k) { an_h128_init(&k->h, AN_CACHE_KEY_SEED); }

void an_cache_key_add(an_cache_keyer *k, const void *data, size_t n) {
    uint64_t len = n;
    an_h128_update(&k->h, &len, sizeof len);
    if (n) an_h128_update(&k->h, data, n);
}

void an_cache_key_add_str(an_cache_keyer *k, const char *s) {
    if (!s) {
        /* A length no string can have marks "absent", distinct from "". */
        uint64_t none = UINT64_MAX;
        an_h128_update(&k->h, &none, sizeof none);
        return;
    }
    an_cache_key_add(k, s, strlen(s));
}

void an_cache_key_add_u64(an_cache_keyer *k, uint64_t v) { an_cache_key_add(k, &v, sizeof v); }

an_cache_key an_cache_key_final(const an_cache_keyer *k) {
    uint64_t h[2];
    an_h128_final(&k->h, h);
    an_cache_key key;
    memcpy(key.b, h, 16);
    return key;
}

void an_cache_key_hex(const an_cache_key *k, char out[33]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[k->b[i] >> 4];
        out[2 * i + 1] = hx[k->b[i] & 15];
    }
    out[32] = 0;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1; /* uppercase is not ours: we only ever write lowercase names */
}

bool an_cache_key_parse(const char *hex, an_cache_key *out) {
    for (int i = 0; i < 16; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[32] == 0;
}

uint64_t an_cache_header_hash(const uint8_t hdr[56]) {
    uint64_t h[2];
    an_h128_once(hdr, 56, AN_CACHE_HEADER_SEED, h);
    return h[0];
}

/* ---- open ------------------------------------------------------------------------------- */

/* "1073741824", "512M", "8G", "8GiB" -> bytes. */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return false;
    int shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: return false;
    }
    if (*end) {
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B")) end += strlen(end);
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) return false;
    *out = (uint64_t)v << shift;
    return true;
}

an_status an_cache_open(an_cache **out, const an_cache_params *p, an_err *err) {
    *out = NULL;
    an_cache_params def = {0};
    if (!p) p = &def;
    an_cache *c = calloc(1, sizeof *c);
    if (!c) return an_err_set(err, AN_E_NOMEM, "cache: out of memory");
    c->disabled = p->disabled;
    atomic_init(&c->known_total, -1);
    an_status s = AN_OK;
    if (p->dir && *p->dir) {
        if ((size_t)snprintf(c->root, sizeof c->root, "%s", p->dir) >= sizeof c->root)
            s = an_err_set(err, AN_E_USAGE, "cache directory path is too long: %.200s...", p->dir);
    } else {
        s = an_cache_dir(c->root, sizeof c->root, 0, err);
    }
    if (s == AN_OK && (size_t)snprintf(c->vdir, sizeof c->vdir, "%s/v%u", c->root, AN_CACHE_FORMAT_VERSION) >=
                          sizeof c->vdir)
        s = an_err_set(err, AN_E_USAGE, "cache directory path is too long: %.200s...", c->root);
    c->cap = p->max_bytes;
    const char *e = getenv("ANELM_CACHE_MAX");
    if (s == AN_OK && !c->cap && e && *e && !parse_size(e, &c->cap))
        s = an_err_set(err, AN_E_USAGE, "ANELM_CACHE_MAX='%s' is not a size (bytes, or a number with K, M, G or T)",
                       e);
    if (!c->cap) c->cap = AN_CACHE_DEFAULT_MAX;
    if (s != AN_OK) {
        free(c);
        return s;
    }
    *out = c;
    return AN_OK;
}

void an_cache_free(an_cache *c) { free(c); }

const char *an_cache_path(const an_cache *c) { return c ? c->root : ""; }
uint64_t an_cache_max_bytes(const an_cache *c) { return c ? c->cap : 0; }
bool an_cache_enabled(const an_cache *c) { return c && !c->disabled; }

an_cache_stats an_cache_get_stats(const an_cache *c) {
    an_cache_stats s = {0};
    if (!c) return s;
    an_cache *m = (an_cache *)c; /* C11's atomic_load takes a non-const pointer; nothing is written */
    s.hits = atomic_load(&m->hits);
    s.misses = atomic_load(&m->misses);
    s.corrupt = atomic_load(&m->corrupt);
    s.puts = atomic_load(&m->puts);
    s.evicted = atomic_load(&m->evicted);
    s.bytes_read = atomic_load(&m->bytes_read);
    s.bytes_written = atomic_load(&m->bytes_written);
    s.bytes_evicted = atomic_load(&m->bytes_evicted);
    return s;
}

/* ---- entries ---------------------------------------------------------------------------- */

static void entry_path(const an_cache *c, const an_cache_key *k, char *buf, size_t cap) {
    char hex[33];
    an_cache_key_hex(k, hex);
    snprintf(buf, cap, "%s/%.2s/%s.bin", c->vdir, hex, hex);
}

/* Checks a mapped entry file of size >= AN_CACHE_HEADER_SIZE bytes; on failure writes why into reason. expect may be
 * NULL (then any key is accepted: the caller checks the name). */
static bool entry_ok(const uint8_t *m, uint64_t size, const an_cache_key *expect, char *reason, size_t cap) {
    if (memcmp(m, AN_CACHE_MAGIC, 8) != 0) {
        snprintf(reason, cap, "bad magic");
        return false;
    }
    uint64_t hh;
    memcpy(&hh, m + 56, 8);
    if (hh != an_cache_header_hash(m)) {
        snprintf(reason, cap, "header checksum mismatch");
        return false;
    }
    uint32_t ver, hsize;
    memcpy(&ver, m + 8, 4);
    memcpy(&hsize, m + 12, 4);
    if (ver != AN_CACHE_FORMAT_VERSION || hsize != AN_CACHE_HEADER_SIZE) {
        snprintf(reason, cap, "format version %u, header size %u (expected %u, %u)", ver, hsize,
                 AN_CACHE_FORMAT_VERSION, AN_CACHE_HEADER_SIZE);
        return false;
    }
    if (expect && memcmp(m + 16, expect->b, 16) != 0) {
        snprintf(reason, cap, "holds a different key than its name says");
        return false;
    }
    uint64_t n;
    memcpy(&n, m + 32, 8);
    if (n != size - AN_CACHE_HEADER_SIZE) {
        snprintf(reason, cap, "%s: payload of %llu bytes, header says %llu",
                 n > size - AN_CACHE_HEADER_SIZE ? "truncated" : "trailing bytes",
                 (unsigned long long)(size - AN_CACHE_HEADER_SIZE), (unsigned long long)n);
        return false;
    }
    uint64_t want[2], got[2];
    memcpy(want, m + 40, 16);
    an_h128_once(m + AN_CACHE_HEADER_SIZE, n, AN_CACHE_PAYLOAD_SEED, got);
    if (got[0] != want[0] || got[1] != want[1]) {
        snprintf(reason, cap, "payload checksum mismatch");
        return false;
    }
    return true;
}

/* Deletes path only if it is still the file we examined (st): another process may have
 * renamed a fresh, good entry over the bad one since we opened it. */
static bool remove_if_same(const char *path, const struct stat *st) {
    struct stat now;
    if (stat(path, &now) != 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) return false;
    return unlink(path) == 0;
}

typedef enum { CHK_OK, CHK_MISSING, CHK_CORRUPT, CHK_ERROR } check_result;

/* Opens, maps and verifies path. CHK_OK: *map and *len hold the mapping (caller unmaps); fd is
 * left open in *fd_out if fd_out (for touching). CHK_CORRUPT: the file was deleted and
 * reason says why. */
static check_result check_file(const char *path, const an_cache_key *expect, void **map, size_t *len, int *fd_out,
                               char *reason, size_t rcap, uint64_t *file_bytes, an_err *err) {
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return CHK_MISSING;
        an_err_set(err, AN_E_IO, "cache: cannot open %s: %s", path, strerror(errno));
        return CHK_ERROR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        an_err_set(err, AN_E_IO, "cache: cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return CHK_ERROR;
    }
    uint64_t size = (uint64_t)st.st_size;
    *file_bytes = size;
    bool ok;
    void *m = NULL;
    if (size < AN_CACHE_HEADER_SIZE) {
        snprintf(reason, rcap, "truncated: %llu bytes, shorter than the %u-byte header", (unsigned long long)size,
                 AN_CACHE_HEADER_SIZE);
        ok = false;
    } else if (size > SIZE_MAX) {
        snprintf(reason, rcap, "larger than the address space");
        ok = false;
    } else {
        int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
        flags |= MAP_POPULATE; /* fault the pages in bulk: we read all of them right away */
#endif
        m = mmap(NULL, (size_t)size, PROT_READ, flags, fd, 0);
        if (m == MAP_FAILED) {
            an_err_set(err, errno == ENOMEM ? AN_E_NOMEM : AN_E_IO, "cache: cannot map %s (%llu bytes): %s", path,
                       (unsigned long long)size, strerror(errno));
            close(fd);
            return CHK_ERROR;
        }
        ok = entry_ok(m, size, expect, reason, rcap);
    }
    if (!ok) {
        if (m) munmap(m, (size_t)size);
        remove_if_same(path, &st);
        close(fd);
        return CHK_CORRUPT;
    }
    *map = m;
    *len = (size_t)size;
    if (fd_out) *fd_out = fd;
    else close(fd);
    return CHK_OK;
}

const void *an_cache_blob_data(const an_cache_blob *b) {
    return b ? (const uint8_t *)b->map + AN_CACHE_HEADER_SIZE : NULL;
}
size_t an_cache_blob_size(const an_cache_blob *b) { return b ? b->map_len - AN_CACHE_HEADER_SIZE : 0; }
void an_cache_blob_free(an_cache_blob *b) {
    if (!b) return;
    munmap(b->map, b->map_len);
    free(b);
}

an_status an_cache_get(an_cache *c, const an_cache_key *k, an_cache_blob **out, an_err *err) {
    *out = NULL;
    if (!c || c->disabled) return AN_OK;
    char path[PATH_MAX + 64], reason[160];
    entry_path(c, k, path, sizeof path);
    void *m;
    size_t len;
    int fd = -1;
    uint64_t fbytes = 0;
    an_cache_blob *b = malloc(sizeof *b);
    if (!b) return an_err_set(err, AN_E_NOMEM, "cache: out of memory");
    switch (check_file(path, k, &m, &len, &fd, reason, sizeof reason, &fbytes, err)) {
    case CHK_OK: break;
    case CHK_MISSING: atomic_fetch_add(&c->misses, 1); free(b); return AN_OK;
    case CHK_CORRUPT:
        an_log(1, "cache: entry %s is corrupt (%s), deleted; rebuilding\n", path, reason);
        atomic_fetch_add(&c->corrupt, 1);
        atomic_fetch_add(&c->misses, 1);
        /* Our running total still counts it; the next count corrects that. */
        free(b);
        return AN_OK;
    case CHK_ERROR: free(b); return err ? err->code : AN_E_IO;
    }
    /* A hit makes the entry most recently used (LRU is by mtime; atime is often disabled). */
    futimens(fd, NULL);
    close(fd);
    b->map = m;
    b->map_len = len;
    atomic_fetch_add(&c->hits, 1);
    atomic_fetch_add(&c->bytes_read, len - AN_CACHE_HEADER_SIZE);
    *out = b;
    return AN_OK;
}

/* ---- put -------------------------------------------------------------------------------- */

/* mkdir -p; existing directories (made by another process meanwhile, too) are fine. */
static int mkdirs(const char *path) {
    char buf[PATH_MAX + 64];
    size_t n = strlen(path);
    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(buf, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n) {
        size_t chunk = n < (1u << 30) ? n : (1u << 30); /* Linux writes at most ~2 GB at once */
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void evict(an_cache *c, const an_cache_key *keep);

an_status an_cache_put(an_cache *c, const an_cache_key *k, const void *payload, size_t n, an_err *err) {
    if (!c || c->disabled) return AN_OK;
    uint8_t hdr[AN_CACHE_HEADER_SIZE] = {0};
    memcpy(hdr, AN_CACHE_MAGIC, 8);
    uint32_t ver = AN_CACHE_FORMAT_VERSION, hsize = AN_CACHE_HEADER_SIZE;
    uint64_t n64 = n, ph[2];
    memcpy(hdr + 8, &ver, 4);
    memcpy(hdr + 12, &hsize, 4);
    memcpy(hdr + 16, k->b, 16);
    memcpy(hdr + 32, &n64, 8);
    an_h128_once(payload, n, AN_CACHE_PAYLOAD_SEED, ph);
    memcpy(hdr + 40, ph, 16);
    uint64_t hh = an_cache_header_hash(hdr);
    memcpy(hdr + 56, &hh, 8);

    char path[PATH_MAX + 64], dir[PATH_MAX + 8], tmp[PATH_MAX + 128], hex[33];
    an_cache_key_hex(k, hex);
    snprintf(dir, sizeof dir, "%s/%.2s", c->vdir, hex);
    entry_path(c, k, path, sizeof path);
    if (mkdirs(dir) != 0) return an_err_set(err, AN_E_IO, "cache: cannot create %s: %s", dir, strerror(errno));
    /* Unique per process and call, in the entry's own directory so rename stays atomic. */
    snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "%s-%ld-%llu", dir, hex, (long)getpid(),
             (unsigned long long)atomic_fetch_add(&c->tmp_seq, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return an_err_set(err, AN_E_IO, "cache: cannot create %s: %s", tmp, strerror(errno));
    const char *what = NULL;
    if (write_all(fd, hdr, sizeof hdr) != 0 || write_all(fd, payload, n) != 0) what = "write";
    else if (fsync(fd) != 0) what = "fsync";
    int e = errno;
    if (close(fd) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "rename into place";
        e = errno;
    }
    if (what) {
        unlink(tmp);
        return an_err_set(err, AN_E_IO, "cache: cannot %s %s (%llu bytes): %s", what, path,
                          (unsigned long long)(n + AN_CACHE_HEADER_SIZE), strerror(e));
    }
    /* Make the rename itself durable; failing here leaves a good entry, so it is not an error. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    atomic_fetch_add(&c->puts, 1);
    atomic_fetch_add(&c->bytes_written, n + AN_CACHE_HEADER_SIZE);
    int64_t total = atomic_load(&c->known_total);
    if (total >= 0) total = atomic_fetch_add(&c->known_total, (int64_t)(n + AN_CACHE_HEADER_SIZE)) +
                            (int64_t)(n + AN_CACHE_HEADER_SIZE);
    if (total < 0 || (uint64_t)total > c->cap) evict(c, k); /* first put counts; over the cap evicts */
    return AN_OK;
}

/* ---- walking the tree ------------------------------------------------------------------- */

typedef struct scan_item {
    char *path;
    char key_hex[33];
    uint64_t bytes;
    int64_t mtime_ns;
    bool tmp;
} scan_item;

typedef struct scan {
    scan_item *v;
    size_t n, cap;
} scan;

static void scan_free(scan *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i].path);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static bool is_entry_name(const char *name, const char *sub) {
    size_t n = strlen(name);
    an_cache_key k;
    char hex[33];
    if (n != 36 || strcmp(name + 32, ".bin") != 0 || name[0] != sub[0] || name[1] != sub[1]) return false;
    memcpy(hex, name, 32);
    hex[32] = 0;
    return an_cache_key_parse(hex, &k);
}

/* Lists entry and temporary files under D/v1/xx/. Files vanishing meanwhile (another
 * process evicting) are simply left out. */
static an_status scan_tree(const an_cache *c, scan *s, an_err *err) {
    memset(s, 0, sizeof *s);
    DIR *top = opendir(c->vdir);
    if (!top) {
        if (errno == ENOENT) return AN_OK;
        return an_err_set(err, AN_E_IO, "cache: cannot read %s: %s", c->vdir, strerror(errno));
    }
    struct dirent *d;
    an_status st = AN_OK;
    while (st == AN_OK && (d = readdir(top))) {
        if (strlen(d->d_name) != 2 || hexval(d->d_name[0]) < 0 || hexval(d->d_name[1]) < 0) continue;
        char sub[PATH_MAX + 8];
        snprintf(sub, sizeof sub, "%s/%.2s", c->vdir, d->d_name); /* the name has 2 chars (checked) */
        DIR *dd = opendir(sub);
        if (!dd) continue;
        struct dirent *f;
        while ((f = readdir(dd))) {
            bool tmp = !strncmp(f->d_name, TMP_PREFIX, strlen(TMP_PREFIX));
            if (!tmp && !is_entry_name(f->d_name, d->d_name)) continue;
            struct stat fs;
            if (fstatat(dirfd(dd), f->d_name, &fs, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(fs.st_mode)) continue;
            if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 64;
                scan_item *nv = realloc(s->v, nc * sizeof *nv);
                if (!nv) {
                    st = an_err_set(err, AN_E_NOMEM, "cache: out of memory listing %s", c->vdir);
                    break;
                }
                s->v = nv;
                s->cap = nc;
            }
            scan_item *it = &s->v[s->n];
            memset(it, 0, sizeof *it);
            size_t pl = strlen(sub) + strlen(f->d_name) + 2;
            it->path = malloc(pl);
            if (!it->path) {
                st = an_err_set(err, AN_E_NOMEM, "cache: out of memory listing %s", c->vdir);
                break;
            }
            snprintf(it->path, pl, "%s/%s", sub, f->d_name);
            if (!tmp) memcpy(it->key_hex, f->d_name, 32);
            it->bytes = (uint64_t)fs.st_size;
            it->mtime_ns = (int64_t)fs.st_mtim.tv_sec * 1000000000ll + fs.st_mtim.tv_nsec;
            it->tmp = tmp;
            s->n++;
        }
        closedir(dd);
    }
    closedir(top);
    if (st != AN_OK) scan_free(s);
    return st;
}

static int by_mtime_asc(const void *a, const void *b) {
    const scan_item *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns) return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path); /* ties (coarse clocks) in a fixed order */
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Counts the cache and deletes least recently used entries until it fits the cap. Only one
 * process evicts at a time (the others skip: the one evicting will get the total down). */
static void evict(an_cache *c, const an_cache_key *keep) {
    char lock[PATH_MAX + 32];
    snprintf(lock, sizeof lock, "%s/.evict.lock", c->vdir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return;
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        close(lfd);
        return;
    }
    scan s;
    if (scan_tree(c, &s, NULL) == AN_OK) {
        char keep_hex[33];
        an_cache_key_hex(keep, keep_hex);
        int64_t t = now_ns();
        uint64_t total = 0;
        for (size_t i = 0; i < s.n; i++) {
            scan_item *it = &s.v[i];
            if (it->tmp && t - it->mtime_ns > STALE_TMP_NS) {
                unlink(it->path); /* a dead writer's leftovers */
                it->bytes = 0;
            }
            total += it->bytes;
        }
        if (s.n) qsort(s.v, s.n, sizeof *s.v, by_mtime_asc);
        for (size_t i = 0; i < s.n && total > c->cap; i++) {
            scan_item *it = &s.v[i];
            if (it->tmp || !strcmp(it->key_hex, keep_hex)) continue;
            /* ENOENT: someone else removed it already; either way it no longer counts. */
            if (unlink(it->path) == 0) {
                atomic_fetch_add(&c->evicted, 1);
                atomic_fetch_add(&c->bytes_evicted, it->bytes);
                an_log(2, "cache: evicted %s (%llu bytes)\n", it->path, (unsigned long long)it->bytes);
            }
            total -= it->bytes;
        }
        if (total > c->cap)
            an_log(1, "cache: %llu bytes after eviction, over the %llu-byte cap (the newest entry alone is larger)\n",
                   (unsigned long long)total, (unsigned long long)c->cap);
        atomic_store(&c->known_total, (int64_t)total);
        scan_free(&s);
    }
    flock(lfd, LOCK_UN);
    close(lfd);
}

/* ---- maintenance ------------------------------------------------------------------------ */

static int by_mtime_desc(const void *a, const void *b) { return by_mtime_asc(b, a); }

an_status an_cache_list(an_cache *c, int (*fn)(const an_cache_entry *e, void *ud), void *ud, an_err *err) {
    scan s;
    AN_TRY(scan_tree(c, &s, err));
    if (s.n) qsort(s.v, s.n, sizeof *s.v, by_mtime_desc); /* qsort(NULL, 0) is undefined */
    for (size_t i = 0; i < s.n; i++) {
        if (s.v[i].tmp) continue;
        an_cache_entry e = {.path = s.v[i].path, .bytes = s.v[i].bytes, .last_use_ns = s.v[i].mtime_ns};
        memcpy(e.key_hex, s.v[i].key_hex, 33);
        if (fn(&e, ud)) break;
    }
    scan_free(&s);
    return AN_OK;
}

an_status an_cache_verify_all(an_cache *c, an_cache_verify_report *r,
                              void (*on_bad)(const char *path, const char *reason, void *ud), void *ud,
                              an_err *err) {
    memset(r, 0, sizeof *r);
    scan s;
    AN_TRY(scan_tree(c, &s, err));
    an_status st = AN_OK;
    for (size_t i = 0; i < s.n && st == AN_OK; i++) {
        if (s.v[i].tmp) continue;
        an_cache_key k;
        an_cache_key_parse(s.v[i].key_hex, &k);
        void *m;
        size_t len;
        uint64_t fbytes = 0;
        char reason[160];
        switch (check_file(s.v[i].path, &k, &m, &len, NULL, reason, sizeof reason, &fbytes, err)) {
        case CHK_OK:
            /* Not a use: verifying must not reorder the LRU. */
            munmap(m, len);
            r->n_ok++;
            r->bytes_ok += fbytes;
            break;
        case CHK_MISSING: break; /* evicted by someone meanwhile */
        case CHK_CORRUPT:
            r->n_corrupt++;
            r->bytes_corrupt += fbytes;
            atomic_fetch_add(&c->corrupt, 1);
            if (on_bad) on_bad(s.v[i].path, reason, ud);
            break;
        case CHK_ERROR: st = err ? err->code : AN_E_IO; break;
        }
    }
    scan_free(&s);
    return st;
}

an_status an_cache_clear(an_cache *c, uint64_t *n_removed, uint64_t *bytes_freed, an_err *err) {
    if (n_removed) *n_removed = 0;
    if (bytes_freed) *bytes_freed = 0;
    scan s;
    AN_TRY(scan_tree(c, &s, err));
    an_status st = AN_OK;
    int64_t t = now_ns();
    for (size_t i = 0; i < s.n; i++) {
        /* A fresh temporary file belongs to a writer still running: its rename must not fail. */
        if (s.v[i].tmp && t - s.v[i].mtime_ns <= STALE_TMP_NS) continue;
        if (unlink(s.v[i].path) != 0) {
            if (errno == ENOENT) continue;
            st = an_err_set(err, AN_E_IO, "cache: cannot delete %s: %s", s.v[i].path, strerror(errno));
            break;
        }
        if (s.v[i].tmp) continue; /* temporary files are freed but not counted as entries */
        if (n_removed) (*n_removed)++;
        if (bytes_freed) *bytes_freed += s.v[i].bytes;
    }
    atomic_store(&c->known_total, -1);
    scan_free(&s);
    return st;
}
