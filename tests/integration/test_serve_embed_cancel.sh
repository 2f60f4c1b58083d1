#!/usr/bin/env bash
# Long embedding requests are stopped: past --timeout (504), when the client
# goes away (the model's embedding lock is free for the next request) and
# on SIGTERM (the process exits within the drain timeout and one batch);
# more texts than AL_LIMIT_EMBED_INPUTS is a 400 that names the cap.
# The big request embeds 1024 texts of ~450 tokens each with a model slow
# enough that the whole of it takes minutes (12 on a loaded 2-core machine):
# each check below passes only if the work is really cut short.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || fail "curl is needed"
gen="$AL_BUILD/airlock-ggufgen"
"$gen" --out "$T/emb.gguf" --seed 5 --layers 4 --embd 256 --ff 768 --heads 4 --kv-heads 4 --ctx 512 \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf" 2>/dev/null || fail "generating a model"
airlock add emb:1.0 "$T/emb.gguf" >/dev/null
python3 - "$T" <<'PY'
import json, sys
words = "the pump moves coolant through the primary loop and the valve stays closed".split()
text = " ".join(words[i % len(words)] for i in range(380))  # under the 512-token context
json.dump({"model": "emb", "input": [text] * 1024}, open(sys.argv[1] + "/big.json", "w"))
json.dump({"model": "emb", "input": ["a"] * 2049}, open(sys.argv[1] + "/over.json", "w"))
PY
small='{"model":"emb","input":"a cat"}'
big() { curl -s -o "$1" -w '%{http_code}' --max-time 120 -H 'Content-Type: application/json' -d @"$T/big.json" "$BASE/v1/embeddings"; }
in_flight() { for _ in $(seq 1 300); do [ "$(metric airlock_requests_in_flight)" = "$1" ] && return 0; sleep 0.1; done; return 1; }
# A request is in flight from its headers on, while its body still uploads;
# it holds the model's lease only once the body is in and the embedding
# starts. Waiting for in_flight alone let the client below hang up during
# the upload (a flake seen in CI): the request then never reached the
# embedding and nothing was cancelled.
embedding() { for _ in $(seq 1 300); do [ "$(metric airlock_model_leases)" = 1 ] && return 0; sleep 0.1; done; return 1; }

# ---- the cap on texts, and --timeout ----
serve_start emb --port 0 --ctx 512 --max-body 16000000 --timeout 2
post /v1/embeddings "$(cat "$T/over.json")"; expect_code 400
grep -q "AL_LIMIT_EMBED_INPUTS" <<<"$BODY" || fail "the 400 does not name the cap: $BODY"
code=$(big "$T/r1.json") || code="none in 120 s"
[ "$code" = 504 ] || fail "a request past --timeout: $code $(head -c 300 "$T/r1.json")"
grep -q '"code":"timeout"' "$T/r1.json" || fail "504 without its code: $(cat "$T/r1.json")"
post /v1/embeddings "$small"; expect_code 200
ok "2049 texts: 400 naming AL_LIMIT_EMBED_INPUTS; a long request ends at --timeout with 504"
serve_stop

# ---- a client that goes away frees the embedding lock ----
serve_start emb --port 0 --ctx 512 --max-body 16000000 --timeout 600
curl -s -o /dev/null --max-time 120 -d @"$T/big.json" "$BASE/v1/embeddings" & client=$!
embedding || fail "the big request never started embedding"
kill "$client"; wait "$client" 2>/dev/null || true   # the client hangs up
in_flight 0 || fail "the abandoned request still runs"
code=$(curl -s -o "$T/r3.json" -w '%{http_code}' --max-time 60 -d "$small" "$BASE/v1/embeddings") || code="none in 60 s"
[ "$code" = 200 ] || fail "the next request after a client left: $code (the lock is still held)"
[ "$(metric airlock_requests_cancelled_total)" -ge 1 ] || fail "the abandoned request is not counted as cancelled"
ok "a client that disconnects stops its embedding; the next request is answered"
serve_stop

# ---- SIGTERM during a big request: out within the drain timeout ----
serve_start emb --port 0 --ctx 512 --max-body 16000000 --timeout 600 --drain-timeout 1
(big "$T/r4.json" >"$T/r4.code" || true) & client=$!
embedding || fail "the big request never started embedding"
kill -TERM "$SERVE_PID"
for _ in $(seq 1 150); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVE_PID" 2>/dev/null && fail "still running 15 s after SIGTERM with --drain-timeout 1"
wait "$SERVE_PID" || fail "exit status $? after SIGTERM"
SERVE_PID=
wait "$client" || true
[ "$(cat "$T/r4.code")" = 503 ] || fail "the stopped request: $(cat "$T/r4.code") $(head -c 300 "$T/r4.json" 2>/dev/null); $(tail -5 "$SERVE_LOG")"
grep -q shutting_down "$T/r4.json" || fail "503 without its code: $(cat "$T/r4.json")"
ok "SIGTERM stops a big embedding request (503 shutting_down) and the server exits"
