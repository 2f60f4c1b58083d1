#!/usr/bin/env bash
# llama-server's chat behaviours on `airlock serve` (issue 17): the prompt's
# token count (/v1/chat/completions/input_tokens), continue_final_message
# (the answer goes on from the last assistant message; refused with
# add_generation_prompt, as llama-server refuses it), two assistant messages
# at the end refused, --reasoning off (enable_thinking false in the
# template) and return_progress (prompt_progress chunks per batch). Real
# server on loopback, curl, the fixture model, a Jinja template of our own
# so that each prompt is known exactly.
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
# the Responses API's: the same conversation as instructions and input
post /v1/responses/input_tokens '{"instructions":"Be brief","input":"Once upon a time"}'
[ "$CODE" = 200 ] && [ "$(jq_py 'd["input_tokens"]')" = "$N" ] || fail "responses input_tokens (want $N): $BODY"
post /responses/input_tokens '{"input":"x","previous_response_id":"resp_1"}'
expect_code 400
post /v1/responses/input_tokens '{"input":7}'
expect_code 400
ok "/v1/chat/completions/input_tokens and /v1/responses/input_tokens count the prompt's tokens"

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
serve_stop

# ---- 4. return_progress: prompt_progress chunks while a stream reads its prompt ----
serve_start stories --port 0 --batch 16 --parallel 1
PB=$(python3 -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "This is a test" * 10}], "max_tokens": 2, "stream": True, "return_progress": True, "stream_options": {"include_usage": True}}))')
check_progress() { # FILE REUSED: llama-server's sequence of progress chunks
    python3 - "$1" "$2" <<'PY'
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: {")]
pp = [e["prompt_progress"] for e in ev if "prompt_progress" in e]
usage = [e["usage"] for e in ev if e.get("usage")][0]
assert all(e["choices"] == [] for e in ev if "prompt_progress" in e), ev
total = usage["prompt_tokens"]
assert pp and all(p["total"] == total for p in pp), (pp, usage)
assert pp[0]["cache"] == pp[0]["processed"], pp
assert all(p["cache"] == pp[0]["cache"] for p in pp), pp
assert all(b["processed"] > a["processed"] for a, b in zip(pp, pp[1:])), pp
assert pp[-1]["processed"] == total, pp
new = total - pp[0]["cache"]
assert len(pp) == 1 + (new + 15) // 16, (len(pp), new, pp)
assert (pp[0]["cache"] > 0) == (sys.argv[2] == "1"), pp
# progress comes before the answer's text
first_text = next(i for i, e in enumerate(ev) if e["choices"] and e["choices"][0]["delta"].get("content"))
assert max(i for i, e in enumerate(ev) if "prompt_progress" in e) < first_text, ev
PY
}
curl -sN -d "$PB" "$BASE/v1/chat/completions" >"$T/p1"
check_progress "$T/p1" 0 || fail "progress, fresh: $(cat "$T/p1")"
curl -sN -d "$PB" "$BASE/v1/chat/completions" >"$T/p2"
check_progress "$T/p2" 1 || fail "progress, prompt reused: $(cat "$T/p2")"
# without it, or not streamed: no progress
curl -sN -d "$(printf '%s' "$PB" | sed 's/"return_progress": true/"return_progress": false/')" "$BASE/v1/chat/completions" >"$T/p3"
! grep -q prompt_progress "$T/p3" || fail "progress without return_progress"
post /v1/chat/completions "$(printf '%s' "$PB" | sed 's/"stream": true/"stream": false/')"
expect_code 200
! grep -q prompt_progress <<<"$BODY" || fail "progress in a whole answer"
ok "return_progress streams prompt_progress per batch of the prompt, as llama-server"
