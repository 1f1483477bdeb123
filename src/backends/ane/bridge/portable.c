/* portable.c — the bridge's portable helpers (internal.h): strides and surface sizes, strided
 * copies, the known-answer comparison, description checks, cache paths and the POSIX file
 * work (staging files, tree deletion, flock with a bounded wait). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/ane/bridge/internal.h"
#include "core/fp16.h"

/* ---- layouts and surfaces --------------------------------------------------------------- */

int64_t an_ane_default_stride(int64_t width) {
    if (width <= 0) return 64;
    return (width * 2 + 63) / 64 * 64;
}

an_status an_ane_layout_stride(int64_t rows, int64_t width, int64_t height, int64_t row_stride, int64_t plane_stride,
                               int64_t *stride, an_err *err) {
    if (height > 1)
        return an_err_set(err, AN_E_UNSUPPORTED,
                          "compiled model reports Height %lld for a [%lld][%lld] tensor (the bridge handles 1)",
                          (long long)height, (long long)rows, (long long)width);
    if (row_stride < width * 2 || row_stride % 2)
        return an_err_set(err, AN_E_UNSUPPORTED,
                          "compiled model reports RowStride %lld for width %lld (need an even value >= %lld)",
                          (long long)row_stride, (long long)width, (long long)(width * 2));
    if (plane_stride > 0 && (plane_stride < row_stride || plane_stride % 2))
        return an_err_set(err, AN_E_UNSUPPORTED, "compiled model reports PlaneStride %lld below RowStride %lld",
                          (long long)plane_stride, (long long)row_stride);
    *stride = plane_stride > 0 ? plane_stride : row_stride;
    return AN_OK;
}

size_t an_ane_surface_bytes(int64_t rows, int64_t stride) {
    uint64_t b = (uint64_t)(rows > 0 ? rows : 0) * (uint64_t)(stride > 0 ? stride : 0);
    uint64_t q = AN_ANE_SURFACE_QUANTUM;
    b = (b + q - 1) / q * q;
    return (size_t)(b < q ? q : b);
}

void an_ane_copy_in(uint8_t *dst, int64_t stride, const uint16_t *src, int64_t rows, int64_t width) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * stride, src + r * width, (size_t)width * 2);
}

void an_ane_copy_out(uint16_t *dst, const uint8_t *src, int64_t stride, int64_t rows, int64_t width) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * width, src + r * stride, (size_t)width * 2);
}

/* ---- known-answer self-test --------------------------------------------------------------- */

bool an_ane_fp16_close(const uint16_t *got, const uint16_t *want, size_t n, float tol_abs, float tol_rel,
                       size_t *bad) {
    for (size_t i = 0; i < n; i++) {
        float g = an_f16_to_f32(got[i]), w = an_f16_to_f32(want[i]);
        bool ok;
        if (isnan(w) || isnan(g)) ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g)) ok = g == w;
        else ok = fabsf(g - w) <= tol_abs + tol_rel * fabsf(w);
        if (!ok) {
            if (bad) *bad = i;
            return false;
        }
    }
    return true;
}

an_status an_ane_selftest_check(const struct an_mil_io *io, int fn, const uint16_t *const *got,
                                const uint16_t *const *want, float tol_abs, float tol_rel, an_err *err) {
    for (int j = 0; j < io->n_out; j++) {
        int64_t w = io->out_width[j];
        size_t bad = 0;
        if (!an_ane_fp16_close(got[j], want[j], (size_t)io->n * (size_t)w, tol_abs, tol_rel, &bad))
            return an_err_set(err, AN_E_RUNTIME,
                              "ANE self-test failed: function %d output %d [%d x %lld] at row %lld column %lld: "
                              "got %g, expected %g (tolerance %g + %g * |expected|)",
                              fn, j, io->n, (long long)w, (long long)(bad / (size_t)w), (long long)(bad % (size_t)w),
                              (double)an_f16_to_f32(got[j][bad]), (double)an_f16_to_f32(want[j][bad]),
                              (double)tol_abs, (double)tol_rel);
    }
    return AN_OK;
}

an_status an_ane_desc_check(const an_ane_prog_desc *d, an_err *err) {
    if (!d) return an_err_set(err, AN_E_USAGE, "ANE program: no description");
    if (!d->mil || !d->mil_len) return an_err_set(err, AN_E_USAGE, "ANE program: empty MIL text");
    if (d->blob_len && !d->blob) return an_err_set(err, AN_E_USAGE, "ANE program: blob_len %zu without a blob", d->blob_len);
    if (d->n_fns < 1 || d->n_fns > AN_ANE_BANK_MAX_FNS)
        return an_err_set(err, AN_E_USAGE, "ANE program: %d functions (1 .. %d)", d->n_fns, AN_ANE_BANK_MAX_FNS);
    if (!d->io) return an_err_set(err, AN_E_USAGE, "ANE program: no I/O shapes");
    if (!d->ref_in || !d->ref_out)
        return an_err_set(err, AN_E_USAGE, "ANE program: no known-answer inputs/outputs (the self-test is required)");
    if (!(d->tol_abs >= 0 && d->tol_rel >= 0 && isfinite(d->tol_abs) && isfinite(d->tol_rel)))
        return an_err_set(err, AN_E_USAGE, "ANE program: tolerances must be finite and >= 0");
    for (int f = 0; f < d->n_fns; f++) {
        const struct an_mil_io *io = &d->io[f];
        int max_in = (int)(sizeof io->in_width / sizeof io->in_width[0]);
        int max_out = (int)(sizeof io->out_width / sizeof io->out_width[0]);
        if (io->n_in < 1 || io->n_in > max_in || io->n_out < 1 || io->n_out > max_out)
            return an_err_set(err, AN_E_USAGE, "ANE program: function %d has %d inputs, %d outputs (1..%d, 1..%d)", f,
                              io->n_in, io->n_out, max_in, max_out);
        if (io->n < 1 || io->n > AN_ANE_MAX_EXTENT)
            return an_err_set(err, AN_E_USAGE, "ANE program: function %d has %d rows", f, io->n);
        for (int i = 0; i < io->n_in + io->n_out; i++) {
            int64_t w = i < io->n_in ? io->in_width[i] : io->out_width[i - io->n_in];
            if (w < 1 || w > AN_ANE_MAX_EXTENT)
                return an_err_set(err, AN_E_USAGE, "ANE program: function %d %s %d has width %lld", f,
                                  i < io->n_in ? "input" : "output", i < io->n_in ? i : i - io->n_in, (long long)w);
        }
        if (!d->ref_in[f] || !d->ref_out[f])
            return an_err_set(err, AN_E_USAGE, "ANE program: function %d has no known-answer arrays", f);
        for (int i = 0; i < io->n_in; i++)
            if (!d->ref_in[f][i]) return an_err_set(err, AN_E_USAGE, "ANE program: function %d input %d: no reference", f, i);
        for (int j = 0; j < io->n_out; j++)
            if (!d->ref_out[f][j])
                return an_err_set(err, AN_E_USAGE, "ANE program: function %d output %d: no reference", f, j);
    }
    return AN_OK;
}

/* ---- files -------------------------------------------------------------------------------- */

static bool chars_ok(const char *s, size_t max, const char *extra) {
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr(extra, c);
        if (!ok || n >= max) return false;
    }
    return n > 0;
}

bool an_ane_ident_ok(const char *ident) { return ident && chars_ok(ident, 200, "_-"); }

an_status an_ane_cache_path(char *buf, size_t cap, const char *cache_dir, const char *os_build, const char *ident,
                            an_err *err) {
    if (!cache_dir || !cache_dir[0]) return an_err_set(err, AN_E_USAGE, "ANE cache: no cache directory");
    if (!an_ane_ident_ok(ident))
        return an_err_set(err, AN_E_USAGE, "ANE cache: unusable model identifier \"%.80s\"", ident ? ident : "(null)");
    if (!os_build || !chars_ok(os_build, 32, "._-") || !strcmp(os_build, ".") || !strcmp(os_build, ".."))
        os_build = "unknown";
    int n = snprintf(buf, cap, "%s/ane/%s/%s", cache_dir, os_build, ident);
    if (n < 0 || (size_t)n >= cap) return an_err_set(err, AN_E_RANGE, "ANE cache: path under %s too long", cache_dir);
    return AN_OK;
}

an_status an_ane_mkdir_p(const char *path, an_err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (!n || n >= sizeof buf) return an_err_set(err, AN_E_RANGE, "mkdir: bad path length %zu", n);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return an_err_set(err, AN_E_IO, "mkdir %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return an_err_set(err, AN_E_IO, "mkdir %s: not a directory", path);
    return AN_OK;
}

an_status an_ane_write_file(const char *path, const void *data, size_t len, an_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return an_err_set(err, AN_E_IO, "create %s: %s", path, strerror(errno));
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            an_status s = an_err_set(err, AN_E_IO, "write %s: %s", path, w < 0 ? strerror(errno) : "short write");
            close(fd);
            return s;
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0) return an_err_set(err, AN_E_IO, "close %s: %s", path, strerror(errno));
    return AN_OK;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

an_status an_ane_rm_tree(const char *path, an_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? AN_OK : an_err_set(err, AN_E_IO, "stat %s: %s", path, strerror(errno));
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return an_err_set(err, AN_E_IO, "delete %s: %s", path, strerror(errno));
    return AN_OK;
}

an_status an_ane_lock_file(const char *path, int timeout_ms, int *fd, an_err *err) {
    *fd = -1;
    int f = open(path, O_RDWR | O_CREAT, 0600);
    if (f < 0) return an_err_set(err, AN_E_IO, "open lock %s: %s", path, strerror(errno));
    for (int waited = 0;; waited += 20) {
        if (flock(f, LOCK_EX | LOCK_NB) == 0) {
            *fd = f;
            return AN_OK;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            an_status s = an_err_set(err, AN_E_IO, "flock %s: %s", path, strerror(errno));
            close(f);
            return s;
        }
        if (waited >= timeout_ms) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    close(f);
    return an_err_set(err, AN_E_RUNTIME, "lock %s: still held by another process after %d ms", path, timeout_ms);
}

void an_ane_unlock_file(int fd) {
    if (fd >= 0) close(fd); /* closing drops the flock */
}
