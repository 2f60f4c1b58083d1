#!/usr/bin/env bash
# bench/quantize.sh: `airlock quantize` side by side with the pinned
# llama.cpp's own llama-quantize on the same file (issue 20: goal within 5%).
#
#   bench/quantize.sh [BUILD_DIR] [PARAMS] [TYPE] [THREADS] [RUNS]
#                     (defaults: build, 100M, Q8_0, all cores, 3)
#
# airlock-ggufgen writes an F32 model of about PARAMS parameters; it is added
# to a fresh store, and the contenders run in turns on the very same file
# (the store's blob, read once first so both start with it in the page cache),
# each with THREADS threads:
#   llama-quantize BLOB OUT TYPE THREADS
#   airlock quantize bench:f32 bench:qN --type TYPE --threads THREADS
# airlock's figure is the whole command: the source blob hashed before
# llama.cpp reads it, the same llama_model_quantize (writing into the store's
# tmp/), then the result added where it lies (scanned, hashed, fsync'd,
# renamed, one event). The outputs are
# compared byte for byte. Prints a table with the median of RUNS and writes
# bench/results/quantize.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
params=${2:-100M}
type=${3:-Q8_0}
threads=${4:-$(nproc)}
runs=${5:-3}
bin="$here/$build/airlock"
gen="$here/$build/airlock-ggufgen"
{ [ -x "$bin" ] && [ -x "$gen" ]; } || { echo "build first: make build" >&2; exit 2; }
prefix=$(sed -n 's/^AIRLOCK_LLAMA_PREFIX:PATH=//p' "$here/$build/CMakeCache.txt")
quant="$prefix/build/bin/llama-quantize"
[ -x "$quant" ] || { echo "no llama-quantize at '$quant': build llama.cpp's tools (scripts/bootstrap.sh)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results" "$work/tmp"
export AIRLOCK_NO_PROGRESS=1 AIRLOCK_HOME="$work/home" TMPDIR="$work/tmp"

echo "writing an F32 model of about $params parameters..."
"$gen" --out "$work/src.gguf" --type f32 --params "$params" --seed 1 --name bench >/dev/null 2>&1
"$bin" add bench:f32 "$work/src.gguf" >/dev/null
rm -f "$work/src.gguf"
blob=$("$bin" path bench:f32)
cat "$blob" >/dev/null
size=$(stat -c %s "$blob")

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_llama() { # N
    local t0; t0=$(now)
    "$quant" "$blob" "$work/ref.gguf" "$type" "$threads" >"$work/llama.log" 2>&1 ||
        { cat "$work/llama.log" >&2; exit 1; }
    echo "$(now) - $t0" | bc
}
run_airlock() { # N
    local t0; t0=$(now)
    "$bin" quantize bench:f32 "bench:q$1" --type "$type" --threads "$threads" >/dev/null 2>"$work/airlock.log" ||
        { cat "$work/airlock.log" >&2; exit 1; }
    echo "$(now) - $t0" | bc
}

: >"$work/t_llama"; : >"$work/t_airlock"
for i in $(seq 1 "$runs"); do
    run_llama "$i" >>"$work/t_llama"
    run_airlock "$i" >>"$work/t_airlock"
done
same=false
cmp -s "$work/ref.gguf" "$("$bin" path bench:q1)" && same=true
m_llama=$(median <"$work/t_llama")
m_airlock=$(median <"$work/t_airlock")
ratio=$(echo "$m_airlock / $m_llama" | bc -l)
mib=$(echo "$size / 1048576" | bc -l)

printf '\n%-58s %10s\n' "F32 -> $type, $(printf '%.0f' "$mib") MiB, $threads threads (median of $runs)" "seconds"
printf '%-58s %10.3f\n' "llama-quantize (pinned llama.cpp)" "$m_llama"
printf '%-58s %10.3f\n' "airlock quantize (verify + llama_model_quantize + add)" "$m_airlock"
printf '\nairlock quantize / llama-quantize = %.3fx (goal: at most 1.05x); same bytes: %s\n' "$ratio" "$same"

cat >"$here/bench/results/quantize.json" <<JSON
{"type": "$type", "params": "$params", "source_bytes": $size, "threads": $threads, "runs": $runs,
 "llama_quantize_s": $m_llama, "airlock_quantize_s": $m_airlock,
 "airlock_over_llama": $(printf '%.3f' "$ratio"), "same_bytes": $same}
JSON
