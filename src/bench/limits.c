/* limits.c — measuring, caching and reading this machine's limits (see limits.h). */
#include "bench/limits.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/pool.h"
#include "core/timer.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

/* ---- machine key --------------------------------------------------------------------------- */

void an_limits_machine_key(char *buf, size_t cap) {
    char brand[128];
    an_cpu_brand(brand, sizeof brand);
    snprintf(buf, cap, "%s | %d cpus | limits v%d", brand, an_cpu_count(), AN_LIMITS_VERSION);
}

/* ---- measurement ----------------------------------------------------------------------------- */

enum { K_READ, K_FMA512, K_FMA256, K_FMA_SCALAR, K_AMX_BF16, K_AMX_INT8 };

typedef struct job {
    int kind;
    int64_t iters;            /* compute kernels: per thread */
    const unsigned char *buf; /* read: the whole buffer, split among threads */
    size_t size;
    volatile uint64_t sink[256]; /* per thread (the pool's maximum): results land here so no
                                  * kernel is dead code, without threads racing on one word */
} job;

/* Portable read: 8 independent 64-bit lanes, which the compiler may vectorize. */
static uint64_t read_scalar(const unsigned char *p, size_t n) {
    const uint64_t *v = (const uint64_t *)(const void *)p;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n / 8; i += 8)
        for (int k = 0; k < 8; k++) a[k] ^= v[i + (size_t)k];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

/* Portable FMA loop: 16 independent chains, multiply-add the compiler may fuse. */
static float fma_scalar(int64_t iters) {
    float c[16];
    for (int k = 0; k < 16; k++) c[k] = (float)k * 0.05f;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 16; k++) c[k] = c[k] * 0.999999f + 1e-6f;
    float s = 0;
    for (int k = 0; k < 16; k++) s += c[k];
    return s;
}

static void run_job(void *arg, int ith, int nth) {
    job *j = arg;
    uint64_t r = 0;
    switch (j->kind) {
    case K_READ: {
        /* contiguous slices, 256-byte multiples (the AVX2 kernel's step) */
        size_t per = (j->size / (size_t)nth) & ~(size_t)255;
        const unsigned char *p = j->buf + per * (size_t)ith;
#if defined(__x86_64__)
        if (an_cpu()->best >= AN_ISA_AVX2) r = an_lim_read_avx2(p, per);
        else
#endif
            r = read_scalar(p, per);
        break;
    }
#if defined(__x86_64__)
    case K_FMA512: r = (uint64_t)an_lim_fma_avx512(j->iters); break;
    case K_FMA256: r = (uint64_t)an_lim_fma_avx2(j->iters); break;
    case K_AMX_BF16: r = (uint64_t)an_lim_amx_bf16(j->iters); break;
    case K_AMX_INT8: r = (uint64_t)(uint32_t)an_lim_amx_int8(j->iters); break;
#endif
    default: r = (uint64_t)fma_scalar(j->iters); break;
    }
    j->sink[ith & 255] += r;
}

/* CPU time of the whole process: set against wall time x threads it shows how much of the
 * CPU other processes took while we measured (host contention on a VM is invisible to it). */
static double cpu_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds we got, and wall seconds x threads we asked for, over the timed runs. */
typedef struct meter {
    double got, asked;
} meter;

static double run_timed(an_pool *pool, job *j, meter *mt) {
    double c0 = cpu_seconds(), t0 = an_now();
    an_pool_run(pool, run_job, j);
    double t = an_now() - t0;
    if (mt) {
        mt->got += cpu_seconds() - c0;
        mt->asked += t * an_pool_size(pool);
    }
    return t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double an_bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define REPS 5

/* Runs j with 1 thread and with pool (N threads), alternating, REPS times each; work_1 is the
 * amount of work one thread does (bytes or FLOP), work_n that of all N together. Results are
 * work per second, medians. */
static void measure_pair(an_pool *pool, job *j, double work_1, double work_n, double *r1, double *rn, meter *mt) {
    double a[REPS], b[REPS];
    for (int i = 0; i < REPS; i++) {
        a[i] = work_1 / run_timed(NULL, j, mt);
        b[i] = pool ? work_n / run_timed(pool, j, mt) : a[i];
    }
    *r1 = an_bench_median(a, REPS);
    *rn = an_bench_median(b, REPS);
}

/* Iterations of a compute kernel that take about `target` seconds on one thread. */
static int64_t calibrate(job *j, double target) {
    int64_t it = 1 << 14;
    for (;;) {
        j->iters = it;
        double t = run_timed(NULL, j, NULL);
        if (t > 0.02 || it > ((int64_t)1 << 40)) return (int64_t)((double)it * target / (t > 0 ? t : 1e-9)) + 1;
        it *= 8;
    }
}

#define COMPUTE_SECONDS 0.15

static void measure_compute(an_pool *pool, int kind, double work_per_iter, int nth, double *r1, double *rn,
                            meter *mt) {
    job j = {.kind = kind};
    j.iters = calibrate(&j, COMPUTE_SECONDS);
    double w = (double)j.iters * work_per_iter;
    measure_pair(pool, &j, w, w * nth, r1, rn, mt);
}

/* The tile data state is off by default on Linux: a process must ask for it once, or the first
 * tile instruction kills it with SIGILL. The permission covers every thread of the process. */
static bool amx_permission(char *why, size_t cap) {
    const an_cpu_info *c = an_cpu();
    if (!c->amx_tile || !c->amx_bf16 || !c->amx_int8) {
        snprintf(why, cap, "the CPU has no AMX-BF16/INT8");
        return false;
    }
#if defined(__x86_64__) && defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        snprintf(why, cap, "the kernel refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: %s)", strerror(errno));
        return false;
    }
    unsigned long mask = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) != 0 || !(mask & (1ul << XFEATURE_XTILEDATA))) {
        snprintf(why, cap, "the kernel did not grant AMX tile data (ARCH_GET_XCOMP_PERM)");
        return false;
    }
    why[0] = 0;
    return true;
#else
    snprintf(why, cap, "AMX needs Linux on x86-64");
    return false;
#endif
}

/* Smaller buffers are tried when 1 GiB cannot be had; anything >= 256 MiB still dwarfs the
 * last-level cache (105 MiB on the reference machine) enough to measure DRAM. */
static unsigned char *big_buffer(size_t *size) {
    for (size_t sz = (size_t)1 << 30; sz >= ((size_t)1 << 28); sz /= 2) {
        void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) continue;
#ifdef MADV_HUGEPAGE
        madvise(p, sz, MADV_HUGEPAGE); /* fewer TLB misses and faster first touch; a hint only */
#endif
        *size = sz;
        return p;
    }
    return NULL;
}

an_status an_limits_measure(an_limits *out, int n_threads, an_limits_progress_fn progress, void *ud,
                            an_err *err) {
    memset(out, 0, sizeof *out);
    if (n_threads < 1) n_threads = an_cpu_count();
    double t_start = an_now();
    an_limits_machine_key(out->key, sizeof out->key);
    out->n_threads = n_threads;
    out->measured_at = (double)time(NULL);
    an_pool *pool = NULL;
    if (n_threads > 1) AN_TRY(an_pool_create(&pool, n_threads, err));

    /* memory */
    if (progress) progress(ud, "memory read bandwidth");
    size_t size = 0;
    unsigned char *buf = big_buffer(&size);
    if (!buf) {
        an_pool_free(pool);
        return an_err_set(err, AN_E_NOMEM, "limits: cannot map a 256 MiB-1 GiB buffer for the bandwidth test");
    }
    memset(buf, 1, size); /* touch every page now, so the timed reads see no page faults */
    job rj = {.kind = K_READ, .buf = buf, .size = size};
    meter mt = {0, 0};
    run_timed(pool, &rj, NULL); /* warm-up: settles TLBs and the thread pool */
    size_t per1 = size & ~(size_t)255, pern = (size / (size_t)n_threads & ~(size_t)255) * (size_t)n_threads;
    double m1, mn;
    measure_pair(pool, &rj, (double)per1, (double)pern, &m1, &mn, &mt);
    out->mem_gbps_1 = m1 / 1e9;
    out->mem_gbps_n = mn / 1e9;
    munmap(buf, size);

    /* vector FMA: 2 FLOP per lane per FMA */
    if (progress) progress(ud, "vector FMA peak");
    double f1, fn;
    const an_cpu_info *c = an_cpu();
    (void)c;
#if defined(__x86_64__)
    if (c->best >= AN_ISA_AVX512) {
        snprintf(out->fma_isa, sizeof out->fma_isa, "avx512");
        measure_compute(pool, K_FMA512, 12.0 * 16 * 2, n_threads, &f1, &fn, &mt);
    } else if (c->best >= AN_ISA_AVX2) {
        snprintf(out->fma_isa, sizeof out->fma_isa, "avx2");
        measure_compute(pool, K_FMA256, 10.0 * 8 * 2, n_threads, &f1, &fn, &mt);
    } else
#endif
    {
        snprintf(out->fma_isa, sizeof out->fma_isa, "scalar");
        measure_compute(pool, K_FMA_SCALAR, 16.0 * 2, n_threads, &f1, &fn, &mt);
    }
    out->fma_gflops_1 = f1 / 1e9;
    out->fma_gflops_n = fn / 1e9;

    /* AMX */
    out->amx = amx_permission(out->amx_note, sizeof out->amx_note);
#if defined(__x86_64__)
    if (out->amx) {
        if (progress) progress(ud, "AMX peaks");
        measure_compute(pool, K_AMX_BF16, 4.0 * 16 * 16 * 32 * 2, n_threads, &f1, &fn, &mt);
        out->amx_bf16_tflops_1 = f1 / 1e12;
        out->amx_bf16_tflops_n = fn / 1e12;
        measure_compute(pool, K_AMX_INT8, 4.0 * 16 * 16 * 64 * 2, n_threads, &f1, &fn, &mt);
        out->amx_int8_tops_1 = f1 / 1e12;
        out->amx_int8_tops_n = fn / 1e12;
    }
#endif
    an_pool_free(pool);
    out->seconds = an_now() - t_start;
    out->cpu_share = mt.asked > 0 ? fmin(1.0, mt.got / mt.asked) : 0;
    return AN_OK;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Appends to a bounded buffer while counting the full length (snprintf's contract). */
typedef struct sbuf {
    char *p;
    size_t cap, n;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) AN_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->n < b->cap ? b->p + b->n : NULL, b->n < b->cap ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k > 0) b->n += (size_t)k;
}

static void sb_str(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') sb_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) sb_printf(b, "\\u%04x", ch);
        else sb_printf(b, "%c", ch);
    }
    sb_printf(b, "\"");
}

size_t an_limits_to_json(const an_limits *l, char *buf, size_t cap) {
    sbuf b = {buf, cap, 0};
    if (cap) buf[0] = 0;
    sb_printf(&b, "{\n  \"version\": %d,\n  \"key\": ", AN_LIMITS_VERSION);
    sb_str(&b, l->key);
    sb_printf(&b, ",\n  \"n_threads\": %d,\n  \"measured_at\": %.0f,\n  \"seconds\": %.3g,\n", l->n_threads,
              l->measured_at, l->seconds);
    sb_printf(&b, "  \"cpu_share\": %.3g,\n", l->cpu_share);
    sb_printf(&b, "  \"mem_gbps_1\": %.6g,\n  \"mem_gbps_n\": %.6g,\n", l->mem_gbps_1, l->mem_gbps_n);
    sb_printf(&b, "  \"fma_isa\": ");
    sb_str(&b, l->fma_isa);
    sb_printf(&b, ",\n  \"fma_gflops_1\": %.6g,\n  \"fma_gflops_n\": %.6g,\n", l->fma_gflops_1, l->fma_gflops_n);
    sb_printf(&b, "  \"amx\": %s,\n  \"amx_note\": ", l->amx ? "true" : "false");
    sb_str(&b, l->amx_note);
    sb_printf(&b, ",\n  \"amx_bf16_tflops_1\": %.6g,\n  \"amx_bf16_tflops_n\": %.6g,\n", l->amx_bf16_tflops_1,
              l->amx_bf16_tflops_n);
    sb_printf(&b, "  \"amx_int8_tops_1\": %.6g,\n  \"amx_int8_tops_n\": %.6g\n}\n", l->amx_int8_tops_1,
              l->amx_int8_tops_n);
    return b.n;
}

/* A reader for the flat object an_limits_to_json writes: string keys with string, number,
 * boolean or null values. Nested values are rejected (the format has none). */
typedef struct jr {
    const char *s, *e;
} jr;

static void ws(jr *r) {
    while (r->s < r->e && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r')) r->s++;
}

/* Reads a string literal into out (truncated to cap-1 bytes; \u escapes above ASCII become '?',
 * which no key or note written here contains). */
static bool jstr(jr *r, char *out, size_t cap) {
    size_t n = 0;
    if (r->s >= r->e || *r->s != '"') return false;
    r->s++;
    while (r->s < r->e && *r->s != '"') {
        char ch = *r->s++;
        if ((unsigned char)ch < 0x20) return false;
        if (ch == '\\') {
            if (r->s >= r->e) return false;
            char esc = *r->s++;
            switch (esc) {
            case '"': case '\\': case '/': ch = esc; break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    if (r->s >= r->e) return false;
                    char h = *r->s++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else return false;
                }
                ch = v < 0x80 ? (char)v : '?';
                break;
            }
            default: return false;
            }
        }
        if (n + 1 < cap) out[n++] = ch;
    }
    if (r->s >= r->e) return false;
    r->s++;
    if (cap) out[n] = 0;
    return true;
}

/* strlcpy: truncating copies of parsed strings into the struct's fixed fields */
static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

typedef struct jval {
    enum { JV_STR, JV_NUM, JV_BOOL, JV_NULL } kind;
    char str[256];
    double num;
} jval;

static bool jvalue(jr *r, jval *v) {
    if (r->s >= r->e) return false;
    if (*r->s == '"') {
        v->kind = JV_STR;
        return jstr(r, v->str, sizeof v->str);
    }
    static const struct { const char *w; int kind; double num; } words[] = {
        {"true", JV_BOOL, 1}, {"false", JV_BOOL, 0}, {"null", JV_NULL, 0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t l = strlen(words[i].w);
        if ((size_t)(r->e - r->s) >= l && !memcmp(r->s, words[i].w, l)) {
            v->kind = words[i].kind;
            v->num = words[i].num;
            r->s += l;
            return true;
        }
    }
    /* strtod needs a terminator: copy the number's characters out first */
    char tmp[64];
    size_t n = 0;
    while (r->s + n < r->e && n + 1 < sizeof tmp && strchr("+-0123456789.eE", r->s[n])) {
        tmp[n] = r->s[n];
        n++;
    }
    tmp[n] = 0;
    char *end;
    v->num = strtod(tmp, &end);
    if (n == 0 || *end || !isfinite(v->num)) return false;
    v->kind = JV_NUM;
    r->s += n;
    return true;
}

an_status an_limits_from_json(an_limits *out, const char *json, size_t len, an_err *err) {
    memset(out, 0, sizeof *out);
    jr r = {json, json + len};
    enum { HAVE_KEY = 1, HAVE_THREADS = 2, HAVE_MEM1 = 4, HAVE_MEMN = 8, HAVE_FMA1 = 16, HAVE_FMAN = 32,
           HAVE_VERSION = 64, HAVE_ALL = 127 };
    int have = 0, version = 0;
    ws(&r);
    if (r.s >= r.e || *r.s != '{') return an_err_set(err, AN_E_FORMAT, "limits cache: not a JSON object");
    r.s++;
    ws(&r);
    bool first = true;
    while (r.s < r.e && *r.s != '}') {
        if (!first) {
            if (*r.s != ',') goto bad;
            r.s++;
            ws(&r);
        }
        first = false;
        char name[64];
        jval v;
        if (!jstr(&r, name, sizeof name)) goto bad;
        ws(&r);
        if (r.s >= r.e || *r.s != ':') goto bad;
        r.s++;
        ws(&r);
        if (!jvalue(&r, &v)) goto bad;
        ws(&r);
        bool num = v.kind == JV_NUM, str = v.kind == JV_STR;
#define NUM_FIELD(k, field, bit)           \
    else if (!strcmp(name, k)) {           \
        if (!num) goto bad;                \
        out->field = v.num;                \
        have |= bit;                       \
    }
        if (!strcmp(name, "version")) {
            if (!num) goto bad;
            version = (int)v.num;
            have |= HAVE_VERSION;
        } else if (!strcmp(name, "key")) {
            if (!str) goto bad;
            copy_str(out->key, sizeof out->key, v.str);
            have |= HAVE_KEY;
        } else if (!strcmp(name, "n_threads")) {
            if (!num || v.num < 1 || v.num > 4096) goto bad;
            out->n_threads = (int)v.num;
            have |= HAVE_THREADS;
        } else if (!strcmp(name, "fma_isa")) {
            if (!str) goto bad;
            copy_str(out->fma_isa, sizeof out->fma_isa, v.str);
        } else if (!strcmp(name, "amx_note")) {
            if (!str) goto bad;
            copy_str(out->amx_note, sizeof out->amx_note, v.str);
        } else if (!strcmp(name, "amx")) {
            if (v.kind != JV_BOOL) goto bad;
            out->amx = v.num != 0;
        }
        NUM_FIELD("measured_at", measured_at, 0)
        NUM_FIELD("seconds", seconds, 0)
        NUM_FIELD("cpu_share", cpu_share, 0)
        NUM_FIELD("mem_gbps_1", mem_gbps_1, HAVE_MEM1)
        NUM_FIELD("mem_gbps_n", mem_gbps_n, HAVE_MEMN)
        NUM_FIELD("fma_gflops_1", fma_gflops_1, HAVE_FMA1)
        NUM_FIELD("fma_gflops_n", fma_gflops_n, HAVE_FMAN)
        NUM_FIELD("amx_bf16_tflops_1", amx_bf16_tflops_1, 0)
        NUM_FIELD("amx_bf16_tflops_n", amx_bf16_tflops_n, 0)
        NUM_FIELD("amx_int8_tops_1", amx_int8_tops_1, 0)
        NUM_FIELD("amx_int8_tops_n", amx_int8_tops_n, 0)
        /* other keys: ignored, so a newer writer's extra fields do not break an older reader */
#undef NUM_FIELD
    }
    if (r.s >= r.e) goto bad;
    r.s++;
    ws(&r);
    if (r.s != r.e) goto bad;
    if ((have & HAVE_ALL) != HAVE_ALL)
        return an_err_set(err, AN_E_FORMAT, "limits cache: a required field is missing");
    if (version != AN_LIMITS_VERSION)
        return an_err_set(err, AN_E_FORMAT, "limits cache: format version %d, expected %d", version,
                          AN_LIMITS_VERSION);
    if (!(out->mem_gbps_1 > 0 && out->mem_gbps_n > 0 && out->fma_gflops_1 > 0 && out->fma_gflops_n > 0))
        return an_err_set(err, AN_E_FORMAT, "limits cache: a limit is not positive");
    return AN_OK;
bad:
    return an_err_set(err, AN_E_FORMAT, "limits cache: malformed JSON near byte %zu", (size_t)(r.s - json));
}

/* ---- files ----------------------------------------------------------------------------------- */

an_status an_limits_load(an_limits *out, const char *path, an_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return an_err_set(err, AN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char buf[8192]; /* the file is well under 1 KiB; anything bigger is not ours */
    size_t n = fread(buf, 1, sizeof buf, f);
    bool too_big = n == sizeof buf, bad = ferror(f);
    fclose(f);
    if (bad) return an_err_set(err, AN_E_IO, "%s: read error", path);
    if (too_big) return an_err_set(err, AN_E_FORMAT, "%s: too large for a limits cache", path);
    an_err e = {0};
    if (an_limits_from_json(out, buf, n, &e) != AN_OK) return an_err_set(err, e.code, "%s: %s", path, e.msg);
    return AN_OK;
}

an_status an_limits_save(const an_limits *l, const char *path, an_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return an_err_set(err, AN_E_IO, "%s: path too long", path);
    char buf[4096];
    size_t n = an_limits_to_json(l, buf, sizeof buf);
    if (n >= sizeof buf) return an_err_set(err, AN_E_RUNTIME, "limits JSON longer than %zu bytes", sizeof buf);
    FILE *f = fopen(tmp, "wb");
    if (!f) return an_err_set(err, AN_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    bool ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(tmp);
        return an_err_set(err, AN_E_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return an_err_set(err, AN_E_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return AN_OK;
}

an_status an_limits_path(char *buf, size_t cap, int create, an_err *err) {
    char dir[4096];
    AN_TRY(an_cache_dir(dir, sizeof dir, create, err));
    if (snprintf(buf, cap, "%s/limits.json", dir) >= (int)cap)
        return an_err_set(err, AN_E_IO, "limits cache path is too long");
    return AN_OK;
}

static an_status measure_default(an_limits *out, int n_threads, void *ud, an_err *err) {
    (void)ud;
    return an_limits_measure(out, n_threads, NULL, NULL, err);
}

an_status an_limits_get(an_limits *out, const char *path, int n_threads, bool refresh,
                        an_limits_measure_fn measure, void *ud, an_limits_source *src, an_err *err) {
    if (src) *src = AN_LIMITS_CACHED;
    if (!refresh) {
        an_err e = {0};
        an_limits c;
        char key[sizeof c.key];
        an_limits_machine_key(key, sizeof key);
        if (an_limits_load(&c, path, &e) == AN_OK && !strcmp(c.key, key) &&
            (n_threads <= 0 || c.n_threads == n_threads)) {
            *out = c;
            return AN_OK;
        }
        if (e.code && e.code != AN_E_IO) an_log(1, "limits: ignoring the cache: %s\n", e.msg);
    }
    if (!measure) measure = measure_default;
    AN_TRY(measure(out, n_threads > 0 ? n_threads : an_cpu_count(), ud, err));
    an_err e = {0};
    bool saved = an_limits_save(out, path, &e) == AN_OK;
    if (!saved) an_log(1, "limits: not cached: %s\n", e.msg);
    if (src) *src = saved ? AN_LIMITS_MEASURED : AN_LIMITS_UNSAVED;
    return AN_OK;
}

double an_limits_mem_gbps(const an_limits *l, int threads) {
    return threads <= 1 ? l->mem_gbps_1 : l->mem_gbps_n;
}

double an_limits_fma_gflops(const an_limits *l, int threads) {
    return threads <= 1 ? l->fma_gflops_1 : l->fma_gflops_n;
}
