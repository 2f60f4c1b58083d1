#!/usr/bin/env bash
# llama-server's request fields on `airlock serve` (issue 17): token ids in
# /completion answers (return_tokens; "tokens" of every streamed piece),
# n_probs while streaming, response_fields, batches of prompts, stop_type
# "word", logit_bias in both forms, and the top-level json_schema; each with
# its caps and malformed values refused. Real server on loopback, curl as the
# client, the fixture model, greedy decoding (temperature 0) so that every
# answer is known.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
CHAT=$(airlock apikey create chatter --scopes chat --json | json_get 'd["token"]')
# code METHOD PATH [JSON]: the status into stdout, the body into $T/body.
code() {
    local m=$1 p=$2; shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $CHAT" \
        ${1:+-H 'Content-Type: application/json' -d "$1"} "$BASE$p"
}
body() { json_get "$1" <"$T/body"; }
stream() { curl -sN -H "Authorization: Bearer $CHAT" -d "$1" "$BASE$2" >"$T/sse"; }
# refused JSON MESSAGE [PATH]: a 400 whose error message holds MESSAGE.
refused() {
    local c; c=$(code POST "${3:-/completion}" "$1")
    [ "$c" = 400 ] || fail "$1: expected 400, got $c: $(cat "$T/body")"
    body 'd["error"]["message"]' | qgrep -F "$2" || fail "$1: no '$2' in $(cat "$T/body")"
}
serve_start stories --port 0 --parallel 2 --no-audit
CP='"prompt":"Once upon a time","n_predict":8,"temperature":0'

# ---- 1. token ids: return_tokens, and the tokens of every streamed piece ----
[ "$(code POST /completion "{$CP,\"return_tokens\":true}")" = 200 ] || fail "return_tokens: $(cat "$T/body")"
cp "$T/body" "$T/whole.json"
IDS=$(body 'json.dumps(d["tokens"])')
[ "$(body 'len(d["tokens"]) == d["tokens_predicted"] == 8 and all(type(t) is int for t in d["tokens"])')" = True ] ||
    fail "return_tokens: $(cat "$T/body")"
[ "$(code POST /detokenize "{\"tokens\":$IDS}")" = 200 ] || fail "detokenize: $(cat "$T/body")"
[ "$(body 'd["content"]')" = "$(json_get 'd["content"]' <"$T/whole.json")" ] ||
    fail "the tokens are not the content's: $(cat "$T/body")"
[ "$(code POST /completion "{$CP}")" = 200 ] && [ "$(body 'd["tokens"]')" = "[]" ] || fail "no return_tokens: $(cat "$T/body")"
stream "{$CP,\"stream\":true}" /completion
python3 - "$T/sse" "$T/whole.json" <<'PY' || fail "streamed tokens: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: ")]
whole = json.load(open(sys.argv[2]))
pieces = [e for e in ev if not e["stop"]]
assert all(e["index"] == 0 and len(e["tokens"]) >= 1 for e in pieces), pieces
assert sum((e["tokens"] for e in pieces), []) == whole["tokens"], (pieces, whole["tokens"])
assert ev[-1]["stop"] and ev[-1]["stop_type"] == "limit" and ev[-1]["generation_settings"]["adaptive_target"] < 0
PY
refused "{$CP,\"return_tokens\":\"yes\"}" "'return_tokens' must be a boolean"
ok "token ids: return_tokens gives the answer's, each streamed piece carries its own"

# ---- 2. n_probs while streaming: each piece's completion_probabilities ----
stream "{$CP,\"stream\":true,\"n_probs\":3}" /completion
[ "$(code POST /completion "{$CP,\"n_probs\":3}")" = 200 ] || fail "n_probs: $(cat "$T/body")"
python3 - "$T/sse" "$T/body" <<'PY' || fail "streamed n_probs: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: ")]
whole = json.load(open(sys.argv[2]))["completion_probabilities"]
pieces = [e for e in ev if not e["stop"]]
for e in pieces:
    cp = e["completion_probabilities"]
    assert [t["id"] for t in cp] == e["tokens"], e
    assert all(len(t["top_logprobs"]) == 3 and t["logprob"] <= 0 for t in cp), e
streamed = sum((e["completion_probabilities"] for e in pieces), [])
assert [t["id"] for t in streamed] == [t["id"] for t in whole], (streamed, whole)
assert [t["top_logprobs"][0]["id"] for t in streamed] == [t["top_logprobs"][0]["id"] for t in whole]
PY
ok "n_probs streamed: one entry per token of each piece, the same as the whole answer's"

# ---- 3. response_fields: only the fields named, nested paths by their whole name ----
[ "$(code POST /completion "{$CP,\"response_fields\":[\"content\",\"generation_settings/n_predict\",\"prompt\",\"no/such\"]}")" = 200 ] ||
    fail "response_fields: $(cat "$T/body")"
python3 - "$T/body" "$T/whole.json" <<'PY' || fail "response_fields: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == ["content", "generation_settings/n_predict", "prompt"], d
assert d["content"] == json.load(open(sys.argv[2]))["content"] and d["generation_settings/n_predict"] == 8, d
assert d["prompt"] == "<s> Once upon a time", d["prompt"]
PY
[ "$(code POST /completion "{$CP,\"response_fields\":[]}")" = 200 ] && [ "$(body '"timings" in d')" = True ] ||
    fail "response_fields []: $(cat "$T/body")"
[ "$(code POST /completion "{$CP}")" = 200 ] && [ "$(body '"prompt" in d')" = False ] ||
    fail "the prompt is echoed unasked: $(cat "$T/body")"
refused "{$CP,\"response_fields\":\"content\"}" "'response_fields' must be an array"
refused "{$CP,\"response_fields\":[1]}" "'response_fields[0]' must be a path"
refused "{$CP,\"response_fields\":$(python3 -c 'import json; print(json.dumps(["content"] * 65))')}" "at most 64"
ok "response_fields: the named fields only, nested paths, the prompt only when asked"

# ---- 4. batches: an array of prompts is an array of answers ----
TOKS=$(curl -s -H "Authorization: Bearer $CHAT" -d '{"content":"Once upon a time","add_special":true}' "$BASE/tokenize" |
    json_get 'json.dumps(d["tokens"])')
BATCH="[\"Once upon a time\",$TOKS,{\"prompt_string\":\"Once upon a time\"}]"
[ "$(code POST /completion "{\"prompt\":$BATCH,\"n_predict\":8,\"temperature\":0}")" = 200 ] ||
    fail "batch: $(cat "$T/body")"
python3 - "$T/body" "$T/whole.json" <<'PY' || fail "batch: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
whole = json.load(open(sys.argv[2]))
assert isinstance(d, list) and [a["index"] for a in d] == [0, 1, 2], d
assert all(a["content"] == whole["content"] and a["tokens_predicted"] == 8 for a in d), d
PY
stream "{\"prompt\":$BATCH,\"n_predict\":8,\"temperature\":0,\"stream\":true}" /completion
python3 - "$T/sse" "$T/whole.json" <<'PY' || fail "batch streamed: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: ")]
whole = json.load(open(sys.argv[2]))
for i in range(3):
    mine = [e for e in ev if e["index"] == i]
    assert "".join(e["content"] for e in mine) == whole["content"], (i, mine)
    assert [e["stop"] for e in mine].count(True) == 1 and mine[-1]["stop"], (i, mine)
PY
# A mix of token ids and text is one prompt, as llama-server reads it.
MIX=$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); print(json.dumps(t[:3] + [" upon a time"]))' "$TOKS")
[ "$(code POST /completion "{\"prompt\":$MIX,\"n_predict\":8,\"temperature\":0}")" = 200 ] ||
    fail "mixed prompt: $(cat "$T/body")"
[ "$(body 'type(d).__name__')" = dict ] || fail "mixed prompt is not one answer: $(cat "$T/body")"
refused "{\"prompt\":$(python3 -c 'import json; print(json.dumps(["a"] * 17))')}" "at most 16 are allowed (AL_LIMIT_PROMPTS)"
refused '{"prompt":["a",true]}' "'prompt[1]' must be a string"
refused '{"prompt":["a",["b",{}]]}' "'prompt' must be a string"
refused '{"prompt":["a",[1,-2]]}' "'prompt[1]' is not a token id"
refused '{"prompt":["a",[99999999]]}' "token"
ok "batches: one answer per prompt with its index, streamed apart; over 16 prompts or malformed, 400"
# OpenAI's /v1/completions: an array of strings, one choice a prompt.
OB='"prompt":["Once upon a time","Once upon a time"],"max_tokens":8,"temperature":0'
[ "$(code POST /v1/completions "{$OB}")" = 200 ] || fail "/v1/completions batch: $(cat "$T/body")"
python3 - "$T/body" "$T/whole.json" <<'PY' || fail "/v1/completions batch: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
whole = json.load(open(sys.argv[2]))
assert [c["index"] for c in d["choices"]] == [0, 1], d
assert all(c["text"] == whole["content"] for c in d["choices"]), d
assert d["usage"]["prompt_tokens"] == 10 and d["usage"]["completion_tokens"] == 16, d["usage"]
PY
stream "{$OB,\"stream\":true}" /v1/completions
python3 - "$T/sse" "$T/whole.json" <<'PY' || fail "/v1/completions batch streamed: $(cat "$T/sse")"
import json, sys
lines = [l[6:].strip() for l in open(sys.argv[1]) if l.startswith("data: ")]
assert lines[-1] == "[DONE]", lines[-1]
ev = [json.loads(l) for l in lines[:-1]]
whole = json.load(open(sys.argv[2]))
for i in range(2):
    mine = [c for e in ev for c in e["choices"] if c["index"] == i]
    assert "".join(c["text"] for c in mine) == whole["content"], (i, mine)
    assert mine[-1]["finish_reason"] == "length", mine[-1]
PY
refused "{\"prompt\":$(python3 -c 'import json; print(json.dumps(["a"] * 17))')}" "(AL_LIMIT_PROMPTS)" /v1/completions
refused '{"prompt":["a",[1,2]]}' "'prompt' must be a string or an array of strings" /v1/completions
refused '{"prompt":["a","b"],"n":2}' "'n' above 1 cannot be combined with several prompts" /v1/completions
ok "/v1/completions: an array of prompts is one choice each, streamed with their index"

# ---- 5. stop_type: word (with the stopping word), limit ----
[ "$(code POST /completion "{$CP,\"stop\":[\"zzz\",\"little\"]}")" = 200 ] || fail "stop: $(cat "$T/body")"
[ "$(body '(d["stop_type"], d["stopping_word"], d["content"])')" = "('word', 'little', ', there was a ')" ] ||
    fail "stop word: $(cat "$T/body")"
[ "$(code POST /completion "{$CP}")" = 200 ] && [ "$(body '(d["stop_type"], d["stopping_word"])')" = "('limit', '')" ] ||
    fail "stop_type limit: $(cat "$T/body")"
ok "stop_type: 'word' with its stopping_word when a stop string ends the answer, 'limit' at n_predict"

# ---- 6. logit_bias: OpenAI's map and llama-server's pairs, token ids or text ----
FIRST=$(json_get 'd["tokens"][0]' <"$T/whole.json")
PIECE=$(curl -s -H "Authorization: Bearer $CHAT" -d "{\"tokens\":[$FIRST]}" "$BASE/detokenize" | json_get 'json.dumps(d["content"])')
for lb in "{\"$FIRST\":-100}" "[[$FIRST,false]]" "[[$PIECE,-100]]" "{$PIECE:-100}"; do
    [ "$(code POST /completion "{$CP,\"return_tokens\":true,\"logit_bias\":$lb}")" = 200 ] ||
        fail "logit_bias $lb: $(cat "$T/body")"
    [ "$(body "$FIRST not in d[\"tokens\"]")" = True ] || fail "logit_bias $lb: token $FIRST still sampled: $(cat "$T/body")"
done
# A positive bias makes a token the greedy choice.
[ "$(code POST /completion "{$CP,\"return_tokens\":true,\"logit_bias\":[[300,100]]}")" = 200 ] &&
    [ "$(body 'd["tokens"][:2]')" = "[300, 300]" ] || fail "logit_bias +100: $(cat "$T/body")"
# The OpenAI routes take it too.
MSG='"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":4,"temperature":0'
[ "$(code POST /v1/chat/completions "{$MSG,\"logit_bias\":{\"300\":100}}")" = 200 ] || fail "chat logit_bias: $(cat "$T/body")"
C300=$(body 'd["choices"][0]["message"]["content"]')
[ "$(code POST /v1/chat/completions "{$MSG}")" = 200 ] && [ "$(body 'd["choices"][0]["message"]["content"]')" != "$C300" ] ||
    fail "chat logit_bias has no effect: $C300"
[ "$(code POST /v1/completions '{"prompt":"Once upon a time","max_tokens":2,"temperature":0,"logit_bias":{"300":100}}')" = 200 ] ||
    fail "completions logit_bias: $(cat "$T/body")"
refused "{$CP,\"logit_bias\":\"x\"}" "'logit_bias' must be an object"
refused "{$CP,\"logit_bias\":{\"5\":\"x\"}}" "must be a number or false"
refused "{$CP,\"logit_bias\":{\"5\":1e9}}" "must be a number or false"
refused "{$CP,\"logit_bias\":[[5]]}" "'logit_bias[0]' must be a [token id or text, bias] pair"
refused "{$CP,\"logit_bias\":[[5,true]]}" "'logit_bias[0]' must be"
refused "{$CP,\"logit_bias\":{\"99999999\":1}}" "names token 99999999"
refused "{$CP,\"logit_bias\":[[-1,1]]}" "names token -1"
refused "{$CP,\"logit_bias\":{\"\":1}}" "text key of 0 bytes"
refused "{$CP,\"logit_bias\":$(python3 -c 'import json; print(json.dumps({str(i): 1 for i in range(1025)}))')}" \
    "at most 1024 are allowed (AL_LIMIT_LOGIT_BIAS)"
refused "{$CP,\"logit_bias\":$(python3 -c 'import json; print(json.dumps([["a b c d e f g h", 1]] * 200))')}" \
    "more than 1024 tokens (AL_LIMIT_LOGIT_BIAS)"
refused "{$MSG,\"logit_bias\":[[5]]}" "'logit_bias[0]' must be" /v1/chat/completions
ok "logit_bias: map and pairs, ids and text, on /completion and the OpenAI routes; caps and malformed entries, 400"

# ---- 7. json_schema: llama-server's top-level schema ----
MSG6='"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":6,"temperature":0'
[ "$(code POST /v1/chat/completions "{$MSG6,\"json_schema\":{\"const\":\"42\"}}")" = 200 ] ||
    fail "chat json_schema: $(cat "$T/body")"
[ "$(body 'd["choices"][0]["message"]["content"].strip()')" = '"42"' ] || fail "chat json_schema: $(cat "$T/body")"
[ "$(code POST /completion '{"prompt":"x","n_predict":6,"json_schema":{"const":"42"}}')" = 200 ] &&
    [ "$(body 'd["content"].strip()')" = '"42"' ] || fail "/completion json_schema: $(cat "$T/body")"
refused "{$MSG,\"json_schema\":\"x\"}" "'json_schema' must be an object" /v1/chat/completions
refused "{$MSG,\"json_schema\":{\"type\":\"hiccup\"}}" "json_schema: unknown schema type" /v1/chat/completions
refused "{$MSG,\"json_schema\":{},\"grammar\":\"root ::= \\\"a\\\"\"}" "cannot be combined" /v1/chat/completions
ok "json_schema: the answer follows it on chat and /completion; invalid or combined with a grammar, 400"
