/* worker.c — bounded waits for calls that may never return (a wedged Neural Engine driver,
 * research/ane.md §1.7: oMLX bounds every wait at 30 s). One thread runs the jobs; a caller
 * posts its job and waits on a condition variable with a deadline. A job that outlives its
 * deadline cannot be cancelled: it is abandoned (the worker releases its argument when it
 * returns) and the worker refuses every later job. Portable POSIX threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backends/ane/bridge/internal.h"

typedef struct an_ane_ticket {
    void (*fn)(void *);
    void *arg;
    void (*release)(void *);
    bool done, abandoned;
} an_ane_ticket;

struct an_ane_worker {
    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t cv_post;   /* a job was posted, or stop */
    pthread_cond_t cv_done;   /* the current job finished */
    pthread_mutex_t call_mu;  /* one caller at a time (each waits a bounded time) */
    pthread_t th;
    an_ane_ticket *posted;    /* waiting to be picked up */
    bool busy, stop, wedged, free_on_exit;
    char wedged_what[64];
};

static void worker_destroy(an_ane_worker *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->call_mu);
    pthread_cond_destroy(&w->cv_post);
    pthread_cond_destroy(&w->cv_done);
    free(w);
}

static void *worker_main(void *arg) {
    an_ane_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->posted && !w->stop) pthread_cond_wait(&w->cv_post, &w->mu);
        if (!w->posted) break; /* stop */
        an_ane_ticket *t = w->posted;
        w->posted = NULL;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        t->done = true;
        if (t->abandoned) { /* the caller gave up: its argument is ours to release */
            pthread_mutex_unlock(&w->mu);
            if (t->release) t->release(t->arg);
            free(t);
            pthread_mutex_lock(&w->mu);
        } else {
            pthread_cond_broadcast(&w->cv_done);
        }
    }
    bool self_free = w->free_on_exit;
    pthread_mutex_unlock(&w->mu);
    if (self_free) worker_destroy(w);
    return NULL;
}

an_status an_ane_worker_start(an_ane_worker **out, an_err *err) {
    *out = NULL;
    an_ane_worker *w = calloc(1, sizeof *w);
    if (!w) return an_err_set(err, AN_E_NOMEM, "ANE worker: out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->call_mu, NULL);
    pthread_cond_init(&w->cv_post, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    int rc = pthread_create(&w->th, NULL, worker_main, w);
    if (rc != 0) {
        worker_destroy(w);
        return an_err_set(err, AN_E_RUNTIME, "ANE worker: pthread_create failed (error %d)", rc);
    }
    *out = w;
    return AN_OK;
}

static struct timespec deadline_after(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* pthread_cond_timedwait's clock on every platform */
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

an_status an_ane_worker_run(an_ane_worker *w, void (*fn)(void *), void *arg, void (*release)(void *),
                            int timeout_ms, const char *what, an_err *err) {
    if (!what) what = "job";
    if (!w || !fn || timeout_ms <= 0) {
        if (release) release(arg);
        return an_err_set(err, AN_E_USAGE, "ANE worker: bad arguments for %s", what);
    }
    pthread_mutex_lock(&w->call_mu);
    pthread_mutex_lock(&w->mu);
    if (w->wedged || w->stop) {
        char prev[64];
        snprintf(prev, sizeof prev, "%s", w->wedged_what);
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_unlock(&w->call_mu);
        if (release) release(arg);
        return an_err_set(err, AN_E_RUNTIME,
                          "ANE %s refused: an earlier %s did not finish in time, the Neural Engine is not used "
                          "again by this process",
                          what, prev[0] ? prev : "call");
    }
    an_ane_ticket *t = calloc(1, sizeof *t);
    if (!t) {
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_unlock(&w->call_mu);
        if (release) release(arg);
        return an_err_set(err, AN_E_NOMEM, "ANE worker: out of memory for %s", what);
    }
    t->fn = fn;
    t->arg = arg;
    t->release = release;
    w->posted = t;
    pthread_cond_signal(&w->cv_post);
    struct timespec dl = deadline_after(timeout_ms);
    while (!t->done) {
        int rc = pthread_cond_timedwait(&w->cv_done, &w->mu, &dl);
        if (rc == ETIMEDOUT && !t->done) {
            t->abandoned = true; /* the worker frees t and releases arg when fn returns */
            if (w->posted == t) { /* never picked up: nothing is running it */
                w->posted = NULL;
                free(t);
                pthread_mutex_unlock(&w->mu);
                pthread_mutex_unlock(&w->call_mu);
                if (release) release(arg);
                return an_err_set(err, AN_E_RUNTIME, "ANE %s did not start within %d ms", what, timeout_ms);
            }
            w->wedged = true;
            snprintf(w->wedged_what, sizeof w->wedged_what, "%s", what);
            pthread_mutex_unlock(&w->mu);
            pthread_mutex_unlock(&w->call_mu);
            return an_err_set(err, AN_E_RUNTIME,
                              "ANE %s did not finish within %.1f s: the Neural Engine driver may be wedged; "
                              "the Neural Engine is not used again by this process",
                              what, timeout_ms / 1000.0);
        }
    }
    free(t);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_unlock(&w->call_mu);
    return AN_OK;
}

bool an_ane_worker_wedged(an_ane_worker *w) {
    if (!w) return false;
    pthread_mutex_lock(&w->mu);
    bool r = w->wedged;
    pthread_mutex_unlock(&w->mu);
    return r;
}

void an_ane_worker_stop(an_ane_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv_post);
    if (w->busy) { /* an abandoned job is still running: the thread frees w when it ends */
        pthread_t th = w->th; /* w may be gone once mu is released */
        w->free_on_exit = true;
        pthread_mutex_unlock(&w->mu);
        pthread_detach(th);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    worker_destroy(w);
}
