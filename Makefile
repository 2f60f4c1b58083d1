# airlock: the two commands that matter are `make demo` and `make test`.
# Everything else (Debian packages, the pinned llama.cpp) is set up by
# scripts/bootstrap.sh on the first run and cached afterwards.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
ARM64_BUILD  ?= build-arm64
VULKAN_BUILD ?= build-vulkan
# make fuzz: seconds per harness; make fuzz-smoke (part of make test): the same, short.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_CC    ?= clang-14
FUZZ_CXX   ?= clang++-14
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build asan tsan test test-unit test-asan test-tsan lint demo bench bench-scan bench-pickle bench-delta soak faults clean deps fuzz fuzz-build fuzz-smoke arm64 test-arm64 test-arm64-ci vulkan test-vulkan cuda

all: build

deps:
	@scripts/bootstrap.sh deps

# The bootstrap prints the llama.cpp prefix on stdout (its log goes to stderr).
$(BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock
	@prefix=$$(scripts/bootstrap.sh all) && \
	cmake -S . -B $(BUILD) -DAIRLOCK_LLAMA_PREFIX="$$prefix" $(CMAKE_ARGS) >/dev/null && \
	touch $@

build: $(BUILD)/.configured
	@cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock
	@prefix=$$(scripts/bootstrap.sh all) && \
	cmake -S . -B $(ASAN_BUILD) -DAIRLOCK_LLAMA_PREFIX="$$prefix" -DAIRLOCK_SANITIZE=ON \
	  -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null && \
	touch $@

asan: $(ASAN_BUILD)/.configured
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

$(TSAN_BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock
	@prefix=$$(scripts/bootstrap.sh all) && \
	cmake -S . -B $(TSAN_BUILD) -DAIRLOCK_LLAMA_PREFIX="$$prefix" -DAIRLOCK_TSAN=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null && \
	touch $@

tsan: $(TSAN_BUILD)/.configured
	@cmake --build $(TSAN_BUILD) -j $(JOBS)

# make test: the module graph; every test on the normal build; every test but
# those labelled noasan (CMakeLists.txt says why for each) against the
# ASan+UBSan build, its own airlock binary included; the tests labelled tsan
# against the ThreadSanitizer build; then every libFuzzer harness for a few
# seconds from its seeds (fuzz-smoke). No test is run twice: a failure is a
# failure (a flaky test is a bug to fix, not to retry).
# Every run goes to the end; make test fails if any failed.
test: lint build asan tsan
	@s=0; \
	(cd $(BUILD) && ctest --output-on-failure -j $(JOBS)) || s=1; \
	$(MAKE) --no-print-directory test-asan || s=1; \
	$(MAKE) --no-print-directory test-tsan || s=1; \
	$(MAKE) --no-print-directory fuzz-smoke || s=1; \
	exit $$s

lint:
	@scripts/module-graph.sh --doc >/dev/null

test-asan: asan
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -LE noasan

test-tsan: tsan
	@cd $(TSAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L tsan

# libFuzzer harnesses (tests/fuzz): our code built by clang with coverage
# instrumentation and ASan+UBSan, in a build dir of its own.
$(FUZZ_BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock
	@prefix=$$(scripts/bootstrap.sh all) && \
	cmake -S . -B $(FUZZ_BUILD) -DAIRLOCK_LLAMA_PREFIX="$$prefix" -DAIRLOCK_FUZZ=ON \
	  -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) $(CMAKE_ARGS) >/dev/null && \
	touch $@

fuzz-build: $(FUZZ_BUILD)/.configured
	@cmake --build $(FUZZ_BUILD) --target airlock_fuzz -j $(JOBS)

# Each harness for FUZZ_SECONDS; new inputs go to $(FUZZ_BUILD)/corpus (git-ignored).
# FUZZ_TARGETS="fuzz_gguf fuzz_params" runs only those.
fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# make arm64: airlock and the pinned llama.cpp cross-built for aarch64 (the
# Raspberry Pi 5: Cortex-A76 options, never this machine's), with Debian's
# cross toolchain and arm64 multiarch libraries (bootstrap.sh deps-arm64).
# make test-arm64: the unit tests and the integration tests a Pi runs on its
# own, under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR; no binfmt needed).
# test-arm64-ci: the part .ci/run runs (docs/internals/platforms.md says why).
$(ARM64_BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock cmake/aarch64-linux-gnu.cmake
	@overlay=$$(scripts/bootstrap.sh deps-arm64) && prefix=$$(scripts/bootstrap.sh llama-arm64) && \
	cmake -S . -B $(ARM64_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DAIRLOCK_LLAMA_PREFIX="$$prefix" -DAIRLOCK_PKG_OVERLAY="$$overlay" $(CMAKE_ARGS) >/dev/null && \
	touch $@

arm64: $(ARM64_BUILD)/.configured
	@cmake --build $(ARM64_BUILD) -j $(JOBS)

test-arm64: arm64
	@cd $(ARM64_BUILD) && ctest --output-on-failure -j $(JOBS)

ARM64_CI_TESTS ?= ^unit/|integration/test_serve_openai|integration/test_bundle_corpus
test-arm64-ci: arm64
	@cd $(ARM64_BUILD) && ctest --output-on-failure -j $(JOBS) -R '$(ARM64_CI_TESTS)'

# make vulkan: airlock on a llama.cpp built with its Vulkan backend; make
# test-vulkan: the golden-output and validate tests with every layer on the
# first Vulkan device, here Mesa's lavapipe (docs/internals/platforms.md).
$(VULKAN_BUILD)/.configured: CMakeLists.txt scripts/bootstrap.sh deps/llama.cpp.lock
	@prefix=$$(scripts/bootstrap.sh llama-vulkan) && \
	cmake -S . -B $(VULKAN_BUILD) -DAIRLOCK_LLAMA_PREFIX="$$prefix" $(CMAKE_ARGS) >/dev/null && \
	touch $@

vulkan: $(VULKAN_BUILD)/.configured
	@cmake --build $(VULKAN_BUILD) -j $(JOBS)

test-vulkan: vulkan
	@cd $(VULKAN_BUILD) && ctest --output-on-failure -L vulkan

# make cuda: the same with llama.cpp's CUDA backend, where nvcc is present
# (scripts/build-cuda.sh; the plan for CUDA and ROCm is in platforms.md).
cuda:
	@scripts/build-cuda.sh

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

# airlock serve under mixed load for SOAK_SECONDS (default 30 minutes):
# RSS, descriptors and threads must stay flat, no unexpected status
# (tests/soak/soak.sh; `make test` runs it for 2 minutes).
SOAK_SECONDS ?= 1800
soak: build
	@SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/soak.sh "$(BUILD)"

# Every fault at every injection point on every write path (several minutes;
# see docs/internals/faults.md). `make test` runs a sample of the points.
faults: build
	@cd $(BUILD) && AL_FAULT_MODE=full ctest --output-on-failure -R '^faults/'

demo: build
	@scripts/demo.sh "$(BUILD)"

bench: build
	@bench/run.sh "$(BUILD)"

# GGUF tensor-value checking against llama.cpp's --check-tensors on ~1 GB
# models made for the run (bench/scan_gguf.sh; a few minutes, not in make test).
bench-scan: build
	@bench/scan_gguf.sh "$(BUILD)"

# Pickle scanning of a 1 GiB numpy checkpoint against Python's pickletools
# reading the same stream (bench/scan_pickle.sh; several minutes).
bench-pickle: build
	@bench/scan_pickle.sh "$(BUILD)"

# Delta bundles against bsdiff, xdelta3 and zstd --patch-from on a ~1 GiB
# generated model, four kinds of change (bench/delta.sh; long, not in make test).
bench-delta: build
	@nice -n 10 bench/delta.sh "$(BUILD)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(ARM64_BUILD) $(VULKAN_BUILD)
