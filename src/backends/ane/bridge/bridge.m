/* bridge.m — the macOS ANE bridge (bridge.h): the only code in anelm that touches Apple
 * frameworks. Objective-C with ARC but written as C: every message goes through objc_msgSend
 * cast to the exact C prototype of the method, classes come from objc_getClass after a dlopen of
 * the private AppleNeuralEngine.framework, and no private header is used. Call sequence and
 * facts: research/ane.md §1.2 (Path A, _ANEInMemoryModel), §1.3 (procedure banks), §2.2-§2.4
 * (strides, surfaces), §1.7 and §6.3 (budget, bounded waits, autorelease pools, self-test).
 *
 * NOT RUN ON APPLE HARDWARE BY THIS PROJECT: it is type-checked on Linux against
 * tests/bridge_check/apple_min.h (.ci/bridge-check.sh). Set ANELM_ANE_TRACE=1 for a step-by-step
 * log on stderr (see bridge/README.md for what to report).
 *
 * Objects the program keeps beyond one call are held in plain C structs as retained void *
 * (__bridge_retained / __bridge_transfer); IOSurfaces are CF objects released with CFRelease.
 * Compile, load, eval and unload run on the worker thread of worker.c and are waited for with
 * a deadline; a timeout disables the bridge for the process. */
#ifndef AN_APPLE_MIN_H /* the Linux type-check supplies these declarations itself */
#import <Foundation/Foundation.h>
#import <IOSurface/IOSurface.h>
#include <objc/message.h>
#include <objc/runtime.h>
#include <sys/sysctl.h>
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/ane/bridge/bridge.h"
#include "backends/ane/bridge/internal.h"

#if !__has_feature(objc_arc)
#error "bridge.m is compiled with -fobjc-arc"
#endif

#define AN_ANE_FRAMEWORK "/System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine"
#define AN_ANE_QOS 21u                 /* QOS_CLASS_DEFAULT, what every project passes (§1.2) */
#define AN_ANE_WAIT_MS 30000           /* load, eval, unload (oMLX bounds its waits at 30 s) */
#define AN_ANE_COMPILE_WAIT_MS 300000  /* one compile of a large bank can take minutes */
#define AN_ANE_MAX_IN ((int)(sizeof(((struct an_mil_io *)0)->in_width) / sizeof(int64_t)))
#define AN_ANE_MAX_OUT ((int)(sizeof(((struct an_mil_io *)0)->out_width) / sizeof(int64_t)))

/* ---- Objective-C runtime as C ----------------------------------------------------------- */

#define SEL_(name) sel_registerName(name)
/* objc_msgSend cast to a method's C prototype: MSG(return type, receiver, SEL, args...) */
#define MSG(ret, ...) ((ret (*)(__VA_ARGS__))objc_msgSend)

static id cls(const char *name) { return (id)objc_getClass(name); }

/* Does obj (an instance, or a class for its class methods) respond to sel? */
static bool responds(id obj, const char *sel) {
    return obj && class_respondsToSelector(object_getClass(obj), SEL_(sel));
}

static id ns_str(const char *s) { return MSG(id, id, SEL, const char *)(cls("NSString"), SEL_("stringWithUTF8String:"), s); }

static const char *c_str(id s) {
    if (!s || !responds(s, "UTF8String")) return NULL;
    return MSG(const char *, id, SEL)(s, SEL_("UTF8String"));
}

static id ns_u64(uint64_t v) {
    return MSG(id, id, SEL, unsigned long long)(cls("NSNumber"), SEL_("numberWithUnsignedLongLong:"), v);
}

static id ns_data(const void *p, size_t n) {
    return MSG(id, id, SEL, const void *, NSUInteger)(cls("NSData"), SEL_("dataWithBytes:length:"), p, (NSUInteger)n);
}

static id ns_array(const id *objs, NSUInteger n) {
    return MSG(id, id, SEL, const id *, NSUInteger)(cls("NSArray"), SEL_("arrayWithObjects:count:"), objs, n);
}

static id ns_dict(const id *keys, const id *vals, NSUInteger n) {
    return MSG(id, id, SEL, const id *, const id *, NSUInteger)(cls("NSDictionary"),
                                                                SEL_("dictionaryWithObjects:forKeys:count:"), vals, keys, n);
}

static id ns_empty_dict(void) { return MSG(id, id, SEL)(cls("NSDictionary"), SEL_("dictionary")); }

static bool is_kind(id obj, const char *class_name) {
    Class c = objc_getClass(class_name);
    return obj && c && MSG(BOOL, id, SEL, Class)(obj, SEL_("isKindOfClass:"), c);
}

static id dict_get(id dict, const char *key) {
    if (!is_kind(dict, "NSDictionary")) return nil;
    return MSG(id, id, SEL, id)(dict, SEL_("objectForKey:"), ns_str(key));
}

static NSUInteger arr_count(id arr) { return is_kind(arr, "NSArray") ? MSG(NSUInteger, id, SEL)(arr, SEL_("count")) : 0; }

static id arr_at(id arr, NSUInteger i) { return MSG(id, id, SEL, NSUInteger)(arr, SEL_("objectAtIndex:"), i); }

static bool num_get(id num, int64_t *v) {
    if (!is_kind(num, "NSNumber")) return false;
    *v = MSG(long long, id, SEL)(num, SEL_("longLongValue"));
    return true;
}

/* "domain code N: description" of an NSError (or say there was none). */
static void err_text(id e, char *buf, size_t cap) {
    if (!e) {
        snprintf(buf, cap, "the framework returned NO without an NSError");
        return;
    }
    const char *dom = responds(e, "domain") ? c_str(MSG(id, id, SEL)(e, SEL_("domain"))) : NULL;
    long code = responds(e, "code") ? (long)MSG(NSInteger, id, SEL)(e, SEL_("code")) : 0;
    const char *desc =
        responds(e, "localizedDescription") ? c_str(MSG(id, id, SEL)(e, SEL_("localizedDescription"))) : NULL;
    snprintf(buf, cap, "%s code %ld: %s", dom ? dom : "(no domain)", code, desc ? desc : "(no description)");
}

/* "Name: reason" of an Objective-C exception (an NSException, or whatever was thrown). */
static void exc_text(id x, char *buf, size_t cap) {
    const char *name = responds(x, "name") ? c_str(MSG(id, id, SEL)(x, SEL_("name"))) : NULL;
    const char *reason = responds(x, "reason") ? c_str(MSG(id, id, SEL)(x, SEL_("reason"))) : NULL;
    snprintf(buf, cap, "Objective-C exception %s: %s", name ? name : "(unnamed)", reason ? reason : "(no reason)");
}

/* Releases a reference taken with __bridge_retained. */
static void drop(void **ref) {
    if (*ref) {
        id obj = (__bridge_transfer id)*ref;
        (void)obj; /* released when obj goes out of scope */
        *ref = NULL;
    }
}

/* ---- process-wide state ----------------------------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_compiles */
static const char *g_why = "not initialized";              /* NULL when available */
static char g_why_buf[512];
static void *g_framework;
static an_ane_worker *g_worker;
static int g_compiles;
static int g_wait_ms = AN_ANE_WAIT_MS, g_compile_wait_ms = AN_ANE_COMPILE_WAIT_MS;
static bool g_trace, g_flat_surfaces, g_no_cache;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...) {
    if (!g_trace) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ane-bridge: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* What the bridge calls, checked once so that API churn (research/ane.md §6.1 #15) shows up as
 * "unavailable: <class> does not respond to <selector>" instead of a crash. '+' class method,
 * '-' instance method. */
static const char *const k_required[][2] = {
    {"_ANEInMemoryModelDescriptor", "+modelWithMILText:weights:optionsPlist:"},
    {"_ANEInMemoryModel", "+inMemoryModelWithDescriptor:"},
    {"_ANEInMemoryModel", "-hexStringIdentifier"},
    {"_ANEInMemoryModel", "-compileWithQoS:options:error:"},
    {"_ANEInMemoryModel", "-loadWithQoS:options:error:"},
    {"_ANEInMemoryModel", "-evaluateWithQoS:options:request:error:"},
    {"_ANEInMemoryModel", "-unloadWithQoS:error:"},
    {"_ANEIOSurfaceObject", "+objectWithIOSurface:"},
    {"_ANERequest", "+requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:"},
};
#define REQ7 "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:"
#define REQ5 "requestWithInputs:inputIndices:outputs:outputIndices:procedureIndex:"

static void init_once(void) {
    @autoreleasepool {
        g_trace = env_on("ANELM_ANE_TRACE");
        g_flat_surfaces = env_on("ANELM_ANE_FLAT_SURFACES");
        const char *c = getenv("ANELM_ANE_CACHE");
        g_no_cache = c && !strcmp(c, "0");
        const char *t = getenv("ANELM_ANE_TIMEOUT_S");
        if (t && *t) {
            long s = strtol(t, NULL, 10);
            if (s > 0 && s <= 86400) g_wait_ms = g_compile_wait_ms = (int)(s * 1000);
        }
        g_framework = dlopen(AN_ANE_FRAMEWORK, RTLD_NOW);
        if (!g_framework) {
            const char *e = dlerror();
            snprintf(g_why_buf, sizeof g_why_buf, "cannot load AppleNeuralEngine.framework: %s", e ? e : "dlopen failed");
            g_why = g_why_buf;
            return;
        }
        for (size_t i = 0; i < sizeof k_required / sizeof k_required[0]; i++) {
            const char *name = k_required[i][0], *sel = k_required[i][1] + 1;
            bool class_method = k_required[i][1][0] == '+';
            Class k = objc_getClass(name);
            bool ok = k && (class_method ? responds((id)k, sel) : class_respondsToSelector(k, SEL_(sel)));
            if (!ok && !strcmp(sel, REQ7)) ok = responds((id)k, REQ5); /* the 5-argument form will do */
            if (!ok) {
                snprintf(g_why_buf, sizeof g_why_buf, "%s %s (this macOS version's private API differs from what anelm knows)",
                         name, k ? "lacks the selector" : "class is missing");
                if (k) snprintf(g_why_buf + strlen(g_why_buf), sizeof g_why_buf - strlen(g_why_buf), ": %c%s",
                                k_required[i][1][0], sel);
                g_why = g_why_buf;
                return;
            }
        }
        an_err err = {0};
        if (an_ane_worker_start(&g_worker, &err) != AN_OK) {
            snprintf(g_why_buf, sizeof g_why_buf, "%s", err.msg);
            g_why = g_why_buf;
            return;
        }
        g_why = NULL;
        trace("AppleNeuralEngine.framework loaded; waits %d ms (compile %d ms)%s%s", g_wait_ms, g_compile_wait_ms,
              g_flat_surfaces ? "; flat surfaces" : "", g_no_cache ? "; persistent cache off" : "");
    }
}

bool an_ane_bridge_available(const char **why) {
    pthread_once(&g_once, init_once);
    const char *w = g_why;
    if (!w && an_ane_worker_wedged(g_worker))
        w = "an earlier Neural Engine call did not finish in time (driver presumed wedged)";
    if (why) *why = w;
    return w == NULL;
}

static void sysctl_str(const char *name, char *buf, size_t cap) {
    size_t n = cap - 1;
    if (sysctlbyname(name, buf, &n, NULL, 0) != 0 || n == 0) snprintf(buf, cap, "unknown");
    else buf[n < cap ? n : cap - 1] = 0;
}

void an_ane_bridge_describe(char *buf, size_t cap) {
    if (!buf || !cap) return;
    const char *why = NULL;
    bool ok = an_ane_bridge_available(&why);
    char ver[64], build[64], chip[128];
    sysctl_str("kern.osproductversion", ver, sizeof ver);
    sysctl_str("kern.osversion", build, sizeof build);
    sysctl_str("machdep.cpu.brand_string", chip, sizeof chip);
    char sub[64] = "unknown";
    @autoreleasepool {
        id dev = cls("_ANEDeviceInfo");
        @try {
            if (g_framework && responds(dev, "aneSubType")) {
                const char *s = c_str(MSG(id, id, SEL)(dev, SEL_("aneSubType")));
                if (s) snprintf(sub, sizeof sub, "%s", s);
            }
        } @catch (id x) {
            (void)x;
        }
    }
    snprintf(buf, cap, "macOS %s (%s), %s, ANE %s, bridge %s%s", ver, build, chip, sub, ok ? "available" : "unavailable: ",
             ok ? "" : why);
}

int an_ane_bridge_compiles(void) {
    pthread_mutex_lock(&g_mu);
    int n = g_compiles;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* ---- jobs on the worker thread ---------------------------------------------------------- */

enum { JOB_COMPILE, JOB_LOAD, JOB_EVAL, JOB_UNLOAD };

typedef struct an_ane_job {
    int kind;
    void *model;   /* _ANEInMemoryModel, retained */
    void *request; /* _ANERequest (eval), retained */
    bool ok;
    char msg[512];
} an_ane_job;

static void job_main(void *arg) {
    an_ane_job *j = arg;
    @autoreleasepool { /* drained per job: leaked autoreleased objects keep programs alive (§1.7) */
        id model = (__bridge id)j->model;
        id opts = ns_empty_dict();
        id e = nil;
        BOOL ok = NO;
        @try { /* a private framework may throw: a failure like any other, never a crash */
            switch (j->kind) {
            case JOB_COMPILE:
                ok = MSG(BOOL, id, SEL, unsigned int, id, id __autoreleasing *)(model, SEL_("compileWithQoS:options:error:"),
                                                                              AN_ANE_QOS, opts, &e);
                break;
            case JOB_LOAD:
                ok = MSG(BOOL, id, SEL, unsigned int, id, id __autoreleasing *)(model, SEL_("loadWithQoS:options:error:"),
                                                                              AN_ANE_QOS, opts, &e);
                break;
            case JOB_EVAL:
                ok = MSG(BOOL, id, SEL, unsigned int, id, id, id __autoreleasing *)(
                    model, SEL_("evaluateWithQoS:options:request:error:"), AN_ANE_QOS, opts, (__bridge id)j->request, &e);
                break;
            case JOB_UNLOAD:
                ok = MSG(BOOL, id, SEL, unsigned int, id __autoreleasing *)(model, SEL_("unloadWithQoS:error:"), AN_ANE_QOS, &e);
                break;
            }
        } @catch (id x) {
            j->ok = false;
            exc_text(x, j->msg, sizeof j->msg);
            return;
        }
        j->ok = ok;
        if (!ok) err_text(e, j->msg, sizeof j->msg);
    }
}

static void job_free(void *arg) {
    an_ane_job *j = arg;
    @autoreleasepool {
        drop(&j->model);
        drop(&j->request);
    }
    free(j);
}

/* Runs one framework call on the worker with its deadline. */
static an_status run_job(int kind, id model, id request, const char *what, an_err *err) {
    an_ane_job *j = calloc(1, sizeof *j);
    if (!j) return an_err_set(err, AN_E_NOMEM, "ANE %s: out of memory", what);
    j->kind = kind;
    j->model = (__bridge_retained void *)model;
    j->request = (__bridge_retained void *)request;
    int ms = kind == JOB_COMPILE ? g_compile_wait_ms : g_wait_ms;
    an_status s = an_ane_worker_run(g_worker, job_main, j, job_free, ms, what, err);
    if (s != AN_OK) return s; /* j belongs to the worker now */
    if (!j->ok) s = an_err_set(err, AN_E_RUNTIME, "ANE %s failed: %s", what, j->msg);
    job_free(j);
    return s;
}

static an_status compile_model(id model, an_err *err) {
    pthread_mutex_lock(&g_mu);
    bool ok = an_ane_budget_take(&g_compiles, AN_ANE_COMPILE_BUDGET);
    int n = g_compiles;
    pthread_mutex_unlock(&g_mu);
    if (!ok)
        return an_err_set(err, AN_E_UNSUPPORTED,
                          "ANE compile refused: this process has used its budget of %d compiles (the framework "
                          "fails a process after about 119, research/ane.md §1.7)",
                          n);
    trace("compile %d of %d", n, AN_ANE_COMPILE_BUDGET);
    return run_job(JOB_COMPILE, model, nil, "compile", err);
}

/* Load; when it fails, wait 100 ms and retry once ("ANE slot reclamation", §1.2 step 7). */
static an_status load_model(id model, an_err *err) {
    an_err first = {0};
    if (run_job(JOB_LOAD, model, nil, "load", &first) == AN_OK) return AN_OK;
    if (an_ane_worker_wedged(g_worker)) return an_err_set(err, first.code, "%s", first.msg);
    trace("%s; retrying in 100 ms", first.msg);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    an_err second = {0};
    if (run_job(JOB_LOAD, model, nil, "load", &second) == AN_OK) return AN_OK;
    return an_err_set(err, second.code, "%s (also on the first try: %s)", second.msg, first.msg);
}

/* ---- programs --------------------------------------------------------------------------- */

typedef struct an_ane_fn {
    struct an_mil_io io;
    int64_t in_stride[AN_ANE_MAX_IN], out_stride[AN_ANE_MAX_OUT]; /* bytes between rows */
    IOSurfaceRef in_s[AN_ANE_MAX_IN], out_s[AN_ANE_MAX_OUT];
    void *request; /* _ANERequest, retained; binds the surfaces for good (§1.2 step 10) */
} an_ane_fn;

struct an_ane_prog {
    void *desc, *model; /* _ANEInMemoryModelDescriptor, _ANEInMemoryModel, retained */
    void *weights;      /* NSData of the weight file: resident for the program's life (§1.2) */
    int n_fns;
    an_ane_fn *fns;
    bool loaded, staged;
    int lock_fd; /* held from staging to the end of the load, -1 otherwise */
    char ident[256];
    char staging[1024];   /* NSTemporaryDirectory()/<ident> */
    char lock_path[1100]; /* flock guarding staging and the cache entry */
    char info[512];
};

/* Writes model.mil and weights/weight.bin into the staging directory the compiler reads. */
static an_status stage(an_ane_prog *p, const an_ane_prog_desc *d, an_err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/weights", p->staging);
    AN_TRY(an_ane_mkdir_p(path, err));
    p->staged = true;
    snprintf(path, sizeof path, "%s/model.mil", p->staging);
    AN_TRY(an_ane_write_file(path, d->mil, d->mil_len, err));
    if (d->blob_len) {
        snprintf(path, sizeof path, "%s/weights/weight.bin", p->staging);
        AN_TRY(an_ane_write_file(path, d->blob, d->blob_len, err));
    }
    return AN_OK;
}

/* The channel stride of a [rows][width] tensor from the compiled model's attributes: the first
 * LiveInputList/LiveOutputList entry (any NetworkStatusList element) with that Channels and
 * Width. *found false when none matches (the caller then uses 64-byte-aligned rows). */
static an_status find_stride(id status_list, const char *list_name, int64_t rows, int64_t width, int64_t *stride,
                             bool *found, an_err *err) {
    *found = false;
    for (NSUInteger k = 0; k < arr_count(status_list); k++) {
        id list = dict_get(arr_at(status_list, k), list_name);
        for (NSUInteger m = 0; m < arr_count(list); m++) {
            id e = arr_at(list, m);
            int64_t ch = 0, w = 0, h = 0, rs = 0, ps = 0;
            if (!num_get(dict_get(e, "Channels"), &ch) || !num_get(dict_get(e, "Width"), &w)) continue;
            if (ch != rows || w != width) continue;
            num_get(dict_get(e, "Height"), &h);
            if (!num_get(dict_get(e, "RowStride"), &rs)) continue;
            num_get(dict_get(e, "PlaneStride"), &ps);
            const char *type = c_str(dict_get(e, "Type"));
            if (type && strcmp(type, "Float16") != 0)
                return an_err_set(err, AN_E_UNSUPPORTED, "compiled model reports Type %s for a [%lld][%lld] %s tensor "
                                  "(the bridge passes fp16)", type, (long long)rows, (long long)width, list_name);
            AN_TRY(an_ane_layout_stride(rows, width, h, rs, ps, stride, err));
            *found = true;
            return AN_OK;
        }
    }
    return AN_OK;
}

static void trace_attributes(id status_list) {
    if (!g_trace) return;
    static const char *const lists[2] = {"LiveInputList", "LiveOutputList"};
    static const char *const keys[7] = {"Channels", "Width", "Height", "RowStride", "PlaneStride", "Batches", "Depth"};
    for (NSUInteger k = 0; k < arr_count(status_list); k++)
        for (int l = 0; l < 2; l++) {
            id list = dict_get(arr_at(status_list, k), lists[l]);
            for (NSUInteger m = 0; m < arr_count(list); m++) {
                id e = arr_at(list, m);
                char line[400];
                const char *name = c_str(dict_get(e, "Name")), *type = c_str(dict_get(e, "Type"));
                int n = snprintf(line, sizeof line, "NetworkStatusList[%lu].%s[%lu] Name=%s Type=%s", (unsigned long)k,
                                 lists[l], (unsigned long)m, name ? name : "?", type ? type : "?");
                for (int q = 0; q < 7 && n > 0 && (size_t)n < sizeof line; q++) {
                    int64_t v;
                    if (num_get(dict_get(e, keys[q]), &v))
                        n += snprintf(line + n, sizeof line - (size_t)n, " %s=%lld", keys[q], (long long)v);
                }
                trace("%s", line);
            }
        }
}

static IOSurfaceRef make_surface(int64_t width, int64_t rows, int64_t stride, size_t bytes, an_err *err) {
    /* 2-D form sized from the model's layout (§2.3, tmc/apple, axiom), or the flat form most
     * projects use (ANELM_ANE_FLAT_SURFACES=1). Every surface of one side of a function has the
     * same allocation size (Orion #2, #12), a multiple of 64 KiB. */
    int64_t v[6];
    if (g_flat_surfaces) {
        v[0] = (int64_t)bytes, v[1] = 1, v[2] = 1, v[3] = (int64_t)bytes;
    } else {
        v[0] = width, v[1] = rows, v[2] = 2, v[3] = stride;
    }
    v[4] = (int64_t)bytes, v[5] = 0;
    const CFStringRef keys[6] = {kIOSurfaceWidth, kIOSurfaceHeight, kIOSurfaceBytesPerElement, kIOSurfaceBytesPerRow,
                                 kIOSurfaceAllocSize, kIOSurfacePixelFormat};
    CFMutableDictionaryRef props =
        CFDictionaryCreateMutable(kCFAllocatorDefault, 6, &kCFTypeDictionaryKeyCallBacks, &kCFTypeDictionaryValueCallBacks);
    if (!props) {
        an_err_set(err, AN_E_NOMEM, "IOSurface properties: out of memory");
        return NULL;
    }
    for (int i = 0; i < 6; i++) {
        CFNumberRef num = CFNumberCreate(kCFAllocatorDefault, kCFNumberSInt64Type, &v[i]);
        if (!num) {
            CFRelease(props);
            an_err_set(err, AN_E_NOMEM, "IOSurface properties: out of memory");
            return NULL;
        }
        CFDictionarySetValue(props, keys[i], num);
        CFRelease(num);
    }
    IOSurfaceRef s = IOSurfaceCreate(props);
    CFRelease(props);
    if (!s) {
        an_err_set(err, AN_E_RUNTIME, "IOSurfaceCreate failed for [%lld][%lld] fp16, stride %lld, %zu bytes",
                   (long long)rows, (long long)width, (long long)stride, bytes);
        return NULL;
    }
    if (IOSurfaceGetAllocSize(s) < (size_t)(rows * stride)) {
        an_err_set(err, AN_E_RUNTIME, "IOSurface has %zu bytes, need %lld", IOSurfaceGetAllocSize(s),
                   (long long)(rows * stride));
        CFRelease(s);
        return NULL;
    }
    if (!g_flat_surfaces && IOSurfaceGetBytesPerRow(s) != (size_t)stride)
        trace("IOSurface bytes per row %zu differs from the model's stride %lld (the bridge writes with the model's)",
              IOSurfaceGetBytesPerRow(s), (long long)stride);
    if (IOSurfaceLock(s, 0, NULL) == 0) {
        memset(IOSurfaceGetBaseAddress(s), 0, IOSurfaceGetAllocSize(s));
        IOSurfaceUnlock(s, 0, NULL);
    }
    return s;
}

/* The symbol indices of procedure fn's inputs or outputs as an NSArray of NSNumber (§1.3). */
static an_status symbol_indices(id inner, bool input, int fn, int n_fns, int count, id *out, an_err *err) {
    const char *sel = input ? "inputSymbolIndicesForProcedureIndex:" : "outputSymbolIndicesForProcedureIndex:";
    const char *side = input ? "input" : "output";
    id nums[AN_ANE_MAX_OUT];
    uint64_t vals[AN_ANE_MAX_OUT];
    if (responds(inner, sel)) {
        /* the index is passed as a full register (NSUInteger): right whether the method takes 32
         * or 64 bits */
        id set = MSG(id, id, SEL, NSUInteger)(inner, SEL_(sel), (NSUInteger)fn);
        NSUInteger n = responds(set, "count") ? MSG(NSUInteger, id, SEL)(set, SEL_("count")) : 0;
        if (n != (NSUInteger)count)
            return an_err_set(err, AN_E_RUNTIME, "procedure %d: the compiled model has %lu %s symbols, the program "
                              "declares %d", fn, (unsigned long)n, side, count);
        NSUInteger ix = MSG(NSUInteger, id, SEL)(set, SEL_("firstIndex"));
        for (int i = 0; i < count; i++) {
            if (ix == (NSUInteger)NSNotFound)
                return an_err_set(err, AN_E_RUNTIME, "procedure %d: %s symbol set ends early", fn, side);
            vals[i] = ix;
            ix = MSG(NSUInteger, id, SEL, NSUInteger)(set, SEL_("indexGreaterThanIndex:"), ix);
        }
    } else if (n_fns == 1) {
        for (int i = 0; i < count; i++) vals[i] = (uint64_t)i;
    } else {
        return an_err_set(err, AN_E_UNSUPPORTED, "the compiled model does not answer %s: a multi-function program "
                          "cannot be bound", sel);
    }
    for (int i = 0; i < count; i++) {
        nums[i] = ns_u64(vals[i]);
        trace("procedure %d %s %d -> symbol %llu", fn, side, i, (unsigned long long)vals[i]);
    }
    *out = ns_array(nums, (NSUInteger)count);
    return *out ? AN_OK : an_err_set(err, AN_E_NOMEM, "NSArray: out of memory");
}

/* Surfaces and request of function fn (strides already set). */
static an_status bind_function(an_ane_prog *p, id inner, int fn, an_err *err) {
    an_ane_fn *f = &p->fns[fn];
    size_t in_bytes = 0, out_bytes = 0;
    for (int i = 0; i < f->io.n_in; i++) {
        size_t b = an_ane_surface_bytes(f->io.n, f->in_stride[i]);
        if (b > in_bytes) in_bytes = b;
    }
    for (int j = 0; j < f->io.n_out; j++) {
        size_t b = an_ane_surface_bytes(f->io.n, f->out_stride[j]);
        if (b > out_bytes) out_bytes = b;
    }
    id ins[AN_ANE_MAX_IN], outs[AN_ANE_MAX_OUT];
    for (int i = 0; i < f->io.n_in + f->io.n_out; i++) {
        bool is_in = i < f->io.n_in;
        int k = is_in ? i : i - f->io.n_in;
        IOSurfaceRef s = make_surface(is_in ? f->io.in_width[k] : f->io.out_width[k], f->io.n,
                                      is_in ? f->in_stride[k] : f->out_stride[k], is_in ? in_bytes : out_bytes, err);
        if (!s) return err ? err->code : AN_E_RUNTIME;
        if (is_in) f->in_s[k] = s;
        else f->out_s[k] = s;
        id obj = MSG(id, id, SEL, IOSurfaceRef)(cls("_ANEIOSurfaceObject"), SEL_("objectWithIOSurface:"), s);
        if (!obj) return an_err_set(err, AN_E_RUNTIME, "_ANEIOSurfaceObject objectWithIOSurface: returned nil");
        if (is_in) ins[k] = obj;
        else outs[k] = obj;
    }
    id in_idx = nil, out_idx = nil;
    AN_TRY(symbol_indices(inner, true, fn, p->n_fns, f->io.n_in, &in_idx, err));
    AN_TRY(symbol_indices(inner, false, fn, p->n_fns, f->io.n_out, &out_idx, err));
    id in_arr = ns_array(ins, (NSUInteger)f->io.n_in), out_arr = ns_array(outs, (NSUInteger)f->io.n_out);
    id proc = ns_u64((uint64_t)fn);
    id rc = cls("_ANERequest");
    id req = nil;
    if (responds(rc, REQ7))
        req = MSG(id, id, SEL, id, id, id, id, id, id, id)(rc, SEL_(REQ7), in_arr, in_idx, out_arr, out_idx, nil, nil, proc);
    else if (responds(rc, REQ5))
        req = MSG(id, id, SEL, id, id, id, id, id)(rc, SEL_(REQ5), in_arr, in_idx, out_arr, out_idx, proc);
    if (!req) return an_err_set(err, AN_E_RUNTIME, "_ANERequest for function %d: the framework returned nil", fn);
    f->request = (__bridge_retained void *)req;
    trace("function %d: %d inputs (%zu-byte surfaces), %d outputs (%zu-byte surfaces), request built", fn, f->io.n_in,
          in_bytes, f->io.n_out, out_bytes);
    return AN_OK;
}

static an_status eval_impl(an_ane_prog *p, int fn, const uint16_t *const *in, uint16_t *const *out, an_err *err) {
    an_ane_fn *f = &p->fns[fn];
    for (int i = 0; i < f->io.n_in; i++) {
        if (IOSurfaceLock(f->in_s[i], 0, NULL) != 0)
            return an_err_set(err, AN_E_RUNTIME, "ANE function %d: cannot lock input surface %d", fn, i);
        an_ane_copy_in(IOSurfaceGetBaseAddress(f->in_s[i]), f->in_stride[i], in[i], f->io.n, f->io.in_width[i]);
        IOSurfaceUnlock(f->in_s[i], 0, NULL); /* never hold a lock across an eval (§2.4) */
    }
    an_err e = {0};
    if (run_job(JOB_EVAL, (__bridge id)p->model, (__bridge id)f->request, "evaluation", &e) != AN_OK)
        return an_err_set(err, e.code, "function %d: %s", fn, e.msg);
    for (int j = 0; j < f->io.n_out; j++) {
        if (IOSurfaceLock(f->out_s[j], kIOSurfaceLockReadOnly, NULL) != 0)
            return an_err_set(err, AN_E_RUNTIME, "ANE function %d: cannot lock output surface %d", fn, j);
        an_ane_copy_out(out[j], IOSurfaceGetBaseAddress(f->out_s[j]), f->out_stride[j], f->io.n, f->io.out_width[j]);
        IOSurfaceUnlock(f->out_s[j], kIOSurfaceLockReadOnly, NULL);
    }
    return AN_OK;
}

static an_status self_test(an_ane_prog *p, const an_ane_prog_desc *d, an_err *err) {
    for (int fn = 0; fn < p->n_fns; fn++) {
        const struct an_mil_io *io = &p->fns[fn].io;
        uint16_t *got[AN_ANE_MAX_OUT] = {0};
        an_status s = AN_OK;
        for (int j = 0; j < io->n_out && s == AN_OK; j++) {
            got[j] = malloc((size_t)io->n * (size_t)io->out_width[j] * 2);
            if (!got[j]) s = an_err_set(err, AN_E_NOMEM, "ANE self-test: out of memory");
        }
        if (s == AN_OK) s = eval_impl(p, fn, d->ref_in[fn], got, err);
        if (s == AN_OK)
            s = an_ane_selftest_check(io, fn, (const uint16_t *const *)got, d->ref_out[fn], d->tol_abs, d->tol_rel, err);
        for (int j = 0; j < io->n_out; j++) free(got[j]);
        if (s != AN_OK) return s;
        trace("self-test of function %d passed", fn);
    }
    return AN_OK;
}

/* Compiles (or reuses) and loads the program while holding the lock. */
static an_status compile_and_load(an_ane_prog *p, id model, const an_ane_prog_desc *d, const char *entry,
                                  bool *from_cache, an_err *err) {
    AN_TRY(stage(p, d, err));
    if (entry) {
        id url = MSG(id, id, SEL, id, BOOL)(cls("NSURL"), SEL_("fileURLWithPath:isDirectory:"), ns_str(entry), YES);
        if (!url) return an_err_set(err, AN_E_RUNTIME, "NSURL for %s: nil", entry);
        MSG(void, id, SEL, id)(model, SEL_("setModelURL:"), url);
        trace("model URL set to %s", entry);
    }
    *from_cache = false;
    if (responds(model, "compiledModelExists") && MSG(BOOL, id, SEL)(model, SEL_("compiledModelExists"))) {
        an_err e = {0};
        if (load_model(model, &e) == AN_OK) {
            *from_cache = true;
            trace("loaded the compiled model found in the cache (no compile)");
            return AN_OK;
        }
        if (an_ane_worker_wedged(g_worker)) return an_err_set(err, e.code, "%s", e.msg);
        trace("cached model did not load (%s); compiling again", e.msg);
    }
    AN_TRY(compile_model(model, err));
    return load_model(model, err);
}

static an_status prog_setup(an_ane_prog *p, const an_ane_prog_desc *d, an_err *err) {
    /* 1-3. descriptor (MIL as NSData of UTF-8 bytes, never NSString; an empty dictionary, never
     * nil, when there are no weights), model, identifier */
    id mil = ns_data(d->mil, d->mil_len);
    id weights = ns_data(d->blob_len ? (const void *)d->blob : (const void *)"", d->blob_len);
    if (!mil || !weights) return an_err_set(err, AN_E_NOMEM, "NSData: out of memory");
    id wdict = nil;
    if (d->blob_len) {
        const id ekeys[2] = {ns_str("offset"), ns_str("data")};
        const id evals[2] = {ns_u64(0), weights};
        id file = ns_dict(ekeys, evals, 2);
        id key = ns_str("@model_path/weights/weight.bin");
        wdict = file ? ns_dict(&key, &file, 1) : nil;
    } else {
        wdict = ns_empty_dict();
    }
    if (!wdict) return an_err_set(err, AN_E_NOMEM, "NSDictionary: out of memory");
    id desc = MSG(id, id, SEL, id, id, id)(cls("_ANEInMemoryModelDescriptor"),
                                           SEL_("modelWithMILText:weights:optionsPlist:"), mil, wdict, nil);
    if (!desc)
        return an_err_set(err, AN_E_RUNTIME, "_ANEInMemoryModelDescriptor refused the program (%zu bytes of MIL, "
                          "%zu of weights)", d->mil_len, d->blob_len);
    id model = MSG(id, id, SEL, id)(cls("_ANEInMemoryModel"), SEL_("inMemoryModelWithDescriptor:"), desc);
    if (!model) return an_err_set(err, AN_E_RUNTIME, "_ANEInMemoryModel inMemoryModelWithDescriptor: returned nil");
    p->desc = (__bridge_retained void *)desc;
    p->model = (__bridge_retained void *)model;
    p->weights = (__bridge_retained void *)weights;
    const char *ident = c_str(MSG(id, id, SEL)(model, SEL_("hexStringIdentifier")));
    if (!an_ane_ident_ok(ident))
        return an_err_set(err, AN_E_RUNTIME, "unusable model identifier \"%.80s\"", ident ? ident : "(nil)");
    snprintf(p->ident, sizeof p->ident, "%s", ident);
    trace("identifier %s", p->ident);

    /* 4-5. staging directory, persistent cache entry, both under one flock */
    const char *tmp = c_str(NSTemporaryDirectory());
    if (!tmp || !tmp[0]) return an_err_set(err, AN_E_IO, "NSTemporaryDirectory() is empty");
    size_t tl = strlen(tmp);
    int n = snprintf(p->staging, sizeof p->staging, "%s%s%s", tmp, tmp[tl - 1] == '/' ? "" : "/", p->ident);
    if (n < 0 || (size_t)n >= sizeof p->staging) return an_err_set(err, AN_E_RANGE, "staging path too long");
    char entry[1024];
    bool use_cache = d->cache_dir && d->cache_dir[0] && !g_no_cache;
    if (use_cache && !responds(model, "setModelURL:")) {
        trace("_ANEInMemoryModel has no setModelURL:, the persistent cache is not used");
        use_cache = false;
    }
    if (use_cache) {
        char build[64];
        sysctl_str("kern.osversion", build, sizeof build);
        AN_TRY(an_ane_cache_path(entry, sizeof entry, d->cache_dir, build, p->ident, err));
        char parent[1024];
        snprintf(parent, sizeof parent, "%s", entry);
        char *slash = strrchr(parent, '/');
        if (slash) *slash = 0;
        AN_TRY(an_ane_mkdir_p(parent, err));
        snprintf(p->lock_path, sizeof p->lock_path, "%s.lock", entry);
    } else {
        snprintf(p->lock_path, sizeof p->lock_path, "%s.lock", p->staging);
    }
    AN_TRY(an_ane_lock_file(p->lock_path, g_compile_wait_ms + 2 * g_wait_ms, &p->lock_fd, err));
    bool from_cache = false;
    an_status s = compile_and_load(p, model, d, use_cache ? entry : NULL, &from_cache, err);
    an_ane_unlock_file(p->lock_fd);
    p->lock_fd = -1;
    if (s != AN_OK) {
        if (use_cache && err) { /* say how to rule the cache out */
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof err->msg - l, " (cache entry %s; ANELM_ANE_CACHE=0 turns the cache off)", entry);
        }
        return s;
    }
    p->loaded = true;

    /* 8. layouts (§2.2) */
    id inner = responds(model, "model") ? MSG(id, id, SEL)(model, SEL_("model")) : nil;
    id attrs = responds(inner, "modelAttributes") ? MSG(id, id, SEL)(inner, SEL_("modelAttributes")) : nil;
    id status_list = dict_get(attrs, "NetworkStatusList");
    trace("_ANEModel %s, modelAttributes %s, NetworkStatusList with %lu entries", inner ? "present" : "absent",
          attrs ? "present" : "absent", (unsigned long)arr_count(status_list));
    trace_attributes(status_list);
    int n_found = 0, n_tensors = 0;
    for (int fn = 0; fn < p->n_fns; fn++) {
        an_ane_fn *f = &p->fns[fn];
        for (int i = 0; i < f->io.n_in + f->io.n_out; i++) {
            bool is_in = i < f->io.n_in;
            int k = is_in ? i : i - f->io.n_in;
            int64_t width = is_in ? f->io.in_width[k] : f->io.out_width[k];
            int64_t stride = an_ane_default_stride(width);
            bool found = false;
            AN_TRY(find_stride(status_list, is_in ? "LiveInputList" : "LiveOutputList", f->io.n, width, &stride, &found,
                               err));
            n_found += found;
            n_tensors++;
            if (is_in) f->in_stride[k] = stride;
            else f->out_stride[k] = stride;
        }
    }
    trace("strides: %d of %d tensors from modelAttributes, the rest 64-byte-aligned rows", n_found, n_tensors);

    /* 9-10. surfaces and one request per function (§1.3) */
    for (int fn = 0; fn < p->n_fns; fn++) AN_TRY(bind_function(p, inner, fn, err));

    /* known-answer self-test of every function before the program is trusted */
    AN_TRY(self_test(p, d, err));
    snprintf(p->info, sizeof p->info,
             "ANE program %.16s...: %d function%s, %s, strides %d/%d from the model, %s surfaces, self-test passed",
             p->ident, p->n_fns, p->n_fns == 1 ? "" : "s",
             from_cache ? "loaded from the persistent cache" : "compiled", n_found, n_tensors,
             g_flat_surfaces ? "flat" : "2-D");
    return AN_OK;
}

an_status an_ane_prog_load(an_ane_prog **out, const an_ane_prog_desc *d, an_err *err) {
    if (out) *out = NULL;
    const char *why = NULL;
    if (!an_ane_bridge_available(&why)) return an_err_set(err, AN_E_UNSUPPORTED, "ANE bridge: %s", why);
    if (!out) return an_err_set(err, AN_E_USAGE, "an_ane_prog_load: out is NULL");
    AN_TRY(an_ane_desc_check(d, err));
    an_ane_prog *p = calloc(1, sizeof *p);
    if (p) p->fns = calloc((size_t)d->n_fns, sizeof *p->fns);
    if (!p || !p->fns) {
        free(p);
        return an_err_set(err, AN_E_NOMEM, "ANE program: out of memory");
    }
    p->n_fns = d->n_fns;
    p->lock_fd = -1;
    for (int fn = 0; fn < d->n_fns; fn++) p->fns[fn].io = d->io[fn];
    an_status s;
    @autoreleasepool { /* one pool per compile (§1.7: leaked autoreleased objects pin programs) */
        @try {
            s = prog_setup(p, d, err);
        } @catch (id x) {
            char msg[512];
            exc_text(x, msg, sizeof msg);
            s = an_err_set(err, AN_E_RUNTIME, "ANE program setup: %s", msg);
        }
    }
    if (s != AN_OK) {
        trace("load failed: %s", err ? err->msg : "");
        an_ane_prog_free(p);
        return s;
    }
    trace("%s", p->info);
    *out = p;
    return AN_OK;
}

void an_ane_prog_free(an_ane_prog *p) {
    if (!p) return;
    @autoreleasepool {
        if (p->loaded && !an_ane_worker_wedged(g_worker)) {
            an_err e = {0};
            if (run_job(JOB_UNLOAD, (__bridge id)p->model, nil, "unload", &e) != AN_OK)
                fprintf(stderr, "anelm: %s\n", e.msg); /* an unload failure leaks ANE resources: say so */
        }
        for (int fn = 0; fn < p->n_fns; fn++) {
            an_ane_fn *f = &p->fns[fn];
            drop(&f->request);
            for (int i = 0; i < AN_ANE_MAX_IN; i++)
                if (f->in_s[i]) CFRelease(f->in_s[i]);
            for (int j = 0; j < AN_ANE_MAX_OUT; j++)
                if (f->out_s[j]) CFRelease(f->out_s[j]);
        }
        drop(&p->model);
        drop(&p->desc);
        drop(&p->weights);
    }
    an_ane_unlock_file(p->lock_fd);
    /* under the lock, so that another process compiling the same program keeps its files; kept
     * when a timed-out compile may still be reading them */
    if (p->staged && !an_ane_worker_wedged(g_worker)) {
        int fd = -1;
        an_err e = {0};
        if (an_ane_lock_file(p->lock_path, 5000, &fd, &e) == AN_OK) {
            if (an_ane_rm_tree(p->staging, &e) != AN_OK) trace("%s", e.msg);
            an_ane_unlock_file(fd);
        } else {
            trace("staging directory %s kept: %s", p->staging, e.msg);
        }
    }
    free(p->fns);
    free(p);
}

an_status an_ane_prog_eval(an_ane_prog *p, int fn, const uint16_t *const *in, uint16_t *const *out, an_err *err) {
    const char *why = NULL;
    if (!an_ane_bridge_available(&why)) return an_err_set(err, AN_E_UNSUPPORTED, "ANE bridge: %s", why);
    if (!p || fn < 0 || fn >= p->n_fns || !in || !out)
        return an_err_set(err, AN_E_USAGE, "an_ane_prog_eval: bad arguments (function %d)", fn);
    for (int i = 0; i < p->fns[fn].io.n_in; i++)
        if (!in[i]) return an_err_set(err, AN_E_USAGE, "an_ane_prog_eval: function %d input %d is NULL", fn, i);
    for (int j = 0; j < p->fns[fn].io.n_out; j++)
        if (!out[j]) return an_err_set(err, AN_E_USAGE, "an_ane_prog_eval: function %d output %d is NULL", fn, j);
    an_status s;
    @autoreleasepool {
        s = eval_impl(p, fn, in, out, err);
    }
    return s;
}

const char *an_ane_prog_info(const an_ane_prog *p) { return p ? p->info : "no program"; }
