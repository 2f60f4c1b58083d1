#!/usr/bin/env bash
# validate and bench against a running OpenAI-compatible server: the pinned
# llama.cpp's own llama-server for now (airlock serve speaks the same
# /v1/completions with logprobs). A suite recorded in-process validates
# against the server (float noise at most), and the load generator streams.
source "$(dirname "$0")/lib.sh"
F=$(fixture)
LS="$AL_LLAMA_PREFIX/build/bin/llama-server"
[ -x "$LS" ] || skip_test "no llama-server at $LS"
port=$((20000 + RANDOM % 20000))
"$LS" -m "$F" --host 127.0.0.1 --port "$port" -t 1 -np 2 -c 1024 >"$T/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || fail "llama-server did not start: $(tail -5 "$T/server.log")"
URL="http://127.0.0.1:$port"

airlock validate --init-suite "$T/s" >/dev/null
airlock validate "$F" --suite "$T/s" --record -t 1 >/dev/null
expect_status 0 airlock validate --server "$URL" --suite "$T/s"
echo "$OUT" | grep -q "server $URL: CPU and model not known" || fail "server conditions not stated: $OUT"
[ "$(echo "$OUT" | grep -Ec '^  ok    story-[a-z]+ +(identical|float-noise): all 32 tokens match')" = 4 ] \
    || fail "server output differs from the engine's: $OUT"
ok "a suite recorded in-process validates against llama-server"

# a tampered model behind a server: fails, naming the first divergent prompt
cp "$F" "$T/tampered.gguf"; chmod u+w "$T/tampered.gguf"
python3 "$(dirname "$0")/gguf_tamper.py" "$T/tampered.gguf" blk.4.ffn_down.weight --every 64 >/dev/null
port2=$((port + 1))
"$LS" -m "$T/tampered.gguf" --host 127.0.0.1 --port "$port2" -t 1 -np 1 -c 512 >"$T/server2.log" 2>&1 &
pid2=$!
trap 'kill $pid $pid2 2>/dev/null; wait $pid $pid2 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port2/health" >/dev/null && break; sleep 0.2; done
expect_status 1 airlock validate --server "http://127.0.0.1:$port2" --suite "$T/s"
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "tampered server not caught: $OUT"
kill $pid2; wait $pid2 2>/dev/null || true
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
