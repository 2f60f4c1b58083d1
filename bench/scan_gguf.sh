#!/usr/bin/env bash
# bench/scan_gguf.sh: GGUF tensor-value checking (al_gguf_scan_values, through
# airlock-scanvalues) side by side with llama.cpp's own check on the same file
# (the pinned llama-completion with --check-tensors, minus a plain load).
#
#   bench/scan_gguf.sh [BUILD_DIR]        (default: build; `make bench-scan`)
#   SCAN_TYPES="f16 q8_0" bench/scan_gguf.sh    only these models
#
# Models of about 1 GB are written by airlock-ggufgen under a temporary
# directory (BENCH_TMPDIR, default /var/tmp) and deleted at exit: f32 250M
# parameters, f16 500M, q8_0 1G, q4_0 1G (about 0.56 GB). Each file is read
# once before timing, so every contender starts from the page cache. Each
# contender runs 5 times and the best run is reported (the one least disturbed
# by other load; medians swing by seconds on a busy 2-core machine), as wall
# time and as CPU time (user + system), each the minimum over the 5 runs. On a
# shared machine the CPU time is the figure that decides: wall time there
# depends on the other load. llama.cpp's check runs one thread per tensor,
# ours one thread: compare CPU with CPU.
# Prints a table; writes bench/results/scan_gguf.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bdir="$here/$build"
scan="$bdir/airlock-scanvalues"
gen="$bdir/airlock-ggufgen"
[ -x "$scan" ] && [ -x "$gen" ] || { echo "build first: make build" >&2; exit 2; }
prefix=$(grep -m1 '^AIRLOCK_LLAMA_PREFIX:' "$bdir/CMakeCache.txt" | cut -d= -f2-)
llama="$prefix/build/bin/llama-completion"
vocab="$prefix/src/models/ggml-vocab-llama-spm.gguf"
[ -x "$llama" ] || { echo "no llama-completion under '$prefix'" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-scan.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
types=${SCAN_TYPES:-f32 f16 q8_0 q4_0}

best() { sort -n | head -n 1; }
params_for() { case $1 in f32) echo 250M ;; f16) echo 500M ;; *) echo 1G ;; esac; }

# "wall cpu" of one airlock-scanvalues run; a finding or error fails the bench.
ours() {
    local line
    line=$("$scan" "$1") || { echo "airlock-scanvalues failed on $1" >&2; exit 1; }
    echo "$line" | sed -n 's/.* wall \([0-9.]*\) s, cpu \([0-9.]*\) s,.*/\1 \2/p'
}
# "wall cpu" of one llama-completion load (extra options in $2).
theirs() {
    local t="$work/time.txt"
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %U %S' -o "$t" "$llama" -m "$1" $2 -n 0 -p x -no-cnv -c 128 -t 2 \
        --no-warmup </dev/null >/dev/null 2>"$work/llama.err" \
        || { tail -n 5 "$work/llama.err" >&2; echo "llama-completion failed on $1" >&2; exit 1; }
    awk '{printf "%s %.2f\n", $1, $2 + $3}' "$t"
}
col() { awk -v c="$1" '{print $c}' | best; }

json="["
printf '\n%-6s %8s | %-27s | %-27s | %-13s\n' "" "" "airlock scan (1 thread)" "llama.cpp --check-tensors" "llama / ours"
printf '%-6s %8s | %6s %6s %6s %6s | %6s %6s %6s %6s | %6s %6s\n' type GB wall_s cpu_s GB/s GB/s \
    wall_s cpu_s GB/s GB/s wall cpu
printf '%-6s %8s | %6s %6s %6s %6s | %6s %6s %6s %6s | %6s %6s\n' "" "" "" "" wall cpu "" "" wall cpu "" ""
for t in $types; do
    m="$work/$t.gguf"
    "$gen" --out "$m" --type "$t" --params "$(params_for "$t")" --vocab "$vocab" --threads 2 2>/dev/null
    cat "$m" >/dev/null
    gb=$(awk -v b="$(stat -c %s "$m")" 'BEGIN { printf "%.3f", b / 1e9 }')
    o=$(for _ in 1 2 3 4 5; do ours "$m"; done)
    p=$(for _ in 1 2 3 4 5; do theirs "$m" ""; done)
    c=$(for _ in 1 2 3 4 5; do theirs "$m" --check-tensors; done)
    ow=$(echo "$o" | col 1); oc=$(echo "$o" | col 2)
    # llama.cpp's check alone: a load with it minus a plain load (best runs)
    lw=$(awk -v a="$(echo "$c" | col 1)" -v b="$(echo "$p" | col 1)" 'BEGIN { printf "%.3f", a - b }')
    lc=$(awk -v a="$(echo "$c" | col 2)" -v b="$(echo "$p" | col 2)" 'BEGIN { printf "%.3f", a - b }')
    awk -v t="$t" -v gb="$gb" -v ow="$ow" -v oc="$oc" -v lw="$lw" -v lc="$lc" 'function r(s) { return gb / (s > 0.001 ? s : 0.001) }
        BEGIN { printf "%-6s %8.3f | %6.2f %6.2f %6.2f %6.2f | %6.2f %6.2f %6.2f %6.2f | %5.1fx %5.1fx\n",
                t, gb, ow, oc, r(ow), r(oc), lw, lc, r(lw), r(lc), lw / (ow > 0.001 ? ow : 0.001),
                lc / (oc > 0.001 ? oc : 0.001) }'
    json="$json{\"type\": \"$t\", \"gb\": $gb, \"ours_wall_s\": $ow, \"ours_cpu_s\": $oc,"
    json="$json \"llama_check_wall_s\": $lw, \"llama_check_cpu_s\": $lc},"
    rm -f "$m"
done
echo "${json%,}]" >"$here/bench/results/scan_gguf.json"
printf '\ngoal: at least 1 GB/s (CPU figure decides on a shared machine) and llama / ours >= 1.0x\n'
