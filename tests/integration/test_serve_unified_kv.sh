#!/usr/bin/env bash
# airlock serve's sequences share one KV cache, as llama-server's slots do:
# by default 4 of them generate at once, the cache is --ctx cells whatever
# --parallel is (the memory of one sequence of that context), each of 4
# concurrent greedy answers is the golden text, and when the shared cells run
# out the youngest request is stopped with its documented error while the
# older one finishes unharmed (docs/internals/engine.md).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
FULL='the KV cache of 256 cells shared by 4 sequences (serve --ctx, --parallel) is full: this request, the youngest holding cells, was stopped so that the others finish'

# ---- the defaults: 4 sequences, one cache of the model's context ----
# stories260K is trained with 2048 tokens: K and V of 5 layers x 4 KV heads x
# 8 dims in f16 are 640 bytes a cell, 1.25 MiB for 2048 cells (5 MiB were 4
# sequences of 2048 each).
serve_start stories --port 0
[ "$(metric airlock_sequences)" = 4 ] || fail "sequences by default: $(metric airlock_sequences)"
[ "$(metric airlock_kv_cache_total_cells)" = 2048 ] ||
    fail "KV cells by default: $(metric airlock_kv_cache_total_cells)"
get /props
[ "$(jq_py 'd["total_slots"], d["default_generation_settings"]["n_ctx"]')" = "(4, 2048)" ] || fail "/props: $BODY"
mem4=$(metric airlock_model_memory_bytes)
grep -q "loaded .*: 4 sequences sharing 2048 cells, at most 2048 each" "$SERVE_LOG" ||
    fail "the load line: $(grep "loaded '" "$SERVE_LOG")"

# Four golden requests at once: each answer is the golden text.
pids=()
for i in 1 2 3 4; do
    curl -s -o "$T/golden.$i" -H 'Content-Type: application/json' "$BASE/v1/completions" \
        -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}' &
    pids+=($!)
done
wait "${pids[@]}" # not the server's
for i in 1 2 3 4; do
    [ "$(json_get 'd["choices"][0]["text"]' <"$T/golden.$i")" = "$GOLDEN" ] ||
        fail "golden answer $i of 4 concurrent: $(cat "$T/golden.$i")"
done
ok "4 concurrent greedy answers are each the golden text"
serve_stop

serve_start stories --port 0 --parallel 1
[ "$(metric airlock_kv_cache_total_cells)" = 2048 ] || fail "KV cells, 1 sequence: $(metric airlock_kv_cache_total_cells)"
mem1=$(metric airlock_model_memory_bytes)
[ "$mem4" = "$mem1" ] || fail "4 sequences take $mem4 bytes, 1 sequence $mem1: the cache is not shared"
serve_stop
ok "defaults: 4 sequences share 2048 KV cells, $mem4 bytes as one sequence of that context"

# ---- 4 sequences generate at once ----
# Four streams of 8000 tokens fit 32768 cells together; each runs for seconds,
# so all four are seen generating at once (with fewer sequences the gauge
# never reaches 4 and the wait fails).
serve_start stories --port 0 --ctx 32768 --max-tokens 8000
pids=()
for i in 1 2 3 4; do
    curl -sN "$BASE/v1/completions" -o "$T/long.$i" \
        -d '{"model":"stories","prompt":"Once upon a time","max_tokens":8000,"ignore_eos":true,"stream":true}' &
    pids+=($!)
done
wait_until 60 "4 sequences generating at once" metric_is airlock_active_sequences 4
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
wait_until 60 "the cancelled streams to free their sequences" metric_is airlock_active_sequences 0
serve_stop
ok "with the default --parallel, 4 requests generate at once"

# ---- the shared cache full ----
# 256 cells; two choices of one request (queued one after the other, so
# choice 0 is the older) each want the prompt and 255 - prompt tokens: one
# fits, two cannot. Choice 1, the younger, is stopped with the documented
# error; choice 0 ends with its full answer, the same text as alone.
serve_start stories --port 0 --ctx 256
req() { printf '{"model":"stories","prompt":"Once upon a time","max_tokens":%d,"temperature":0,"ignore_eos":true%s}' "$@"; }
post /v1/completions "$(req 8 '')"
expect_code 200
n=$((255 - $(jq_py 'd["usage"]["prompt_tokens"]')))
post /v1/completions "$(req "$n" '')"
expect_code 200
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = "$n" ] || fail "alone, $n tokens: $BODY"
alone=$(jq_py 'd["choices"][0]["text"]')
curl -sN --max-time 120 -H 'Content-Type: application/json' "$BASE/v1/completions" \
    -d "$(req "$n" ',"n":2,"stream":true')" >"$T/full.txt" || fail "the stream did not end: $(tail -c 500 "$T/full.txt")"
python3 - "$T/full.txt" "$alone" "$FULL" "$n" <<'PY' || fail "shared cache full: $(head -c 3000 "$T/full.txt")"
import json, sys
raw, alone, full, n = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], int(sys.argv[4])
text, finish, errors = {0: "", 1: ""}, {}, []
for line in raw.splitlines():
    if not line.startswith("data: {"):
        continue
    d = json.loads(line[6:])
    if "error" in d:
        errors.append(d["error"]["message"])
        continue
    for c in d.get("choices", []):
        text[c["index"]] += c.get("text") or ""
        if c.get("finish_reason"):
            finish[c["index"]] = c["finish_reason"]
assert errors == [full], f"errors: {errors}"
assert text[0] == alone and finish.get(0) == "length", f"choice 0: {finish.get(0)} {text[0]!r}"
assert 1 not in finish, f"choice 1 finished: {finish}"
assert alone.startswith(text[1]) and len(text[1]) < len(alone), f"choice 1: {text[1]!r}"
PY
grep -q "the KV cache of 256 cells shared by 4 sequences is full: stopping the youngest request" "$SERVE_LOG" ||
    fail "no warning in the log"
# Not streamed: the request fails as a whole with that message.
post /v1/completions "$(req "$n" ',"n":2')"
expect_code 500
[ "$(jq_py 'd["error"]["message"]')" = "generation failed: $FULL" ] || fail "not streamed: $BODY"
# The server goes on: the cells are free again, the golden text comes back.
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden after the cache was full: $BODY"
[ "$(metric airlock_active_sequences)" = 0 ] || fail "sequences still active"
ok "shared cache full: the youngest choice stopped with the documented error, the older one's answer as alone"
serve_stop

# ---- a cap per request (llama-server's --kv-unified-per-slot) ----
serve_start stories --port 0 --ctx 256 --ctx-per-seq 64
get /props
[ "$(jq_py 'd["default_generation_settings"]["n_ctx"]')" = 64 ] || fail "/props n_ctx with --ctx-per-seq 64: $BODY"
post /v1/completions "$(req 100 '')"
expect_code 200
[ "$(jq_py 'd["choices"][0]["finish_reason"]')" = length ] && [ "$(jq_py 'd["usage"]["completion_tokens"]')" -lt 64 ] ||
    fail "an answer over --ctx-per-seq 64: $BODY"
ok "--ctx-per-seq 64 ends an answer at 64 tokens of context"
serve_stop

# The same in the config file; there too parallel defaults to 4.
printf '{"defaults": {"ctx": 256, "ctx_per_seq": 64}}' >"$T/serve.json"
serve_start stories --port 0 --config "$T/serve.json"
get /props
[ "$(jq_py 'd["default_generation_settings"]["n_ctx"], d["total_slots"]')" = "(64, 4)" ] ||
    fail "/props with ctx_per_seq 64 in the config: $BODY"
[ "$(metric airlock_kv_cache_total_cells)" = 256 ] || fail "KV cells: $(metric airlock_kv_cache_total_cells)"
ok "the config file's ctx_per_seq, and 4 sequences by default"
