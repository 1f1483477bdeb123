/* timer.h — monotonic wall clock. */
#ifndef AN_CORE_TIMER_H
#define AN_CORE_TIMER_H

#include <time.h>

static inline double an_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
