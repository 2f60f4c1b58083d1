#!/usr/bin/env bash
# Tool calling in /v1/chat/completions (issue 16), through llama.cpp's own
# chat library: the official openai npm SDK (tests/interop/openai_tools.mjs)
# against a small model carrying a real tool-capable template (Qwen2.5's,
# from the pinned llama.cpp's models/templates, with the Qwen2 vocabulary),
# made by airlock-ggufgen; then the refusals: a required call of a model
# whose template cannot call tools, malformed tools, the caps on tools.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v node >/dev/null && command -v npm >/dev/null || skip_test "node/npm missing"
GEN="$AL_BUILD/airlock-ggufgen"
[ -x "$GEN" ] || fail "airlock-ggufgen missing at $GEN"
TMPL="$AL_VOCAB_DIR/templates/Qwen-Qwen2.5-7B-Instruct.jinja"
VOCAB="$AL_VOCAB_DIR/ggml-vocab-qwen2.gguf"
[ -f "$TMPL" ] && [ -f "$VOCAB" ] || fail "llama.cpp's Qwen2.5 template or Qwen2 vocabulary missing under $AL_VOCAB_DIR"

interop="$AL_SRC/tests/interop"
mkdir -p "$T/interop"
cp "$interop/package.json" "$interop/package-lock.json" "$interop/openai_tools.mjs" "$interop/openai_responses.mjs" \
    "$T/interop/"
if ! (cd "$T/interop" && npm ci --no-audit --no-fund --loglevel=error >"$T/npm.log" 2>&1); then
    cat "$T/npm.log"; skip_test "cannot install the openai package from the npm registry"
fi

"$GEN" --out "$T/qt.gguf" --vocab "$VOCAB" --chat-template-file "$TMPL" --embd 32 --name qwen-tools >/dev/null
airlock add qt:1 "$T/qt.gguf" >/dev/null
airlock add stories:1 "$(fixture)" >/dev/null
serve_start qt --port 0 --ctx 2048  # the fixture's tool prompt (its 512-token vocabulary) is over 512 tokens

node "$T/interop/openai_tools.mjs" "$BASE" qt || fail "openai SDK tool calling"
ok "openai SDK: tool calls (required, named, auto, none; streaming and not; a tool result sent back)"
node "$T/interop/openai_responses.mjs" "$BASE" stories qt || fail "openai SDK responses"
ok "openai SDK: responses.create (text and function calls, streaming and not)"

W='{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}'
MSG='"messages":[{"role":"user","content":"hi"}]'

# A model without a tool-capable template: a required call is a clear 400,
# tool_choice none and auto answer in text.
post /v1/chat/completions "{\"model\":\"stories\",$MSG,\"tools\":[$W],\"tool_choice\":\"required\",\"max_tokens\":4}"
expect_code 400
[ "$(jq_py 'd["error"]["code"]')" = tools_unsupported ] || fail "no tools_unsupported code: $BODY"
[ "$(jq_py 'd["error"]["param"]')" = tool_choice ] || fail "param is not tool_choice: $BODY"
qgrep "cannot\|can call tools" <<<"$BODY" || fail "message does not say why: $BODY"
post /v1/chat/completions "{\"model\":\"stories\",$MSG,\"tools\":[$W],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"max_tokens\":4}"
expect_code 400
for choice in '"none"' '"auto"'; do
    post /v1/chat/completions "{\"model\":\"stories\",$MSG,\"tools\":[$W],\"tool_choice\":$choice,\"max_tokens\":4,\"temperature\":0}"
    expect_code 200
    [ "$(jq_py 'd["choices"][0]["finish_reason"]')" != tool_calls ] || fail "stories called a tool: $BODY"
done
ok "a template that cannot call tools: 400 only when a call is required"

# Malformed tools and tool_choice: 400 naming the field.
bad() { # PARAM FIELDS
    post /v1/chat/completions "{\"model\":\"qt\",$MSG,$2,\"max_tokens\":4}"
    expect_code 400
    [ "$(jq_py 'd["error"]["param"]')" = "$1" ] || fail "expected param $1: $BODY"
}
bad tools '"tools":{"type":"function"}'
bad tools '"tools":[{"type":"retrieval"}]'
bad tools '"tools":[{"type":"function","function":{"name":"bad name"}}]'
bad tools '"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]'
bad tools "\"tools\":[$W,$W]"
bad tool_choice "\"tools\":[$W],\"tool_choice\":\"always\""
bad tool_choice "\"tools\":[$W],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"
bad tool_choice '"tool_choice":"required"'
bad parallel_tool_calls "\"tools\":[$W],\"parallel_tool_calls\":\"yes\""
bad tools "\"tools\":[$W],\"response_format\":{\"type\":\"json_object\"}"
post /v1/completions "{\"model\":\"qt\",\"prompt\":\"x\",\"tools\":[$W],\"max_tokens\":2}"
expect_code 400
ok "malformed tools, tool_choice and parallel_tool_calls: 400 with the field named"

# /v1/responses: what it does not serve is a 400 naming the field.
post /v1/responses '{"model":"stories","input":[]}'
expect_code 400
[ "$(jq_py 'd["error"]["param"]')" = input ] || fail "empty input: $BODY"
post /v1/responses '{"model":"stories","input":[{"type":"image","url":"x"}]}'
expect_code 400
post /v1/responses '{"model":"stories","input":"x","tools":[{"type":"web_search"}]}'
expect_code 400
[ "$(jq_py 'd["error"]["param"]')" = tools ] || fail "web_search tool: $BODY"
post /v1/responses '{"model":"stories","input":"x","text":{"format":{"type":"json_schema"}}}'
expect_code 400
post /v1/responses "{\"model\":\"stories\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],\"tool_choice\":\"required\"}"
expect_code 400
[ "$(jq_py 'd["error"]["code"]')" = tools_unsupported ] || fail "responses required call on stories: $BODY"
ok "/v1/responses refusals"

# A bundle's template file overrides the GGUF's: the fixture (no template)
# with Qwen2.5's as chat_template.jinja calls a tool, schema-valid.
cp "$TMPL" "$T/chat_template.jinja"
WE='{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","enum":["Paris","London"]}},"required":["city"]}}}'
airlock add storytools:1 "$(fixture)" "$T/chat_template.jinja" >/dev/null
post /v1/chat/completions "{\"model\":\"storytools\",$MSG,\"tools\":[$WE],\"tool_choice\":\"required\",\"max_tokens\":200,\"temperature\":0}"
expect_code 200
[ "$(jq_py 'd["choices"][0]["finish_reason"]')" = tool_calls ] || fail "template file: no call: $BODY"
[ "$(jq_py 'd["choices"][0]["message"]["tool_calls"][0]["function"]["name"]')" = get_weather ] || fail "template file: $BODY"
jq_py 'json.loads(d["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])' >/dev/null \
    || fail "template file: arguments are not JSON: $BODY"
ok "a version's chat_template.jinja overrides the GGUF's (the fixture calls a tool)"

# Caps: the number of tools and their size.
many=$(python3 -c 'import json; print(json.dumps([{"type":"function","function":{"name":"f%d" % i}} for i in range(129)]))')
post /v1/chat/completions "{\"model\":\"qt\",$MSG,\"tools\":$many,\"max_tokens\":4}"
expect_code 400
qgrep "at most 128" <<<"$BODY" || fail "tool count cap not named: $BODY"
big=$(python3 -c 'import json; print(json.dumps([{"type":"function","function":{"name":"f","description":"x" * 300000}}]))')
printf '{"model":"qt",%s,"tools":%s,"max_tokens":4}' "$MSG" "$big" >"$T/big.json"
out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$BASE/v1/chat/completions")
CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
expect_code 400
qgrep "262144" <<<"$BODY" || fail "tool size cap not named: $BODY"
ok "caps: at most 128 tools, 256 KiB of them"
