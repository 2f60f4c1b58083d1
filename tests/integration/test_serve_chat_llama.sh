#!/usr/bin/env bash
# llama-server's chat behaviours on `airlock serve` (issue 17): the prompt's
# token count (/v1/chat/completions/input_tokens), continue_final_message
# (the answer goes on from the last assistant message; refused with
# add_generation_prompt, as llama-server refuses it), two assistant messages
# at the end refused, and --reasoning off (enable_thinking false in the
# template). Real server on loopback, curl, the fixture model, a Jinja
# template of our own so that each prompt is known exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
airlock add stories:1.0 "$(fixture)" >/dev/null
TPL='{% for m in messages %}[{{ m.role }}] {{ m.content }}
{% endfor %}{% if add_generation_prompt %}Story:{% if enable_thinking is defined and not enable_thinking %}<no-think>{% endif %}{% endif %}'
printf '%s' "$TPL" >"$T/tpl.jinja"
airlock serve --reasoning maybe 2>"$T/err" && fail "--reasoning maybe accepted"
qgrep "must be on, off or auto" "$T/err" || fail "--reasoning maybe: $(cat "$T/err")"
serve_start stories --port 0 --chat-template-file "$T/tpl.jinja"

# ---- 1. input_tokens: the count a chat completion of the same messages has ----
MSGS='"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Once upon a time"}]'
post /v1/chat/completions/input_tokens "{$MSGS}"
expect_code 200
N=$(jq_py 'd["input_tokens"]')
[ "$(jq_py 'd["object"]')" = response.input_tokens ] || fail "input_tokens object: $BODY"
post /chat/completions "{$MSGS,\"max_tokens\":1}"
expect_code 200
[ "$(jq_py 'd["usage"]["prompt_tokens"]')" = "$N" ] || fail "input_tokens $N differs from the chat's: $BODY"
post /chat/completions/input_tokens "{$MSGS}"
[ "$CODE" = 200 ] && [ "$(jq_py 'd["input_tokens"]')" = "$N" ] || fail "alias without /v1: $BODY"
post /v1/chat/completions/input_tokens '{"messages":[]}'
expect_code 400
post /v1/chat/completions/input_tokens '{"messages":[{"role":"user","content":7}]}'
expect_code 400
ok "/v1/chat/completions/input_tokens counts the chat's prompt tokens"

# ---- 2. continue_final_message ----
PRE='"messages":[{"role":"user","content":"Tell a story"},{"role":"assistant","content":"Once"}]'
post /apply-template "{$PRE,\"continue_final_message\":true,\"add_generation_prompt\":false}"
expect_code 200
# llama.cpp's chat library (as llama-server) renders the turns before it with
# the generation prompt, then the message's text, left open.
[ "$(jq_py 'd["prompt"]')" = $'[user] Tell a story\nStory:Once' ] ||
    fail "continued prompt: $BODY"
post /v1/chat/completions "{$PRE,\"continue_final_message\":true,\"add_generation_prompt\":false,\"max_tokens\":2}"
expect_code 200
post /v1/chat/completions "{$PRE,\"continue_final_message\":true,\"max_tokens\":2}"
expect_code 400
jq_py 'd["error"]["message"]' | qgrep "Cannot set both add_generation_prompt and continue_final_message" || fail "both: $BODY"
post /v1/chat/completions "{$PRE,\"continue_final_message\":true,\"add_generation_prompt\":true}"
expect_code 400
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"continue_final_message":true,"add_generation_prompt":false}'
expect_code 400
jq_py 'd["error"]["message"]' | qgrep "needs an assistant message last" || fail "user last: $BODY"
post /v1/chat/completions "{$PRE,\"continue_final_message\":{}}"
expect_code 400
jq_py 'd["error"]["message"]' | qgrep "must be a boolean" || fail "object: $BODY"
# two assistant messages at the end: refused unless continued
TWO='"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a"},{"role":"assistant","content":"b"}]'
post /v1/chat/completions "{$TWO}"
expect_code 400
jq_py 'd["error"]["message"]' | qgrep "Cannot have 2 or more assistant messages at the end" || fail "two assistants: $BODY"
post /v1/chat/completions "{$TWO,\"continue_final_message\":true,\"add_generation_prompt\":false,\"max_tokens\":2}"
expect_code 200
# false or null is no continuation
post /apply-template "{$MSGS,\"continue_final_message\":false}"
[ "$CODE" = 200 ] && [ "$(jq_py 'd["prompt"]')" = $'[system] Be brief\n[user] Once upon a time\nStory:' ] ||
    fail "continue_final_message false: $BODY"
ok "continue_final_message continues the assistant's message; with add_generation_prompt or malformed: 400"
serve_stop

# ---- 3. --reasoning off: enable_thinking false reaches the template ----
serve_start stories --port 0 --chat-template-file "$T/tpl.jinja" --reasoning off
post /apply-template "{$MSGS}"
[ "$CODE" = 200 ] && [ "$(jq_py 'd["prompt"]')" = $'[system] Be brief\n[user] Once upon a time\nStory:<no-think>' ] ||
    fail "--reasoning off: $BODY"
serve_stop
serve_start stories --port 0 --chat-template-file "$T/tpl.jinja" --reasoning on
post /apply-template "{$MSGS}"
[ "$CODE" = 200 ] && [ "$(jq_py 'd["prompt"]')" = $'[system] Be brief\n[user] Once upon a time\nStory:' ] ||
    fail "--reasoning on: $BODY"
ok "--reasoning off renders the template with enable_thinking false"
