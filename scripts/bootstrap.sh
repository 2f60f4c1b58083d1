#!/usr/bin/env bash
# bootstrap.sh: install what the build needs, then fetch, verify and build the
# pinned llama.cpp into a cache outside the tree.
#
#   scripts/bootstrap.sh deps          install missing Debian packages
#   scripts/bootstrap.sh llama         build llama.cpp (cached), print its prefix
#   scripts/bootstrap.sh all           both (default)
#   scripts/bootstrap.sh deps-arm64    the aarch64 cross toolchain, qemu-user and
#                                      the arm64 libraries (make arm64)
#   scripts/bootstrap.sh llama-arm64   llama.cpp for the Raspberry Pi 5 (Cortex-A76)
#   scripts/bootstrap.sh deps-vulkan   the Vulkan loader, glslc, Mesa's lavapipe
#   scripts/bootstrap.sh llama-vulkan  llama.cpp with the Vulkan backend (make vulkan)
#   scripts/bootstrap.sh llama-cuda    llama.cpp with the CUDA backend, where nvcc is
#                                      (make cuda, scripts/build-cuda.sh)
#
# The cache lives in $AIRLOCK_CACHE_DIR (default ~/.cache/airlock) and is keyed
# by the npm tarball's SHA-256, the variant and the CPU features or options the
# build was made for, so a second run reuses it. AIRLOCK_LLAMA_DIR=/path/to/llama.cpp builds from a
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

# The arm64 side of every library airlock links (Debian multiarch), the cross
# toolchain and qemu-user to run the result. Two -dev packages are not
# co-installable with their amd64 twins (libgpgme-dev's gpg-error/assuan
# chain, libpoppler-glib-dev): their runtime libraries are installed the
# normal way, and the -dev packages themselves are unpacked (headers, .pc
# files, the link-time .so names) into an overlay the arm64 build reads
# through PKG_CONFIG_PATH, so the host's own -dev packages stay as they are.
ARM64_PACKAGES="crossbuild-essential-arm64 qemu-user
 libssl-dev:arm64 libsqlite3-dev:arm64 libarchive-dev:arm64 libzstd-dev:arm64
 libmicrohttpd-dev:arm64 libjansson-dev:arm64 libcurl4-openssl-dev:arm64
 libcmocka-dev:arm64 libfaiss-dev:arm64 libgnutls28-dev:arm64
 libgpgme11:arm64 libpoppler-glib8:arm64 libpoppler-dev:arm64
 libglib2.0-dev:arm64 libcairo2-dev:arm64 libgomp1:arm64 libstdc++6:arm64"
ARM64_OVERLAY_DEBS="libgpgme-dev libassuan-dev libgpg-error-dev libpoppler-glib-dev"
# Vulkan: the loader's headers, the shader compiler llama.cpp's build runs,
# and Mesa's drivers, lavapipe (a real Vulkan device on the CPU) among them.
VULKAN_PACKAGES="libvulkan-dev glslc spirv-headers mesa-vulkan-drivers vulkan-tools"

apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

install_deps() {
    local want=() cp
    # shellcheck disable=SC2206
    want=($DEB_PACKAGES)
    for cp in $DEB_COMMANDS; do
        command -v "${cp%%:*}" >/dev/null 2>&1 || want+=("${cp#*:}")
    done
    apt_install "${want[@]}"
    log "Debian packages: ready"
}

cache_dir() { echo "${AIRLOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock}"; }

install_arm64_deps() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding the arm64 architecture to dpkg"
        $sudo dpkg --add-architecture arm64
        $sudo apt-get update -qq
    fi
    # shellcheck disable=SC2086
    apt_install $ARM64_PACKAGES
    local overlay; overlay="$(cache_dir)/arm64-overlay"
    local stamp; stamp=$(printf '%s' "$ARM64_OVERLAY_DEBS" | sha256sum | cut -c1-8)
    [ -f "$overlay/.complete-$stamp" ] && return 0
    rm -rf "$overlay"; mkdir -p "$overlay/debs"
    local d
    for d in $ARM64_OVERLAY_DEBS; do
        (cd "$overlay/debs" && apt-get download -qq -o APT::Sandbox::User=root "$d:arm64") \
            || die "apt-get download $d:arm64 failed"
    done
    for d in "$overlay"/debs/*.deb; do dpkg-deb -x "$d" "$overlay"; done
    local lib="$overlay/usr/lib/aarch64-linux-gnu" f t
    # .pc files point at the overlay; the link-time names at the installed libraries.
    sed -i -E "s#^(prefix|exec_prefix|libdir|includedir)=/usr#\\1=$overlay/usr#" "$lib"/pkgconfig/*.pc
    for f in "$lib"/*.so; do
        t=$(readlink "$f"); [ -n "$t" ] && ln -sf "/usr/lib/aarch64-linux-gnu/${t##*/}" "$f"
    done
    rm -rf "$overlay/debs"
    touch "$overlay/.complete-$stamp"
    log "arm64 overlay: $ARM64_OVERLAY_DEBS unpacked into $overlay"
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

# build_llama [native|arm64|vulkan]: one cached llama.cpp build per variant.
build_llama() {
    local variant="${1:-native}"
    local cache opts key prefix src targets patches="" p
    cache=$(cache_dir)
    # Libraries airlock links; the native build adds the tools the tests and
    # benchmarks compare against.
    targets="llama ggml llama-common"
    # Every variant: per-sequence LoRA scales (llama_set_adapters_lora_seq),
    # so that requests with different adapters decode in one batch
    # (docs/internals/engine.md). Patches are part of each key.
    patches="$here/deps/patches/llama.cpp-lora-per-sequence.patch"
    case "$variant" in
    native)
        opts=$(cpu_flags)
        targets="$targets llama-bench llama-server llama-quantize llama-embedding llama-completion"
        key="${NPM_TARBALL_SHA256:0:16}-$( (printf '%s' "$opts"; cat $patches) | sha256sum | cut -c1-8)" ;;
    arm64)
        # The Pi 5's Cortex-A76: Armv8.2-A with dot product and half floats,
        # never the build host's flags. The toolchain file is part of the key.
        opts="-DCMAKE_TOOLCHAIN_FILE=$here/cmake/aarch64-linux-gnu.cmake -DGGML_NATIVE=OFF"
        opts="$opts -DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16"
        targets="$targets llama-quantize"  # test_validate's Q8_0 copy, under qemu
        key="${NPM_TARBALL_SHA256:0:16}-arm64-$( (printf '%s' "${opts#* }"; cat "$here/cmake/aarch64-linux-gnu.cmake" $patches) | sha256sum | cut -c1-8)" ;;
    vulkan)
        # v0.4.0's Vulkan backend uses VK_EXT_layer_settings unguarded, which
        # Debian 12's headers (1.3.239) lack: deps/patches guards it as the
        # backend guards its other newer features. The patch is in the key.
        opts="$(cpu_flags) -DGGML_VULKAN=ON"
        patches="$patches $here/deps/patches/llama.cpp-vulkan-headers-1.3.239.patch"
        key="${NPM_TARBALL_SHA256:0:16}-vulkan-$( (printf '%s' "$opts"; cat $patches) | sha256sum | cut -c1-8)" ;;
    cuda)
        # Compute capabilities: Turing to Hopper unless the site names its
        # own (AIRLOCK_CUDA_ARCHS="90" for an H100 rack builds in a fraction
        # of the time). Never "native": the build host may have no GPU.
        opts="$(cpu_flags) -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${AIRLOCK_CUDA_ARCHS:-75;80;86;89;90}"
        key="${NPM_TARBALL_SHA256:0:16}-cuda-$( (printf '%s' "$opts"; cat $patches) | sha256sum | cut -c1-8)" ;;
    *) die "unknown llama.cpp variant: $variant" ;;
    esac
    if [ -n "${AIRLOCK_LLAMA_DIR:-}" ]; then
        src=$(cd "$AIRLOCK_LLAMA_DIR" && pwd)
        key="custom-$variant-$(printf '%s' "$src $opts" | sha256sum | cut -c1-16)"
    fi
    prefix="$cache/llama.cpp-$key"
    if [ -f "$prefix/.complete" ]; then
        log "llama.cpp ($variant): cached in $prefix"
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
        log "llama.cpp ($variant): cached in $prefix"
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
        for p in $patches; do
            git -C "$src" apply "$p" || die "patch $p does not apply to llama.cpp $LLAMA_COMMIT"
            log "llama.cpp ($variant): applied ${p##*/}"
        done
    fi
    log "llama.cpp ($variant): building from $src (this takes several minutes once)"
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
    # shellcheck disable=SC2086
    cmake --build "$work/build" -j "$(nproc)" --target $targets >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; die "llama.cpp build failed (log: $work/build.log)"; }
    printf '%s\n' "$opts" >"$work/cpu-options"
    echo "$variant" >"$work/variant"
    echo "$src" >"$work/source"
    touch "$work/.complete"
    log "llama.cpp ($variant): built into $prefix"
    echo "$prefix"
}

case "${1:-all}" in
    deps) install_deps ;;
    llama) build_llama native ;;
    all) install_deps; build_llama native ;;
    deps-arm64) install_arm64_deps; echo "$(cache_dir)/arm64-overlay" ;;
    llama-arm64) install_arm64_deps; build_llama arm64 ;;
    deps-vulkan) apt_install $VULKAN_PACKAGES ;;
    llama-vulkan) apt_install $VULKAN_PACKAGES; build_llama vulkan ;;
    llama-cuda)
        command -v nvcc >/dev/null 2>&1 || PATH="/usr/local/cuda/bin:$PATH"
        command -v nvcc >/dev/null 2>&1 \
            || die "nvcc not found: install the CUDA toolkit (docs/internals/platforms.md)"
        build_llama cuda ;;
    *) die "usage: $0 [deps|llama|all|deps-arm64|llama-arm64|deps-vulkan|llama-vulkan|llama-cuda]" ;;
esac
