#!/usr/bin/env bash
# Retrieval over the HTTP API of a real `airlock serve`:
# POST /v1/rag/{collection}/query gives the same hits as `airlock rag query
# --json`; /v1/chat/completions with {"airlock": {"collection": ..}} puts the
# passages into the prompt and returns citations with the message (streaming:
# in the first chunk); the rag:COLLECTION scope is enforced (401 without a
# key, 403 without the scope, 200 with rag:NAME or rag:*).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories "$FIX" >/dev/null

D="$T/docs"; mkdir -p "$D"
cat >"$D/pumps.md" <<'MD'
# Pump maintenance

Pumps move coolant through the primary loop.

## Safety

Always close the isolation valve before opening the pump housing.
MD
printf 'GENERATOR\nThe standby generator runs on diesel fuel.\n\nChange its oil monthly.\n' >"$D/generator.txt"
printf 'HALON\nThe halon bottle is inspected every quarter by a certified technician.\n' >"$D/halon.txt"
airlock rag create manuals --embed stories >/dev/null
airlock rag create other --embed stories >/dev/null
(cd "$T" && airlock rag add manuals docs >/dev/null && airlock rag add other docs/halon.txt >/dev/null)

tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
CHAT=$(tok chatter --scopes chat)
RAG=$(tok reader --scopes chat,rag:manuals)
RAGONLY=$(tok retriever --scopes rag:manuals)
ALL=$(tok librarian --scopes 'rag:*')

serve_start stories --port 0

req() { # req TOKEN PATH JSON -> CODE, BODY
    local auth=(); [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    local out; out=$(curl -s -w '\n%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d "$3" "$BASE$2")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
hits() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([(h["chunk_id"], h["doc"], h["page"], h["heading"], h["text"], round(h["score"], 6)) for h in d["hits"]]))'; }

Q='how often is the halon bottle inspected'
# ---- access: the rag:NAME scope ----
req "" /v1/rag/manuals/query "{\"query\":\"$Q\"}"; expect_code 401
req "$CHAT" /v1/rag/manuals/query "{\"query\":\"$Q\"}"; expect_code 403
echo "$BODY" | qgrep "rag:manuals" || fail "403 should name the scope: $BODY"
req "$RAGONLY" /v1/rag/other/query "{\"query\":\"$Q\"}"; expect_code 403
req "$RAGONLY" /v1/rag/manuals/query "{\"query\":\"$Q\"}"; expect_code 200
req "$ALL" /v1/rag/other/query "{\"query\":\"$Q\"}"; expect_code 200
req "$ALL" /v1/rag/nothere/query "{\"query\":\"$Q\"}"; expect_code 404
req "$ALL" /v1/rag/manuals/query '{"query":""}'; expect_code 400
req "$ALL" /v1/rag/manuals/query "{\"query\":\"$Q\",\"mode\":\"fuzzy\"}"; expect_code 400
req "$ALL" /v1/rag/manuals/query "{\"query\":\"$Q\",\"k\":0}"; expect_code 400
req "$ALL" /v1/rag/manuals/nope "{\"query\":\"$Q\"}"; expect_code 404
ok "rag query: 401 without a key, 403 without rag:NAME, 200 with rag:NAME or rag:*, 404/400 for bad input"

# ---- GET /v1/rag: the collections a key may query ----
list_rag() { # list_rag TOKEN -> CODE, BODY; NAMES: the ids, comma separated
    local auth=(); [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    local out; out=$(curl -s -w '\n%{http_code}' "${auth[@]}" "$BASE/v1/rag")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
    NAMES=$(printf '%s' "$BODY" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["object"] == "list"; print(",".join(c["id"] for c in d["data"] if c["object"] == "rag.collection"))' 2>/dev/null || true)
}
list_rag ""; expect_code 401
list_rag "not-a-key"; expect_code 401
list_rag "$ALL"; expect_code 200; [ "$NAMES" = manuals,other ] || fail "rag:* lists: $BODY"
list_rag "$RAG"; expect_code 200; [ "$NAMES" = manuals ] || fail "rag:manuals lists: $BODY"
list_rag "$CHAT"; expect_code 200; [ "$NAMES" = "" ] || fail "chat only lists: $BODY"
ok "GET /v1/rag lists the collections the key may query: all with rag:*, one with rag:NAME, none without"

# ---- the same hits as the CLI, in every mode ----
for m in hybrid vector bm25; do
    req "$RAGONLY" /v1/rag/manuals/query "{\"query\":\"$Q\",\"k\":3,\"mode\":\"$m\"}"; expect_code 200
    a=$(printf '%s' "$BODY" | hits)
    b=$(airlock rag query manuals "$Q" -k 3 --mode $m --json | hits)
    [ "$a" = "$b" ] || fail "$m: server hits differ from the CLI's:\n$a\n$b"
    [ $m = bm25 ] || [ "$(printf "%s" "$BODY" | json_get "len(d[\"hits\"])")" = 3 ] || fail "$m: k=3 not honoured: $BODY"
done
printf '%s' "$BODY" | json_get 'd["object"], d["collection"]' | qgrep "rag.query" || fail "shape: $BODY"
ok "POST /v1/rag/manuals/query gives the CLI's hits (hybrid, vector, bm25)"

# ---- chat completions with retrieval ----
C="{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"$Q\"}],\"max_tokens\":16,\"temperature\":0,\"airlock\":{\"collection\":\"manuals\",\"k\":2}}"
req "$CHAT" /v1/chat/completions "$C"; expect_code 403
echo "$BODY" | qgrep "rag:manuals" || fail "403 should name the scope: $BODY"
req "$RAGONLY" /v1/chat/completions "$C"; expect_code 403   # no chat scope
req "$RAG" /v1/chat/completions "$C"; expect_code 200
printf '%s' "$BODY" | python3 -c '
import json,sys
d=json.load(sys.stdin)
m=d["choices"][0]["message"]
assert m["role"]=="assistant" and isinstance(m["content"], str), m
c=m["citations"]
assert len(c)==2, c
assert [x["index"] for x in c]==[1,2], c
for x in c:
    for k in ("chunk_id","doc","page","heading","text","score","cited","collection"):
        assert k in x, (k, x)
assert c[0]["doc"].endswith("halon.txt"), c
assert d["object"]=="chat.completion" and d["usage"]["prompt_tokens"]>0, d
' || fail "chat citations: $BODY"
# the passages are in the prompt: the prompt grows with them
req "$RAG" /v1/chat/completions "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"$Q\"}],\"max_tokens\":4}"
expect_code 200
plain=$(printf '%s' "$BODY" | json_get 'd["usage"]["prompt_tokens"]')
req "$RAG" /v1/chat/completions "$C"
with=$(printf '%s' "$BODY" | json_get 'd["usage"]["prompt_tokens"]')
[ "$with" -gt $((plain + 20)) ] || fail "passages not in the prompt: $plain vs $with tokens"
# other collection, no scope
req "$RAG" /v1/chat/completions "${C/\"manuals\"/\"other\"}"; expect_code 403
req "$RAG" /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"x"}],"airlock":{"k":2}}'; expect_code 400
req "$RAG" /v1/chat/completions '{"model":"stories","messages":[{"role":"system","content":"x"}],"airlock":{"collection":"manuals"}}'; expect_code 400
ok "chat with retrieval: 403 without rag:manuals, 200 with citations [1],[2], passages in the prompt ($plain -> $with tokens)"

# streaming: the citations come in the first chunk
S=$(curl -sN -H "Authorization: Bearer $RAG" -H 'Content-Type: application/json' \
    -d "${C/\"temperature\":0/\"temperature\":0,\"stream\":true}" "$BASE/v1/chat/completions")
first=$(grep -m1 '^data: {' <<<"$S" | sed 's/^data: //') # no early-closing pipe: with pipefail a SIGPIPE'd writer fails the test
printf '%s' "$first" | python3 -c '
import json,sys
d=json.load(sys.stdin)
c=d["choices"][0]["delta"]["citations"]
assert len(c)==2 and c[0]["doc"].endswith("halon.txt"), c' || fail "stream first chunk: $first"
printf '%s\n' "$S" | tail -2 | qgrep '^data: \[DONE\]' || fail "stream end: $S"
ok "streaming chat with retrieval: citations in the first chunk"

# metrics and audit see the route
curl -s -H "Authorization: Bearer $ALL" "$BASE/metrics" >/dev/null
serve_stop
grep -q '"route":"/v1/rag/{collection}/query"' "$AIRLOCK_HOME"/audit/audit-*.jsonl || fail "rag route not audited"
airlock audit verify >/dev/null || fail "audit verify"
ok "the rag route is audited"
