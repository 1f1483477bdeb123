#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static int g_level = 0;

void an_log_set_level(int level) { g_level = level; }
int an_log_level(void) { return g_level; }

void an_log(int level, const char *fmt, ...) {
    if (level > g_level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void an_progress(const char *label, uint64_t done, uint64_t total) {
    if (g_level < 1) return;
    int tty = isatty(2);
    /* On a pipe print only the start and the end, so logs stay short. */
    if (!tty && done != 0 && done != total) return;
    fprintf(stderr, "%s%s: %llu/%llu%s", tty ? "\r" : "", label, (unsigned long long)done,
            (unsigned long long)total, (done == total || !tty) ? "\n" : "");
    fflush(stderr);
}
