#include "core/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p, leaving existing directories alone */
static int mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

an_status an_cache_dir(char *buf, size_t cap, int create, an_err *err) {
    const char *e = getenv("ANELM_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (e && *e) n = snprintf(buf, cap, "%s", e);
    else if (x && *x) n = snprintf(buf, cap, "%s/anelm", x);
    else if (h && *h) n = snprintf(buf, cap, "%s/.cache/anelm", h);
    else return an_err_set(err, AN_E_IO, "no cache directory: set ANELM_CACHE, XDG_CACHE_HOME or HOME");
    if (n < 0 || (size_t)n >= cap) return an_err_set(err, AN_E_IO, "cache directory path is too long");
    if (create && mkdirs(buf) != 0)
        return an_err_set(err, AN_E_IO, "cannot create cache directory %s: %s", buf, strerror(errno));
    return AN_OK;
}
