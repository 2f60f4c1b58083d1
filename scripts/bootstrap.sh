#!/usr/bin/env bash
# bootstrap.sh: install what the build needs, then fetch, verify and build the
# pinned llama.cpp into a cache outside the tree.
#
#   scripts/bootstrap.sh deps        install missing Debian packages
#   scripts/bootstrap.sh llama       build llama.cpp (cached), print its prefix
#   scripts/bootstrap.sh all         both (default)
#
# The cache lives in $AIRLOCK_CACHE_DIR (default ~/.cache/airlock) and is keyed
# by the npm tarball's SHA-256 and the CPU features the build was made for, so
# a second run reuses it. AIRLOCK_LLAMA_DIR=/path/to/llama.cpp builds from a
# checkout of your own instead of the pinned source.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/deps/llama.cpp.lock"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# strace: test_scan_stream counts what ingest reads back.
# python3-pytest, python3-requests: llama.cpp's server test suite run against
# airlock serve (tests/peer/run.py).
# clang-14, libclang-rt-14-dev (libFuzzer), libomp-14-dev, llvm-14 (llvm-symbolizer):
# the fuzz build, make fuzz and make fuzz-smoke (docs/internals/fuzz.md).
DEB_PACKAGES="build-essential pkg-config ca-certificates
 libssl-dev libsqlite3-dev libarchive-dev libzstd-dev libmicrohttpd-dev
 libjansson-dev libcurl4-openssl-dev libgpgme-dev libcmocka-dev
 minisign gnupg openssl zstd xxd sqlite3 chromium
 libfaiss-dev libpoppler-glib-dev python3-faiss python3-numpy ghostscript groff-base man-db manpages
 python3-jsonschema bsdiff xdelta3 docker-registry skopeo apache2-utils
 python3-pytest python3-requests strace
 clang-14 libclang-rt-14-dev libomp-14-dev llvm-14"
# Tools that may come from elsewhere (a Node.js not from Debian, say): only
# installed from Debian when the command is missing. command:package
DEB_COMMANDS="cmake:cmake git:git curl:curl python3:python3 node:nodejs npm:npm"

install_deps() {
    local missing=()
    for p in $DEB_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    for cp in $DEB_COMMANDS; do
        command -v "${cp%%:*}" >/dev/null 2>&1 || missing+=("${cp#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && { log "Debian packages: all present"; return 0; }
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# CMake options for the CPU features this machine reports. GGML_NATIVE stays
# off: -march=native enables AMX where the CPU reports it, and llama.cpp
# v0.4.0's AMX path dies with SIGILL on Q4_0 tensors (architecture notes).
cpu_flags() {
    local f
    f=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    local opts="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    has() { case "$f" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
    onoff() { if has "$1"; then echo ON; else echo OFF; fi; }
    if [ "$(uname -m)" = x86_64 ]; then
        opts="$opts -DGGML_SSE42=$(onoff sse4_2) -DGGML_AVX=$(onoff avx)"
        opts="$opts -DGGML_AVX2=$(onoff avx2) -DGGML_FMA=$(onoff fma) -DGGML_F16C=$(onoff f16c)"
        opts="$opts -DGGML_BMI2=$(onoff bmi2) -DGGML_AVX_VNNI=$(onoff avx_vnni)"
        opts="$opts -DGGML_AVX512=$(onoff avx512f) -DGGML_AVX512_VBMI=$(onoff avx512vbmi)"
        opts="$opts -DGGML_AVX512_VNNI=$(onoff avx512_vnni) -DGGML_AVX512_BF16=$(onoff avx512_bf16)"
    else
        opts="-DGGML_NATIVE=ON"
    fi
    echo "$opts"
}

build_llama() {
    local cache="${AIRLOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock}"
    local opts key prefix src
    opts=$(cpu_flags)
    key="${NPM_TARBALL_SHA256:0:16}-$(printf '%s' "$opts" | sha256sum | cut -c1-8)"
    if [ -n "${AIRLOCK_LLAMA_DIR:-}" ]; then
        src=$(cd "$AIRLOCK_LLAMA_DIR" && pwd)
        key="custom-$(printf '%s' "$src $opts" | sha256sum | cut -c1-16)"
    fi
    prefix="$cache/llama.cpp-$key"
    if [ -f "$prefix/.complete" ]; then
        log "llama.cpp: cached in $prefix"
        echo "$prefix"; return 0
    fi
    mkdir -p "$cache"
    # One build at a time per key: two makes started side by side (two build
    # dirs, two worktrees) would wipe each other's tree. The second waits,
    # then finds .complete.
    exec 9>"$prefix.lock"
    if ! flock -n 9; then
        log "llama.cpp: another bootstrap is building $prefix; waiting for it"
        flock 9
    fi
    if [ -f "$prefix/.complete" ]; then
        log "llama.cpp: cached in $prefix"
        echo "$prefix"; return 0
    fi
    # Build in place; .complete is written last, so an interrupted build is
    # wiped and redone by the next run.
    local work="$prefix"
    rm -rf "$work"; mkdir -p "$work"
    if [ -z "${AIRLOCK_LLAMA_DIR:-}" ]; then
        log "llama.cpp: fetching $NPM_PACKAGE@$NPM_VERSION from the npm registry"
        (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null) \
            || die "npm pack $NPM_PACKAGE@$NPM_VERSION failed: is the npm registry reachable?"
        local tgz="$work/$NPM_PACKAGE-$NPM_VERSION.tgz" got
        got=$(sha256sum "$tgz" | cut -d' ' -f1)
        [ "$got" = "$NPM_TARBALL_SHA256" ] \
            || die "checksum mismatch for $tgz: expected $NPM_TARBALL_SHA256, got $got"
        log "llama.cpp: tarball sha256 verified ($got)"
        tar xzf "$tgz" -C "$work" package/llama/gitRelease.bundle
        git clone -q "$work/package/llama/gitRelease.bundle" "$work/src" 2>/dev/null
        local head
        head=$(git -C "$work/src" rev-parse HEAD)
        case "$head" in "$LLAMA_COMMIT"*) ;; *) die "bundle HEAD $head is not $LLAMA_COMMIT" ;; esac
        rm -rf "$work/package" "$tgz"
        src="$work/src"
    fi
    log "llama.cpp: building from $src (this takes several minutes once)"
    # shellcheck disable=SC2086
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON $opts >"$work/cmake.log" 2>&1 \
        || { tail -30 "$work/cmake.log" >&2; die "llama.cpp configure failed (log: $work/cmake.log)"; }
    # llama-common: the chat library (Jinja templates, tool-call grammars and
    # parsers) that src/engine/chat_shim.cpp links. llama-server depends on it,
    # so caches built before it was named here have it too: the cache key
    # stays the same.
    cmake --build "$work/build" -j "$(nproc)" --target llama ggml llama-common llama-bench llama-server \
        llama-quantize llama-embedding llama-completion >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; die "llama.cpp build failed (log: $work/build.log)"; }
    printf '%s\n' "$opts" >"$work/cpu-options"
    echo "$src" >"$work/source"
    touch "$work/.complete"
    log "llama.cpp: built into $prefix"
    echo "$prefix"
}

case "${1:-all}" in
    deps) install_deps ;;
    llama) build_llama ;;
    all) install_deps; build_llama ;;
    *) die "usage: $0 [deps|llama|all]" ;;
esac
