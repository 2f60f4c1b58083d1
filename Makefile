# airlock: the two commands that matter are `make demo` and `make test`.
# Everything else (Debian packages, the pinned llama.cpp) is set up by
# scripts/bootstrap.sh on the first run and cached afterwards.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build asan test test-unit test-asan faults demo bench clean deps

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

# Every test (unit + integration) on the normal build, then the unit tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer. Integration tests
# run servers and kill processes on a shared 2-core machine: a failing test is
# run once more (its first failure is still printed) so a rare timing flake
# does not hide the rest; a real failure fails twice.
test: build asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --repeat until-pass:2
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L unit -j $(JOBS)

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

# Every fault at every injection point on every write path (several minutes;
# see docs/internals/faults.md). `make test` runs a sample of the points.
faults: build
	@cd $(BUILD) && AL_FAULT_MODE=full ctest --output-on-failure -R '^faults/'

demo: build
	@scripts/demo.sh "$(BUILD)"

bench: build
	@bench/run.sh "$(BUILD)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
