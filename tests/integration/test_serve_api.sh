#!/usr/bin/env bash
# airlock serve: the golden output through /v1/completions (streaming and
# not), the shapes of every route, structured output, and error bodies.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
serve_start stories --port 0 --parallel 2 --max-body 65536 --max-tokens 512 --max-prompt-tokens 128

get /health; expect_code 200
[ "$(jq_py 'd["status"]')" = ok ] || fail "health: $BODY"
ok "health ok"

# ---- golden output ----
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden (non-streaming): $BODY"
[ "$(jq_py 'd["object"]')" = text_completion ] || fail "object: $BODY"
[ "$(jq_py 'd["usage"]["completion_tokens"]')" = 40 ] || fail "usage: $BODY"
[ "$(jq_py 'd["choices"][0]["finish_reason"]')" = length ] || fail "finish_reason: $BODY"
ok "golden output, non-streaming"

curl -sN -H 'Content-Type: application/json' "$BASE/v1/completions" \
    -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
    >"$T/sse.txt"
python3 - "$T/sse.txt" "$GOLDEN" <<'PY' || fail "golden (streaming): $(head -c 2000 "$T/sse.txt")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), "no [DONE] at the end"
events = [e for e in raw.split("\n\n") if e]
text, usage, finish = "", None, None
for e in events[:-1]:
    assert e.startswith("data: "), e
    d = json.loads(e[6:])
    assert d["object"] == "text_completion"
    if d["choices"]:
        text += d["choices"][0]["text"]
        finish = d["choices"][0]["finish_reason"] or finish
    if d.get("usage"):
        usage = d["usage"]
assert text == sys.argv[2], repr(text)
assert finish == "length", finish
assert usage and usage["completion_tokens"] == 40 and usage["prompt_tokens"] > 0, usage
assert len(events) > 10, "not streamed token by token"
assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] - 1, usage
PY
ok "golden output, streaming (SSE, one event per token, usage, [DONE])"

# ---- KV-cache reuse of a shared prompt prefix ----
# The same prompt again: every token but the last (whose logits start the
# answer) comes from the KV cache, and usage says so. cache_prompt false
# (llama-server's field) computes them all, with the same greedy answer.
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
[ "$(jq_py 'd["usage"]["prompt_tokens_details"]["cached_tokens"] == d["usage"]["prompt_tokens"] - 1 > 0')" = True ] ||
    fail "cached prompt: $BODY"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0,"cache_prompt":false}'
expect_code 200
[ "$(jq_py 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')" = 0 ] || fail "cache_prompt false: $BODY"
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden without the cache: $BODY"
ok "prompt prefix from the KV cache (usage cached_tokens), cache_prompt false computes all"

# ---- chat ----
post /v1/chat/completions '{"model":"stories","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell a story."}],"max_tokens":16,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["object"]')" = chat.completion ] || fail "chat object: $BODY"
[ "$(jq_py 'd["choices"][0]["message"]["role"]')" = assistant ] || fail "chat role: $BODY"
[ "$(jq_py 'd["usage"]["completion_tokens"] <= 16')" = True ] || fail "chat usage: $BODY"
curl -sN "$BASE/v1/chat/completions" -d '{"model":"stories","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":8,"stream":true}' >"$T/chat.txt"
python3 - "$T/chat.txt" <<'PY' || fail "chat stream: $(cat "$T/chat.txt")"
import json, sys
events = [e for e in open(sys.argv[1]).read().split("\n\n") if e]
assert events[-1] == "data: [DONE]"
ds = [json.loads(e[6:]) for e in events[:-1]]
assert all(d["object"] == "chat.completion.chunk" for d in ds)
# The first chunk names the role; its content is null, as llama-server's (no
# content delta is empty: llama.cpp's suite checks it).
assert ds[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
assert all(c["delta"].get("content") is None or c["delta"]["content"] != "" for d in ds for c in d["choices"])
assert ds[-1]["choices"][0]["finish_reason"] in ("stop", "length")
PY
ok "chat completions, streaming and not"

# ---- structured output ----
post /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"Pick a color"}],"max_tokens":100,"temperature":0,
  "response_format":{"type":"json_schema","json_schema":{"name":"c","schema":{"type":"object","properties":{"color":{"enum":["red","blue"]},"n":{"type":"integer"}},"required":["color","n"]}}}}'
expect_code 200
python3 -c 'import json,sys; d=json.loads(json.loads(sys.argv[1])["choices"][0]["message"]["content"]); assert d["color"] in ("red","blue") and isinstance(d["n"], int), d' "$BODY" \
    || fail "json_schema output: $BODY"
ok "response_format json_schema gives JSON that fits the schema"
post /v1/completions '{"model":"stories","prompt":"Is it red?","max_tokens":5,"grammar":"root ::= \"yes\" | \"no\""}'
expect_code 200
case "$(jq_py 'd["choices"][0]["text"]')" in yes|no) ;; *) fail "grammar: $BODY";; esac
post /v1/completions '{"model":"stories","prompt":"{","max_tokens":30,"temperature":0,"response_format":{"type":"json_object"}}'
expect_code 200
case "$(jq_py 'd["choices"][0]["text"]')" in "{"*) ;; *) fail "json_object: $BODY";; esac
post /v1/completions '{"model":"stories","prompt":"x","grammar":"root ::= nothing"}'
expect_code 400
ok "grammar, json_object; a broken grammar is a 400"

# ---- embeddings, tokens, models ----
post /v1/embeddings '{"model":"stories","input":["a cat","a dog"]}'
expect_code 200
[ "$(jq_py 'len(d["data"]) == 2 and len(d["data"][1]["embedding"]) == 64 and abs(sum(x*x for x in d["data"][0]["embedding"]) - 1) < 1e-3')" = True ] \
    || fail "embeddings: $BODY"
post /v1/embeddings '{"model":"stories","input":"a cat","encoding_format":"base64"}'
expect_code 200
[ "$(jq_py 'len(__import__("base64").b64decode(d["data"][0]["embedding"])) == 256')" = True ] || fail "base64: $BODY"
post /tokenize '{"content":"Once upon a time"}'
expect_code 200
toks=$(jq_py 'd["tokens"]')
post /detokenize "{\"tokens\":$toks}"
expect_code 200
[ "$(jq_py 'd["content"].strip()')" = "Once upon a time" ] || fail "detokenize: $BODY"
get /v1/models; expect_code 200
[ "$(jq_py '[m["id"] for m in d["data"]]')" = "['stories']" ] || fail "models: $BODY"
get /v1/models/stories:1.0; expect_code 200
get /v1/models/nosuch; expect_code 404
[ "$(jq_py 'd["error"]["code"]')" = model_not_found ] || fail "404 body: $BODY"
ok "embeddings (float and base64), tokenize/detokenize, models"

# ---- errors ----
post /v1/completions '{"model":"stories","prompt":'; expect_code 400
[ "$(jq_py 'sorted(d["error"].keys())')" = "['code', 'message', 'param', 'type']" ] || fail "error shape: $BODY"
post /v1/completions '{"model":"nosuch","prompt":"x"}'; expect_code 404
post /v1/completions '{"model":"stories","prompt":"x","max_tokens":100000}'; expect_code 400
[ "$(jq_py 'd["error"]["param"]')" = max_tokens ] || fail "max_tokens: $BODY"
post /v1/completions '{"model":"stories","prompt":"x","n":9}'; expect_code 400
post /v1/completions '{"model":"stories","prompt":"x","temperature":"hot"}'; expect_code 400
long=$(python3 -c 'print("Once upon a time " * 40)')
post /v1/completions "{\"model\":\"stories\",\"prompt\":\"$long\"}"; expect_code 400
[ "$(jq_py 'd["error"]["code"]')" = context_length_exceeded ] || fail "prompt cap: $BODY"
big=$(python3 -c 'print("x" * 70000)')
post /v1/completions "{\"model\":\"stories\",\"prompt\":\"$big\"}"; expect_code 413
post /v1/nothing '{}'; expect_code 404
get /v1/completions; expect_code 405
ok "errors: bad JSON, unknown model, max_tokens, n, types, prompt tokens, body size, URL, method"

get /metrics; expect_code 200
grep -q 'airlock_requests_total{route="/v1/completions",status="200"}' <<<"$BODY" || fail "metrics: $BODY"
for m in airlock_time_to_first_token_seconds_bucket airlock_time_per_output_token_seconds_bucket airlock_queue_depth \
         airlock_active_sequences airlock_kv_cache_used_cells airlock_models_loaded airlock_resident_memory_bytes \
         airlock_generated_tokens_total airlock_prompt_tokens_total; do
    grep -q "^$m" <<<"$BODY" || fail "metric $m missing"
done
ok "metrics in Prometheus text format"

# ---- text is UTF-8 whatever bytes the tokens spell ----
# The fixture's vocabulary spells 你 and 好 as three byte tokens each; a
# grammar makes the model emit them. Each streamed chunk carries whole
# characters (bytes are held back until a character completes).
curl -sN "$BASE/v1/completions" \
    -d '{"model":"stories","prompt":"Once","max_tokens":12,"grammar":"root ::= \"你好 ok\"","stream":true}' >"$T/utf8.txt"
python3 - "$T/utf8.txt" <<'PY' || fail "byte tokens streamed: $(cat "$T/utf8.txt")"
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8")          # strict: no invalid bytes
parts = [json.loads(l[6:])["choices"][0]["text"] for l in raw.split("\n") if l.startswith("data: {")]
assert "".join(parts) == "你好 ok", parts
assert "你" in parts and "好" in parts, parts                     # each character in one chunk
assert not any("\ufffd" in p for p in parts), parts
PY
post /tokenize '{"model":"stories","content":"你","with_pieces":true}'; expect_code 200
# The prefix space SentencePiece adds is a piece of its own, kept as llama-server keeps it.
[ "$(jq_py '[t["piece"] for t in d["tokens"]]')" = "[' ', [228], [189], [160]]" ] || fail "byte pieces: $BODY"
ok "a character spelled by byte tokens streams whole; /tokenize gives byte pieces as arrays"
# Bytes that never make a character become U+FFFD (a random model emits them).
post /detokenize '{"model":"stories","tokens":[231,200]}'; expect_code 200
[ "$(jq_py 'd["content"]')" = $'\ufffd\ufffd' ] || fail "detokenize of stray bytes: $BODY"
"$AL_BUILD/airlock-ggufgen" --out "$T/rand.gguf" --type q4_0 --seed 7 --layers 2 --embd 64 --ctx 1024 \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf" 2>/dev/null || fail "generating a model"
airlock add rand:1 "$T/rand.gguf" >/dev/null
for stream in false true; do
    curl -s "$BASE/v1/completions" -d "{\"model\":\"rand\",\"prompt\":\"Hello\",\"max_tokens\":400,\"ignore_eos\":true,\"stream\":$stream}" \
        >"$T/rand-$stream.txt"
    python3 - "$T/rand-$stream.txt" "$stream" <<'PY' || fail "random model, stream=$stream: $(head -c 600 "$T/rand-$stream.txt")"
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8")
if sys.argv[2] == "true":
    n = sum(1 for l in raw.split("\n") if l.startswith("data: {") and json.loads(l[6:]))
    assert raw.endswith("data: [DONE]\n\n") and n > 1
else:
    d = json.loads(raw)
    assert d["usage"]["completion_tokens"] == 400 and d["choices"][0]["text"], d
PY
done
ok "400 random tokens: valid UTF-8 JSON, streaming and not; stray bytes become U+FFFD"

# ---- streamed events are coalesced: at most one write an interval ----
serve_stop
serve_start stories --port 0 --stream-interval 50 --max-tokens 512
python3 - "${BASE#http://}" <<'PY' || fail "coalescing"
import json, socket, sys, time
host, port = sys.argv[1].split(":")
body = json.dumps({"model": "stories", "prompt": "Once upon a time", "max_tokens": 300, "temperature": 0,
                   "ignore_eos": True, "stream": True}).encode()
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
          % len(body) + body)
t0 = time.monotonic(); reads = []; data = b""
while not data.endswith(b"0\r\n\r\n"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    reads.append(time.monotonic()); data += chunk
events = data.count(b"data: {")
# One write an interval, the first token's and the end's at once; a write may
# arrive in a few reads. Token by token, this client reads ~300 times.
span = reads[-1] - reads[0]
allowed = 3 * (int(span / 0.050) + 3)
print("events %d in %d reads over %.0f ms (at most %d allowed)" % (events, len(reads), span * 1e3, allowed))
assert events == 301, events                   # 300 tokens and the finish
assert len(reads) <= allowed, (len(reads), allowed)
PY
ok "--stream-interval 50: 300 tokens arrive in bursts at most 50 ms apart, none lost"
"$AIRLOCK_BIN" serve --stream-interval -1 >/dev/null 2>&1 && fail "a negative interval was accepted"
[ $? = 2 ] || fail "a negative interval: not a usage error"
ok "a negative stream interval is a usage error"
