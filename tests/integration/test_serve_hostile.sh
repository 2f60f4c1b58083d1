#!/usr/bin/env bash
# airlock serve against hostile clients (issue 12): a key's model patterns
# hold when the request names no model; request smuggling through
# Content-Length / Transfer-Encoding is refused and the connection closed;
# slow clients cannot starve /health; a client that leaves is not a server
# error; errors name the field that is wrong.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || fail "curl missing"
HOSTILE="$(dirname "$0")/hostile_http.py"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
airlock add other:1.0 "$FIX" >/dev/null
D="$T/docs"; mkdir -p "$D"
printf 'HALON\nThe halon bottle is inspected every quarter.\n' >"$D/halon.txt"
airlock rag create manuals --embed stories >/dev/null
(cd "$T" && airlock rag add manuals docs >/dev/null)

tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
LLAMA=$(tok llamaonly --scopes chat,embed,rag:manuals --models 'llama*')
STORIES=$(tok storiesonly --scopes chat,embed,rag:manuals --models 'stories*')
ADMIN=$(tok admin --scopes admin)

# The default model (the first named) is stories.
serve_start stories other --port 0 --ctx 256
PORT=${BASE##*:}

req() { # req TOKEN PATH JSON -> CODE, BODY
    local auth=(); [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    local out; out=$(curl -s -w '\n%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d "$3" "$BASE$2")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}

# ---- defect 2: the model that serves the request is the one checked ----
for body in '{"prompt":"Once","max_tokens":2}' '{"model":"","prompt":"Once","max_tokens":2}'; do
    req "$LLAMA" /v1/completions "$body"; expect_code 403
    echo "$BODY" | qgrep "may not use model 'stories'" || fail "403 should name the default model: $BODY"
    req "$STORIES" /v1/completions "$body"; expect_code 200
done
for body in '{"input":"hello"}' '{"model":"","input":"hello"}'; do
    req "$LLAMA" /v1/embeddings "$body"; expect_code 403
    req "$STORIES" /v1/embeddings "$body"; expect_code 200
done
req "$LLAMA" /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}'; expect_code 403
req "$LLAMA" /tokenize '{"content":"hi"}'; expect_code 403
req "$LLAMA" /detokenize '{"tokens":[1,2]}'; expect_code 403
req "$STORIES" /tokenize '{"content":"hi"}'; expect_code 200
req "$LLAMA" /v1/completions '{"model":"other","prompt":"Once","max_tokens":2}'; expect_code 403
# retrieval: the collection's embedding model serves the query
req "$LLAMA" /v1/rag/manuals/query '{"query":"halon","mode":"vector"}'; expect_code 403
req "$STORIES" /v1/rag/manuals/query '{"query":"halon","mode":"vector"}'; expect_code 200
ok "a key limited to llama* gets 403 from the default model on every route; one limited to stories* gets answers"

models() { curl -s -H "Authorization: Bearer $1" "$BASE/v1/models" | json_get '",".join(sorted(m["id"] for m in d["data"]))'; }
[ "$(models "$LLAMA")" = "" ] || fail "/v1/models for llama*: $(models "$LLAMA")"
[ "$(models "$STORIES")" = "stories" ] || fail "/v1/models for stories*: $(models "$STORIES")"
[ "$(models "$ADMIN")" = "other,stories" ] || fail "/v1/models for admin: $(models "$ADMIN")"
ok "/v1/models lists only the models the key may use"

# ---- defect 7: framing; raw bytes, the smuggled request is not answered ----
python3 "$HOSTILE" framing "$PORT"
get /health; expect_code 200

# ---- minor: the field that is wrong is named ----
long=$(python3 -c 'print(" ".join(["once upon a time there was a dog"] * 60))')
req "$STORIES" /v1/completions "{\"prompt\":\"$long\",\"max_tokens\":8}"; expect_code 400
[ "$(jq_py 'd["error"]["param"]')" = prompt ] || fail "context overflow on /v1/completions must blame 'prompt': $BODY"
[ "$(jq_py 'd["error"]["code"]')" = context_length_exceeded ] || fail "context overflow code: $BODY"
ok "a prompt over the context on /v1/completions is blamed on 'prompt'"
req "$STORIES" /v1/completions '{"prompt":"Once","seed":123456789012345678901234567890}'; expect_code 400
echo "$BODY" | qgrep "'seed' in the request body is out of range" || fail "big integer: $BODY"
req "$STORIES" /v1/completions '{"prompt":"Once","logit_bias":{"1":[99999999999999999999]}}'; expect_code 400
echo "$BODY" | qgrep "'logit_bias.1\[0\]' in the request body is out of range" || fail "nested big integer: $BODY"
req "$STORIES" /v1/completions '[1,2]'; expect_code 400
echo "$BODY" | qgrep "not a JSON object" || fail "an array body: $BODY"
req "$STORIES" /v1/completions '{"prompt":'; expect_code 400
echo "$BODY" | qgrep "not valid JSON" || fail "broken JSON: $BODY"
ok "an integer out of range is named with its field; broken JSON and non-objects are told apart"

# ---- minor: a client that leaves mid-request is no server error ----
python3 "$HOSTILE" abort "$PORT"
m499=
for _ in $(seq 1 100); do
    m499=$(curl -s -H "Authorization: Bearer $ADMIN" "$BASE/metrics" \
        | awk '$1 == "airlock_requests_total{route=\"/v1/completions\",status=\"499\"}" { print $2 }')
    [ -n "$m499" ] && break
    sleep 0.1
done
[ "$m499" = 1 ] || fail "a client gone mid-body is not counted as 499: $(curl -s -H "Authorization: Bearer $ADMIN" "$BASE/metrics" | grep requests_total)"
curl -s -H "Authorization: Bearer $ADMIN" "$BASE/metrics" | qgrep 'status="500"' && fail "a 500 was counted"
[ "$(curl -s -H "Authorization: Bearer $ADMIN" "$BASE/metrics" | awk '$1 == "airlock_client_disconnects_total" { print $2 }')" -ge 1 ] \
    || fail "airlock_client_disconnects_total not counted"
ok "a client that leaves mid-body: status 499 and a disconnect counted, no 500"
serve_stop

# 403s from a valid key carry its name in the audit log; 401s do not
n403=$(cat "$AIRLOCK_HOME"/audit/audit-*.jsonl | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
bad = [r for r in recs if r["status"] == 403 and r["caller"] != "llamaonly"]
print(len([r for r in recs if r["status"] == 403]), len(bad))')
[ "${n403% *}" -ge 9 ] && [ "${n403#* }" = 0 ] || fail "403s audited without the key's name (403s, unnamed): $n403"
airlock audit verify >/dev/null || fail "audit verify"
ok "403s are audited with the key's caller name"

# ---- defect 4: slow clients; 200 connections against a cap of 160 ----
serve_start stories --port 0 --receive-timeout 3
PORT=${BASE##*:}
python3 "$HOSTILE" slowloris "$PORT" 200 3 "$ADMIN"
serve_stop
ok "slow clients: /health answers, the slow connections are closed at their deadline"
