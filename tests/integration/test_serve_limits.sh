#!/usr/bin/env bash
# airlock serve under pressure: a client that disconnects mid-stream frees
# its sequence; a full queue is a 503 with Retry-After; the concurrency cap
# and the time limit answer with JSON errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
LONG='{"model":"stories","prompt":"Once upon a time","max_tokens":8000,"ignore_eos":true,"stream":true}'

# ---- disconnect mid-stream ----
serve_start stories --port 0 --parallel 2 --ctx 8192 --max-tokens 8000
curl -sN --max-time 1 "$BASE/v1/completions" -d "$LONG" >"$T/cut.txt" || true
grep -q '^data: {' "$T/cut.txt" || fail "no events before the disconnect"
grep -q 'DONE' "$T/cut.txt" && fail "the stream finished before the disconnect: make it longer"
for _ in $(seq 1 50); do
    [ "$(metric airlock_active_sequences)" = 0 ] && break; sleep 0.1
done
[ "$(metric airlock_active_sequences)" = 0 ] || fail "the sequence is still busy after the client left"
[ "$(metric airlock_requests_cancelled_total)" -ge 1 ] || fail "no cancellation counted"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "after a disconnect: $BODY"
ok "a client that disconnects mid-stream frees its sequence"

# non-streaming requests notice a disconnect too
curl -s --max-time 1 "$BASE/v1/completions" -d "${LONG/\"stream\":true/\"stream\":false}" >/dev/null || true
for _ in $(seq 1 50); do [ "$(metric airlock_active_sequences)" = 0 ] && break; sleep 0.1; done
[ "$(metric airlock_active_sequences)" = 0 ] || fail "a non-streaming request kept running after its client left"
ok "a non-streaming client that leaves is cancelled too"
serve_stop

# ---- queue bound: one sequence, one place in the queue ----
serve_start stories --port 0 --parallel 1 --queue 1 --ctx 8192 --max-tokens 8000
curl -sN "$BASE/v1/completions" -d "$LONG" >/dev/null & c1=$!
sleep 0.3
curl -sN "$BASE/v1/completions" -d "$LONG" >/dev/null & c2=$!
sleep 0.3
curl -s -D "$T/h.txt" -o "$T/b.txt" -w '%{http_code}' "$BASE/v1/completions" -d "$LONG" >"$T/code.txt"
[ "$(cat "$T/code.txt")" = 503 ] || fail "queue overflow: expected 503, got $(cat "$T/code.txt"): $(cat "$T/b.txt")"
grep -qi '^Retry-After:' "$T/h.txt" || fail "503 without Retry-After"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["type"]=="server_error" and "queue" in e["message"], e' "$T/b.txt" \
    || fail "503 body: $(cat "$T/b.txt")"
kill "$c1" "$c2" 2>/dev/null || true; wait "$c1" "$c2" 2>/dev/null || true
ok "a full queue answers 503 with Retry-After"
serve_stop

# ---- concurrency cap and time limit ----
serve_start stories --port 0 --parallel 2 --ctx 8192 --max-tokens 8000 --max-concurrent 1 --timeout 1
curl -sN "$BASE/v1/completions" -d "$LONG" >"$T/timed.txt" & c1=$!
sleep 0.3
post /v1/completions '{"model":"stories","prompt":"x","max_tokens":2}'
expect_code 503
[ "$(jq_py 'd["error"]["code"]')" = too_many_requests ] || fail "concurrency cap: $BODY"
get /health; expect_code 200
wait "$c1" || true
tail -c 400 "$T/timed.txt" | grep -q '"code":"timeout"' || fail "streaming past the time limit: $(tail -c 400 "$T/timed.txt")"
tail -c 20 "$T/timed.txt" | grep -q 'data: \[DONE\]' || fail "no [DONE] after the timeout event"
# The client has its last byte before the server's finish path counts the
# request out; the next one would race it for the single place.
for _ in $(seq 1 50); do [ "$(metric airlock_requests_in_flight)" = 0 ] && break; sleep 0.1; done
post /v1/completions "${LONG/\"stream\":true/\"stream\":false}"
expect_code 504
[ "$(jq_py 'd["error"]["code"]')" = timeout ] || fail "timeout body: $BODY"
ok "the concurrency cap (503) and the time limit (504, or an error event when streaming)"
