#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Spin iterations before a waiting thread blocks. PAUSE takes ~57 ns on this machine, so 500
 * is ~30 us: enough to bridge the gap between two dispatches of a decode step (a norm, a rope),
 * short enough that a sibling descheduled by another process costs us little. */
#define AN_POOL_SPIN 500

struct an_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_job;  /* workers wait here for a new generation */
    pthread_cond_t cv_done; /* the caller waits here for pending == 0 */
    atomic_uint gen;        /* bumped once per job */
    atomic_int pending;     /* workers still running the current job */
    int stop;
    an_pool_fn fn;
    void *arg;
};

typedef struct {
    an_pool *p;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker(void *v) {
    worker_arg wa = *(worker_arg *)v;
    free(v);
    an_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               spins < AN_POOL_SPIN) {
            cpu_relax();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !p->stop) pthread_cond_wait(&p->cv_job, &p->mu);
            int stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop && g == seen) return NULL;
        }
        seen = g;
        if (p->stop) return NULL;
        p->fn(p->arg, wa.ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

an_status an_pool_create(an_pool **out, int n_threads, an_err *err) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) return an_err_set(err, AN_E_USAGE, "thread count %d is above 256", n_threads);
    an_pool *p = calloc(1, sizeof *p);
    if (!p) return an_err_set(err, AN_E_NOMEM, "thread pool: out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_job, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        an_pool_free(p);
        return an_err_set(err, AN_E_NOMEM, "thread pool: out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[i], NULL, worker, wa ? (wa->p = p, wa->ith = i, wa) : NULL) != 0) {
            free(wa);
            p->n = i; /* only join what started */
            an_pool_free(p);
            return an_err_set(err, AN_E_RUNTIME, "thread pool: cannot start thread %d", i);
        }
    }
    *out = p;
    return AN_OK;
}

void an_pool_free(an_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_job);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_job);
    pthread_cond_destroy(&p->cv_done);
    free(p->threads);
    free(p);
}

int an_pool_size(const an_pool *p) { return p ? p->n : 1; }

void an_pool_run(an_pool *p, an_pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_job);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0 && spins < AN_POOL_SPIN) {
        cpu_relax();
        spins++;
    }
    if (atomic_load(&p->pending) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int an_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
