#!/usr/bin/env bash
# bench/apply_vs_cp.sh: how fast a delta is applied, against cp of its result
# (issue 15: apply at least 0.5x the speed of cp). Not part of make test.
#
#   bench/apply_vs_cp.sh [BUILD_DIR] [PARAMS] [RUNS]     (defaults: build, 1.1G, 5)
#   BINS="old=/path/to/airlock new=build/airlock" bench/apply_vs_cp.sh   (several binaries in turns)
#
# Pair (b) of bench/delta.sh: a Q8_0 model of PARAMS parameters, and the same
# model with its first tensor changed, shipped as a signed delta. Each round,
# for each binary: a fresh store with the base added (so the base blob is not
# in the page cache, as in a real store), then `airlock ingest` of the delta
# timed with /usr/bin/time (wall, user, sys); and `cp` of the result and
# `sync`, timed. Rounds interleave the contenders so load hits them alike,
# each round in another order (see below).
# Prints one line per measurement and the median ratio cp/ingest per binary.
# COLD=1 (as root) drops the page cache before each ingest and each cp, so
# both read from the disk: cp's source is otherwise the file just generated,
# in the page cache, while ingest reads a base blob the store wrote with
# O_DIRECT. Needs about 6x the model's size of free disk under TMPDIR.
set -euo pipefail
cold() { sync; [ "${COLD:-0}" = 1 ] && echo 3 >/proc/sys/vm/drop_caches || :; }
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
params=${2:-1.1G}
runs=${3:-5}
gen="$here/$build/airlock-ggufgen"
bins=${BINS:-"airlock=$here/$build/airlock"}
[ -x "$gen" ] || { echo "build first: make build" >&2; exit 2; }
w=$(mktemp -d "${TMPDIR:-/tmp}/al-apply.XXXXXX")
trap 'rm -rf "$w"' EXIT
cd "$w"
export AIRLOCK_NO_PROGRESS=1
first=${bins%% *}
bin0=${first#*=}

echo "== a $params-parameter Q8_0 model, and the same with its first tensor changed"
"$gen" --out base.gguf --params "$params" --type q8_0 --seed 1 --name bench >/dev/null 2>&1
cp base.gguf b.gguf && python3 "$here/tests/integration/gguf_edit.py" b.gguf --first 1 >/dev/null
export AIRLOCK_HOME="$w/host"
"$bin0" init >/dev/null
"$bin0" key gen -o k --no-password >/dev/null
"$bin0" add bench:base base.gguf >/dev/null 2>&1
"$bin0" add bench:b b.gguf >/dev/null 2>&1
"$bin0" delta bench:base bench:b -o b.tar --sign k.key --seq 2 >/dev/null
echo "model $(stat -c %s b.gguf) bytes; delta $(stat -c %s b.tar) bytes"

: >times.txt
# One round runs every contender and cp once. The order turns each round (a
# round's first contender is the next one's last), and each run waits SETTLE
# seconds first: this VM's disk is slower for a while after heavy writes (the
# host writes them back), so a fixed order favoured whoever went first, by up
# to 2x (measured 2026-12-07: the second of two identical binaries always lost).
settle=${SETTLE:-5}
run_ingest() { # run_ingest LABEL BIN ROUND
    rm -rf gap
    export AIRLOCK_HOME="$w/gap"
    "$2" init >/dev/null
    "$2" trust add k --minisign k.pub >/dev/null
    "$2" add bench:base base.gguf >/dev/null 2>&1
    cold
    sleep "$settle"
    /usr/bin/time -f "$1 $3 ingest %e %U %S" "$2" ingest b.tar >/dev/null 2>>times.txt
    tail -1 times.txt
}
run_cp() { # run_cp ROUND
    rm -f cp.out
    cold
    sleep "$settle"
    local s
    s=$(date +%s.%N)
    cp b.gguf cp.out
    sync
    echo "cp $1 $(python3 -c "print(f'{$(date +%s.%N) - $s:.2f}')")" | tee -a times.txt
    rm -f cp.out
}
read -r -a order <<<"$bins cp"
for i in $(seq "$runs"); do
    n=${#order[@]}
    for ((k = 0; k < n; k++)); do
        spec=${order[$(((i - 1 + k) % n))]}
        if [ "$spec" = cp ]; then run_cp "$i"; else run_ingest "${spec%%=*}" "${spec#*=}" "$i"; fi
    done
done
python3 - times.txt <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
cp = {r[1]: float(r[2]) for r in rows if r[0] == "cp"}
by = {}
for r in rows:
    if len(r) == 6 and r[2] == "ingest":
        by.setdefault(r[0], []).append((r[1], float(r[3]), float(r[4]), float(r[5])))
for label, xs in by.items():
    ratios = [cp[i] / wall for i, wall, _, _ in xs if i in cp]
    print(f"{label}: ingest wall median {statistics.median(x[1] for x in xs):.2f} s, "
          f"user {statistics.median(x[2] for x in xs):.2f} s, sys {statistics.median(x[3] for x in xs):.2f} s; "
          f"cp median {statistics.median(cp.values()):.2f} s; apply speed / cp speed, median of rounds: "
          f"{statistics.median(ratios):.2f}x (goal: at least 0.5x)")
EOF
