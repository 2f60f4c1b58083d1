#!/usr/bin/env bash
# validate and bench against a running OpenAI-compatible server: the pinned
# llama.cpp's own llama-server for now (airlock serve speaks the same
# /v1/completions with logprobs). A suite recorded in-process validates
# against the server (float noise at most), and the load generator streams.
source "$(dirname "$0")/lib.sh"
F=$(fixture)
LS="$AL_LLAMA_PREFIX/build/bin/llama-server"
[ -x "$LS" ] || skip_test "no llama-server at $LS"
# start_ls LOG ARGS...: llama-server on a port the kernel picks (--port 0:
# tests run side by side under ctest -j), ready when its /health says so;
# prints its URL. The caller's $! is not the server: the pid goes to LOG.pid.
start_ls() {
    local log=$1; shift
    "$LS" "$@" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
    local p=$! url=
    echo "$p" >"$log.pid"
    for _ in $(seq 1 1200); do
        kill -0 "$p" 2>/dev/null || fail "llama-server exited at start: $(tail -5 "$log")"
        url=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -n 1 | cut -d' ' -f3)
        [ -n "$url" ] && curl -sf "$url/health" >/dev/null && { echo "$url"; return 0; }
        sleep 0.1
    done
    fail "llama-server not ready in 120 s: $(tail -5 "$log")"
}
trap 'kill $(cat "$T"/*.pid 2>/dev/null) 2>/dev/null; wait; rm -rf "$T"' EXIT
URL=$(start_ls "$T/server.log" -m "$F" -t 1 -np 2 -c 1024)

airlock validate --init-suite "$T/s" >/dev/null
airlock validate "$F" --suite "$T/s" --record -t 1 >/dev/null
expect_status 0 airlock validate --server "$URL" --suite "$T/s"
echo "$OUT" | qgrep "server $URL: CPU and model not known" || fail "server conditions not stated: $OUT"
[ "$(echo "$OUT" | grep -Ec '^  ok    story-[a-z]+ +(identical|float-noise): all 32 tokens match')" = 4 ] \
    || fail "server output differs from the engine's: $OUT"
ok "a suite recorded in-process validates against llama-server"

# a tampered model behind a server: fails, naming the first divergent prompt
cp "$F" "$T/tampered.gguf"; chmod u+w "$T/tampered.gguf"
python3 "$(dirname "$0")/gguf_tamper.py" "$T/tampered.gguf" blk.4.ffn_down.weight --every 64 >/dev/null
URL2=$(start_ls "$T/server2.log" -m "$T/tampered.gguf" -t 1 -np 1 -c 512)
expect_status 1 airlock validate --server "$URL2" --suite "$T/s"
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "tampered server not caught: $OUT"
pid2=$(cat "$T/server2.log.pid"); kill "$pid2"; wait "$pid2" 2>/dev/null || true; rm -f "$T/server2.log.pid"
ok "a tampered model behind llama-server fails: $(echo "$OUT" | grep '^result')"

airlock bench --server "$URL" --concurrency 1,2 --prompt-lengths 16,40 --gen-tokens 10 --requests 3 \
    --json "$T/srv.json" >"$T/out.txt" 2>&1 || fail "bench --server: $(cat "$T/out.txt")"
python3 - "$T/srv.json" <<'PY' || fail "server report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["kind"] == "server" and r["prompt_tokens_from"] == "server tokenizer", r.get("prompt_tokens_from")
assert len(r["cells"]) == 4
for c in r["cells"]:
    assert c["n_errors"] == 0, c["samples"][0]["error"]
    for s in c["samples"]:
        assert s["n_gen"] == 10 and s["ttft_ms"] > 0 and len(s["itl_ms"]) >= 5, s
        assert abs(s["n_prompt"] - c["prompt_length"]) <= 3, (s["n_prompt"], c["prompt_length"])
assert r["health"]["rss_peak_mb"] is None
PY
ok "bench --server streams from llama-server: 4 cells, token counts from usage"
