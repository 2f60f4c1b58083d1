#!/usr/bin/env bash
# build-cuda.sh: airlock on the pinned llama.cpp built with its CUDA backend,
# for a GPU rack (docs/internals/platforms.md). Needs nvcc (the CUDA toolkit);
# the build host needs no GPU.
#
#   scripts/build-cuda.sh          build llama.cpp (cached) and airlock into build-cuda/
#   scripts/build-cuda.sh --check  only configure llama.cpp with the CUDA options
#                                  (a minute): the toolkit is found and usable
#
# AIRLOCK_CUDA_ARCHS picks the compute capabilities (default 75;80;86;89;90);
# one architecture builds several times faster than five.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
command -v nvcc >/dev/null 2>&1 || PATH="/usr/local/cuda/bin:$PATH"
if ! command -v nvcc >/dev/null 2>&1; then
    echo "build-cuda: nvcc not found: install the CUDA toolkit, or put its bin/ in PATH" >&2
    exit 3
fi
echo "build-cuda: $(nvcc --version | tail -1)" >&2
if [ "${1:-}" = --check ]; then
    native=$(scripts/bootstrap.sh llama)
    work=$(mktemp -d "${TMPDIR:-/tmp}/al-cuda-check.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cmake -S "$native/src" -B "$work" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${AIRLOCK_CUDA_ARCHS:-75;80;86;89;90}" \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_OPENSSL=OFF >"$work/cmake.log" 2>&1 \
        || { tail -20 "$work/cmake.log" >&2; echo "build-cuda: configure failed" >&2; exit 1; }
    grep -E "CUDA Toolkit|Including CUDA backend|CMAKE_CUDA_ARCHITECTURES|CUDA compiler" "$work/cmake.log" >&2 || true
    echo "build-cuda: llama.cpp configures with its CUDA backend" >&2
    exit 0
fi
prefix=$(scripts/bootstrap.sh llama-cuda)
cmake -S . -B build-cuda -DAIRLOCK_LLAMA_PREFIX="$prefix" >/dev/null
cmake --build build-cuda -j "$(nproc)"
echo "build-cuda: build-cuda/airlock; run 'airlock serve --gpu-layers 99' on the GPU host" >&2
