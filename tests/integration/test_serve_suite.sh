#!/usr/bin/env bash
# airlock validate --server against airlock serve: OpenAI logprobs on
# /v1/completions (legacy object plus llama-server's "content" with ids) and
# /v1/chat/completions (content[] with top_logprobs), streaming and not; a
# suite recorded in-process validates against the served model, and a served
# tampered model fails naming the prompt and the position.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
F=$(fixture)
S="$T/suite"

airlock validate --init-suite "$S" >/dev/null
airlock validate "$F" --suite "$S" --record -t 1 >/dev/null
airlock add stories:1.0 "$F" >/dev/null
serve_start stories --port 0 --threads 1 --parallel 1

# /v1/completions: the legacy shape, and content[] with ids
post /v1/completions '{"prompt":"Once upon a time","max_tokens":4,"temperature":0,"logprobs":3}'
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
c = json.load(sys.stdin)["choices"][0]; lp = c["logprobs"]
n = len(lp["tokens"])
assert n == 4 and "".join(lp["tokens"]) == c["text"], (lp["tokens"], c["text"])
assert len(lp["token_logprobs"]) == n and len(lp["top_logprobs"]) == n and len(lp["text_offset"]) == n
assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(n)], lp["text_offset"]
for i in range(n):
    top = lp["top_logprobs"][i]
    assert len(top) == 3 and max(top.values()) == lp["token_logprobs"][i] <= 0, top
    e = lp["content"][i]
    assert e["token"] == lp["tokens"][i] and e["logprob"] == lp["token_logprobs"][i] and isinstance(e["id"], int)
    assert bytes(e["bytes"]).decode() == e["token"] and len(e["top_logprobs"]) == 3
    assert e["top_logprobs"][0]["id"] == e["id"], e
' || fail "completions logprobs: $BODY"
ok "/v1/completions logprobs: tokens, token_logprobs, top_logprobs, text_offset (+ content with ids)"

# chat, not streaming and streaming: the same per-token numbers
post /v1/chat/completions '{"messages":[{"role":"user","content":"Tell a story"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":2}'
expect_code 200
printf '%s' "$BODY" > "$T/chat.json"
curl -sN -H 'Content-Type: application/json' "$BASE/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Tell a story"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":2,"stream":true}' \
    > "$T/chat.sse"
python3 - "$T/chat.json" "$T/chat.sse" <<'PY' || fail "chat logprobs: $(cat "$T/chat.json")"
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]
content = c["logprobs"]["content"]
assert len(content) == 5 and "".join(e["token"] for e in content) == c["message"]["content"], content
for e in content:
    assert set(e) >= {"token", "logprob", "bytes", "top_logprobs"} and len(e["top_logprobs"]) == 2
    assert all(set(t) >= {"token", "logprob", "bytes"} for t in e["top_logprobs"])
streamed = []
for line in open(sys.argv[2]):
    if line.startswith("data: {"):
        lp = json.loads(line[6:])["choices"][0]["logprobs"]
        if lp:
            streamed += lp["content"]
key = lambda e: (e["id"], e["token"], round(e["logprob"], 4))
assert [key(e) for e in streamed] == [key(e) for e in content], (streamed, content)
PY
ok "/v1/chat/completions logprobs: content[] with top_logprobs, streaming and not"

# refusals
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}'
expect_code 400
post /v1/completions '{"prompt":"x","logprobs":21}'
expect_code 400
ok "top_logprobs without logprobs, and over 20 alternatives: 400"

# the suite recorded in-process validates against the server
expect_status 0 airlock validate --server "$BASE" --suite "$S"
[ "$(echo "$OUT" | grep -Ec '^  ok    story-[a-z]+ +(identical|float-noise): all 32 tokens match')" = 4 ] \
    || fail "airlock serve's output differs from the engine's: $OUT"
ok "a suite recorded in-process validates against airlock serve"
serve_stop

# a tampered model behind airlock serve fails, naming the prompt and the position
cp "$F" "$T/tampered.gguf"; chmod u+w "$T/tampered.gguf"
python3 "$(dirname "$0")/gguf_tamper.py" "$T/tampered.gguf" blk.4.ffn_down.weight --every 64 >/dev/null
airlock add bad:1.0 "$T/tampered.gguf" >/dev/null
serve_start bad --port 0 --threads 1 --parallel 1
expect_status 1 airlock validate --server "$BASE" --suite "$S"
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "tampered model behind airlock serve not caught: $OUT"
ok "a tampered model behind airlock serve fails: $(echo "$OUT" | grep '^result')"
