#!/usr/bin/env bash
# bench/serve_lora.sh: aggregate tokens/s of `airlock serve` with requests
# alternating two LoRA adapters of one base, against the base alone, at the
# same concurrency (issue 20 part 2: goal within 10%).
#
#   bench/serve_lora.sh [BUILD_DIR] [PARAMS] [CLIENTS] [TOKENS] [ROUNDS] [THREADS]
#                       (defaults: build, 25M, 4, 128, 3, 2)
#
# airlock-ggufgen writes an F32 model of about PARAMS parameters and two
# adapters for it (--lora-for, seeds 3 and 7); one server (--parallel
# CLIENTS) serves them. A round sends 2*CLIENTS /completion requests of
# TOKENS tokens each (ignore_eos, greedy), CLIENTS at a time: "base" with no
# adapter, "two" alternating {"lora":[{"id":0,"scale":1}]} and id 1, "one"
# with id 0 for all (one adapter set: the cost of the adapter itself, not of
# the turns). Rounds alternate the modes on the same warm server; tokens/s is the generated
# tokens of a round over its wall time. Prints both medians and their ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
params=${2:-25M}
clients=${3:-4}
tokens=${4:-128}
rounds=${5:-3}
threads=${6:-2}
bin="$here/$build/airlock"
gen="$here/$build/airlock-ggufgen"
{ [ -x "$bin" ] && [ -x "$gen" ]; } || { echo "build first: make build" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-bench.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export AIRLOCK_NO_PROGRESS=1 AIRLOCK_HOME="$work/home"
"$gen" --out "$work/base.gguf" --type f32 --params "$params" --seed 1 --name bench >/dev/null 2>&1
"$gen" --lora-for "$work/base.gguf" --out "$work/a.gguf" --seed 3 >/dev/null 2>&1
"$gen" --lora-for "$work/base.gguf" --out "$work/b.gguf" --seed 7 >/dev/null 2>&1
"$bin" add bench:1 "$work/base.gguf" >/dev/null
"$bin" add bench-a:1 "$work/a.gguf" --base bench:1 >/dev/null
"$bin" add bench-b:1 "$work/b.gguf" --base bench:1 >/dev/null
# One KV cache of room for every request at once (the generated model's own context is 512).
"$bin" serve bench:1 --port 0 --parallel "$clients" --ctx $((clients * (tokens + 32))) --threads "$threads" --no-audit >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q 'airlock: ready' "$work/serve.log" && break; sleep 0.1; done
base=$(grep -o 'http://[^ ]*' "$work/serve.log" | head -1)

# The server's CPU seconds so far (user + system), from /proc.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat"; }
round() { # MODE: prints tokens/s (wall) and tokens per CPU second of the server
    local mode=$1 t0 t1 c0 c1 n=0 i pids=()
    c0=$(cpu)
    t0=$(date +%s.%N)
    for i in $(seq 0 $((2 * clients - 1))); do
        local lora=""
        [ "$mode" = two ] && lora=",\"lora\":[{\"id\":$((i % 2)),\"scale\":1}]"
        [ "$mode" = one ] && lora=",\"lora\":[{\"id\":0,\"scale\":1}]"
        curl -s -H 'Content-Type: application/json' \
            -d "{\"prompt\":\"Once upon a time\",\"n_predict\":$tokens,\"temperature\":0,\"ignore_eos\":true$lora}" \
            "$base/completion" >"$work/r$i.json" &
        pids+=($!)
        if [ $(((i + 1) % clients)) = 0 ]; then wait "${pids[@]}"; pids=(); fi
    done
    t1=$(date +%s.%N)
    c1=$(cpu)
    for i in $(seq 0 $((2 * clients - 1))); do
        n=$((n + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_predicted"])' "$work/r$i.json")))
    done
    python3 -c "print(f'{$n / ($t1 - $t0):.1f}/{$n / max($c1 - $c0, 0.01):.1f}')"
}
round base >/dev/null # warm-up
b=() t=() o=()
echo "each figure: tokens/s wall / tokens per CPU second of the server"
for r in $(seq 1 "$rounds"); do
    b+=("$(round base)")
    t+=("$(round two)")
    o+=("$(round one)")
    echo "round $r: base ${b[-1]} tok/s, two adapters ${t[-1]} tok/s, one adapter for all ${o[-1]} tok/s"
done
python3 - "${b[*]}" "${t[*]}" "${o[*]}" <<'PY'
import statistics, sys
for k, what in ((0, "tokens/s (wall)"), (1, "tokens per CPU second")):
    b, t, o = (statistics.median(float(x.split("/")[k]) for x in a.split()) for a in sys.argv[1:4])
    print(f"median {what}: base alone {b:.1f}, two adapters alternating {t:.1f} (ratio {t / b:.3f}), "
          f"one adapter for all {o:.1f} (ratio {o / b:.3f})")
PY
