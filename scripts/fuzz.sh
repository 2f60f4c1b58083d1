#!/usr/bin/env bash
# fuzz.sh: runs the libFuzzer harnesses of a fuzz build (make fuzz, make
# fuzz-smoke), one after the other, each for a bounded time, and fails when
# any of them crashes. See docs/internals/fuzz.md.
#
#   scripts/fuzz.sh BUILD_DIR SECONDS [HARNESS...]     default: every tests/fuzz/fuzz_*.c
#
# Each harness starts from its generated corpus BUILD_DIR/corpus/<harness>
# (where new inputs go, git-ignored) and the committed seeds
# tests/fuzz/corpus/<harness>, with tests/fuzz/<harness>.dict when there is
# one. A crashing input is written to BUILD_DIR/crashes/<harness>/ and the
# end of the report printed. Per harness it prints executions, exec/s, and
# coverage (cov: edges, ft: features) at the start (after the corpus was
# read) and at the end. FUZZ_TIMEOUT (default 25) is the seconds one input
# may take; FUZZ_ARGS are passed on to every harness.
set -uo pipefail

die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: scripts/fuzz.sh BUILD_DIR SECONDS [HARNESS...]"
build=$1 secs=$2
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
case "$secs" in '' | *[!0-9]*) die "SECONDS must be a whole number, not '$secs'" ;; esac

harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    for f in "$src"/tests/fuzz/fuzz_*.c; do
        h=$(basename "$f" .c)
        harnesses+=("$h")
    done
fi

# Leaks are failures too (libFuzzer checks after each input that allocated).
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Field of libFuzzer's status line: "#123 INITED cov: 45 ft: 67 corp: ..."
field() { sed -n "s/.* $1: *\([0-9]*\).*/\1/p" <<<"$2"; }

printf '%-22s %10s %8s %13s %13s %7s  %s\n' harness execs exec/s 'cov start>end' 'ft start>end' crashes result
failed=()
for h in "${harnesses[@]}"; do
    bin="$build/$h"
    [ -x "$bin" ] || die "'$bin' is missing: build it with 'make fuzz-build'"
    corpus="$build/corpus/$h" crashes="$build/crashes/$h" log="$build/fuzz-logs/$h.log"
    mkdir -p "$corpus" "$build/fuzz-logs"
    rm -rf "$crashes" && mkdir -p "$crashes"
    args=(-max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-25}" -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix="$crashes/")
    [ -f "$src/tests/fuzz/$h.dict" ] && args+=(-dict="$src/tests/fuzz/$h.dict")
    seeds=()
    [ -d "$src/tests/fuzz/corpus/$h" ] && seeds=("$src/tests/fuzz/corpus/$h")
    # shellcheck disable=SC2086
    "$bin" "${args[@]}" ${FUZZ_ARGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    init=$(grep -m1 -E '^#[0-9]+[[:space:]]+INITED' "$log")
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    n_crash=$(find "$crashes" -type f | wc -l)
    result=ok
    if [ $rc -ne 0 ] || [ "$n_crash" -gt 0 ]; then
        result="FAILED (exit $rc)"
        failed+=("$h")
    fi
    printf '%-22s %10s %8s %13s %13s %7s  %s\n' "$h" "${execs:-?}" "${rate:-?}" \
        "$(field cov "$init")>$(field cov "$last")" "$(field ft "$init")>$(field ft "$last")" "$n_crash" "$result"
    if [ "$result" != ok ]; then
        echo "---- $h: end of $log ----"
        tail -n 40 "$log"
        echo "---- crashing inputs: $(find "$crashes" -type f | tr '\n' ' ')"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    printf 'fuzz: %d harness(es) failed: %s\n' ${#failed[@]} "${failed[*]}" >&2
    exit 1
fi
