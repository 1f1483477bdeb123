/* log.h — progress and diagnostics on stderr, filtered by one process-wide level.
 * Level 0: nothing but what callers print themselves; 1: progress and decisions; 2: debug. */
#ifndef AN_CORE_LOG_H
#define AN_CORE_LOG_H

#include "core/status.h"

void an_log_set_level(int level);
int an_log_level(void);
void an_log(int level, const char *fmt, ...) AN_PRINTF(2, 3);

/* A progress line that rewrites itself ("\r") on a terminal: label, done of total. */
void an_progress(const char *label, uint64_t done, uint64_t total);

#endif
