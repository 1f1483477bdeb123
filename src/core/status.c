#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *an_status_str(an_status s) {
    switch (s) {
    case AN_OK: return "ok";
    case AN_E_USAGE: return "usage error";
    case AN_E_FORMAT: return "malformed input";
    case AN_E_UNSUPPORTED: return "unsupported";
    case AN_E_IO: return "i/o error";
    case AN_E_NOMEM: return "out of memory";
    case AN_E_RANGE: return "limit exceeded";
    case AN_E_RUNTIME: return "runtime failure";
    }
    return "unknown status";
}

an_status an_err_set(an_err *err, an_status code, const char *fmt, ...) {
    if (err && err->code == AN_OK && code != AN_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void an_err_clear(an_err *err) {
    if (err) {
        err->code = AN_OK;
        err->msg[0] = 0;
    }
}
