#!/usr/bin/env bash
# bench/scan_pickle.sh: pickle scanning (`airlock scan`) side by side with
# Python's own reader of the same stream, Debian's python3 and nothing
# executed: `python3 -m pickletools` (the disassembler, printing to
# /dev/null) and a bare `pickletools.genops` walk (the opcode reader alone,
# no printing: the least work Python can do to read every opcode).
#
#   bench/scan_pickle.sh [BUILD_DIR]          (default: build; `make bench-pickle`)
#   PICKLE_MB=950 TENSORS=4096 bench/scan_pickle.sh   (950 MiB: about 1 GB, under
#   the scanner's 1 GiB stream cap, over which a pickle is dangerous)
#
# The checkpoint is what torch.save's legacy and numpy's pickles look like to
# a scanner: an OrderedDict of TENSORS float32 numpy arrays, PICKLE_MB MiB in
# all, written by Debian's python3-numpy with protocol 4 (BINBYTES arguments,
# numpy's _reconstruct/dtype/ndarray imports: verdict ok). It is written
# under BENCH_TMPDIR (default /var/tmp), read once before timing so every
# contender starts from the page cache, and deleted at exit. Each contender
# runs 3 times (the disassembler, which takes minutes a GB, once); the best
# run is reported as wall and CPU (user + system) time. CPU time decides on a
# shared machine.
# Prints a table; writes bench/results/scan_pickle.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:-build}
airlock="$bdir/airlock"
[ -x "$airlock" ] || { echo "build first: make build" >&2; exit 2; }
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || { echo "needs Debian's python3-numpy (scripts/bootstrap.sh deps)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-pickle.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
mb=${PICKLE_MB:-950} n=${TENSORS:-4096}
f="$work/checkpoint.pkl"

$py - "$f" "$mb" "$n" <<'PY'
import collections, pickle, sys
import numpy as np
path, mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = mb * 1024 * 1024 // n // 4
rng = np.random.default_rng(1)
d = collections.OrderedDict()
for i in range(n):
    d["layers.%d.weight" % i] = rng.standard_normal(per, dtype=np.float32)
with open(path, "wb") as out:
    pickle.dump(d, out, protocol=4)
PY
cat "$f" >/dev/null
bytes=$(stat -c %s "$f")

# "wall cpu" of one run of a command (stdout discarded).
timed() {
    local t="$work/time.txt"
    /usr/bin/time -f '%e %U %S' -o "$t" "$@" >/dev/null 2>"$work/err" || {
        local rc=$?; tail -n 5 "$work/err" >&2
        [ "$1" = "$airlock" ] || { echo "failed: $*" >&2; exit 1; }
        [ $rc -eq 0 ] || { echo "airlock scan: exit $rc (expected 0: the checkpoint is ok)" >&2; exit 1; }
    }
    awk '{printf "%s %.2f\n", $1, $2 + $3}' "$t"
}
best() { awk -v c="$1" '{print $c}' | sort -n | head -n 1; }
run3() { for _ in 1 2 3; do timed "$@"; done; }

o=$(run3 "$airlock" scan "$f")
g=$(run3 $py -c 'import pickletools, sys
for _ in pickletools.genops(open(sys.argv[1], "rb")): pass' "$f")
d=$(timed $py -m pickletools -o /dev/null "$f")   # once: minutes a GB
"$airlock" scan "$f" | sed -n 1,3p

printf '\n%-34s %8s %8s %8s %8s\n' "pickle, $((bytes / 1048576)) MiB, $n tensors" wall_s cpu_s MB/s_wall MB/s_cpu
row() {
    awk -v name="$1" -v w="$2" -v c="$3" -v b="$bytes" 'function r(s) { return b / 1e6 / (s > 0.001 ? s : 0.001) }
        BEGIN { printf "%-34s %8.2f %8.2f %8.0f %8.0f\n", name, w, c, r(w), r(c) }'
}
ow=$(echo "$o" | best 1) oc=$(echo "$o" | best 2)
gw=$(echo "$g" | best 1) gc=$(echo "$g" | best 2)
dw=$(echo "$d" | best 1) dc=$(echo "$d" | best 2)
row "airlock scan" "$ow" "$oc"
row "python3 pickletools.genops" "$gw" "$gc"
row "python3 -m pickletools" "$dw" "$dc"
awk -v oc="$oc" -v gc="$gc" -v dc="$dc" 'BEGIN { s = oc > 0.001 ? oc : 0.001;
    printf "\nCPU ratio: genops / airlock %.1fx, pickletools / airlock %.1fx\n", gc / s, dc / s }'
cat >"$here/bench/results/scan_pickle.json" <<JSON
{"bytes": $bytes, "tensors": $n,
 "airlock_scan": {"wall_s": $ow, "cpu_s": $oc},
 "pickletools_genops": {"wall_s": $gw, "cpu_s": $gc},
 "pickletools_dis": {"wall_s": $dw, "cpu_s": $dc}}
JSON
