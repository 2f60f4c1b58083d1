#!/usr/bin/env bash
# Ollama's API on airlock serve: the official ollama npm package (pinned in
# tests/interop/ollama/package-lock.json, installed from the npm registry into
# a temporary folder, as test_serve_openai.sh does for openai) runs chat,
# generate, embed, list, ps, show and version unchanged, with the fixture's
# golden text; then the same keys, scopes, caps and audit as the OpenAI
# routes: no key 401, a key without the scope 403, malformed JSON 400, a body
# over the cap 413, each in Ollama's error shape {"error": "..."}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null

# ---- the ollama client, no keys ----
if command -v node >/dev/null && command -v npm >/dev/null; then
    interop="$AL_SRC/tests/interop/ollama"
    mkdir -p "$T/interop"
    cp "$interop/package.json" "$interop/package-lock.json" "$interop/ollama_check.mjs" "$T/interop/"
    if (cd "$T/interop" && npm ci --no-audit --no-fund --loglevel=error >"$T/npm.log" 2>&1); then
        serve_start stories --port 0 --parallel 2
        node "$T/interop/ollama_check.mjs" "$BASE" stories || fail "ollama client check"
        node "$T/interop/ollama_check.mjs" "$BASE" stories:1.0 >/dev/null || fail "ollama client check with name:tag"
        ok "the ollama client runs unchanged"
        serve_stop
    else
        cat "$T/npm.log"; skip_part "cannot install the ollama package from the npm registry"
    fi
else
    skip_part "node/npm missing"
fi

# ---- keys, scopes, caps, audit ----
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
CHAT=$(tok chatter --scopes chat --models 'stories*')
EMBED=$(tok embedder --scopes embed)
serve_start stories --port 0 --max-body 4096
req() { # req TOKEN METHOD PATH [JSON] -> CODE, BODY
    local args=(-s -w '\n%{http_code}' -X "$2"); [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
    [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    local out; out=$(curl "${args[@]}" "$BASE$3")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
error_is_string() {
    python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["error"], str) and d["error"], d' \
        <<<"$BODY" || fail "not Ollama's error shape: $BODY"
}
G='{"model":"stories","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"num_predict":40}}'
for route in "POST /api/chat" "POST /api/generate" "POST /api/embed" "POST /api/embeddings" "GET /api/tags" \
             "POST /api/show" "GET /api/ps"; do
    set -- $route
    if [ "$1" = POST ]; then req "" "$1" "$2" '{"model":"stories"}'; else req "" "$1" "$2"; fi
    expect_code 401; error_is_string
done
req "" GET /api/version; expect_code 200
ok "every /api route but version needs a key: 401 in Ollama's shape"

req "$EMBED" POST /api/generate "$G"; expect_code 403; error_is_string
echo "$BODY" | qgrep "scope" || fail "403 body: $BODY"
req "$CHAT" POST /api/embed '{"model":"stories","input":"x"}'; expect_code 403; error_is_string
airlock add other:1.0 "$FIX" >/dev/null
req "$CHAT" POST /api/chat '{"model":"other","messages":[{"role":"user","content":"x"}]}'; expect_code 403
echo "$BODY" | qgrep "model" || fail "403 model body: $BODY"
req "$CHAT" POST /api/show '{"model":"other"}'; expect_code 403
req "$CHAT" GET /api/tags; expect_code 200
python3 -c 'import json,sys; n=[m["name"] for m in json.load(sys.stdin)["models"]]; assert n == ["stories"], n' \
    <<<"$BODY" || fail "tags must list only the key's models: $BODY"
ok "a key without the scope or the model: 403; tags lists the key's models only"

req "$CHAT" POST /api/generate "$G"; expect_code 200
[ "$(json_get 'd["response"]' <<<"$BODY")" = "$GOLDEN" ] || fail "golden with a key: $BODY"
req "$EMBED" POST /api/embed '{"model":"stories","input":"x"}'; expect_code 200
ok "allowed keys get their answers (golden text)"

req "$CHAT" POST /api/chat '{"model":"stories",'; expect_code 400; error_is_string
req "$CHAT" POST /api/generate '[1]'; expect_code 400; error_is_string
req "$CHAT" POST /api/generate '{"model":"stories","prompt":"x","stream":"yes"}'; expect_code 400; error_is_string
req "$CHAT" POST /api/generate '{"model":"stories","prompt":"x","options":{"temperature":"hot"}}'; expect_code 400
echo "$BODY" | qgrep "temperature" || fail "bad option: $BODY"
req "$CHAT" POST /api/generate '{"model":"stories","prompt":"x","images":["aGk="]}'; expect_code 400; error_is_string
req "$CHAT" POST /api/chat '{"model":"stories","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}'
expect_code 400
ok "malformed JSON, wrong types, images and tools: 400"

big=$(python3 -c 'print("{\"model\":\"stories\",\"prompt\":\"" + "a" * 8000 + "\"}")')
req "$CHAT" POST /api/generate "$big"; expect_code 413; error_is_string
echo "$BODY" | qgrep "limits.body_bytes" || fail "413 body: $BODY"
ok "a body over --max-body: 413"

# Streaming by default, NDJSON lines, the last one done.
curl -s -D "$T/h" -o "$T/stream" -H "Authorization: Bearer $CHAT" \
    -d '{"model":"stories","prompt":"Once upon a time","options":{"temperature":0,"num_predict":40}}' "$BASE/api/generate"
grep -qi '^content-type: application/x-ndjson' "$T/h" || fail "stream content type: $(cat "$T/h")"
python3 - "$GOLDEN" "$T/stream" <<'PY' || fail "NDJSON stream: $(cat "$T/stream")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[2]).read().splitlines() if l]
assert all(not l["done"] for l in lines[:-1]) and lines[-1]["done"], lines
assert "".join(l["response"] for l in lines) == sys.argv[1]
assert lines[-1]["eval_count"] == 40 and lines[-1]["done_reason"] == "length", lines[-1]
PY
ok "stream defaults to true: NDJSON lines ending with done"

serve_stop
f=$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | head -1)
grep -q '"route":"/api/generate".*"caller":"chatter"\|"caller":"chatter".*"route":"/api/generate"' "$f" \
    || fail "no audit record of /api/generate by chatter: $(tail -3 "$f")"
grep -q '"route":"/api/chat".*"status":401\|"status":401.*"route":"/api/chat"' "$f" || fail "401 not audited"
airlock audit verify >/dev/null || fail "audit verify"
ok "Ollama's routes are audited like the OpenAI ones"
