#!/usr/bin/env bash
# llama-server's /infill and /slots on `airlock serve` (issue 17 part 3).
# /infill: fill in the middle with the FIM tokens of a generated model
# (airlock-ggufgen --fim): the prompt is built of tokens as llama-server
# builds it, so its length is known exactly ([BOS] [PRE] prefix prompt [SUF]
# suffix [MID], the extra files before it as far as the context leaves room,
# the prefix cut to 3/4 of a batch); malformed bodies and those over a cap
# are 400, a model without FIM tokens 501 (as llama-server). /slots: one
# object per sequence, under the admin scope, 501 under --no-slots.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
GEN="$AL_BUILD/airlock-ggufgen"
"$GEN" --help | qgrep -- '--fim P,S,M' || fail "ggufgen --help names --fim"
# llama-spm vocabulary: ids 4..8 are the byte tokens <0x01>..<0x05>, which
# no text of this test spells.
"$GEN" --out "$T/fim.gguf" --fim 4,5,6 --seed 7 2>/dev/null || fail "ggufgen --fim"
"$GEN" --out "$T/fimrepo.gguf" --fim 4,5,6,7,8 --seed 7 2>/dev/null || fail "ggufgen --fim with rep and sep"
"$GEN" --out "$T/plain.gguf" --seed 7 2>/dev/null || fail "ggufgen"
"$GEN" --out "$T/x.gguf" --fim 4,5 2>"$T/err" && fail "--fim with two ids accepted"
"$GEN" --out "$T/x.gguf" --fim 4,5,99999999 2>"$T/err" && fail "--fim past the vocabulary accepted"
qgrep "not in the vocabulary" "$T/err" || fail "--fim past the vocabulary: $(cat "$T/err")"
airlock add fim:1 "$T/fim.gguf" >/dev/null
airlock add fimrepo:1 "$T/fimrepo.gguf" >/dev/null
airlock add plain:1 "$T/plain.gguf" >/dev/null

serve_start fim --port 0 --parallel 2 --batch 64 --ctx 512
# ntok TEXT: its tokens, no BOS
ntok() {
    curl -s -d "$(python3 -c 'import json,sys; print(json.dumps({"content": sys.argv[1]}))' "$1")" "$BASE/tokenize" |
        json_get 'len(d["tokens"])'
}
PRE='int main() {
' SUF='}
' PR='    int n = '
NP=$(ntok "$PRE") NS=$(ntok "$SUF") NQ=$(ntok "$PR")
req() { python3 -c 'import json,sys; d={"input_prefix": sys.argv[1], "input_suffix": sys.argv[2], "prompt": sys.argv[3], "n_predict": 4, "temperature": 0}; d.update(json.loads(sys.argv[4])); print(json.dumps(d))' "$PRE" "$SUF" "$PR" "${1:-{\}}"; }

# ---- 1. the prompt: [BOS] [PRE] prefix prompt [SUF] suffix [MID] ----
post /infill "$(req)"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = $((NP + NQ + NS + 4)) ] || fail "infill prompt length (want $((NP + NQ + NS + 4))): $BODY"
[ "$(jq_py 'd["tokens_predicted"]')" = 4 ] || fail "n_predict: $BODY"
jq_py 'd["stop"] is True and isinstance(d["content"], str) and d["generation_settings"]["n_predict"] == 4' | qgrep True ||
    fail "/completion's shape: $BODY"
C1=$(jq_py 'd["content"]')
post /infill "$(req)"
[ "$(jq_py 'd["content"]')" = "$C1" ] || fail "greedy infill is not reproducible: $BODY"
# prompt is optional
post /infill "$(req '{"prompt": null}' | python3 -c 'import json,sys; d=json.load(sys.stdin); del d["prompt"]; print(json.dumps(d))')"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = $((NP + NS + 4)) ] || fail "infill without prompt: $BODY"
# all empty: [BOS] [PRE] [SUF] [MID]
post /infill '{"input_prefix": "", "input_suffix": "", "n_predict": 2}'
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = 4 ] || fail "empty infill: $BODY"
# text that spells a special token stays text (the prefix is not read for specials)
post /infill "$(req '{"input_prefix": "<s></s>"}')"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" -gt $(($(ntok "<s></s>") + NQ + NS + 4)) ] || fail "prefix read for specials: $BODY"
# extra files: without a file separator token, each after a snippet line;
# they fit (ctx 512 - batch 64 - 2 * n_predict 4)
NX=$(ntok $'\n\n--- snippet ---\n\n') NT=$(ntok 'int f();')
post /infill "$(req '{"input_extra": [{"filename": "a.h", "text": "int f();"}]}')"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = $((NX + NT + NP + NQ + NS + 4)) ] || fail "infill with input_extra: $BODY"
# the prefix keeps its last 3/4 of a batch (48 tokens), the suffix what is
# left of the last quarter (16 - 2 - prompt)
LONG=$(python3 -c 'print("x = 1;\n" * 200)')
post /infill "$(req "$(python3 -c 'import json,sys; print(json.dumps({"input_prefix": sys.argv[1], "input_suffix": sys.argv[1]}))' "$LONG")")"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = $((48 + NQ + (16 - 2 - NQ) + 4)) ] || fail "infill cut to the batch: $BODY"
# streamed: /completion's events
curl -sN -d "$(req '{"stream": true}')" "$BASE/infill" >"$T/sse"
grep -c '^data: ' "$T/sse" | qgrep -x 5 || fail "stream events: $(cat "$T/sse")"
tail -2 "$T/sse" | qgrep '"stop":true' || fail "stream end: $(cat "$T/sse")"
ok "/infill builds llama-server's FIM prompt (prefix, prompt, suffix, extra, cuts) and answers as /completion"

# ---- 2. malformed or over a cap: 400, each with its reason ----
bad() { # bad JSON WORDS
    post /infill "$1"
    expect_code 400
    jq_py 'd["error"]["message"]' | qgrep -- "$2" || fail "message for $1: $BODY"
}
bad '{"input_suffix": "}"}' 'input_prefix'
bad '{"input_prefix": "a"}' 'input_suffix'
bad '{"input_prefix": 1, "input_suffix": "b"}' 'input_prefix'
bad '{"input_prefix": "a", "input_suffix": "b", "prompt": 3}' 'prompt'
bad '{"input_prefix": "a", "input_suffix": "b", "input_extra": {}}' 'input_extra'
for x in '{}' '{"filename": "ok"}' '{"filename": 123}' '{"filename": 123, "text": "abc"}' '{"filename": 123, "text": 456}' '"s"'; do
    post /infill "{\"input_prefix\": \"a\", \"input_suffix\": \"b\", \"input_extra\": [$x]}"
    expect_code 400
done
bad '{"input_prefix": "a", "input_suffix": "b", "n_predict": 0}' 'n_predict'
bad "$(python3 -c 'import json; print(json.dumps({"input_prefix": "a", "input_suffix": "b", "input_extra": [{"text": "x"}] * 257}))')" 'AL_LIMIT_INFILL_EXTRA'
bad "$(python3 -c 'import json; print(json.dumps({"input_prefix": "a", "input_suffix": "b", "input_extra": [{"text": "x", "filename": "f" * 1025}]}))')" 'AL_LIMIT_INFILL_FILENAME'
post /infill '{"input_prefix": "a", "input_suffix": "b", "model": "plain"}'
expect_code 501
jq_py 'd["error"]["message"]' | qgrep "Infill is not supported by this model: prefix token is missing" || fail "plain model: $BODY"
jq_py 'd["error"]["type"]' | qgrep -x not_supported_error || fail "plain model: $BODY"
ok "/infill refuses malformed bodies and those over its caps (400), a model without FIM tokens (501)"

# ---- 3. a model with repository and file separator tokens ----
NR=$(ntok $'myproject\n') NF=$(ntok $'a.h\n') NL=$(ntok $'filename\n')
post /infill "$(req '{"model": "fimrepo", "input_extra": [{"filename": "a.h", "text": "int f();"}]}')"
expect_code 200
[ "$(jq_py 'd["tokens_evaluated"]')" = $((1 + NR + 1 + NF + NT + 1 + NL + NP + NQ + NS + 4)) ] ||
    fail "infill with rep and sep tokens: $BODY"
ok "/infill puts [REP]myproject and [SEP]filename before each extra file when the model has them"

# ---- 4. /slots: one object per sequence ----
get /slots
expect_code 200
jq_py 'len(d) == 2 and [s["id"] for s in d] == [0, 1] and all(s["n_ctx"] == 512 and s["is_processing"] is False and "params" not in s for s in d)' |
    qgrep True || fail "/slots: $BODY"
get /props
jq_py 'd["endpoint_slots"]' | qgrep True || fail "/props endpoint_slots: $BODY"
post /slots '{}'
expect_code 405
# admin scope once keys exist
CHAT=$(airlock apikey create chatter --scopes chat --json | json_get 'd["token"]')
ADMIN=$(airlock apikey create boss --scopes admin --json | json_get 'd["token"]')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CHAT" "$BASE/slots")" = 403 ] || fail "chat key on /slots"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/slots")" = 401 ] || fail "no key on /slots"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/slots")" = 200 ] || fail "admin key on /slots"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CHAT" -d "$(req)" "$BASE/infill")" = 200 ] ||
    fail "chat key on /infill"
serve_stop
serve_start fim --port 0 --no-slots
code=$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/slots")
[ "$code" = 501 ] || fail "--no-slots: $code $(cat "$T/body")"
qgrep "does not support slots endpoint" "$T/body" || fail "--no-slots message: $(cat "$T/body")"
serve_stop
# the config file's "slots": false is --no-slots; --slots wins over it
printf '{"slots": false}\n' >"$T/noslots.json"
serve_start fim --port 0 --config "$T/noslots.json"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/slots")" = 501 ] || fail "config slots false"
serve_stop
serve_start fim --port 0 --config "$T/noslots.json" --slots
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/slots")" = 200 ] || fail "--slots over the config"
serve_stop
printf '{"slots": "no"}\n' >"$T/bad.json"
airlock serve fim --port 0 --config "$T/bad.json" >"$T/out" 2>&1 && fail "config slots \"no\" accepted"
qgrep "slots" "$T/out" || fail "config slots \"no\": $(cat "$T/out")"
ok "/slots lists the sequences under the admin scope; --no-slots (config \"slots\": false) answers 501"
