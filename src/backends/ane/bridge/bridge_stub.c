/* bridge_stub.c — the ANE bridge where bridge.m is not built: off Apple platforms ("not
 * macOS"), and on macOS in builds made without `make macos` (which defines AN_ANE_BRIDGE_OBJC
 * and links bridge.m instead). Every entry point answers AN_E_UNSUPPORTED. */
#include "backends/ane/bridge/bridge.h"

#if !defined(__APPLE__) || !defined(AN_ANE_BRIDGE_OBJC)

#include <stdio.h>

#ifdef __APPLE__
#define AN_ANE_STUB_WHY "anelm was built without the ANE bridge (bridge.m); build with `make macos`"
#else
#define AN_ANE_STUB_WHY "not macOS"
#endif

bool an_ane_bridge_available(const char **why) {
    if (why) *why = AN_ANE_STUB_WHY;
    return false;
}

void an_ane_bridge_describe(char *buf, size_t cap) {
    if (buf && cap) snprintf(buf, cap, "ANE bridge unavailable: %s", AN_ANE_STUB_WHY);
}

int an_ane_bridge_compiles(void) { return 0; }

an_status an_ane_prog_load(an_ane_prog **out, const an_ane_prog_desc *d, an_err *err) {
    (void)d;
    if (out) *out = NULL;
    return an_err_set(err, AN_E_UNSUPPORTED, "ANE bridge: %s", AN_ANE_STUB_WHY);
}

void an_ane_prog_free(an_ane_prog *p) { (void)p; }

an_status an_ane_prog_eval(an_ane_prog *p, int fn, const uint16_t *const *in, uint16_t *const *out, an_err *err) {
    (void)p, (void)fn, (void)in, (void)out;
    return an_err_set(err, AN_E_UNSUPPORTED, "ANE bridge: %s", AN_ANE_STUB_WHY);
}

const char *an_ane_prog_info(const an_ane_prog *p) {
    (void)p;
    return AN_ANE_STUB_WHY;
}

#else
typedef int an_ane_bridge_stub_empty; /* bridge.m provides the bridge */
#endif
