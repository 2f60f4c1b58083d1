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
serve_stop
# The server's sampling defaults are the request defaults /props reports; a
# model without a Jinja template has "" as its chat_template.
export AIRLOCK_HOME="$T/home2"
airlock add stories:1.0 "$FIX" >/dev/null
serve_start stories --port 0 --no-audit --seed 42 --temp 0.5 --n-predict 12 --ctx 128
get /props
expect_code 200
[ "$(jq_py '(d["default_generation_settings"]["params"]["seed"], d["default_generation_settings"]["params"]["n_predict"], d["default_generation_settings"]["params"]["temperature"], d["default_generation_settings"]["n_ctx"], d["total_slots"], d["chat_template"])')" = "(42, 12, 0.5, 128, 1, '')" ] ||
    fail "/props with --seed 42 --temp 0.5 --n-predict 12 --ctx 128: $BODY"
ok "GET /props: context, slots, the request defaults, the chat template and the model's name, under the chat scope"
