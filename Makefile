# anelm — `make` builds build/libanelm.a, the CLI build/anelm and the tests; `make test` runs them.
# Variables: CC (gcc or clang), BUILD (output dir), SAN=1 (ASan+UBSan build in build-san).
CC ?= cc
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD ?= build
endif
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN = -Wall -Wextra -Wshadow -Wno-unused-parameter
ALLFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -Isrc -D_GNU_SOURCE -MMD -MP -pthread
LDLIBS = -lm -pthread

# Per-ISA flags: code for an ISA lives in files under src/ named for it (*_avx2.c, *_avx512.c,
# *_amx.c, *_neon.c, *_dotprod.c) and is chosen at run time; tests and tools are portable C.
ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1 | sed 's/^arm64$$/aarch64/')
X86_AVX2 = -mavx2 -mfma -mf16c -ffp-contract=fast
X86_AVX512 = $(X86_AVX2) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
X86_AMX = $(X86_AVX512) -mamx-tile -mamx-int8 -mamx-bf16
ARM_DOTPROD = -march=armv8.2-a+dotprod -ffp-contract=fast
ARM_NEON = -ffp-contract=fast

# The ANE bridge (src/backends/ane/bridge/): its C files build everywhere (bridge_stub.c is the
# whole bridge off Apple, and on a Mac unless AN_ANE_BRIDGE_OBJC is defined); bridge.m, the only
# Objective-C, is never built here but by `make macos` on a Mac (see the macos target below).
LIB_SRC := $(shell find src -name '*.c' | sort)
ifneq ($(ARCH),x86_64)
LIB_SRC := $(filter-out %_avx2.c %_avx512.c %_amx.c,$(LIB_SRC))
endif
ifneq ($(ARCH),aarch64)
LIB_SRC := $(filter-out %_neon.c %_dotprod.c,$(LIB_SRC))
endif
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

all: $(BUILD)/libanelm.a $(BUILD)/anelm $(BUILD)/anelm_test

$(BUILD)/obj/src/%_avx2.o: src/%_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(X86_AVX2) -c $< -o $@
$(BUILD)/obj/src/%_avx512.o: src/%_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(X86_AVX512) -c $< -o $@
$(BUILD)/obj/src/%_amx.o: src/%_amx.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(X86_AMX) -c $< -o $@
$(BUILD)/obj/src/%_neon.o: src/%_neon.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(ARM_NEON) -c $< -o $@
$(BUILD)/obj/src/%_dotprod.o: src/%_dotprod.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(ARM_DOTPROD) -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

$(BUILD)/libanelm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/anelm: $(TOOL_OBJ) $(BUILD)/libanelm.a
	$(CC) $(ALLFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/anelm_test: $(TEST_OBJ) $(BUILD)/libanelm.a
	$(CC) $(ALLFLAGS) $^ -o $@ $(LDLIBS)

# The tests run from the repository root; models and references come from ../shared when it
# is there (tests that need it skip loudly otherwise).
test: all
	ANELM_BUILD=$(BUILD) ./$(BUILD)/anelm_test $(SUITES)

# ASan + UBSan build of everything, then the tests under it.
san:
	$(MAKE) SAN=1 test

# libFuzzer target for the GGUF reader (clang only); FUZZ_SECONDS bounds the run.
FUZZ_SECONDS ?= 60
fuzz:
	@mkdir -p build-fuzz
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc -D_GNU_SOURCE \
	  tests/fuzz/fuzz_gguf.c $(filter src/core/% src/gguf/%,$(LIB_SRC)) -o build-fuzz/fuzz_gguf $(LDLIBS)
	mkdir -p build-fuzz/corpus
	./build-fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus tests/fuzz/seeds

# macOS only (not run by this project, see src/backends/ane/bridge/README.md): everything in
# build-macos with the ANE bridge, i.e. bridge.m compiled with clang -fobjc-arc and linked with
# -framework Foundation -framework IOSurface -ldl, bridge_stub.c compiled empty.
MACOS_BUILD ?= build-macos
MACOS_CFLAGS = $(CFLAGS) -DAN_ANE_BRIDGE_OBJC
MACOS_LDLIBS = $(LDLIBS) -framework Foundation -framework IOSurface -ldl
macos:
	$(MAKE) CC=clang BUILD=$(MACOS_BUILD) CFLAGS="$(MACOS_CFLAGS)" $(MACOS_BUILD)/libanelm.a
	clang -x objective-c -fobjc-arc -fobjc-exceptions -std=gnu11 $(WARN) $(MACOS_CFLAGS) -Iinclude -Isrc -pthread \
	  -c src/backends/ane/bridge/bridge.m -o $(MACOS_BUILD)/obj/src/backends/ane/bridge/bridge_objc.o
	ar rs $(MACOS_BUILD)/libanelm.a $(MACOS_BUILD)/obj/src/backends/ane/bridge/bridge_objc.o
	$(MAKE) CC=clang BUILD=$(MACOS_BUILD) CFLAGS="$(MACOS_CFLAGS)" LDLIBS="$(MACOS_LDLIBS)" all

# libFuzzer target for the reference MIL executor (clang only): the library is built with
# sanitizers and fuzzer coverage into build-fuzz/lib (the executor calls the CPU matmul, whose
# per-ISA files need their own flags), then linked with the harness.
fuzz-mil:
	$(MAKE) CC=clang SAN=1 BUILD=build-fuzz/lib CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" build-fuzz/lib/libanelm.a
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc -D_GNU_SOURCE \
	  tests/fuzz/fuzz_mil.c build-fuzz/lib/libanelm.a -o build-fuzz/fuzz_mil $(LDLIBS)
	mkdir -p build-fuzz/corpus-mil
	./build-fuzz/fuzz_mil -max_total_time=$(FUZZ_SECONDS) -max_len=16384 build-fuzz/corpus-mil tests/fuzz/seeds_mil
.PHONY: fuzz-mil

clean:
	rm -rf build build-san build-fuzz build-clang build-macos

.PHONY: all test san fuzz clean macos
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
