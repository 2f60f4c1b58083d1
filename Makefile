# airlock: the two commands that matter are `make demo` and `make test`.
# Everything else (Debian packages, the pinned llama.cpp) is set up by
# scripts/bootstrap.sh on the first run and cached afterwards.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds per harness; make fuzz-smoke (part of make test): the same, short.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_CC    ?= clang-14
FUZZ_CXX   ?= clang++-14
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build asan test test-unit test-asan demo bench clean deps fuzz fuzz-build fuzz-smoke

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

# Every test (unit + integration) on the normal build, then the unit tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer. Integration tests
# run servers and kill processes on a shared 2-core machine: a failing test is
# run once more (its first failure is still printed) so a rare timing flake
# does not hide the rest; a real failure fails twice. Then every fuzz harness
# for a few seconds from its seeds (fuzz-smoke), so a regression in a parser
# of hostile input fails the build.
test: build asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --repeat until-pass:2
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L unit -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz-smoke

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

demo: build
	@scripts/demo.sh "$(BUILD)"

bench: build
	@bench/run.sh "$(BUILD)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
