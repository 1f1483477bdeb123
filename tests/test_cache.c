/* test_cache.c — the compile cache: hash streaming, key sensitivity, put/get round trips,
 * every kind of corrupt entry (reported, deleted, never used), LRU eviction, several processes
 * sharing one directory, and `anelm cache ls|verify|clear`. Every case works in its own
 * temporary directory; the user's cache is never touched. Speeds are noted, not asserted. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/hash.h"
#include "core/log.h"
#include "core/timer.h"
#include "json.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char g_dir[256];

static const char *tmpdir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/anelm_cache_t.XXXXXX");
    if (!mkdtemp(g_dir)) {
        T_FAIL("mkdtemp failed");
        return NULL;
    }
    return g_dir;
}

static void rmtree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) T_FAIL("could not remove %s", dir);
}

static an_cache *open_cache(const char *dir, uint64_t cap) {
    an_cache *c = NULL;
    an_err err = {0};
    an_cache_params p = {.dir = dir, .max_bytes = cap};
    if (an_cache_open(&c, &p, &err) != AN_OK) T_FAIL("open %s: %s", dir, err.msg);
    return c;
}

/* Deterministic payload bytes for (id, n). */
static void fill(uint8_t *p, size_t n, uint64_t id) {
    uint64_t s = id * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (uint8_t)s;
    }
}

static an_cache_key key_of(uint64_t id) {
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_cache_key_add_u64(&kb, id);
    an_cache_key_add_str(&kb, "test");
    return an_cache_key_final(&kb);
}

static void path_of(const an_cache *c, const an_cache_key *k, char *buf, size_t cap) {
    char hex[33];
    an_cache_key_hex(k, hex);
    snprintf(buf, cap, "%s/v%u/%.2s/%s.bin", an_cache_path(c), AN_CACHE_FORMAT_VERSION, hex, hex);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static bool put(an_cache *c, const an_cache_key *k, const void *p, size_t n) {
    an_err err = {0};
    if (an_cache_put(c, k, p, n, &err) != AN_OK) {
        T_FAIL("put: %s", err.msg);
        return false;
    }
    return true;
}

/* 1: hit with exactly these bytes, 0: miss, -1: error or wrong bytes. */
static int get_eq(an_cache *c, const an_cache_key *k, const void *want, size_t n) {
    an_cache_blob *b = NULL;
    an_err err = {0};
    if (an_cache_get(c, k, &b, &err) != AN_OK) return -1;
    if (!b) return 0;
    int r = an_cache_blob_size(b) == n && (n == 0 || memcmp(an_cache_blob_data(b), want, n) == 0) ? 1 : -1;
    an_cache_blob_free(b);
    return r;
}

static void write_all(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) T_FAIL("cannot write %s", path);
    if (f) fclose(f);
}

/* ---- hash and keys ------------------------------------------------------------------------ */

static void hash_streaming(void) {
    size_t n = 1000;
    uint8_t *d = malloc(n);
    fill(d, n, 7);
    uint64_t once[2], inc[2];
    an_h128_once(d, n, 1, once);
    /* Any split into pieces gives the one-shot result. */
    const size_t splits[][3] = {{0, 1, 999}, {63, 1, 936}, {64, 64, 872}, {1, 127, 872}, {500, 0, 500}, {999, 1, 0}};
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        an_h128 h;
        an_h128_init(&h, 1);
        size_t off = 0;
        for (int j = 0; j < 3; j++) {
            an_h128_update(&h, d + off, splits[s][j]);
            off += splits[s][j];
        }
        an_h128_final(&h, inc);
        T_CHECK(off == n && inc[0] == once[0] && inc[1] == once[1], "split %zu differs", s);
    }
    /* Length, seed, trailing zeros and every single-bit flip change both words. */
    uint64_t a[2], b[2];
    an_h128_once(d, n - 1, 1, a);
    T_CHECK(a[0] != once[0] && a[1] != once[1], "prefix collides");
    an_h128_once(d, n, 2, a);
    T_CHECK(a[0] != once[0] && a[1] != once[1], "seed ignored");
    an_h128_once("ab", 2, 0, a);
    an_h128_once("ab\0", 3, 0, b);
    T_CHECK(a[0] != b[0] && a[1] != b[1], "zero padding collides");
    int same = 0;
    for (size_t i = 0; i < n * 8; i += 13) {
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
        an_h128_once(d, n, 1, a);
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
        same += a[0] == once[0] || a[1] == once[1];
    }
    T_CHECK(same == 0, "%d bit flips left a word unchanged", same);
    /* Swapping two 8-byte words (rows of a matrix) changes the hash: the lanes are ordered. */
    uint8_t tmp[8];
    memcpy(tmp, d, 8);
    memcpy(d, d + 64, 8);
    memcpy(d + 64, tmp, 8);
    an_h128_once(d, n, 1, a);
    T_CHECK(a[0] != once[0], "word swap collides");
    free(d);
}

static an_cache_key weight_key(const void *w, size_t n, const char *device) {
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_cache_key_add(&kb, w, n);
    an_cache_key_add_str(&kb, "q8_0");
    an_cache_key_add_str(&kb, "amx-tiles");
    an_cache_key_add_str(&kb, device);
    an_cache_key_add_u64(&kb, 3);
    return an_cache_key_final(&kb);
}

static void key_sensitivity(void) {
    size_t n = 4096;
    uint8_t *w1 = malloc(n), *w2 = malloc(n);
    fill(w1, n, 3);
    memcpy(w2, w1, n);
    an_cache_key a = weight_key(w1, n, "amx"), b = weight_key(w2, n, "amx");
    T_CHECK(!memcmp(&a, &b, sizeof a), "equal content at different addresses must give equal keys");
    w2[1234] ^= 1;
    b = weight_key(w2, n, "amx");
    T_CHECK(memcmp(&a, &b, sizeof a), "one weight byte must change the key");
    b = weight_key(w1, n, "cpu");
    T_CHECK(memcmp(&a, &b, sizeof a), "the device must change the key");
    b = weight_key(w1, n - 1, "amx");
    T_CHECK(memcmp(&a, &b, sizeof a), "the length must change the key");
    /* Fields are framed: moving a byte between two fields changes the key. */
    an_cache_keyer k1, k2, k3, k4;
    an_cache_key_init(&k1);
    an_cache_key_add_str(&k1, "ab");
    an_cache_key_add_str(&k1, "c");
    an_cache_key_init(&k2);
    an_cache_key_add_str(&k2, "a");
    an_cache_key_add_str(&k2, "bc");
    an_cache_key x = an_cache_key_final(&k1), y = an_cache_key_final(&k2);
    T_CHECK(memcmp(&x, &y, sizeof x), "field boundaries must matter");
    an_cache_key_init(&k3);
    an_cache_key_add_str(&k3, NULL);
    an_cache_key_init(&k4);
    an_cache_key_add_str(&k4, "");
    x = an_cache_key_final(&k3), y = an_cache_key_final(&k4);
    T_CHECK(memcmp(&x, &y, sizeof x), "NULL and \"\" must differ");
    char hex[33];
    an_cache_key parsed;
    an_cache_key_hex(&a, hex);
    T_CHECK(strlen(hex) == 32 && an_cache_key_parse(hex, &parsed) && !memcmp(&parsed, &a, sizeof a), "hex %s", hex);
    T_CHECK(!an_cache_key_parse("abc", &parsed), "short hex accepted");
    free(w1);
    free(w2);
}

/* ---- round trip --------------------------------------------------------------------------- */

static void put_get_roundtrip(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    an_cache *c = open_cache(dir, 0);
    if (!c) return;
    T_CHECK(an_cache_max_bytes(c) > 0 && an_cache_enabled(c), "defaults");
    char v1[300];
    snprintf(v1, sizeof v1, "%s/v1", dir);
    T_CHECK(!exists(v1), "open must not create anything");
    const size_t sizes[] = {0, 1, 63, 64, 65, 1000, (1u << 20) + 3};
    uint8_t *buf = malloc((1u << 20) + 3);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        an_cache_key k = key_of(i);
        T_CHECK(get_eq(c, &k, NULL, 0) == 0, "fresh key %zu must miss", i);
        fill(buf, sizes[i], i);
        if (!put(c, &k, buf, sizes[i])) break;
        an_cache_blob *b = NULL;
        an_err err = {0};
        T_CHECK(an_cache_get(c, &k, &b, &err) == AN_OK && b, "get %zu: %s", i, err.msg);
        if (!b) continue;
        T_CHECK(an_cache_blob_size(b) == sizes[i], "size %zu vs %zu", an_cache_blob_size(b), sizes[i]);
        T_CHECK(!memcmp(an_cache_blob_data(b), buf, sizes[i]), "payload %zu differs", i);
        T_CHECK(((uintptr_t)an_cache_blob_data(b) & 63) == 0, "payload not 64-byte aligned");
        an_cache_blob_free(b);
        char path[512];
        path_of(c, &k, path, sizeof path);
        struct stat st;
        T_CHECK(stat(path, &st) == 0 && (size_t)st.st_size == sizes[i] + 64, "entry file %s", path);
    }
    /* Putting the same key again (as a second process would) leaves one good entry. */
    an_cache_key k = key_of(5);
    fill(buf, 1000, 5);
    put(c, &k, buf, 1000);
    T_CHECK(get_eq(c, &k, buf, 1000) == 1, "re-put");
    an_cache_stats s = an_cache_get_stats(c);
    T_CHECK(s.hits == 8 && s.misses == 7 && s.puts == 8 && s.corrupt == 0 && s.evicted == 0,
            "stats hits %llu misses %llu puts %llu", (unsigned long long)s.hits, (unsigned long long)s.misses,
            (unsigned long long)s.puts);
    free(buf);
    an_cache_free(c);
    rmtree(dir);
}

static void disabled_cache(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    char sub[300];
    snprintf(sub, sizeof sub, "%s/never", dir);
    an_cache *c = NULL;
    an_err err = {0};
    an_cache_params p = {.dir = sub, .disabled = true};
    T_CHECK(an_cache_open(&c, &p, &err) == AN_OK, "%s", err.msg);
    an_cache_key k = key_of(1);
    T_CHECK(!an_cache_enabled(c), "enabled");
    T_CHECK(an_cache_put(c, &k, "abc", 3, &err) == AN_OK, "put");
    T_CHECK(get_eq(c, &k, "abc", 3) == 0, "a disabled cache must miss");
    T_CHECK(!exists(sub), "a disabled cache must not touch the disk");
    an_cache_free(c);
    /* A NULL handle behaves like a disabled cache. */
    an_cache_blob *b = (an_cache_blob *)1;
    T_CHECK(an_cache_put(NULL, &k, "abc", 3, &err) == AN_OK && an_cache_get(NULL, &k, &b, &err) == AN_OK && !b,
            "NULL cache");
    /* The size cap from the environment. */
    setenv("ANELM_CACHE_MAX", "3M", 1);
    p = (an_cache_params){.dir = sub};
    T_CHECK(an_cache_open(&c, &p, &err) == AN_OK && an_cache_max_bytes(c) == 3u << 20, "ANELM_CACHE_MAX=3M");
    an_cache_free(c);
    setenv("ANELM_CACHE_MAX", "lots", 1);
    an_err e2 = {0};
    T_CHECK(an_cache_open(&c, &p, &e2) == AN_E_USAGE && strstr(e2.msg, "ANELM_CACHE_MAX"), "bad size: %s", e2.msg);
    unsetenv("ANELM_CACHE_MAX");
    rmtree(dir);
}

/* ---- corruption --------------------------------------------------------------------------- */

/* Stores payload under k, lets mutate damage the file, and checks that get reports a miss,
 * the file is gone, the corrupt counter moved, and a fresh put works again. */
typedef void (*mutator)(const char *path, uint8_t *file, size_t n, size_t arg);

static void expect_rejected(an_cache *c, const char *what, mutator mut, size_t arg) {
    an_cache_key k = key_of(42);
    size_t n = 5000;
    uint8_t *buf = malloc(n);
    fill(buf, n, 42);
    if (!put(c, &k, buf, n)) return;
    char path[512];
    path_of(c, &k, path, sizeof path);
    size_t fn;
    uint8_t *file = (uint8_t *)t_read_file(path, &fn);
    if (!file) {
        T_FAIL("%s: entry file missing", what);
        return;
    }
    mut(path, file, fn, arg);
    uint64_t before = an_cache_get_stats(c).corrupt;
    int r = get_eq(c, &k, buf, n);
    T_CHECK(r == 0, "%s (%zu): corrupt entry must be a miss, got %d", what, arg, r);
    T_CHECK(!exists(path), "%s (%zu): corrupt entry must be deleted", what, arg);
    T_CHECK(an_cache_get_stats(c).corrupt == before + 1, "%s (%zu): not counted as corrupt", what, arg);
    put(c, &k, buf, n);
    T_CHECK(get_eq(c, &k, buf, n) == 1, "%s (%zu): rebuilt entry must hit", what, arg);
    free(file);
    free(buf);
}

static void m_truncate(const char *path, uint8_t *f, size_t n, size_t at) {
    (void)f;
    (void)n;
    if (truncate(path, (off_t)at) != 0) T_FAIL("truncate %s", path);
}
static void m_append(const char *path, uint8_t *f, size_t n, size_t extra) {
    uint8_t *g = calloc(1, n + extra);
    memcpy(g, f, n);
    write_all(path, g, n + extra);
    free(g);
}
static void m_flip(const char *path, uint8_t *f, size_t n, size_t at) {
    f[at] ^= 0x10;
    write_all(path, f, n);
}
/* Changes the header at offset off and recomputes the header hash, so that the specific check
 * (magic, version, size) must catch it rather than the header checksum. */
static void m_forge(const char *path, uint8_t *f, size_t n, size_t off) {
    f[off] ^= 0x01;
    uint64_t hh = an_cache_header_hash(f);
    memcpy(f + 56, &hh, 8);
    write_all(path, f, n);
}

static an_cache *g_other_src;
/* Puts another key's valid entry file in this key's place. */
static void m_swap(const char *path, uint8_t *f, size_t n, size_t arg) {
    (void)f;
    (void)n;
    (void)arg;
    an_cache_key o = key_of(43);
    uint8_t buf[100];
    fill(buf, sizeof buf, 43);
    put(g_other_src, &o, buf, sizeof buf);
    char opath[512];
    path_of(g_other_src, &o, opath, sizeof opath);
    if (rename(opath, path) != 0) T_FAIL("rename %s", opath);
}

static void corrupt_entries_rejected(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    an_cache *c = open_cache(dir, 0);
    if (!c) return;
    const size_t n = 5000 + 64;
    const size_t cuts[] = {0, 1, 8, 32, 63, 64, 65, 64 + 2500, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) expect_rejected(c, "truncated", m_truncate, cuts[i]);
    expect_rejected(c, "trailing bytes", m_append, 1);
    expect_rejected(c, "trailing bytes", m_append, 4096);
    const size_t payload_at[] = {64, 65, 64 + 2500, n - 1};
    for (size_t i = 0; i < sizeof payload_at / sizeof payload_at[0]; i++)
        expect_rejected(c, "payload flip", m_flip, payload_at[i]);
    for (size_t off = 0; off < 64; off++) expect_rejected(c, "header flip", m_flip, off);
    expect_rejected(c, "wrong magic", m_forge, 0);
    expect_rejected(c, "wrong magic", m_forge, 7);
    expect_rejected(c, "wrong version", m_forge, 8);
    expect_rejected(c, "wrong header size", m_forge, 12);
    expect_rejected(c, "wrong payload size", m_forge, 32);
    expect_rejected(c, "wrong payload hash", m_forge, 47);
    g_other_src = c;
    expect_rejected(c, "another key's entry", m_swap, 0);

    /* The report says what and where (captured from stderr at log level 1). */
    an_cache_key k = key_of(42);
    char path[512], logp[300];
    path_of(c, &k, path, sizeof path);
    if (truncate(path, 100) != 0) T_FAIL("truncate");
    snprintf(logp, sizeof logp, "%s/log.txt", dir);
    fflush(stderr);
    int saved = dup(2), lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(lfd, 2);
    int lvl = an_log_level();
    an_log_set_level(1);
    int r = get_eq(c, &k, NULL, 0);
    an_log_set_level(lvl);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    size_t ln;
    char *log = t_read_file(logp, &ln);
    if (log) log[ln] = 0;
    T_CHECK(r == 0 && log && strstr(log, "is corrupt (truncated") && strstr(log, path) && strstr(log, "deleted"),
            "log: %s", log ? log : "(none)");
    free(log);
    an_cache_free(c);
    rmtree(dir);
}

/* ---- eviction ----------------------------------------------------------------------------- */

static void lru_eviction(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    const size_t n = 10000, fbytes = n + 64;
    an_cache *c = open_cache(dir, 3 * fbytes + 100); /* room for three entries */
    if (!c) return;
    uint8_t *buf = malloc(n);
    an_cache_key k[5];
    for (int i = 0; i < 5; i++) k[i] = key_of(100 + (uint64_t)i);
    /* Coarse file-time clocks (a few ms) would make the order ambiguous: space the uses out. */
    const useconds_t gap = 20000;
    for (int i = 0; i < 3; i++) {
        fill(buf, n, 100 + (uint64_t)i);
        put(c, &k[i], buf, n);
        usleep(gap);
    }
    fill(buf, n, 100);
    T_CHECK(get_eq(c, &k[0], buf, n) == 1, "A"); /* A is now the most recently used */
    usleep(gap);
    fill(buf, n, 103);
    put(c, &k[3], buf, n); /* over the cap: B, the least recently used, goes */
    int hit[4];
    for (int i = 0; i < 4; i++) {
        fill(buf, n, 100 + (uint64_t)i);
        hit[i] = get_eq(c, &k[i], buf, n);
    }
    T_CHECK(hit[0] == 1 && hit[1] == 0 && hit[2] == 1 && hit[3] == 1, "kept A C D, evicted B: %d %d %d %d", hit[0],
            hit[1], hit[2], hit[3]);
    T_CHECK(an_cache_get_stats(c).evicted == 1, "evicted %llu", (unsigned long long)an_cache_get_stats(c).evicted);
    an_cache_free(c);

    /* An entry larger than the whole cap is still kept (it was just written), the rest go. */
    c = open_cache(dir, 1000);
    fill(buf, n, 104);
    put(c, &k[4], buf, n);
    T_CHECK(get_eq(c, &k[4], buf, n) == 1, "the entry just written must survive");
    fill(buf, n, 100);
    T_CHECK(get_eq(c, &k[0], buf, n) == 0, "older entries must be evicted");
    an_cache_free(c);
    free(buf);
    rmtree(dir);
}

/* ---- several processes -------------------------------------------------------------------- */

#define MP_KEYS 12
#define MP_ITERS 150

static size_t mp_size(int i) { return 50000 + (size_t)i * 7919; }

/* One worker: random gets, and a put on every miss; any mismatch or corrupt entry fails. */
static int mp_worker(const char *dir, int seed) {
    an_cache *c = NULL;
    an_err err = {0};
    an_cache_params p = {.dir = dir, .max_bytes = 6 * mp_size(MP_KEYS)}; /* forces evictions */
    if (an_cache_open(&c, &p, &err) != AN_OK) return 10;
    uint8_t *buf = malloc(mp_size(MP_KEYS));
    uint64_t s = (uint64_t)seed * 2654435761u + 1;
    int bad = 0;
    for (int it = 0; it < MP_ITERS && !bad; it++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int i = (int)(s % MP_KEYS);
        an_cache_key k = key_of(1000 + (uint64_t)i);
        fill(buf, mp_size(i), 1000 + (uint64_t)i);
        int r = get_eq(c, &k, buf, mp_size(i));
        if (r < 0) bad = 1;
        else if (r == 0 && an_cache_put(c, &k, buf, mp_size(i), &err) != AN_OK) bad = 2;
    }
    if (!bad && an_cache_get_stats(c).corrupt) bad = 3;
    free(buf);
    an_cache_free(c);
    return bad;
}

static void processes_share_a_cache(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    enum { NPROC = 4 };
    pid_t pids[NPROC];
    fflush(stdout);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        if (pids[i] == 0) _exit(mp_worker(dir, i + 1));
        if (pids[i] < 0) T_FAIL("fork");
    }
    for (int i = 0; i < NPROC; i++) {
        int st = 0;
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i])
            T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d: status %d (1 wrong bytes, 2 put failed, 3 corrupt)",
                    i, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    an_cache *c = open_cache(dir, 0);
    if (!c) return;
    an_cache_verify_report r;
    an_err err = {0};
    T_CHECK(an_cache_verify_all(c, &r, NULL, NULL, &err) == AN_OK && r.n_corrupt == 0 && r.n_ok > 0,
            "after the workers: %llu ok, %llu corrupt", (unsigned long long)r.n_ok, (unsigned long long)r.n_corrupt);
    /* No temporary files left behind. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '.tmp-*')\"", dir);
    T_CHECK(system(cmd) == 0, "temporary files left in %s", dir);
    an_cache_free(c);
    rmtree(dir);
}

/* ---- speed (noted, not asserted) ---------------------------------------------------------- */

static void warm_vs_cold_speed(void) {
    const char *dir = tmpdir();
    if (!dir) return;
    an_cache *c = open_cache(dir, 0);
    if (!c) return;
    size_t n = 256u << 20;
    uint8_t *buf = malloc(n);
    if (!buf) {
        t_skip("no 256 MB to spare");
        return;
    }
    fill(buf, n, 9);
    double t0 = an_now();
    an_cache_keyer kb;
    an_cache_key_init(&kb);
    an_cache_key_add(&kb, buf, n);
    an_cache_key k = an_cache_key_final(&kb);
    double t1 = an_now();
    put(c, &k, buf, n);
    double t2 = an_now();
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double a = an_now();
        an_cache_blob *b = NULL;
        an_err err = {0};
        T_CHECK(an_cache_get(c, &k, &b, &err) == AN_OK && b, "get: %s", err.msg);
        double e = an_now() - a;
        if (e < best) best = e;
        if (b && rep == 0) T_CHECK(!memcmp(an_cache_blob_data(b), buf, n), "payload");
        an_cache_blob_free(b);
    }
    double gb = (double)n / 1e9;
    t_note("256 MiB: key hash %.0f ms (%.1f GB/s); put (hash+write+fsync) %.0f ms (%.2f GB/s); "
           "get (mmap+verify) %.0f ms (%.1f GB/s)",
           (t1 - t0) * 1e3, gb / (t1 - t0), (t2 - t1) * 1e3, gb / (t2 - t1), best * 1e3, gb / best);
    free(buf);
    an_cache_free(c);
    rmtree(dir);
}

/* ---- the anelm cache command -------------------------------------------------------------- */

typedef t_run_result run_result;
#define run_free t_run_free

/* Runs `ANELM_CACHE=dir build/anelm cache ARGS`. */
static run_result run_cache(const char *dir, const char *args) {
    char env[600];
    snprintf(env, sizeof env, "ANELM_CACHE='%s'", dir);
    return t_run(env, "cache %s", args);
}

static void cli_ls_verify_clear(void) {
    char bin[600];
    snprintf(bin, sizeof bin, "%s/anelm", t_build_dir());
    if (access(bin, X_OK) != 0) {
        t_skip("%s not built", bin);
        return;
    }
    const char *dir = tmpdir();
    if (!dir) return;
    an_cache *c = open_cache(dir, 0);
    if (!c) return;
    uint8_t buf[3000];
    an_cache_key k[3];
    for (int i = 0; i < 3; i++) {
        k[i] = key_of(200 + (uint64_t)i);
        fill(buf, 1000 * (size_t)(i + 1), 200 + (uint64_t)i);
        put(c, &k[i], buf, 1000 * (size_t)(i + 1));
    }
    /* A file of another subsystem in the cache directory: neither listed nor deleted. */
    char limits[300];
    snprintf(limits, sizeof limits, "%s/limits.json", dir);
    write_all(limits, (const uint8_t *)"{}", 2);
    char hex[33];
    an_cache_key_hex(&k[1], hex);

    run_result r = run_cache(dir, "ls");
    T_CHECK(r.code == 0 && strstr(r.out, hex) && strstr(r.out, "3 entries") && !strstr(r.out, "limits"),
            "ls: exit %d\n%s%s", r.code, r.out, r.err);
    run_free(&r);

    r = run_cache(dir, "ls --json");
    t_json *j = t_json_parse(r.out, r.out_len);
    const t_json *ent = j ? t_json_get(j, "entries") : NULL;
    T_CHECK(r.code == 0 && j && t_json_get(j, "n_entries")->num == 3 && ent && ent->len == 3 &&
                t_json_get(j, "total_bytes")->num == 6000 + 3 * 64 && t_json_get(j, "dir") &&
                !strcmp(t_json_get(j, "dir")->str, dir),
            "ls --json: exit %d: %s", r.code, r.out);
    if (ent && ent->len == 3) {
        const t_json *e0 = t_json_at(ent, 0);
        T_CHECK(t_json_get(e0, "key") && strlen(t_json_get(e0, "key")->str) == 32 && t_json_get(e0, "bytes") &&
                    t_json_get(e0, "last_use") && t_json_get(e0, "last_use")->num > 1.5e9,
                "entry fields: %s", r.out);
    }
    t_json_free(j);
    run_free(&r);

    r = run_cache(dir, "verify");
    T_CHECK(r.code == 0 && strstr(r.out, "3 ok, 0 corrupt"), "verify: exit %d\n%s%s", r.code, r.out, r.err);
    run_free(&r);

    char path[512];
    path_of(c, &k[1], path, sizeof path);
    if (truncate(path, 1000) != 0) T_FAIL("truncate %s", path);
    r = run_cache(dir, "verify");
    T_CHECK(r.code == 2 && strstr(r.out, "2 ok, 1 corrupt") && strstr(r.out, hex) && strstr(r.out, "truncated"),
            "verify after damage: exit %d\n%s%s", r.code, r.out, r.err);
    run_free(&r);
    T_CHECK(!exists(path), "verify must delete the corrupt entry");
    r = run_cache(dir, "verify --json");
    j = t_json_parse(r.out, r.out_len);
    T_CHECK(r.code == 0 && j && t_json_get(j, "n_ok")->num == 2 && t_json_get(j, "n_corrupt")->num == 0,
            "verify --json: exit %d: %s", r.code, r.out);
    t_json_free(j);
    run_free(&r);

    r = run_cache(dir, "clear");
    T_CHECK(r.code == 0 && strstr(r.out, "removed 2 entries"), "clear: exit %d\n%s%s", r.code, r.out, r.err);
    run_free(&r);
    T_CHECK(exists(limits), "clear must leave limits.json alone");
    r = run_cache(dir, "ls --json");
    j = t_json_parse(r.out, r.out_len);
    T_CHECK(r.code == 0 && j && t_json_get(j, "n_entries")->num == 0, "ls after clear: %s", r.out);
    t_json_free(j);
    run_free(&r);

    r = run_cache(dir, "frobnicate");
    T_CHECK(r.code == 1 && strstr(r.err, "frobnicate"), "bad subcommand: exit %d %s", r.code, r.err);
    run_free(&r);
    r = run_cache(dir, "");
    T_CHECK(r.code == 1, "no subcommand: exit %d", r.code);
    run_free(&r);
    r = run_cache(dir, "--help");
    T_CHECK(r.code == 0 && strstr(r.out, "verify"), "help: exit %d", r.code);
    run_free(&r);
    an_cache_free(c);
    rmtree(dir);
}

const t_case t_suite_cache[] = {
    {"hash_streaming", hash_streaming},
    {"key_sensitivity", key_sensitivity},
    {"put_get_roundtrip", put_get_roundtrip},
    {"disabled_cache", disabled_cache},
    {"corrupt_entries_rejected", corrupt_entries_rejected},
    {"lru_eviction", lru_eviction},
    {"processes_share_a_cache", processes_share_a_cache},
    {"warm_vs_cold_speed", warm_vs_cold_speed},
    {"cli_ls_verify_clear", cli_ls_verify_clear},
    {0},
};
