#!/usr/bin/env bash
# llama-server's post_sampling_probs on `airlock serve` (issue 17): with it,
# the probabilities a request asks for (n_probs, logprobs) are those the
# sampler chain left for its draw, as "prob" and "top_probs" (most likely
# first, none of 0) instead of "logprob" and "top_logprobs" over the raw
# logits: on /completion, whole and streamed, and on the OpenAI routes. The
# draw itself is the same as without it (same seed, same tokens). Real
# server on loopback, curl as the client, the fixture model.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
CHAT=$(airlock apikey create chatter --scopes chat --json | json_get 'd["token"]')
# code PATH JSON: the status into stdout, the body into $T/body.
code() {
    curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $CHAT" -H 'Content-Type: application/json' \
        -d "$2" "$BASE$1"
}
body() { json_get "$1" <"$T/body"; }
serve_start stories --port 0 --parallel 1 --no-audit
# Sampled at temperature 1 under a fixed seed; cache_prompt false so that
# every request computes its prompt alike.
SP='"prompt":"Today was the day. Today I would finally become a","n_predict":6,"temperature":1.0,"seed":4242,"cache_prompt":false,"n_probs":10'

# ---- 1. /completion: probabilities after the chain, the same draw ----
[ "$(code /completion "{$SP}")" = 200 ] || fail "pre-sampling: $(cat "$T/body")"
cp "$T/body" "$T/pre.json"
[ "$(code /completion "{$SP,\"post_sampling_probs\":true}")" = 200 ] || fail "post_sampling_probs: $(cat "$T/body")"
cp "$T/body" "$T/post.json"
python3 - "$T/pre.json" "$T/post.json" <<'PY' || fail "post_sampling_probs: $(cat "$T/post.json")"
import json, math, sys
pre = json.load(open(sys.argv[1]))
post = json.load(open(sys.argv[2]))
cp = post["completion_probabilities"]
assert post["generation_settings"]["post_sampling_probs"] is True, post["generation_settings"]
assert pre["generation_settings"]["post_sampling_probs"] is False
# The same seed draws the same tokens: the chain ran as it does without it.
assert [t["id"] for t in cp] == [t["id"] for t in pre["completion_probabilities"]], (cp, pre)
assert len(cp) == 6
for t in cp:
    assert "logprob" not in t and "top_logprobs" not in t, t
    assert 0.0 < t["prob"] <= 1.0 and isinstance(t["bytes"], list) and isinstance(t["token"], str), t
    top = t["top_probs"]
    assert 1 <= len(top) <= 10, t
    ps = [p["prob"] for p in top]
    assert all(0.0 < p <= 1.0 for p in ps) and ps == sorted(ps, reverse=True), t
    assert len({p["id"] for p in top}) == len(top), t
    assert all("logprob" not in p and isinstance(p["bytes"], list) for p in top), t
    # The drawn token is a candidate: its figure is the one in the list.
    mine = [p["prob"] for p in top if p["id"] == t["id"]]
    assert not mine or mine[0] == t["prob"], t
    # Fewer than asked for only when they are all the chain left.
    if len(top) < 10:
        assert abs(sum(ps) - 1.0) < 1e-4, t
# The stories model is unsure of the first word: ten candidates survive the
# chain (top_k 40, top_p 0.95, min_p 0.05), as llama.cpp's suite expects.
assert len(cp[0]["top_probs"]) == 10, cp[0]
# Before the chain the figures are log-probabilities over the whole vocabulary.
assert all(t["logprob"] <= 0 and len(t["top_logprobs"]) == 10 for t in pre["completion_probabilities"])
PY
ok "/completion: prob and top_probs after the chain, sorted, none of 0; the same tokens as without"

# top_k 2 leaves two candidates: their probabilities sum to 1. Without
# post_sampling_probs the ten likeliest of the vocabulary come back.
[ "$(code /completion "{$SP,\"top_k\":2,\"post_sampling_probs\":true}")" = 200 ] || fail "top_k 2: $(cat "$T/body")"
[ "$(body 'all(len(t["top_probs"]) <= 2 and abs(sum(p["prob"] for p in t["top_probs"]) - 1) < 1e-4 for t in d["completion_probabilities"])')" = True ] ||
    fail "top_k 2: not the chain's two candidates: $(cat "$T/body")"
[ "$(code /completion "{$SP,\"top_k\":2}")" = 200 ] || fail "top_k 2 pre: $(cat "$T/body")"
[ "$(body 'all(len(t["top_logprobs"]) == 10 for t in d["completion_probabilities"])')" = True ] ||
    fail "top_k 2 pre: $(cat "$T/body")"
# Greedy: the chosen token has it all, and is the only candidate.
[ "$(code /completion '{"prompt":"Once upon a time","n_predict":4,"temperature":0,"n_probs":5,"post_sampling_probs":true}')" = 200 ] ||
    fail "greedy: $(cat "$T/body")"
[ "$(body 'all(t["prob"] == 1 and [(p["id"], p["prob"]) for p in t["top_probs"]] == [(t["id"], 1)] for t in d["completion_probabilities"])')" = True ] ||
    fail "greedy: $(cat "$T/body")"
ok "the chain's truncation shows (top_k 2: two candidates summing to 1); greedy: the chosen token alone, 1"

# ---- 2. streamed: each piece's completion_probabilities, the same figures ----
curl -sN -H "Authorization: Bearer $CHAT" -d "{$SP,\"post_sampling_probs\":true,\"stream\":true}" "$BASE/completion" >"$T/sse"
python3 - "$T/sse" "$T/post.json" <<'PY' || fail "streamed: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: ")]
whole = json.load(open(sys.argv[2]))["completion_probabilities"]
streamed = sum((e["completion_probabilities"] for e in ev if not e["stop"]), [])
assert [(t["id"], t["prob"], [p["id"] for p in t["top_probs"]]) for t in streamed] == \
       [(t["id"], t["prob"], [p["id"] for p in t["top_probs"]]) for t in whole], (streamed, whole)
PY
ok "streamed: the pieces carry the same prob and top_probs as the whole answer"

# ---- 3. the OpenAI routes: chat's logprobs.content, completions' too ----
MSG='"messages":[{"role":"user","content":"Today was the day."}],"max_tokens":4,"temperature":1.0,"seed":7,"logprobs":true,"top_logprobs":5'
[ "$(code /v1/chat/completions "{$MSG,\"post_sampling_probs\":true}")" = 200 ] || fail "chat: $(cat "$T/body")"
[ "$(body 'all(0 < t["prob"] <= 1 and "logprob" not in t and 1 <= len(t["top_probs"]) <= 5 and all(0 < p["prob"] <= 1 for p in t["top_probs"]) for t in d["choices"][0]["logprobs"]["content"])')" = True ] ||
    fail "chat: $(cat "$T/body")"
curl -sN -H "Authorization: Bearer $CHAT" -d "{$MSG,\"post_sampling_probs\":true,\"stream\":true}" "$BASE/v1/chat/completions" >"$T/sse"
python3 - "$T/sse" <<'PY' || fail "chat streamed: $(cat "$T/sse")"
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: {")]
content = [t for e in ev for c in e["choices"] if c.get("logprobs") for t in c["logprobs"]["content"]]
assert len(content) == 4 and all("prob" in t and "top_probs" in t for t in content), content
PY
CP='"prompt":"Today was the day.","max_tokens":4,"temperature":1.0,"seed":7,"logprobs":3'
[ "$(code /v1/completions "{$CP,\"post_sampling_probs\":true}")" = 200 ] || fail "completions: $(cat "$T/body")"
python3 - "$T/body" <<'PY' || fail "completions: $(cat "$T/body")"
import json, math, sys
lp = json.load(open(sys.argv[1]))["choices"][0]["logprobs"]
assert all("prob" in t and "top_probs" in t for t in lp["content"]), lp
# The legacy lists carry the same figures as natural logarithms.
for t, l in zip(lp["content"], lp["token_logprobs"]):
    assert abs(math.log(t["prob"]) - l) < 1e-5, (t, l)
PY
[ "$(code /v1/chat/completions "{$MSG}")" = 200 ] &&
    [ "$(body 'all("logprob" in t and "prob" not in t for t in d["choices"][0]["logprobs"]["content"])')" = True ] ||
    fail "chat without it: $(cat "$T/body")"
ok "OpenAI routes: chat (whole and streamed) and completions give prob and top_probs; without it, logprob"

# ---- 4. malformed ----
[ "$(code /completion "{$SP,\"post_sampling_probs\":\"yes\"}")" = 400 ] &&
    body 'd["error"]["message"]' | qgrep -F "'post_sampling_probs' must be a boolean" || fail "malformed: $(cat "$T/body")"
[ "$(code /v1/chat/completions "{$MSG,\"post_sampling_probs\":1}")" = 400 ] || fail "malformed chat: $(cat "$T/body")"
[ "$(code /completion "{$SP,\"post_sampling_probs\":null}")" = 200 ] && [ "$(body '"logprob" in d["completion_probabilities"][0]')" = True ] ||
    fail "null: $(cat "$T/body")"
ok "post_sampling_probs that is not a boolean: 400; null is absent"
