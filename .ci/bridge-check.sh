#!/usr/bin/env bash
# The macOS ANE bridge (src/backends/ane/bridge/bridge.m) cannot be built on Linux: this
# syntax- and type-checks it with clang as Objective-C with ARC against the Apple runtime, as on
# a Mac, using tests/bridge_check/apple_min.h in place of the Apple headers (it declares only the
# functions and types bridge.m uses, with the SDK's prototypes). Installs clang if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null; then
    echo "== installing clang"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q clang
fi

echo "== bridge.m: clang -fsyntax-only -x objective-c -fobjc-arc (macOS runtime, apple_min.h)"
clang -fsyntax-only -x objective-c -fobjc-arc -fobjc-exceptions -fobjc-runtime=macosx-13.0 -std=gnu11 \
    -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror \
    -Iinclude -Isrc -D_GNU_SOURCE -pthread \
    -include tests/bridge_check/apple_min.h \
    src/backends/ane/bridge/bridge.m
echo "== bridge.m type-checks"
