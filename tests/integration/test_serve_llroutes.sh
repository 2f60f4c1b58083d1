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
