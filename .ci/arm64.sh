#!/usr/bin/env bash
# AArch64 CI: cross-builds everything for aarch64 (warnings are errors) and runs the test suites
# that matter for the ARM code under qemu user-mode emulation, twice:
#   1. -cpu max         has the dot-product extension (HWCAP ASIMDDP) -> dotprod GEMV table
#   2. -cpu cortex-a53  ARMv8.0, no dotprod                           -> plain NEON GEMV table
# so both tables of src/backends/cpu/gemv_{neon,dotprod}.c are checked against the reference.
#
# Suites: core, quant, kernels, tokenizer. The model/cli/gguf/bench suites are left to the
# native x86 run (.ci/run): they exercise no ARM-specific code beyond what kernels covers, and
# full forward passes and perplexity under qemu would take far longer than this script's budget
# (~8 minutes on 2 cores; one pass of the four suites takes about a minute under qemu).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITES=(core quant kernels matmul attention tokenizer lut ane_mil ane_ref)
CROSS=aarch64-linux-gnu-gcc
SYSROOT=/usr/aarch64-linux-gnu
BUILD=build-arm64

echo "== arm64: toolchain and emulator"
need_pkgs=()
command -v "$CROSS" >/dev/null || need_pkgs+=(gcc-aarch64-linux-gnu)
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] && [ -e "$SYSROOT/include/stdio.h" ] || need_pkgs+=(libc6-dev-arm64-cross)
# Debian 12: qemu-user ships /usr/bin/qemu-aarch64; qemu-user-static ships qemu-aarch64-static.
QEMU=""
if command -v qemu-aarch64 >/dev/null; then QEMU=qemu-aarch64
elif command -v qemu-aarch64-static >/dev/null; then QEMU=qemu-aarch64-static
else need_pkgs+=(qemu-user)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "== arm64: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi
[ -n "$QEMU" ] || QEMU=qemu-aarch64
command -v "$QEMU" >/dev/null || { echo "arm64: $QEMU not found after install" >&2; exit 1; }
"$CROSS" --version | head -1
"$QEMU" --version | head -1

echo "== arm64: cross build ($CROSS, $BUILD, warnings are errors)"
make -j2 CC="$CROSS" BUILD="$BUILD" CFLAGS="-O2 -g -Werror" all

if [ -d ../shared ]; then
    ANELM_SHARED="$(cd ../shared && pwd)"
    export ANELM_SHARED
else
    echo "   (../shared is absent: tests that need models or references will skip)"
fi

# Does the emulated CPU report dotprod? The guest dynamic loader prints its auxv with
# LD_SHOW_AUXV; bit 20 of AT_HWCAP is HWCAP_ASIMDDP, what core/cpu.c tests.
has_dotprod() {
    local hw
    hw=$("$QEMU" -cpu "$1" -E LD_SHOW_AUXV=1 -L "$SYSROOT" "$BUILD/anelm_test" no-such-suite 2>/dev/null |
         awk '/^AT_HWCAP:/ { print $2; exit }')
    [ -n "$hw" ] && (( (16#${hw#0x} >> 20) & 1 ))
}

fail=0
run_on() {
    local cpu=$1 want_dotprod=$2 table
    if has_dotprod "$cpu"; then table=dotprod; else table=neon; fi
    echo
    echo "== arm64: tests under qemu -cpu $cpu (GEMV table: $table): ${SUITES[*]}"
    if [ "$table" != "$want_dotprod" ]; then
        echo "arm64: expected the $want_dotprod table on -cpu $cpu, the CPU reports $table" >&2
        fail=1
        return
    fi
    local log rc
    log=$(mktemp)
    set +e
    "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$BUILD/anelm_test" "${SUITES[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    if ! grep -qE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log"; then
        echo "arm64: test run on -cpu $cpu did not finish (exit $rc)" >&2
        fail=1
    elif [ "$rc" -ne 0 ]; then
        echo "arm64: failures on -cpu $cpu" >&2
        fail=1
    fi
    rm -f "$log"
}

run_on max dotprod
run_on cortex-a53 neon

echo
if [ "$fail" -ne 0 ]; then
    echo "== arm64: FAILED"
    exit 1
fi
echo "== arm64: done (both GEMV tables pass under qemu)"
