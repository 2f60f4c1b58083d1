#!/usr/bin/env bash
# Serving LoRA adapters (issue 20, item 2): one base in memory, two adapters
# generated for it (airlock-ggufgen --lora-for, seeds 3 and 7), picked per
# request with llama-server's "lora": [{"id", "scale"}] (ids of GET
# /lora-adapters) or by an adapter version's name. Requests alternating the
# base and both adapters, sent at once, each answer what the same request
# answers alone (greedy); scale 0 is the base's golden text; an unknown id is
# a 400; another base's adapter is not listed and its id refused; the audit
# log names the adapter (name@digest*scale) and /metrics counts requests per
# adapter; the base is loaded once (one 'loading model' line, one model in
# /metrics) however many adapters answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
GEN="$AL_BUILD/airlock-ggufgen"
unset AIRLOCK_SERVER AIRLOCK_API_KEY
PROMPT="Once upon a time"

airlock add stories:1 "$FIX" >/dev/null
"$GEN" --lora-for "$FIX" --out "$T/la.gguf" --seed 3 2>/dev/null
"$GEN" --lora-for "$FIX" --out "$T/lb.gguf" --seed 7 2>/dev/null
airlock add la:1 "$T/la.gguf" --base stories:1 >/dev/null
airlock add lb:1 "$T/lb.gguf" --base stories:1 >/dev/null
LAD="sha256:$(sha256sum "$T/la.gguf" | cut -d' ' -f1)"
LBD="sha256:$(sha256sum "$T/lb.gguf" | cut -d' ' -f1)"
# Another base, with its own adapter.
"$GEN" --out "$T/other.gguf" --layers 2 --embd 128 --ff 256 --heads 2 --kv-heads 1 --ctx 64 2>/dev/null
"$GEN" --lora-for "$T/other.gguf" --out "$T/lo.gguf" 2>/dev/null
airlock add other:1 "$T/other.gguf" >/dev/null
airlock add lo:1 "$T/lo.gguf" --base other:1 >/dev/null

# What each answers alone, without a server: base + adapter loaded by run.
GREEDY=(--temperature 0 --max-tokens 24)
A=$(airlock run la:1 "$PROMPT" "${GREEDY[@]}")
B=$(airlock run lb:1 "$PROMPT" "${GREEDY[@]}")
G=$(airlock run stories:1 "$PROMPT" "${GREEDY[@]}")
[ -n "$A" ] && [ -n "$B" ] && [ "$A" != "$B" ] && [ "$A" != "$G" ] && [ "$B" != "$G" ] ||
    fail "two adapters and the base should answer three texts: '$A' '$B' '$G'"
ok "two adapters for the fixture, each changing its greedy text"

serve_start stories:1 --port 0 --parallel 4
get /lora-adapters
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert [e["id"] for e in a] == [0, 1], a
assert a[0]["path"].startswith("la@sha256:") and a[1]["path"].startswith("lb@sha256:"), a
assert a[0]["digest"] == sys.argv[1] and a[1]["digest"] == sys.argv[2], a
assert all(e["scale"] == 0 and e["task_name"] == "" and e["prompt_prefix"] == "" for e in a), a
' "$LAD" "$LBD" || fail "GET /lora-adapters: $BODY"
get "/lora-adapters?model=other:1"
[ "$(jq_py '[e["path"].split("@")[0] for e in d]')" = "['lo']" ] || fail "the other base's adapters: $BODY"
ok "GET /lora-adapters lists the store's adapters of the served base, with llama-server's fields"

# One request: completions, chat and /completion, body "lora" or the name.
req() { # LORA-JSON [MODEL]: the text of a greedy completion
    post /v1/completions "{\"model\":\"${2:-stories:1}\",\"prompt\":\"$PROMPT\",\"max_tokens\":24,\"temperature\":0${1:+,\"lora\":$1}}"
    expect_code 200
    jq_py 'd["choices"][0]["text"]'
}
[ "$(req '[{"id":0,"scale":1}]')" = "$A" ] || fail "lora id 0: $BODY"
[ "$(req '[{"id":1,"scale":1}]')" = "$B" ] || fail "lora id 1: $BODY"
[ "$(req '' la:1)" = "$A" ] || fail "the adapter's name: $BODY"
[ "$(req '[{"id":0,"scale":0}]')" = "$G" ] || fail "scale 0 must give the base's text: $BODY"
[ "$(req '[{"id":0,"scale":0},{"id":1,"scale":0}]')" = "$G" ] || fail "both at scale 0: $BODY"
[ "$(req '')" = "$G" ] || fail "no lora: the base: $BODY"
[ "$(req '[{"id":1,"scale":0}]' la:1)" = "$G" ] || fail "a list replaces the adapter of the name: $BODY"
post /completion "{\"prompt\":\"$PROMPT\",\"n_predict\":24,\"temperature\":0,\"lora\":[{\"id\":1,\"scale\":1}]}"
expect_code 200
[ "$(jq_py 'd["content"]')" = "$B" ] || fail "/completion with lora: $BODY"
post /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"max_tokens":8,"temperature":0,"lora":[{"id":0,"scale":1}]}'
expect_code 200
ok "a request picks adapters by id and scale (completions, chat, /completion) or by name; scale 0 is the base"

# Refusals: 400, nothing generated.
post /v1/completions "{\"prompt\":\"x\",\"max_tokens\":2,\"lora\":[{\"id\":2,\"scale\":1}]}"
expect_code 400
echo "$BODY" | qgrep "no LoRA adapter 2: the weights of 'stories' have 2" || fail "unknown id: $BODY"
post /v1/completions '{"prompt":"x","max_tokens":2,"lora":[{"id":"0","scale":1}]}'
expect_code 400
post /v1/completions '{"prompt":"x","max_tokens":2,"lora":{"id":0}}'
expect_code 400
post /v1/completions '{"prompt":"x","max_tokens":2,"lora":[{"id":0,"scale":1000}]}'
expect_code 400
post /v1/completions '{"prompt":"x","max_tokens":2,"lora":[{"id":0},{"id":1},{"id":0},{"id":1},{"id":0},{"id":1},{"id":0},{"id":1},{"id":0}]}'
expect_code 400
echo "$BODY" | qgrep "over the cap of 8 (AL_LIMIT_LORAS)" || fail "too many adapters: $BODY"
# lo is other:1's adapter: id 0 of other:1, not of stories:1; on other:1 it runs.
post /v1/completions '{"model":"other:1","prompt":"x","max_tokens":2,"temperature":0,"lora":[{"id":0,"scale":1}]}'
expect_code 200
post /v1/completions '{"model":"other:1","prompt":"x","max_tokens":2,"lora":[{"id":1,"scale":1}]}'
expect_code 400
ok "an unknown id, a malformed list, a scale out of range, too many: 400; another base's adapter is not offered"

# Concurrent: base, la, lb, and la by name, alternating, all at once; each
# answers what it answered alone.
kinds=('' '[{"id":0,"scale":1}]' '[{"id":1,"scale":1}]' 'NAME')
want=("$G" "$A" "$B" "$A")
pids=()
for i in $(seq 0 11); do
    k=${kinds[$((i % 4))]}
    if [ "$k" = NAME ]; then
        body="{\"model\":\"la:1\",\"prompt\":\"$PROMPT\",\"max_tokens\":24,\"temperature\":0}"
    else
        body="{\"prompt\":\"$PROMPT\",\"max_tokens\":24,\"temperature\":0${k:+,\"lora\":$k}}"
    fi
    curl -s -H 'Content-Type: application/json' -d "$body" "$BASE/v1/completions" >"$T/c$i.json" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent request failed"; done
for i in $(seq 0 11); do
    got=$(json_get 'd["choices"][0]["text"]' <"$T/c$i.json")
    [ "$got" = "${want[$((i % 4))]}" ] || fail "concurrent request $i (${kinds[$((i % 4))]:-base}): '$got'"
done
ok "12 concurrent requests alternating the base and two adapters each answer as alone"


# Evidence that the base is loaded once: one load, one model in /metrics.
[ "$(grep -c 'loading model stories ' "$SERVE_LOG")" = 1 ] || fail "the base loaded more than once: $(grep 'loading model' "$SERVE_LOG")"
qgrep 'adapter la (.*) on the loaded base stories' "$SERVE_LOG" || fail "la loaded into the base"
curl -s "$BASE/metrics" >"$T/metrics.txt"
[ "$(grep -c '^airlock_model_loaded{model="stories"' "$T/metrics.txt")" = 1 ] || fail "one stories in /metrics"
grep -q '^airlock_model_loaded{model="la"' "$T/metrics.txt" && fail "an adapter counted as a model"
n=$(awk -v d="$LAD" '$1 == "airlock_lora_requests_total{adapter=\"la\",digest=\"" d "\"}" {print $2}' "$T/metrics.txt")
[ "$n" = 11 ] || fail "la's requests in /metrics: '$n': $(grep lora "$T/metrics.txt")"
n=$(awk -v d="$LBD" '$1 == "airlock_lora_requests_total{adapter=\"lb\",digest=\"" d "\"}" {print $2}' "$T/metrics.txt")
[ "$n" = 7 ] || fail "lb's requests in /metrics: '$n': $(grep lora "$T/metrics.txt")"
ok "the base is loaded once; /metrics counts requests per adapter"

# Different adapter sets share decode steps: with llama.cpp's per-sequence
# adapter scales (deps/patches) one step holds sequences of la and lb, where
# sets took turns before (the counter stayed 0). Two long streams, one per
# adapter (2 x 205 tokens within the 512 cells), both generating before the
# counter is read.
mixed_steps() { curl -s "$BASE/metrics" | awk '$1 ~ /^airlock_lora_mixed_steps_total\{model="stories"/ {print $2}'; }
m0=$(mixed_steps)
for k in 0 1; do
    curl -sN -H 'Content-Type: application/json' -d "{\"prompt\":\"$PROMPT\",\"max_tokens\":200,\"temperature\":0,\"stream\":true,\"ignore_eos\":true,\"lora\":[{\"id\":$k,\"scale\":1}]}" \
        "$BASE/v1/completions" >"$T/mix$k.txt" &
    eval "mp$k=\$!"
done
wait_until 120 "both streams generating" sh -c "grep -q '^data: {' '$T/mix0.txt' && grep -q '^data: {' '$T/mix1.txt'"
mixed_more() { [ "$(mixed_steps)" -gt "${m0:-0}" ]; }
wait_until 60 "a step holding both adapters" mixed_more
wait "$mp0" && wait "$mp1" || fail "a mixed stream failed"
ok "two adapters decoded in the same steps: $(( $(mixed_steps) - ${m0:-0} )) mixed steps"

# POST /lora-adapters: the default scales (llama-server's), here without keys.
post /lora-adapters '[{"id":1,"scale":1}]'
expect_code 200
[ "$(req '')" = "$B" ] || fail "default scale 1 for lb: $BODY"
get /lora-adapters
[ "$(jq_py '[e["scale"] for e in d]')" = "[0.0, 1.0]" ] || fail "the defaults listed: $BODY"
post /lora-adapters '[]'
expect_code 200
[ "$(req '')" = "$G" ] || fail "defaults back to 0: $BODY"
post /lora-adapters '{"id":1}'
expect_code 400
serve_stop
ok "POST /lora-adapters sets the default scales"

# The audit log names the adapters that answered, and verifies.
airlock audit verify >"$T/verify.txt" || fail "audit verify: $(cat "$T/verify.txt")"
cat "$AIRLOCK_HOME"/audit/audit-*.jsonl >"$T/audit.jsonl"
grep -qF "\"lora\":\"la@$LAD*1\"" "$T/audit.jsonl" || fail "no audit line names la at scale 1"
grep -qF "\"lora\":\"lb@$LBD*1\"" "$T/audit.jsonl" || fail "no audit line names lb at scale 1"
grep -qF "\"lora\":\"la@$LAD*0,lb@$LBD*0\"" "$T/audit.jsonl" || fail "no audit line names both at scale 0"
ok "the audit log names each adapter (name@digest*scale) and verifies"
