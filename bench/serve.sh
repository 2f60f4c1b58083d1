#!/usr/bin/env bash
# bench/serve.sh: `airlock serve` side by side with llama.cpp's own tools from
# the same pinned build, same model, same threads:
#   - single-stream decode tokens/s: airlock vs llama-bench (tg) vs llama-server -np 1
#   - aggregate tokens/s with 8 concurrent streaming clients: airlock --parallel 8
#     vs llama-server -np 8
#   - time to first token p50/p95 under the 8-client load
# on the fixture (stories260K) and on a generated ~100M-parameter Q4_0 model.
# Contenders run interleaved, ROUNDS times; the median of the rounds is reported.
# airlock streams with its default coalescing (--stream-interval 5: events go
# out at most every 5 ms, the first at once); llama-server writes every token.
# A third airlock server with --stream-interval 0 shows single-stream decode
# with a write per token too.
# Every figure comes from airlock's C load generator (`airlock bench --server`,
# libcurl multi, streaming), the same client for both servers: on a 2-core
# machine the client shares the cores with the server, and node's per-event
# cost (fetch streams, a promise per read) took 10-20% off both servers'
# decode rate and put its own queueing into time to first token (server-side
# TTFT p95 under 8 clients: under 25 ms; node's: 42 ms). serve_load.mjs stays
# for the warm-up and the long load test (tests/integration), where it checks
# every event.
#
#   bench/serve.sh [BUILD_DIR] [ROUNDS] [TOKENS]      (defaults: build, 3, 128)
# Environment: THREADS (default 2), MODELS ("fixture q4" by default).
# Prints a table and writes bench/results/serve.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
rounds=${2:-3}
ntok=${3:-128}
threads=${THREADS:-2}
bin="$here/$build/airlock"
llama=$(grep '^AIRLOCK_LLAMA_PREFIX' "$here/$build/CMakeCache.txt" | cut -d= -f2)/build/bin
load="$here/bench/serve_load.mjs"
[ -x "$bin" ] && [ -x "$llama/llama-server" ] || { echo "build first: make build" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-bench-serve.XXXXXX")
# Servers are started inside $(...): their pids go to a file, not a variable.
stop_servers() {
    [ -f "$work/pids" ] || return 0
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$work/pids"
    while read -r p; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done <"$work/pids"
    rm -f "$work/pids"
}
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
export AIRLOCK_HOME="$work/home" AIRLOCK_NO_PROGRESS=1
mkdir -p "$here/bench/results"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no server at $1" >&2; return 1; }

start_airlock() { # name parallel [serve options] -> URL
    local port; port=$(free_port)
    "$bin" serve "$1" --port "$port" --threads "$threads" --parallel "$2" --ctx 1024 --max-tokens 4096 -q "${@:3}" \
        >"$work/airlock-$2.log" 2>&1 &
    echo $! >>"$work/pids"; wait_http "http://127.0.0.1:$port" && echo "http://127.0.0.1:$port"
}
start_llama() { # file parallel -> URL
    local port; port=$(free_port)
    "$llama/llama-server" -m "$1" --port "$port" -t "$threads" -np "$2" -c $((1024 * $2)) --no-webui \
        >"$work/llama-$2.log" 2>&1 &
    echo $! >>"$work/pids"; wait_http "http://127.0.0.1:$port" && echo "http://127.0.0.1:$port"
}
run_c1() { # url samples-file -> "decode_tps ttft_p50_ms" of 5 single-stream requests
    # Prompt: BOS alone on the fixture, so the positions decoded are llama-bench's
    # tg positions (attention is most of the fixture's cost). On the generated
    # model llama-server fails that stream ("does not match the expected
    # Content-only format" at its 15th random token), so it gets 8 tokens there.
    "$bin" bench --server "$1" --concurrency 1 --prompt-lengths "$ss_prompt" --gen-tokens "$ntok" --requests 5 \
        --json "$work/c1.json" >/dev/null 2>&1
    python3 - "$work/c1.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["cells"][0]
with open(sys.argv[2], "a") as f:
    for s in c["samples"]:
        if not s["error"] and s["gen_ms"] > 0 and s["n_gen"] > 1:
            f.write("%f\n" % ((s["n_gen"] - 1) / (s["gen_ms"] / 1e3)))
print(c["summary"]["decode_tps"], c["summary"]["ttft_ms"]["p50"])
PY
}
p90() { pct "$1" 0.9; }
run_c8() { # url ttft-file -> "agg_tps ttft_p50 ttft_p95 failures" of 8 clients, 3 requests each
    "$bin" bench --server "$1" --concurrency 8 --prompt-lengths 8 --gen-tokens "$ntok" --requests 24 \
        --json "$work/c8.json" >/dev/null 2>&1
    python3 - "$work/c8.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["cells"][0]
ok = [s for s in c["samples"] if not s["error"]]
with open(sys.argv[2], "a") as f:
    for s in ok:
        f.write("%f\n" % s["ttft_ms"])
t = c["summary"]["ttft_ms"]
print(c["summary"]["aggregate_tps"], t["p50"], t["p95"], len(c["samples"]) - len(ok))
PY
}
run_load() { # url clients requests [ttft-file] -> JSON
    node "$load" --url "$1" --model m --clients "$2" --requests "$3" --max-tokens "$ntok" --ignore-eos \
        ${4:+--ttft-out "$4"}
}
pct() { sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p); if (i < NR*p) i++; if (i < 1) i=1; print a[i]}'; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

models=${MODELS:-fixture q4}
"$bin" init >/dev/null
echo '{' >"$work/results.json"
first=1
for which in $models; do
    if [ "$which" = fixture ]; then
        file="${AL_FIXTURES:-$here/tests/fixtures}/stories260K.gguf"
        ss_prompt=1
    else
        ss_prompt=8
        file="$work/m100.gguf"
        echo "generating a ~100M-parameter Q4_0 model..." >&2
        # Seed 2: with seed 1, llama-server failed 4 of the 24 load prompts ("does
        # not match the expected Content-only format" at the 15th random token),
        # which ended them early and lightened its load.
        "$here/$build/airlock-ggufgen" --out "$file" --params 100M --type q4_0 --seed 2 --threads "$threads" >/dev/null 2>&1
    fi
    "$bin" add "m:$which" "$file" >/dev/null
    a1=$(start_airlock "m:$which" 1); a8=$(start_airlock "m:$which" 8)
    a0=$(start_airlock "m:$which" 1 --stream-interval 0)
    l1=$(start_llama "$file" 1); l8=$(start_llama "$file" 8)
    for u in "$a1" "$a0" "$a8" "$l1" "$l8"; do run_load "$u" 1 1 >/dev/null; done   # warm-up
    declare -A v=()
    : >"$work/ss-a1"; : >"$work/ss-a0"; : >"$work/ss-l1"; : >"$work/ss-lb"; : >"$work/ttft-a8"; : >"$work/ttft-l8"
    for r in $(seq 1 "$rounds"); do
        echo "[$which] round $r/$rounds" >&2
        bj=$("$llama/llama-bench" -m "$file" -t "$threads" -p 0 -n "$ntok" -r 5 -o json 2>/dev/null)
        v[bench_tg]+=" $(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[0]["avg_ts"])' <<<"$bj")"
        python3 -c 'import json,sys; print("\n".join(map(str, json.loads(sys.stdin.read())[0]["samples_ts"])))' <<<"$bj" >>"$work/ss-lb"
        read -r tps ttft < <(run_c1 "$a1" "$work/ss-a1"); v[a1_tps]+=" $tps"; v[a1_ttft]+=" $ttft"
        read -r tps ttft < <(run_c1 "$l1" "$work/ss-l1"); v[l1_tps]+=" $tps"; v[l1_ttft]+=" $ttft"
        read -r tps ttft < <(run_c1 "$a0" "$work/ss-a0"); v[a0_tps]+=" $tps"
        read -r agg p50 p95 fail < <(run_c8 "$a8" "$work/ttft-a8")
        v[a8_agg]+=" $agg"; v[a8_p50]+=" $p50"; v[a8_p95]+=" $p95"; v[a8_fail]+=" $fail"
        read -r agg p50 p95 fail < <(run_c8 "$l8" "$work/ttft-l8")
        v[l8_agg]+=" $agg"; v[l8_p50]+=" $p50"; v[l8_p95]+=" $p95"; v[l8_fail]+=" $fail"
    done
    stop_servers
    m() { median <<<"${v[$1]}"; }
    printf '\n%s (%s), threads %s, %s tokens, median of %s rounds\n' "$which" "$(basename "$file")" "$threads" "$ntok" "$rounds"
    printf '  %-44s %10s %10s %10s\n' "" airlock llama-srv llama-bench
    printf '  %-44s %10.1f %10.1f %10.1f\n' "single-stream decode tokens/s (medians)" "$(m a1_tps)" "$(m l1_tps)" "$(m bench_tg)"
    printf '  %-44s %10s %10s\n' "  ratio to llama-bench (medians)" "$(awk -v a="$(m a1_tps)" -v b="$(m bench_tg)" 'BEGIN {printf "%.3f", a / b}')" \
        "$(awk -v a="$(m l1_tps)" -v b="$(m bench_tg)" 'BEGIN {printf "%.3f", a / b}')"
    # The machine's fast state (see bench-vs-llama-bench.sh): p90 of every run.
    printf '  %-44s %10.1f %10.1f %10.1f\n' "single-stream decode, fast state (p90)" "$(p90 "$work/ss-a1")" "$(p90 "$work/ss-l1")" "$(p90 "$work/ss-lb")"
    printf '  %-44s %10s %10s\n' "  ratio to llama-bench (fast state)" "$(awk -v a="$(p90 "$work/ss-a1")" -v b="$(p90 "$work/ss-lb")" 'BEGIN {printf "%.3f", a / b}')" \
        "$(awk -v a="$(p90 "$work/ss-l1")" -v b="$(p90 "$work/ss-lb")" 'BEGIN {printf "%.3f", a / b}')"
    printf '  %-44s %10.1f %10s %10s\n' "  airlock, one write per token (medians)" "$(m a0_tps)" "" \
        "$(awk -v a="$(m a0_tps)" -v b="$(m bench_tg)" 'BEGIN {printf "%.3f", a / b}')x"
    printf '  %-44s %10.1f %10.1f\n' "single-stream TTFT p50 ms" "$(m a1_ttft)" "$(m l1_ttft)"
    printf '  %-44s %10.1f %10.1f\n' "8 clients aggregate tokens/s" "$(m a8_agg)" "$(m l8_agg)"
    printf '  %-44s %10.1f %10.1f\n' "8 clients TTFT p50 ms (median of rounds)" "$(m a8_p50)" "$(m l8_p50)"
    printf '  %-44s %10.1f %10.1f\n' "8 clients TTFT p95 ms (median of rounds)" "$(m a8_p95)" "$(m l8_p95)"
    printf '  %-44s %10s %10s\n' "8 clients TTFT p50 ms, all rounds pooled" "$(pct "$work/ttft-a8" 0.5)" "$(pct "$work/ttft-l8" 0.5)"
    printf '  %-44s %10s %10s\n' "8 clients TTFT p95 ms, all rounds pooled" "$(pct "$work/ttft-a8" 0.95)" "$(pct "$work/ttft-l8" 0.95)"
    printf '  %-44s %10s %10s\n' "failed requests (all rounds)" "$(tr ' ' '\n' <<<"${v[a8_fail]}" | awk '{s+=$1} END {print s+0}')" \
        "$(tr ' ' '\n' <<<"${v[l8_fail]}" | awk '{s+=$1} END {print s+0}')"
    [ $first = 1 ] || echo ',' >>"$work/results.json"; first=0
    {
        printf '"%s": {' "$which"
        k1=1
        for k in "${!v[@]}"; do [ $k1 = 1 ] || printf ','; k1=0; printf '"%s": [%s]' "$k" "$(sed 's/^ //; s/ /, /g' <<<"${v[$k]}")"; done
        printf '}'
    } >>"$work/results.json"
    unset v
done
echo '}' >>"$work/results.json"
cp "$work/results.json" "$here/bench/results/serve.json"
echo "raw numbers: bench/results/serve.json" >&2
