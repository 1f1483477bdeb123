/* paths.h — where anelm keeps machine-local state (measured limits, compiled weights):
 * $ANELM_CACHE, else $XDG_CACHE_HOME/anelm, else $HOME/.cache/anelm. */
#ifndef AN_CORE_PATHS_H
#define AN_CORE_PATHS_H

#include <stddef.h>

#include "core/status.h"

/* Writes the cache directory into buf (creating it and its parents when create is true). */
an_status an_cache_dir(char *buf, size_t cap, int create, an_err *err);

#endif
