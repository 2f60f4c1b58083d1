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
# The client leaves once it has an event (not after a guessed time: on a
# loaded machine the first event can take longer than any such guess).
curl -sN "$BASE/v1/completions" -d "$LONG" >"$T/cut.txt" & c=$!
wait_until 120 "the first streamed event" has_event "$T/cut.txt"
kill "$c"; wait "$c" 2>/dev/null || true
grep -q 'DONE' "$T/cut.txt" && fail "the stream finished before the disconnect: make it longer"
wait_until 60 "the sequence to be freed after the client left" metric_is airlock_active_sequences 0
[ "$(metric airlock_requests_cancelled_total)" -ge 1 ] || fail "no cancellation counted"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "after a disconnect: $BODY"
ok "a client that disconnects mid-stream frees its sequence"

# non-streaming requests notice a disconnect too
curl -s "$BASE/v1/completions" -d "${LONG/\"stream\":true/\"stream\":false}" >/dev/null & c=$!
wait_until 120 "the non-streaming request to run" metric_is airlock_active_sequences 1
kill "$c"; wait "$c" 2>/dev/null || true
wait_until 60 "a non-streaming request to stop after its client left" metric_is airlock_active_sequences 0
ok "a non-streaming client that leaves is cancelled too"
serve_stop

# ---- queue bound: one sequence, one place in the queue ----
serve_start stories --port 0 --parallel 1 --queue 1 --ctx 8192 --max-tokens 8000
curl -sN "$BASE/v1/completions" -d "$LONG" >/dev/null & c1=$!
wait_until 60 "the first request to take the sequence" metric_is airlock_active_sequences 1
curl -sN "$BASE/v1/completions" -d "$LONG" >/dev/null & c2=$!
wait_until 60 "the second request to wait in the queue" metric_is airlock_queue_depth 1
curl -s -D "$T/h.txt" -o "$T/b.txt" -w '%{http_code}' "$BASE/v1/completions" -d "$LONG" >"$T/code.txt"
[ "$(cat "$T/code.txt")" = 503 ] || fail "queue overflow: expected 503, got $(cat "$T/code.txt"): $(cat "$T/b.txt")"
grep -qi '^Retry-After:' "$T/h.txt" || fail "503 without Retry-After"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["type"]=="server_error" and "queue" in e["message"], e' "$T/b.txt" \
    || fail "503 body: $(cat "$T/b.txt")"
kill "$c1" "$c2" 2>/dev/null || true; wait "$c1" "$c2" 2>/dev/null || true
ok "a full queue answers 503 with Retry-After"
serve_stop

# ---- concurrency cap and time limit ----
# The cap on a server without a time limit: the request in flight holds the
# place until the client leaves, however slow the machine (with the 1 s limit
# below it could end before the second request is read).
serve_start stories --port 0 --parallel 2 --ctx 8192 --max-tokens 8000 --max-concurrent 1
curl -sN "$BASE/v1/completions" -d "$LONG" >"$T/held.txt" & c1=$!
wait_until 60 "the first request to run" has_event "$T/held.txt"
post /v1/completions '{"model":"stories","prompt":"x","max_tokens":2}'
expect_code 503
[ "$(jq_py 'd["error"]["code"]')" = too_many_requests ] || fail "concurrency cap: $BODY"
get /health; expect_code 200
kill "$c1"; wait "$c1" 2>/dev/null || true
serve_stop
serve_start stories --port 0 --parallel 2 --ctx 8192 --max-tokens 8000 --max-concurrent 1 --timeout 1
curl -sN "$BASE/v1/completions" -d "$LONG" >"$T/timed.txt" || true
tail -c 400 "$T/timed.txt" | qgrep '"code":"timeout"' || fail "streaming past the time limit: $(tail -c 400 "$T/timed.txt")"
tail -c 20 "$T/timed.txt" | qgrep 'data: \[DONE\]' || fail "no [DONE] after the timeout event"
# The client has its last byte before the server's finish path counts the
# request out; the next one would race it for the single place.
wait_until 60 "the timed-out request to be counted out" metric_is airlock_requests_in_flight 0
post /v1/completions "${LONG/\"stream\":true/\"stream\":false}"
expect_code 504
[ "$(jq_py 'd["error"]["code"]')" = timeout ] || fail "timeout body: $BODY"
ok "the concurrency cap (503) and the time limit (504, or an error event when streaming)"
