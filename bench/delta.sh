#!/usr/bin/env bash
# bench/delta.sh: `airlock delta` + `airlock ingest` of a delta side by side
# with bsdiff/bspatch, xdelta3 and `zstd --patch-from --long=31` on the same
# pairs of a generated Q8_0 model (issue 15):
#   (a) metadata only: a chat template added
#   (b) one tensor changed
#   (c) a quarter of the tensors changed (a partial fine-tune)
#   (d) re-quantization of the same weights, Q8_0 -> Q4_0
# For each: patch size, time to make, time to apply, peak RSS of making and
# applying (/usr/bin/time -v), and the result checked byte for byte. airlock's
# apply is a whole `airlock ingest` (signatures, rebuild while hashing, scan,
# commit). A peer that runs out of memory, refuses the size or fails is
# reported with what it said, not skipped. Every peer runs under a memory cap
# (ulimit -v): bsdiff BSDIFF_MEM_GIB (default 4; on a 1.1 GiB model it held
# 10 GiB for 8 minutes under a 12 GiB cap before it was stopped), the others
# PEER_MEM_GIB (default 12: zstd --long=31 needs more than 4). TOOLS picks the
# contenders (default: airlock bsdiff xdelta3 zstd).
#
#   bench/delta.sh [BUILD_DIR] [PARAMS]      (defaults: build, 1.1G: a ~1.1 GiB Q8_0 model)
#
# Not part of make test (minutes to hours: make bench-delta). Prints a table
# and writes bench/results/delta.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
params=${2:-1.1G}
bin="$here/$build/airlock"
gen="$here/$build/airlock-ggufgen"
[ -x "$bin" ] && [ -x "$gen" ] || { echo "build first: make build" >&2; exit 2; }
for t in bsdiff bspatch xdelta3 zstd /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "missing $t: scripts/bootstrap.sh installs it" >&2; exit 2; }
done
mem_gib=${PEER_MEM_GIB:-12}
bsdiff_gib=${BSDIFF_MEM_GIB:-4}
tools=${TOOLS:-airlock bsdiff xdelta3 zstd}
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-bench-delta.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
export AIRLOCK_NO_PROGRESS=1
cd "$work"

echo "generating the models ($params parameters)..."
"$gen" --out base.gguf --params "$params" --type q8_0 --seed 1 --name bench >/dev/null 2>&1
"$gen" --out a.gguf --params "$params" --type q8_0 --seed 1 --name bench \
    --chat-template '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}' >/dev/null 2>&1
cp base.gguf b.gguf && python3 "$here/tests/integration/gguf_edit.py" b.gguf --first 1
cp base.gguf c.gguf && python3 "$here/tests/integration/gguf_edit.py" c.gguf --fraction 0.25
"$gen" --out d.gguf --params "$params" --type q4_0 --seed 1 --name bench >/dev/null 2>&1
ls -l ./*.gguf

# The largest tensor of the base, for the memory goal (largest tensor + 64 MiB).
largest=$(python3 "$here/tests/integration/gguf_edit.py" base.gguf --list |
    python3 -c '
import sys
sizes = {0: (4, 1), 1: (2, 1), 8: (34, 32), 2: (18, 32)}
best = 0
for line in sys.stdin:
    name, rest = line.split(" ", 1)
    dims = eval(rest.rsplit("]", 1)[0] + "]")
    typ = int(rest.rsplit("]", 1)[1].split()[0])
    n = 1
    for d in dims: n *= d
    b, e = sizes.get(typ, (4, 1))
    best = max(best, n // e * b)
print(best)')

# run LABEL CMD...: runs under /usr/bin/time -v (peers under the memory cap);
# sets secs, rss_kib, status ("ok" or what went wrong).
run() {
    local label=$1; shift
    local cap="" gib=$mem_gib
    [ "$label" = bsdiff ] && gib=$bsdiff_gib
    [ "$label" = airlock ] || cap="ulimit -v $((gib * 1024 * 1024));"
    set +e
    bash -c "$cap exec /usr/bin/time -v -o '$work/time.txt' \"\$@\"" _ "$@" >"$work/out.txt" 2>&1
    local st=$?
    set -e
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt" 2>/dev/null || echo 0)
    rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt" 2>/dev/null || echo 0)
    if [ "$st" -eq 0 ]; then
        status=ok
    else
        status="failed (exit $st): $( (grep -v '^\s*$' "$work/out.txt" | grep -vi 'command exited' | tail -1 | cut -c1-100) || true)"
        if grep -qi "memory\|alloc\|Cannot allocate" "$work/out.txt"; then
            status="out of memory under ${gib} GiB: $(tail -1 "$work/out.txt" | cut -c1-80)"
        fi
        if [ "$st" -eq 137 ]; then status="killed (SIGKILL: out of memory?)"; fi
    fi
}

# The stores: the build host has every version; each apply starts from a
# store that holds only the base (added from the same file: the delta finds
# its base by its files).
export AIRLOCK_HOME="$work/host"
"$bin" init >/dev/null
"$bin" key gen -o "$work/k" --no-password >/dev/null
"$bin" add bench:base base.gguf >/dev/null 2>&1
for p in a b c d; do "$bin" add "bench:$p" "$p.gguf" >/dev/null 2>&1; done

json="["
printf '\n%-4s %-9s %12s %12s %9s %10s %9s %10s  %s\n' pair tool bytes payload make_s make_MiB apply_s apply_MiB result
for p in a b c d; do
    new="$p.gguf"
    want=$(sha256sum <"$new")
    # cp of the result: the speed goal's yardstick.
    rm -f cp.out; sync
    t0=$(date +%s.%N); cp "$new" cp.out; sync; cp_s=$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)"); rm -f cp.out
    for tool in $tools; do
        patch="$work/$p.$tool.patch"; out="$work/$p.$tool.out"
        rm -f "$patch" "$out"
        case $tool in
            airlock) run airlock env AIRLOCK_HOME="$work/host" "$bin" delta bench:base "bench:$p" -o "$patch" \
                         --sign "$work/k.key" --seq 2 ;;
            bsdiff) run bsdiff bsdiff base.gguf "$new" "$patch" ;;
            xdelta3) run xdelta3 xdelta3 -e -f -s base.gguf "$new" "$patch" ;;
            zstd) run zstd zstd -q -f --long=31 --patch-from=base.gguf "$new" -o "$patch" ;;
        esac
        make_s=$secs make_rss=$rss_kib make_status=$status
        size=$(stat -c %s "$patch" 2>/dev/null || echo 0)
        # airlock's bundle also carries the signed manifest and config,
        # signatures, delta.json and tar blocks; its patches alone (the
        # payload, what compares with a peer's patch) are the delta/ entries.
        payload=$size
        [ "$tool" = airlock ] && [ -f "$patch" ] &&
            payload=$(tar -tvf "$patch" | awk '$6 ~ /^delta\// {s+=$3} END {print s+0}')
        apply_s=0 apply_rss=0 result="-"
        if [ "$make_status" = ok ]; then
            case $tool in
                airlock)
                    rm -rf "$work/gap"
                    AIRLOCK_HOME="$work/gap" "$bin" init >/dev/null
                    AIRLOCK_HOME="$work/gap" "$bin" trust add k --minisign "$work/k.pub" >/dev/null
                    AIRLOCK_HOME="$work/gap" "$bin" add bench:base base.gguf >/dev/null 2>&1
                    run airlock env AIRLOCK_HOME="$work/gap" "$bin" ingest "$patch" ;;
                bsdiff) run bsdiff bspatch base.gguf "$out" "$patch" ;;
                xdelta3) run xdelta3 xdelta3 -d -f -s base.gguf "$patch" "$out" ;;
                zstd) run zstd zstd -q -d -f --long=31 --patch-from=base.gguf "$patch" -o "$out" ;;
            esac
            apply_s=$secs apply_rss=$rss_kib
            if [ "$status" != ok ]; then
                result="apply $status"
            else
                [ "$tool" = airlock ] && out=$(AIRLOCK_HOME="$work/gap" "$bin" path "bench:$p")
                [ "$(sha256sum <"$out")" = "$want" ] && result="identical" || result="DIFFERS"
            fi
        else
            result="make $make_status"
        fi
        printf '%-4s %-9s %12s %12s %9.1f %10.0f %9.1f %10.0f  %s\n' "$p" "$tool" "$size" "$payload" "$make_s" \
            "$((make_rss / 1024))" "$apply_s" "$((apply_rss / 1024))" "$result"
        json="$json{\"pair\":\"$p\",\"tool\":\"$tool\",\"patch_bytes\":$size,\"payload_bytes\":$payload,\"make_s\":$make_s,\"make_rss_kib\":$make_rss,\"apply_s\":$apply_s,\"apply_rss_kib\":$apply_rss,\"cp_s\":$cp_s,\"result\":$(printf '%s' "$result" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')},"
        rm -f "$patch" "$out"
        rm -rf "$work/gap"
    done
    echo "     (cp of the result: ${cp_s} s)"
done
json="${json%,}]"
echo "{\"params\":\"$params\",\"base_bytes\":$(stat -c %s base.gguf),\"largest_tensor_bytes\":$largest,\"peer_mem_cap_gib\":$mem_gib,\"bsdiff_mem_cap_gib\":$bsdiff_gib,\"runs\":$json}" \
    | python3 -m json.tool >"${RESULTS:-$here/bench/results/delta.json}"
echo "largest tensor: $largest bytes; goal: airlock's peak RSS <= largest tensor + 64 MiB"
echo "wrote ${RESULTS:-bench/results/delta.json}"
