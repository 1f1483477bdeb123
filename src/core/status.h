/* status.h — recording errors into an an_err (see include/anelm.h for the convention). */
#ifndef AN_CORE_STATUS_H
#define AN_CORE_STATUS_H

#include "anelm.h"

#if defined(__GNUC__)
#define AN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AN_PRINTF(a, b)
#endif

/* Records code and a formatted message in err (if err is non-NULL and holds no error yet) and
 * returns code, so callers can write `return an_err_set(err, AN_E_FORMAT, "...")`. */
an_status an_err_set(an_err *err, an_status code, const char *fmt, ...) AN_PRINTF(3, 4);

/* Clears err to AN_OK. */
void an_err_clear(an_err *err);

/* Evaluate an expression returning an_status; return it from the caller when it failed. */
#define AN_TRY(expr)                      \
    do {                                  \
        an_status an_try_s_ = (expr);     \
        if (an_try_s_ != AN_OK) return an_try_s_; \
    } while (0)

#endif
