#!/usr/bin/env bash
# llama-server's own routes on `airlock serve` (issue 17 part 3): /apply-template,
# /props and /completion, with the keys, scopes and audit of the OpenAI
# routes (chat). Real server on loopback, curl as the client, the fixture model.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
CHAT=$(tok chatter --scopes chat)
EMBED=$(tok embedder --scopes embed)
# code KEY METHOD PATH [JSON]: the status into stdout, the body into $T/body.
code() {
    local k=$1 m=$2 p=$3; shift 3
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" ${k:+-H "Authorization: Bearer $k"} \
        ${1:+-H 'Content-Type: application/json' -d "$1"} "$BASE$p"
}
body() { json_get "$1" <"$T/body"; }

# A Jinja template of our own: what the prompt must be is known exactly.
TPL='{% for m in messages %}[{{ m.role }}] {{ m.content }}
{% endfor %}{% if add_generation_prompt %}Story:{% endif %}'
printf '%s' "$TPL" >"$T/tpl.jinja"
serve_start stories --port 0 --parallel 2 --chat-template-file "$T/tpl.jinja"

# ---- 1. POST /apply-template: the chat's prompt, as a chat completion renders it ----
MSGS='"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Once upon a time"}]'
[ "$(code "$CHAT" POST /apply-template "{$MSGS}")" = 200 ] || fail "/apply-template: $(cat "$T/body")"
[ "$(body 'd["prompt"]')" = $'[system] Be brief\n[user] Once upon a time\nStory:' ] ||
    fail "/apply-template prompt: $(cat "$T/body")"
[ "$(body 'sorted(d)')" = "['prompt']" ] || fail "/apply-template has other fields: $(cat "$T/body")"
[ "$(code "$CHAT" POST /apply-template "{$MSGS,\"add_generation_prompt\":false}")" = 200 ] ||
    fail "add_generation_prompt false: $(cat "$T/body")"
[ "$(body 'd["prompt"]')" = $'[system] Be brief\n[user] Once upon a time' ] ||
    fail "add_generation_prompt false still opens the answer: $(cat "$T/body")"
# tools null or [] is no tools; the same checks as chat completions
[ "$(code "$CHAT" POST /apply-template "{$MSGS,\"tools\":null}")" = 200 ] || fail "tools null: $(cat "$T/body")"
[ "$(code "$CHAT" POST /apply-template "{$MSGS,\"tools\":[]}")" = 200 ] || fail "tools []: $(cat "$T/body")"
# The same tokens as the chat completion of the same messages.
N=$(curl -s -H "Authorization: Bearer $CHAT" -d "$(python3 -c 'import json,sys; print(json.dumps({"content": sys.argv[1], "add_special": True}))' \
    $'[system] Be brief\n[user] Once upon a time\nStory:')" "$BASE/tokenize" | json_get 'len(d["tokens"])')
[ "$(code "$CHAT" POST /v1/chat/completions "{$MSGS,\"max_tokens\":1}")" = 200 ] || fail "chat: $(cat "$T/body")"
[ "$(body 'd["usage"]["prompt_tokens"]')" = "$N" ] || fail "chat prompt is not the rendered one ($N): $(cat "$T/body")"
# Hostile or malformed input: refused with the chat route's messages.
[ "$(code "$CHAT" POST /apply-template '{"messages":[]}')" = 400 ] || fail "empty messages: $(cat "$T/body")"
body 'd["error"]["message"]' | qgrep "'messages' must be a non-empty array" || fail "empty messages: $(cat "$T/body")"
[ "$(code "$CHAT" POST /apply-template '{"messages":[{"role":"user","content":7}]}')" = 400 ] ||
    fail "content 7: $(cat "$T/body")"
[ "$(code "$CHAT" POST /apply-template "{$MSGS,\"add_generation_prompt\":\"yes\"}")" = 400 ] ||
    fail "add_generation_prompt string: $(cat "$T/body")"
python3 -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "x"}] * 5000}))' >"$T/many.json"
[ "$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $CHAT" -d @"$T/many.json" "$BASE/apply-template")" = 400 ] ||
    fail "messages over the cap: $(cat "$T/body")"
body 'd["error"]["code"]' | qgrep limit || fail "messages over the cap: $(cat "$T/body")"
# Scopes: chat; an embed key is refused, no key is 401, GET is 405.
[ "$(code "$EMBED" POST /apply-template "{$MSGS}")" = 403 ] || fail "embed key on /apply-template: $(cat "$T/body")"
[ "$(code "" POST /apply-template "{$MSGS}")" = 401 ] || fail "no key on /apply-template"
[ "$(code "$CHAT" GET /apply-template)" = 405 ] || fail "GET /apply-template: $(cat "$T/body")"
ok "POST /apply-template renders the chat's prompt as chat completions do, under the chat scope"

# ---- 2. GET /props: what llama-server's clients read of it ----
[ "$(code "$CHAT" GET /props)" = 200 ] || fail "/props: $(cat "$T/body")"
python3 - "$T/body" "$TPL" <<'PY' || fail "/props body: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
g = d["default_generation_settings"]
assert g["n_ctx"] > 0 and d["total_slots"] == 2, d
p = g["params"]
assert p["seed"] == 4294967295 and p["n_predict"] == -1 and abs(p["temperature"] - 0.8) < 1e-6, p
for k in ("top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
    assert k in p, k
# the model's name, never a path of the store
assert d["model_path"] == "stories" and d["model_alias"] == "stories", d
assert d["chat_template"] == sys.argv[2], d["chat_template"]
assert d["build_info"].startswith("airlock "), d["build_info"]
assert d["modalities"] == {"vision": False, "audio": False, "video": False}, d
PY
[ "$(code "$EMBED" GET /props)" = 403 ] || fail "embed key on /props: $(cat "$T/body")"
[ "$(code "" GET /props)" = 401 ] || fail "no key on /props"
[ "$(code "$CHAT" POST /props '{}')" = 405 ] || fail "POST /props: $(cat "$T/body")"

# ---- 3. POST /completion: llama-server's native completion over the same generation ----
CP='"prompt":"Once upon a time","n_predict":8,"temperature":0'
[ "$(code "$CHAT" POST /completion "{$CP}")" = 200 ] || fail "/completion: $(cat "$T/body")"
python3 - "$T/body" "$GOLDEN" <<'PY' || fail "/completion body: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sys.argv[2].startswith(d["content"]) and len(d["content"]) > 10, d["content"]
assert d["stop"] is True and d["stop_type"] == "limit" and d["model"] == "stories", d
assert d["tokens_predicted"] == 8 and d["tokens_evaluated"] == 5, d
assert d["timings"]["predicted_n"] == 8 and d["timings"]["prompt_n"] + d["timings"]["cache_n"] == 5, d
assert d["generation_settings"]["n_predict"] == 8 and d["generation_settings"]["temperature"] == 0, d
assert d["truncated"] is False and d["has_new_line"] is False and d["tokens"] == [], d
PY
cp "$T/body" "$T/whole.json"
# The same text as /v1/completions of the same request.
[ "$(code "$CHAT" POST /v1/completions '{"prompt":"Once upon a time","max_tokens":8,"temperature":0}')" = 200 ] ||
    fail "/v1/completions: $(cat "$T/body")"
[ "$(body 'd["choices"][0]["text"]')" = "$(json_get 'd["content"]' <"$T/whole.json")" ] ||
    fail "/completion and /v1/completions differ: $(cat "$T/body") vs $(cat "$T/whole.json")"
# Streamed: data events of content with stop false, then one with stop true and the counts; no [DONE].
curl -sN -H "Authorization: Bearer $CHAT" -d "{$CP,\"stream\":true}" "$BASE/completion" >"$T/sse"
python3 - "$T/sse" "$T/whole.json" <<'PY' || fail "/completion stream: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: ")]
assert not any(l.strip() == "data: [DONE]" for l in open(sys.argv[1]))
assert all(e["stop"] is False for e in ev[:-1]) and ev[-1]["stop"] is True, ev
assert "".join(e["content"] for e in ev) == json.load(open(sys.argv[2]))["content"], ev
assert ev[-1]["tokens_predicted"] == 8 and ev[-1]["stop_type"] == "limit" and ev[-1]["generation_settings"]["stream"], ev[-1]
ids = [t for e in ev[:-1] for t in e["tokens"]]
assert len(ids) == 8, ev
open(sys.argv[1] + ".ids", "w").write(json.dumps(ids))
PY
# Each event's "tokens" are the ids of its text (computed without any
# probabilities: engine.h's probs_ids_only): they detokenize to the content.
[ "$(code "$CHAT" POST /detokenize "{\"tokens\":$(cat "$T/sse.ids")}")" = 200 ] || fail "/detokenize: $(cat "$T/body")"
[ "$(body 'd["content"]')" = "$(json_get 'd["content"]' <"$T/whole.json")" ] ||
    fail "the streamed token ids $(cat "$T/sse.ids") detokenize to '$(body 'd["content"]')'"
# A prompt of token ids: the same answer as its text.
TOKS=$(curl -s -H "Authorization: Bearer $CHAT" -d '{"content":"Once upon a time","add_special":true}' "$BASE/tokenize" |
    json_get 'json.dumps(d["tokens"])')
[ "$(code "$CHAT" POST /completion "{\"prompt\":$TOKS,\"n_predict\":8,\"temperature\":0}")" = 200 ] ||
    fail "/completion of tokens: $(cat "$T/body")"
[ "$(body 'd["content"]')" = "$(json_get 'd["content"]' <"$T/whole.json")" ] || fail "tokens prompt: $(cat "$T/body")"
[ "$(body 'd["tokens_evaluated"]')" = 5 ] || fail "tokens prompt has another length: $(cat "$T/body")"
[ "$(code "$CHAT" POST /completion '{"prompt":{"prompt_string":"Once upon a time"},"n_predict":2}')" = 200 ] ||
    fail "prompt_string: $(cat "$T/body")"
# seed and temperature: the same seed gives the same text.
S='"prompt":"Once upon a time","n_predict":12,"temperature":1,"seed":7'
code "$CHAT" POST /completion "{$S}" >/dev/null; A=$(body 'd["content"]')
code "$CHAT" POST /completion "{$S}" >/dev/null; [ "$(body 'd["content"]')" = "$A" ] || fail "seed 7 twice differs"
[ "$(body 'd["generation_settings"]["seed"]')" = 7 ] || fail "seed not reported: $(cat "$T/body")"
# n_probs: completion_probabilities, one entry per token, with its alternatives.
[ "$(code "$CHAT" POST /completion '{"prompt":"Once upon a time","n_predict":3,"temperature":0,"n_probs":2}')" = 200 ] ||
    fail "n_probs: $(cat "$T/body")"
[ "$(body '[len(t["top_logprobs"]) for t in d["completion_probabilities"]]')" = "[2, 2, 2]" ] || fail "n_probs: $(cat "$T/body")"
[ "$(body 'd["completion_probabilities"][0]["bytes"] == list(d["completion_probabilities"][0]["token"].encode())')" = True ] ||
    fail "n_probs bytes: $(cat "$T/body")"
[ "$(code "$CHAT" POST /completion '{"prompt":"x","n_probs":21}')" = 400 ] || fail "n_probs 21: $(cat "$T/body")"
# Refused: other prompt shapes, multimodal data, bad n_predict, over the cap of max_tokens.
for bad in '{"prompt":7}' '{}' '{"prompt":[1,-2]}' \
    '{"prompt":{"prompt_string":"x","multimodal_data":"aGk="}}' '{"prompt":"x","n_predict":0}' \
    '{"prompt":"x","n_predict":"5"}' '{"prompt":"x","n_predict":100000000}' '{"prompt":"x","stream":"yes"}' \
    '{"prompt":"x","temperature":9}'; do
    [ "$(code "$CHAT" POST /completion "$bad")" = 400 ] || fail "$bad: $(cat "$T/body")"
done
python3 -c 'import json; print(json.dumps({"prompt": [5] * 300000}))' >"$T/toks.json"
[ "$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $CHAT" -d @"$T/toks.json" "$BASE/completion")" = 400 ] ||
    fail "token prompt over the cap: $(cat "$T/body")"
body 'd["error"]["message"]' | qgrep 'AL_LIMIT_PROMPT_TOKENS' || fail "token prompt over the cap: $(cat "$T/body")"
# Scopes: chat.
[ "$(code "$EMBED" POST /completion "{$CP}")" = 403 ] || fail "embed key on /completion: $(cat "$T/body")"
[ "$(code "" POST /completion "{$CP}")" = 401 ] || fail "no key on /completion"
[ "$(code "$CHAT" GET /completion)" = 405 ] || fail "GET /completion"
ok "POST /completion: llama-server's shapes, streamed and not, string or token prompts, under the chat scope"
serve_stop
# The audit records each route under its own label, with its caller.
airlock audit tail -n 200 >"$T/audit"
python3 - "$T/audit" <<'PY' || fail "audit records of llama-server's routes"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
routes = {(r["route"], r["status"], r["caller"]) for r in recs}
for want in [("/apply-template", 200, "chatter"), ("/apply-template", 403, "embedder"), ("/props", 200, "chatter"),
             ("/props", 403, "embedder"), ("/completion", 200, "chatter"), ("/completion", 403, "embedder"),
             ("/completion", 400, "chatter")]:
    assert want in routes, (want, sorted(routes))
assert any(r["route"] == "/completion" and r["status"] == 200 and r["tokens_out"] == 8 for r in recs), recs
PY
airlock audit verify | qgrep 'intact' || fail "audit verify"
ok "the audit names /apply-template, /props and /completion with their callers"
# The server's sampling defaults are the request defaults /props reports; a
# model without a Jinja template has "" as its chat_template.
export AIRLOCK_HOME="$T/home2"
airlock add stories:1.0 "$FIX" >/dev/null
serve_start stories --port 0 --no-audit --seed 42 --temp 0.5 --n-predict 12 --ctx 128
get /props
expect_code 200
[ "$(jq_py '(d["default_generation_settings"]["params"]["seed"], d["default_generation_settings"]["params"]["n_predict"], d["default_generation_settings"]["params"]["temperature"], d["default_generation_settings"]["n_ctx"], d["total_slots"], d["chat_template"])')" = "(42, 12, 0.5, 128, 4, '')" ] ||
    fail "/props with --seed 42 --temp 0.5 --n-predict 12 --ctx 128: $BODY"
# A sequence's context ends the answer before n_predict: truncated, as llama-server marks it.
post /completion '{"prompt":"Once upon a time","n_predict":200,"temperature":0,"ignore_eos":true}'
expect_code 200
[ "$(jq_py '(d["truncated"], d["stop_type"], d["tokens_predicted"] < 200)')" = "(True, 'limit', True)" ] ||
    fail "context full: $BODY"
ok "GET /props: context, slots, the request defaults, the chat template and the model's name, under the chat scope"
