/* pool.h — a fixed thread pool that runs one job on every thread and waits for it.
 * Kernels never own threads: they take (ith, nth) and split their own work.
 * Idle workers block on a condition variable after a very short spin, because spin-waiting
 * threads are pathological on shared 2-vCPU machines (research/machine.md). */
#ifndef AN_CORE_POOL_H
#define AN_CORE_POOL_H

#include "core/status.h"

typedef struct an_pool an_pool;

/* fn(arg, ith, nth) runs once for every ith in [0, nth). */
typedef void (*an_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (the caller's thread counts as thread 0). */
an_status an_pool_create(an_pool **out, int n_threads, an_err *err);
void an_pool_free(an_pool *p);
int an_pool_size(const an_pool *p);

/* Runs fn on all threads and returns when every one has finished. Not re-entrant. */
void an_pool_run(an_pool *p, an_pool_fn fn, void *arg);

/* The number of online CPUs (>= 1). */
int an_cpu_count(void);

#endif
