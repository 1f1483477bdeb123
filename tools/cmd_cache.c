/* cmd_cache.c — `anelm cache ls|verify|clear`: look into, check and empty the compile cache. */
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "cli.h"

static void help(void) {
    printf("usage: anelm cache ls [--json]\n"
           "       anelm cache verify [--json]\n"
           "       anelm cache clear [--json]\n"
           "\n"
           "The compile cache holds weights compiled for a device (repacked tiles, ...), one file\n"
           "per tensor, keyed by a hash of their content, format, target layout and device.\n"
           "Directory: $ANELM_CACHE, else $XDG_CACHE_HOME/anelm, else ~/.cache/anelm; size cap:\n"
           "$ANELM_CACHE_MAX (e.g. 20G; default 8G), least recently used entries go first.\n"
           "\n"
           "  ls       entries (key, size, last use), most recently used first, and the total\n"
           "  verify   check every entry's checksums; corrupt ones are deleted (and rebuilt when\n"
           "           next needed). Exit 0 if all were good, 2 if any corrupt ones were removed\n"
           "  clear    delete every entry and say how many bytes that freed\n"
           "  --json   one JSON object on stdout\n");
}

static void fmt_bytes(char *buf, size_t cap, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, cap, "%.1f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", (double)b / 1024.0);
    else snprintf(buf, cap, "%llu B", (unsigned long long)b);
}

static void fmt_time(char *buf, size_t cap, int64_t ns) {
    time_t t = (time_t)(ns / 1000000000ll);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm)) snprintf(buf, cap, "?");
}

typedef struct ls_state {
    bool json;
    uint64_t n, total;
} ls_state;

static int ls_entry(const an_cache_entry *e, void *ud) {
    ls_state *s = ud;
    if (s->json) {
        printf("%s\n    {\"key\": \"%s\", \"bytes\": %llu, \"last_use\": %.3f, \"path\": ", s->n ? "," : "", e->key_hex,
               (unsigned long long)e->bytes, (double)e->last_use_ns * 1e-9);
        cli_json_str(stdout, e->path, strlen(e->path));
        printf("}");
    } else {
        char size[32], when[32];
        fmt_bytes(size, sizeof size, e->bytes);
        fmt_time(when, sizeof when, e->last_use_ns);
        printf("%s  %10s  %s\n", e->key_hex, size, when);
    }
    s->n++;
    s->total += e->bytes;
    return 0;
}

static void json_dir(const an_cache *c) {
    printf("\"dir\": ");
    cli_json_str(stdout, an_cache_path(c), strlen(an_cache_path(c)));
}

static int do_ls(an_cache *c, bool json) {
    ls_state s = {.json = json};
    an_err err = {0};
    if (json) {
        printf("{");
        json_dir(c);
        printf(", \"max_bytes\": %llu, \"entries\": [", (unsigned long long)an_cache_max_bytes(c));
    } else {
        printf("%-32s  %10s  %s\n", "key", "size", "last use");
    }
    an_status st = an_cache_list(c, ls_entry, &s, &err);
    if (json) {
        printf("%s], \"n_entries\": %llu, \"total_bytes\": %llu}\n", s.n ? "\n  " : "", (unsigned long long)s.n,
               (unsigned long long)s.total);
    } else {
        char tot[32], cap[32];
        fmt_bytes(tot, sizeof tot, s.total);
        fmt_bytes(cap, sizeof cap, an_cache_max_bytes(c));
        printf("%llu entries, %s of %s in %s\n", (unsigned long long)s.n, tot, cap, an_cache_path(c));
    }
    return st == AN_OK ? EXIT_OK : cli_fail(&err);
}

static void on_bad(const char *path, const char *reason, void *ud) {
    /* In --json mode stdout holds the object; the per-entry lines go to stderr. */
    fprintf(*(bool *)ud ? stderr : stdout, "corrupt: %s (%s), deleted\n", path, reason);
}

static int do_verify(an_cache *c, bool json) {
    an_cache_verify_report r;
    an_err err = {0};
    an_status st = an_cache_verify_all(c, &r, on_bad, &json, &err);
    if (json) {
        printf("{");
        json_dir(c);
        printf(", \"n_ok\": %llu, \"n_corrupt\": %llu, \"bytes_ok\": %llu, \"bytes_removed\": %llu}\n",
               (unsigned long long)r.n_ok, (unsigned long long)r.n_corrupt, (unsigned long long)r.bytes_ok,
               (unsigned long long)r.bytes_corrupt);
    } else {
        char removed[32];
        fmt_bytes(removed, sizeof removed, r.bytes_corrupt);
        printf("verified %llu entries in %s: %llu ok, %llu corrupt (removed, %s)\n",
               (unsigned long long)(r.n_ok + r.n_corrupt), an_cache_path(c), (unsigned long long)r.n_ok,
               (unsigned long long)r.n_corrupt, removed);
    }
    if (st != AN_OK) return cli_fail(&err);
    return r.n_corrupt ? EXIT_BAD_INPUT : EXIT_OK;
}

static int do_clear(an_cache *c, bool json) {
    uint64_t n = 0, bytes = 0;
    an_err err = {0};
    an_status st = an_cache_clear(c, &n, &bytes, &err);
    if (json) {
        printf("{");
        json_dir(c);
        printf(", \"n_removed\": %llu, \"bytes_freed\": %llu}\n", (unsigned long long)n, (unsigned long long)bytes);
    } else {
        char b[32];
        fmt_bytes(b, sizeof b, bytes);
        printf("removed %llu entries from %s, %s freed\n", (unsigned long long)n, an_cache_path(c), b);
    }
    return st == AN_OK ? EXIT_OK : cli_fail(&err);
}

int cmd_cache(int argc, char **argv) {
    const char *sub = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return EXIT_OK;
        }
        if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-') return cli_usage_error("cache", "unknown option '%s'", a);
        else if (sub) return cli_usage_error("cache", "unexpected argument '%s'", a);
        else sub = a;
    }
    if (!sub) return cli_usage_error("cache", "missing subcommand: ls, verify or clear");
    if (strcmp(sub, "ls") && strcmp(sub, "verify") && strcmp(sub, "clear"))
        return cli_usage_error("cache", "unknown subcommand '%s' (ls, verify or clear)", sub);
    an_cache *c;
    an_err err = {0};
    if (an_cache_open(&c, NULL, &err) != AN_OK) return cli_fail(&err);
    int rc = !strcmp(sub, "ls") ? do_ls(c, json) : !strcmp(sub, "verify") ? do_verify(c, json) : do_clear(c, json);
    an_cache_free(c);
    return rc;
}
