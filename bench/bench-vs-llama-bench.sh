#!/usr/bin/env bash
# bench-vs-llama-bench.sh: airlock bench beside llama.cpp's llama-bench, same
# model, same threads, interleaved rounds, medians.
#
#   bench/bench-vs-llama-bench.sh [BUILD] [MODEL...]
#   env: THREADS (default 2), ROUNDS (5), PP (prompt tokens, 128), TG (generated, 64)
#
# pp: llama-bench's pp<PP> (one batch of PP tokens) against airlock's prompt
#     tokens/s at concurrency 1, prompt length PP (sequence assigned to first
#     token sampled).
# tg: llama-bench's tg<TG> (TG single-token decodes from an empty context)
#     against airlock's per-stream decode tokens/s at concurrency 1 (first
#     token to last) after an 8-token prompt: decoding after a long prompt is
#     slower (attention over it), which llama-bench's tg does not measure.
# Without MODEL: the fixture stories260K (overhead-bound) and a generated
# model of about 20M parameters (compute-bound). Exits 1 when a median
# differs by more than 5%.
set -euo pipefail
BUILD=${1:-build}; shift || true
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(sed -n 's/^AIRLOCK_LLAMA_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
LB="$prefix/build/bin/llama-bench"
THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-5} PP=${PP:-128} TG=${TG:-64}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
    models=("$here/../shared/fixtures/stories260K.gguf")
    "$BUILD/airlock-ggufgen" --out "$work/gen20m.gguf" --params 20M \
        --vocab "$prefix/src/models/ggml-vocab-llama-spm.gguf" 2>/dev/null
    models+=("$work/gen20m.gguf")
fi
status=0
for m in "${models[@]}"; do
    : >"$work/rows"
    for r in $(seq "$ROUNDS"); do
        "$LB" -m "$m" -t "$THREADS" -p "$PP" -n 0 -r 1 -o json 2>/dev/null >"$work/lb-pp.json"
        "$BUILD/airlock" bench "$m" -t "$THREADS" --concurrency 1 --prompt-lengths "8,$PP" --gen-tokens "$TG" \
            --requests 3 --json "$work/al.json" >/dev/null 2>&1
        "$LB" -m "$m" -t "$THREADS" -p 0 -n "$TG" -r 1 -o json 2>/dev/null >"$work/lb-tg.json"
        python3 - "$work/lb-pp.json" "$work/lb-tg.json" "$work/al.json" >>"$work/rows" <<'PY'
import json, sys
pp = json.load(open(sys.argv[1]))[0]["avg_ts"]
tg = json.load(open(sys.argv[2]))[0]["avg_ts"]
cells = json.load(open(sys.argv[3]))["cells"]
short = [c for c in cells if c["prompt_length"] == 8][0]["summary"]
long_ = [c for c in cells if c["prompt_length"] != 8][-1]["summary"] if len(cells) > 1 else short
print(pp, long_["pp_tps"], tg, short["decode_tps"])
PY
    done
    python3 - "$m" "$THREADS" "$PP" "$TG" "$work/rows" <<'PY' || status=1
import statistics, sys
m, t, pp, tg = sys.argv[1:5]
rows = [list(map(float, l.split())) for l in open(sys.argv[5])]
cols = list(zip(*rows))
med = [statistics.median(c) for c in cols]
bad = False
print("%s, %s threads, %d interleaved rounds" % (m.split("/")[-1], t, len(rows)))
for name, lb, al in (("pp%s" % pp, med[0], med[1]), ("tg%s" % tg, med[2], med[3])):
    d = 100 * (al - lb) / lb
    bad |= abs(d) > 5
    print("  %-6s llama-bench %9.1f t/s   airlock bench %9.1f t/s   %+6.1f%%%s" % (name, lb, al, d, "  (beyond 5%)" if abs(d) > 5 else ""))
    print("         rounds: llama-bench %s" % " ".join("%.0f" % x for x in cols[0 if name.startswith("pp") else 2]))
    print("                 airlock     %s" % " ".join("%.0f" % x for x in cols[1 if name.startswith("pp") else 3]))
sys.exit(1 if bad else 0)
PY
done
exit $status
