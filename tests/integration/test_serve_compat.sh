#!/usr/bin/env bash
# OpenAI-compatible behaviour that clients written for llama-server rely on
# (issue 17): the routes without /v1, with the scopes and audit of their /v1
# routes. Real server on loopback, curl as the client, the fixture model.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null

# ---- 1. routes without /v1: the same handlers, scopes and audit ----
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
CHAT=$(tok chatter --scopes chat)
EMBED=$(tok embedder --scopes embed)
serve_start stories --port 0 --parallel 2
# code KEY PATH [JSON]: the status into stdout, the body into $T/body.
code() {
    local k=$1 p=$2; shift 2
    if [ $# -gt 0 ]; then
        curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $k" -H 'Content-Type: application/json' \
            -d "$1" "$BASE$p"
    else
        curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $k" "$BASE$p"
    fi
}
body() { json_get "$1" <"$T/body"; }
CC='{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":4,"temperature":0}'
[ "$(code "$CHAT" /chat/completions "$CC")" = 200 ] || fail "/chat/completions: $(cat "$T/body")"
[ "$(body 'd["object"]')" = chat.completion ] || fail "/chat/completions object: $(cat "$T/body")"
[ "$(code "$CHAT" /completions '{"prompt":"Once upon a time","max_tokens":4,"temperature":0}')" = 200 ] ||
    fail "/completions: $(cat "$T/body")"
[ "$(body 'd["object"]')" = text_completion ] || fail "/completions object: $(cat "$T/body")"
[ "$(code "$CHAT" /responses '{"input":"Once upon a time","max_output_tokens":4}')" = 200 ] ||
    fail "/responses: $(cat "$T/body")"
[ "$(body 'd["object"]')" = response ] || fail "/responses object: $(cat "$T/body")"
[ "$(code "$EMBED" /embeddings '{"input":"a ball"}')" = 200 ] || fail "/embeddings: $(cat "$T/body")"
[ "$(body 'd["data"][0]["object"]')" = embedding ] || fail "/embeddings body: $(cat "$T/body")"
[ "$(code "$CHAT" /models)" = 200 ] || fail "/models: $(cat "$T/body")"
[ "$(body 'd["data"][0]["id"]')" = stories ] || fail "/models body: $(cat "$T/body")"
[ "$(code "$CHAT" /models/stories)" = 200 ] || fail "/models/stories: $(cat "$T/body")"
# The same scopes as their /v1 routes: an embed key may not chat, a chat key may not embed, no key is 401.
[ "$(code "$EMBED" /chat/completions "$CC")" = 403 ] || fail "embed key on /chat/completions: $(cat "$T/body")"
[ "$(code "$EMBED" /completions '{"prompt":"x","max_tokens":1}')" = 403 ] || fail "embed key on /completions"
[ "$(code "$EMBED" /responses '{"input":"x"}')" = 403 ] || fail "embed key on /responses"
[ "$(code "$CHAT" /embeddings '{"input":"x"}')" = 403 ] || fail "chat key on /embeddings"
[ "$(code "" /chat/completions "$CC")" = 401 ] || fail "no key on /chat/completions"
[ "$(code "" /models)" = 401 ] || fail "no key on /models"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/chat/completions")" = 405 ] || fail "GET /chat/completions"
# One label per route: metrics and the audit name the /v1 route.
curl -s "$BASE/metrics" -H "Authorization: Bearer $(tok prom --scopes metrics)" >"$T/metrics"
qgrep 'airlock_requests_total{route="/v1/chat/completions",status="200"} 1' "$T/metrics" ||
    fail "the alias is not counted as /v1/chat/completions: $(grep requests_total "$T/metrics")"
qgrep 'route="/chat/completions"' "$T/metrics" && fail "the alias has a metrics label of its own"
serve_stop
airlock audit tail -n 50 >"$T/audit"
python3 - "$T/audit" <<'PY' || fail "audit records of the aliases"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
routes = [(r["route"], r["status"], r["caller"]) for r in recs]
for want in [("/v1/chat/completions", 200, "chatter"), ("/v1/completions", 200, "chatter"),
             ("/v1/responses", 200, "chatter"), ("/v1/embeddings", 200, "embedder"),
             ("/v1/models", 200, "chatter"), ("/v1/chat/completions", 403, "embedder"),
             ("/v1/embeddings", 403, "chatter")]:
    assert want in routes, (want, routes)
PY
airlock audit verify | qgrep 'intact' || fail "audit verify"
ok "routes without /v1 are aliases: same handlers, scopes, metrics label and audit"

# The parts below run without keys: a store of their own.
export AIRLOCK_HOME="$T/home2"
airlock add stories:1.0 "$FIX" >/dev/null

# ---- 2. "model": null is no model named; the model list carries aliases and tags ----
airlock tag stories:1.0 latest >/dev/null
serve_start stories --port 0 --no-audit
post /v1/chat/completions '{"model":null,"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":2}'
expect_code 200
[ "$(jq_py 'd["model"]')" = stories ] || fail "model null: $BODY"
post /v1/completions '{"model":null,"prompt":"Once upon a time","max_tokens":2}'
expect_code 200
post /v1/embeddings '{"model":null,"input":"a ball"}'
expect_code 200
post /v1/chat/completions '{"model":7,"messages":[{"role":"user","content":"x"}],"max_tokens":2}'
expect_code 400
get /v1/models
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
m = json.load(sys.stdin)["data"][0]
assert m["id"] == "stories", m
assert set(m["tags"]) == {"1.0", "latest"}, m
assert "stories:1.0" in m["aliases"] and "stories:latest" in m["aliases"], m
assert any(a.startswith("stories@sha256:") for a in m["aliases"]), m
' || fail "aliases and tags in /v1/models: $BODY"
get /v1/models/stories:1.0
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["id"] == "stories:1.0" and "stories" in m["aliases"] and "stories:1.0" not in m["aliases"], m
' || fail "aliases of /v1/models/stories:1.0: $BODY"
serve_stop
ok "model null is the default model; /v1/models lists aliases and tags"

# ---- 3. /tokenize with_pieces: each piece as generation writes it, its leading space kept ----
serve_start stories --port 0 --no-audit
post /tokenize '{"content":"Once upon a time","with_pieces":true}'
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
toks = json.load(sys.stdin)["tokens"]
pieces = [t["piece"] for t in toks]
assert all(isinstance(p, str) for p in pieces), pieces
# SentencePiece: the text gets a leading space, and every word its own
assert "".join(pieces) == " Once upon a time", pieces
assert pieces[0].startswith(" ") and sum(p.startswith(" ") for p in pieces) == 4, pieces
' || fail "with_pieces: $BODY"
# The ids are those of tokenizing without pieces, and detokenizing them gives the text back.
post /tokenize '{"content":"Once upon a time"}'
IDS=$(jq_py 'd["tokens"]')
post /detokenize "{\"tokens\":$IDS}"
[ "$(jq_py 'd["content"]')" = "Once upon a time" ] || fail "detokenize: $BODY"
ok "/tokenize with_pieces keeps each piece's leading space"

# ---- 4. response_format with an invalid schema: 400, never a generic object ----
for rf in '{"type":"json_object","schema":123}' '{"type":"json_object","schema":{"type":123}}' \
          '{"type":"json_object","schema":{"type":"hiccup"}}' '{"type":"json_schema","json_schema":{"schema":123}}' \
          '{"type":"json_schema","json_schema":{"schema":{"type":"hiccup"}}}' '{"type":"sound"}' '123'; do
    for route in /v1/chat/completions /v1/completions; do
        if [ "$route" = /v1/completions ]; then
            post $route "{\"prompt\":\"x\",\"max_tokens\":4,\"response_format\":$rf}"
        else
            post $route "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":4,\"response_format\":$rf}"
        fi
        expect_code 400
        [ "$(jq_py 'd["error"]["param"]')" = response_format ] || fail "$rf on $route: $BODY"
    done
done
# A valid schema given to json_object is followed, as llama-server does.
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":8,"temperature":0,
  "response_format":{"type":"json_object","schema":{"const":"42"}}}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["message"]["content"].strip()')" = '"42"' ] || fail "json_object with schema: $BODY"
ok "response_format with an invalid schema gets 400; json_object's schema is followed"

# ---- 5. text parts joined as llama.cpp joins them: one newline between parts ----
prompt_tokens() { post /v1/chat/completions "$1"; expect_code 200; jq_py 'd["usage"]["prompt_tokens"]'; }
A=$(prompt_tokens '{"messages":[{"role":"user","content":[{"type":"text","text":"Once upon"},{"type":"text","text":"a time"}]}],"max_tokens":1}')
B=$(prompt_tokens '{"messages":[{"role":"user","content":"Once upon\na time"}],"max_tokens":1}')
C=$(prompt_tokens '{"messages":[{"role":"user","content":"Once upona time"}],"max_tokens":1}')
[ "$A" = "$B" ] || fail "text parts ($A tokens) are not joined with a newline ($B tokens)"
[ "$A" != "$C" ] || fail "text parts are joined with nothing between them ($A = $C tokens)"
A=$(prompt_tokens '{"messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"Once"}]}],"max_tokens":1}')
B=$(prompt_tokens '{"messages":[{"role":"user","content":"Once"}],"max_tokens":1}')
[ "$A" = "$B" ] || fail "an empty first part adds a newline ($A against $B tokens)"
serve_stop
ok "text parts are joined with a newline, as llama-server joins them"

# ---- 6. server-wide sampling defaults: --seed, --temp, --n-predict ----
airlock serve --help | qgrep -- '--seed N' || fail "serve --help lacks --seed"
airlock serve --help | qgrep -- '--temp T' || fail "serve --help lacks --temp"
airlock serve --help | qgrep -- '--n-predict N' || fail "serve --help lacks --n-predict"
expect_status 2 airlock serve stories --seed 1.5
expect_status 2 airlock serve stories --temp 3
expect_status 2 airlock serve stories --n-predict 0x10
text_of() { post /v1/completions "$1"; expect_code 200; jq_py 'd["choices"][0]["text"]'; }
# --temp 0: a request without a temperature is greedy: the fixture's golden text.
serve_start stories --port 0 --no-audit --temp 0
G=$(text_of '{"prompt":"Once upon a time","max_tokens":40}')
[ "$G" = "$GOLDEN" ] || fail "--temp 0 is not greedy: '$G'"
# ... and a request's own temperature still wins (a seed of its own makes that reproducible).
A=$(text_of '{"prompt":"Once upon a time","max_tokens":32,"temperature":1.5,"seed":7}')
B=$(text_of '{"prompt":"Once upon a time","max_tokens":32,"temperature":1.5,"seed":7}')
[ "$A" = "$B" ] && [ "$A" != "$GOLDEN" ] || fail "the request's temperature: '$A' '$B'"
serve_stop
# --seed 42: requests without a seed are reproducible, and the same as asking for seed 42.
serve_start stories --port 0 --no-audit --seed 42 --n-predict 20
R='{"prompt":"Once upon a time","temperature":1.2'
A=$(text_of "$R}")
[ "$(jq_py 'd["usage"]["completion_tokens"]')" -le 20 ] || fail "--n-predict 20: $BODY"
B=$(text_of "$R}")
C=$(text_of "$R,\"seed\":42}")
[ "$A" = "$B" ] && [ "$A" = "$C" ] || fail "--seed 42: '$A' / '$B' / '$C'"
# --n-predict is the max_tokens of a request without one: 20 tokens, never cut short by an end token.
post /v1/completions '{"prompt":"Once upon a time","ignore_eos":true}'
expect_code 200
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 20 ] || fail "--n-predict 20 on completions: $BODY"
post /v1/chat/completions '{"messages":[{"role":"user","content":"Once"}],"ignore_eos":true}'
expect_code 200
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 20 ] || fail "--n-predict 20 on chat: $BODY"
post /v1/completions '{"prompt":"Once upon a time","ignore_eos":true,"max_tokens":3}'
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 3 ] || fail "max_tokens over --n-predict: $BODY"
post /api/generate '{"model":"stories","prompt":"Once upon a time","stream":false,"options":{"temperature":1.2}}'
expect_code 200
[ "$(jq_py 'd["eval_count"]')" -le 20 ] || fail "--n-predict on /api/generate: $BODY"
[ "$(jq_py 'd["response"]')" = "$A" ] || fail "--seed on /api/generate: $BODY against '$A'"
serve_stop
# Over --max-tokens, --n-predict is held to it.
serve_start stories --port 0 --no-audit --n-predict 50 --max-tokens 8
post /v1/completions '{"prompt":"Once upon a time","ignore_eos":true}'
expect_code 200
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 8 ] || fail "--n-predict over --max-tokens: $BODY"
serve_stop
ok "--seed, --temp and --n-predict are the defaults of requests that do not set them"

# ---- 7. --chat-template NAME|JINJA and --chat-template-file: any Jinja, capped ----
# prompt_is TEXT BODY: the chat BODY's prompt has as many tokens as TEXT rendered by hand.
prompt_is() {
    local want
    post /tokenize "$(python3 -c 'import json,sys; print(json.dumps({"content": sys.argv[1], "add_special": True}))' "$1")"
    want=$(jq_py 'len(d["tokens"])')
    post /v1/chat/completions "$2"
    expect_code 200
    [ "$(jq_py 'd["usage"]["prompt_tokens"]')" = "$want" ] || fail "prompt of $2 is not '$1' ($want tokens): $BODY"
}
CHAT='{"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Once upon a time"}],"max_tokens":2}'
TPL='{#- a template longer than the 63 bytes of a builtin name -#}{% for m in messages %}[{{ m.role }}] {{ m.content }}
{% endfor %}{% if add_generation_prompt %}Story:{% endif %}'
WANT=$'[system] Be brief\n[user] Once upon a time\nStory:'
serve_start stories --port 0 --no-audit --chat-template "$TPL"
prompt_is "$WANT" "$CHAT"
qgrep "the server's chat template" "$SERVE_LOG" || fail "the override is not logged"
serve_stop
printf '%s' "$TPL" >"$T/tpl.jinja"
serve_start stories --port 0 --no-audit --chat-template-file "$T/tpl.jinja"
prompt_is "$WANT" "$CHAT"
serve_stop
# Plain text is Jinja too (llama-server's own test uses this one): the prompt is the text.
serve_start stories --port 0 --no-audit --chat-template "This is not a chat template, it is"
prompt_is "This is not a chat template, it is" "$CHAT"
serve_stop
# From the config file, as a key of its own.
printf '{"chat_template_file": "%s"}\n' "$T/tpl.jinja" >"$T/serve.json"
serve_start stories --port 0 --no-audit --config "$T/serve.json"
prompt_is "$WANT" "$CHAT"
serve_stop
# A builtin name is still the format of models without a template (the fixture has none).
serve_start stories --port 0 --no-audit --chat-template llama3
prompt_is $'<|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nOnce upon a time<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' "$CHAT"
serve_stop
# Refused at start, each with its reason: over the cap, not parsing, no file, empty.
python3 -c 'print("{# " + "x" * 70000 + " #}")' >"$T/big.jinja"
expect_status 4 airlock serve stories --port 0 --chat-template-file "$T/big.jinja"
echo "$OUT" | qgrep "over the cap of 65536 bytes (AL_LIMIT_CHAT_TEMPLATE)" || fail "big template: $OUT"
expect_status 4 airlock serve stories --port 0 --chat-template "{% for m in messages %}{{ m.content }}"
echo "$OUT" | qgrep "chat template does not parse" || fail "broken template: $OUT"
expect_status 7 airlock serve stories --port 0 --chat-template-file "$T/missing.jinja"
echo "$OUT" | qgrep "missing.jinja" || fail "missing file: $OUT"
: >"$T/empty.jinja"
expect_status 4 airlock serve stories --port 0 --chat-template-file "$T/empty.jinja"
echo "$OUT" | qgrep "empty" || fail "empty template: $OUT"
ok "--chat-template and --chat-template-file take any Jinja (capped, checked at start); builtin names as before"

# ---- 8. n > 1: several choices, streamed with their index; at most AL_LIMIT_CHOICES ----
# One sequence: the choices run one after the other, each as a request of its own would.
serve_start stories --port 0 --no-audit --parallel 1
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"n":3,"temperature":2,"seed":7}'
expect_code 200
printf '%s' "$BODY" >"$T/n3.json"
python3 - "$T/n3.json" <<'PY' || fail "n=3 on completions: $(cat "$T/n3.json")"
import json, sys
d = json.load(open(sys.argv[1]))
ch = d["choices"]
assert [c["index"] for c in ch] == [0, 1, 2], ch
assert all(c["text"] and c["finish_reason"] in ("length", "stop") for c in ch), ch
assert len({c["text"] for c in ch}) == 3, ch          # a fixed seed still gives each choice its own
u = d["usage"]
assert 3 <= u["completion_tokens"] <= 72 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
PY
# Choice i under seed S is what a request with seed S+i gives.
for i in 0 1 2; do
    post /v1/completions "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":2,\"seed\":$((7 + i))}"
    [ "$(jq_py 'd["choices"][0]["text"]')" = "$(json_get "d['choices'][$i]['text']" <"$T/n3.json")" ] ||
        fail "choice $i is not the text of seed $((7 + i)): $BODY"
done
serve_stop
serve_start stories --port 0 --no-audit --parallel 3
# Greedy: every choice is the golden text.
post /v1/chat/completions '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":6,"n":2,"temperature":0}'
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
ch = json.load(sys.stdin)["choices"]
assert [c["index"] for c in ch] == [0, 1] and ch[0]["message"]["content"] == ch[1]["message"]["content"], ch
assert all(c["message"]["role"] == "assistant" for c in ch), ch
' || fail "n=2 on chat: $BODY"
# Streamed: each chunk names its choice; each choice has its role chunk, its text and its finish; one [DONE].
curl -sN "$BASE/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"n":3,"stream":true,
         "stream_options":{"include_usage":true},"temperature":0}' >"$T/n.sse"
python3 - "$T/n.sse" <<'PY' || fail "n=3 streamed: $(cat "$T/n.sse")"
import json, sys
lines = [l for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert lines[-1] == "data: [DONE]" and sum(l == "data: [DONE]" for l in lines) == 1, lines[-3:]
events = [json.loads(l[6:]) for l in lines[:-1]]
text, roles, finish = {}, {}, {}
for e in events:
    if not e["choices"]:
        usage = e["usage"]
        continue
    c = e["choices"][0]
    i = c["index"]
    if "role" in c["delta"]:
        roles[i] = c["delta"]["role"]
    text[i] = text.get(i, "") + (c["delta"].get("content") or "")
    if c["finish_reason"]:
        finish[i] = c["finish_reason"]
assert sorted(roles) == [0, 1, 2] and sorted(finish) == [0, 1, 2], (roles, finish)
assert text[0] and text[0] == text[1] == text[2], text         # greedy: the same text
assert usage["completion_tokens"] == 3 * usage["completion_tokens"] // 3 and usage["completion_tokens"] >= 3, usage
assert events[-1]["choices"] == [], events[-1]                   # usage comes last
PY
# Streamed completions too.
curl -sN "$BASE/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":5,"n":2,"stream":true}' >"$T/n2.sse"
python3 - "$T/n2.sse" <<'PY' || fail "n=2 streamed completions: $(cat "$T/n2.sse")"
import json, sys
lines = [l for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: {")]
idx = {json.loads(l[6:])["choices"][0]["index"] for l in lines}
assert idx == {0, 1}, idx
PY
# The cap: n above 8, 0, or not an integer is a 400 naming n; tools or Responses with n > 1 too.
for n in 9 0 -1 1.5 '"2"'; do
    post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"n\":$n}"
    expect_code 400
    [ "$(jq_py 'd["error"]["param"]')" = n ] || fail "n=$n: $BODY"
done
post /v1/completions '{"prompt":"x","max_tokens":2,"n":9}'
expect_code 400
jq_py 'd["error"]["message"]' | qgrep "from 1 to 8 (AL_LIMIT_CHOICES)" || fail "n=9 message: $BODY"
# The finish path counts every choice's tokens.
post /v1/completions '{"prompt":"Once upon a time","max_tokens":4,"n":2,"ignore_eos":true}'
expect_code 200
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 8 ] || fail "n=2 usage: $BODY"
curl -s "$BASE/metrics" >"$T/m"
qgrep '^airlock_generated_tokens_total' "$T/m" || fail "no token metric"
serve_stop
ok "n > 1 gives n choices (streamed with their index), capped at 8"

# ---- 9. CORS: --cors-origins answers preflights from the origins it names, and only those ----
GOOD=http://localhost:5173
EVIL=http://evil.example
# preflight ORIGIN PATH: the status into $CODE, the headers into $T/h.
preflight() {
    CODE=$(curl -s -o "$T/pre.body" -D "$T/h" -w '%{http_code}' -X OPTIONS "$BASE$2" -H "Origin: $1" \
        -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type, x-stainless-os')
}
hdr() { grep -i "^$1:" "$T/h" | cut -d' ' -f2- | tr -d '\r'; }
# Off by default: no preflight is answered, no response carries a CORS header.
serve_start stories --port 0 --no-audit
preflight "$GOOD" /v1/chat/completions
[ "$CODE" = 403 ] || fail "a preflight without --cors-origins: $CODE"
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "CORS header without --cors-origins: $(cat "$T/h")"
curl -s -D "$T/h" -o /dev/null "$BASE/v1/models" -H "Origin: $GOOD"
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "CORS header on a response without --cors-origins"
serve_stop
expect_status 2 airlock serve stories --port 0 --cors-origins "http://localhost:5173/app"
echo "$OUT" | qgrep "is not '\*' or scheme://host" || fail "an origin with a path: $OUT"
expect_status 2 airlock serve stories --port 0 --cors-origins "localhost"
serve_start stories --port 0 --no-audit --cors-origins "$GOOD, http://127.0.0.1:8080"
preflight "$GOOD" /v1/chat/completions
[ "$CODE" = 204 ] || fail "preflight from $GOOD: $CODE $(cat "$T/pre.body")"
[ "$(hdr Access-Control-Allow-Origin)" = "$GOOD" ] || fail "Allow-Origin: $(cat "$T/h")"
hdr Access-Control-Allow-Methods | qgrep POST || fail "Allow-Methods: $(cat "$T/h")"
hdr Access-Control-Allow-Headers | qgrep x-stainless-os || fail "Allow-Headers: $(cat "$T/h")"
[ "$(hdr Vary)" = Origin ] || fail "Vary: $(cat "$T/h")"
preflight http://127.0.0.1:8080 /chat/completions
[ "$CODE" = 204 ] || fail "preflight from the second origin on an alias: $CODE"
# A disallowed origin: refused, and no CORS header that would let its page read anything.
preflight "$EVIL" /v1/chat/completions
[ "$CODE" = 403 ] || fail "preflight from $EVIL: $CODE"
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "$EVIL got a CORS header: $(cat "$T/h")"
json_get 'd["error"]["code"]' <"$T/pre.body" | qgrep cors_denied || fail "refusal body: $(cat "$T/pre.body")"
preflight "${GOOD}0" /v1/chat/completions
[ "$CODE" = 403 ] || fail "an origin that only starts like an allowed one: $CODE"
# The requests themselves: the allowed origin's answers carry the header (errors too), others none.
curl -s -D "$T/h" -o "$T/b" "$BASE/v1/completions" -H "Origin: $GOOD" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":3}'
[ "$(hdr Access-Control-Allow-Origin)" = "$GOOD" ] || fail "response to $GOOD: $(cat "$T/h")"
curl -sN -D "$T/h" -o "$T/b" "$BASE/v1/completions" -H "Origin: $GOOD" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":3,"stream":true}'
[ "$(hdr Access-Control-Allow-Origin)" = "$GOOD" ] || fail "streamed response to $GOOD: $(cat "$T/h")"
curl -s -D "$T/h" -o "$T/b" "$BASE/v1/completions" -H "Origin: $GOOD" -d '{"prompt":7}'
[ "$(hdr Access-Control-Allow-Origin)" = "$GOOD" ] || fail "error response to $GOOD: $(cat "$T/h")"
curl -s -D "$T/h" -o "$T/b" "$BASE/v1/completions" -H "Origin: $EVIL" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":3}'
[ -z "$(hdr Access-Control-Allow-Origin)" ] || fail "response to $EVIL has a CORS header: $(cat "$T/h")"
# OPTIONS on an unknown path is still 404; a plain OPTIONS (no preflight) is refused.
[ "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$BASE/nothing" -H "Origin: $GOOD")" = 404 ] || fail "OPTIONS /nothing"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$BASE/v1/models" -H "Origin: $GOOD")" = 403 ] ||
    fail "OPTIONS without Access-Control-Request-Method"
serve_stop
# A key is still needed after the preflight: CORS opens no door that keys close.
export AIRLOCK_HOME="$T/home"
serve_start stories --port 0 --no-audit --cors-origins '*'
preflight "$EVIL" /v1/models
[ "$CODE" = 204 ] && [ "$(hdr Access-Control-Allow-Origin)" = '*' ] || fail "'*' preflight: $CODE $(cat "$T/h")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/models" -H "Origin: $EVIL")" = 401 ] ||
    fail "a cross-origin request without a key"
serve_stop
ok "--cors-origins: preflights answered for the named origins only, their responses marked; keys still needed"

# ---- the same from the config file (a service runs serve --config) ----
export AIRLOCK_HOME="$T/home2"
printf '{"cors_origins": ["%s"], "sampling": {"temperature": 0, "n_predict": 40}}\n' "$GOOD" >"$T/c.json"
serve_start stories --port 0 --no-audit --config "$T/c.json"
G=$(text_of '{"prompt":"Once upon a time"}')
[ "$G" = "$GOLDEN" ] || fail "config sampling: '$G'"
preflight "$GOOD" /v1/completions
[ "$CODE" = 204 ] || fail "config cors_origins: $CODE"
preflight "$EVIL" /v1/completions
[ "$CODE" = 403 ] || fail "config cors_origins lets $EVIL in: $CODE"
serve_stop
for bad in '{"sampling": {"temperature": 5}}' '{"sampling": {"seed": "x"}}' '{"sampling": {"top_k": 3}}' \
           '{"cors_origins": 7}' '{"cors_origins": ["a,b"]}'; do
    printf '%s\n' "$bad" >"$T/c.json"
    expect_status 4 airlock serve stories --port 0 --config "$T/c.json"
done
printf '{"cors_origins": "ftp//x"}\n' >"$T/c.json"
expect_status 2 airlock serve stories --port 0 --config "$T/c.json"
ok "cors_origins and sampling in the config file"
