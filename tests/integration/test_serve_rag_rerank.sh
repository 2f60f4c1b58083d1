#!/usr/bin/env bash
# Reranked retrieval over the HTTP API of a real `airlock serve`, on a
# generated reranker (airlock-ggufgen --reranker: BERT, classification head,
# rank pooling): POST /v1/rag/{collection}/query with "rerank" and
# "rerank_candidates" reorders the fused candidates, and its hits (ids, order,
# rerank scores) are those of `airlock rag query --rerank --rerank-candidates`
# on the same question; chat completions with {"airlock": {"collection",
# "rerank"}} cite the reranked passages. The reranker serves the request: a
# key needs the embed scope and the model in its patterns (403 otherwise); an
# unknown model is 404, a model that is not a reranker, a malformed "rerank",
# rerank_candidates without a reranker or over AL_LIMIT_RERANK_DOCS are 400s.
# The audit record of a reranked retrieval names the reranker's weights.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"

"$AL_BUILD/airlock-ggufgen" --reranker --out "$T/rr.gguf" --layers 2 --embd 64 --ff 128 --heads 4 --ctx 512 \
    --seed 3 --vocab "$AL_VOCAB_DIR/ggml-vocab-bert-bge.gguf" 2>/dev/null || fail "ggufgen --reranker"
airlock add rr:1 "$T/rr.gguf" >/dev/null
airlock add stories "$(fixture)" >/dev/null

D="$T/docs"; mkdir -p "$D"
i=0
for d in "The pump gasket is inspected every six months." "Bananas are yellow and grow in bunches." \
         "Inspect the gasket of the pump twice a year." "The standby generator runs on diesel fuel." \
         "Pumps move coolant through the primary loop." "The pump housing is opened only with the valve closed." \
         "Gaskets wear out; a worn gasket leaks." "The reservoir of the pump is checked daily."; do
    i=$((i + 1)); printf '%s\n' "$d" >"$D/d$i.txt"
done
airlock rag create c --embed stories >/dev/null
airlock rag add c "$D" >/dev/null
Q='pump gasket inspection'

tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
RR=$(tok ranker --scopes 'rag:c,embed')
ALLRR=$(tok librarian --scopes 'rag:*,embed')
NOEMBED=$(tok reader --scopes 'rag:c')
ONLYSTORIES=$(tok narrow --scopes 'rag:c,embed' --models 'stories*')
CHATRR=$(tok chatter --scopes 'chat,rag:c,embed')
CHATNOEMBED=$(tok chatonly --scopes 'chat,rag:c')

# The CLI's answers, before the server runs: fused (k 8) and reranked (k 3 of 8).
airlock rag query c "$Q" -k 8 --json >"$T/plain.json"
airlock rag query c "$Q" -k 3 --rerank rr:1 --rerank-candidates 8 --json >"$T/cli_rr.json"

serve_start stories --port 0

req() { # req TOKEN PATH JSON -> CODE, BODY
    local auth=(); [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    local out; out=$(curl -s -w '\n%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d "$3" "$BASE$2")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
refused() { # TOKEN PATH JSON STATUS PATTERN
    req "$1" "$2" "$3"
    [ "$CODE" = "$4" ] || fail "expected $4 for $3, got $CODE: $BODY"
    printf '%s' "$BODY" | qgrep -- "$5" || fail "message for $3: $BODY"
}

# ---- the server's reranked hits are the CLI's ----
req "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"k\":8}"; expect_code 200
printf '%s' "$BODY" >"$T/srv_plain.json"
req "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"k\":3,\"rerank\":\"rr:1\",\"rerank_candidates\":8}"; expect_code 200
printf '%s' "$BODY" >"$T/srv_rr.json"
python3 - "$T/plain.json" "$T/cli_rr.json" "$T/srv_plain.json" "$T/srv_rr.json" <<'PY' || fail "server rerank differs from the CLI's"
import json, sys
plain, cli, splain, srv = (json.load(open(p)) for p in sys.argv[1:])
fused = [h["chunk_id"] for h in plain["hits"]]
assert len(fused) == 8 and [h["chunk_id"] for h in splain["hits"]] == fused, "unreranked hits differ"
assert "reranked" not in splain and "reranker" not in splain, splain
got = [h["chunk_id"] for h in srv["hits"]]
assert srv["object"] == "rag.query" and srv["collection"] == "c", srv
assert srv["reranked"] is True and srv["reranker"] == "rr" and "rerank" in srv["timing_ms"], srv
assert len(got) == 3, got
assert got == [h["chunk_id"] for h in cli["hits"]], (got, [h["chunk_id"] for h in cli["hits"]])
assert got != fused[:3], "reranking kept the fused order: the test shows nothing"
for a, b in zip(srv["hits"], cli["hits"]):
    assert a["fused_rank"] == b["fused_rank"] and fused[a["fused_rank"] - 1] == a["chunk_id"], (a, b)
    assert abs(a["rerank_score"] - b["rerank_score"]) < 1e-4, (a, b)
    assert a["text"] == b["text"] and a["doc"] == b["doc"], (a, b)
s = [h["rerank_score"] for h in srv["hits"]]
assert s == sorted(s, reverse=True), s
print("ok - fused ranks of the reranked hits", [h["fused_rank"] for h in srv["hits"]])
PY
# the same request again gives the same hits; the default pool (max(20, 2k)) covers the 8 chunks too
req "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"k\":3,\"rerank\":\"rr:1\",\"rerank_candidates\":8}"; expect_code 200
[ "$(printf '%s' "$BODY" | json_get '[h["chunk_id"] for h in d["hits"]]')" = \
  "$(json_get '[h["chunk_id"] for h in d["hits"]]' <"$T/srv_rr.json")" ] || fail "a second request ranked otherwise"
req "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"k\":3,\"rerank\":\"rr\"}"; expect_code 200
[ "$(printf '%s' "$BODY" | json_get '[h["chunk_id"] for h in d["hits"]]')" = \
  "$(json_get '[h["chunk_id"] for h in d["hits"]]' <"$T/srv_rr.json")" ] || fail "default candidates: $BODY"
ok "POST /v1/rag/c/query with rerank: the fused order changes, and equals rag query --rerank (ids, fused ranks, scores)"

# ---- refusals ----
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"nosuch\"}" 404 "model_not_found"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"stories\"}" 400 "model 'stories' is not a reranker"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":3}" 400 "'rerank' must name a reranking model"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"\"}" 400 "'rerank' must name a reranking model"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank_candidates\":8}" 400 "'rerank_candidates' needs a reranker"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\",\"rerank_candidates\":1001}" 400 \
    "'rerank_candidates' must be an integer 1..1000 (AL_LIMIT_RERANK_DOCS)"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\",\"rerank_candidates\":0}" 400 "'rerank_candidates' must be an integer"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\",\"rerank_candidates\":\"8\"}" 400 "'rerank_candidates' must be an integer"
refused "$RR" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rag/c\"}" 404 "collection snapshot, not a model"
refused "$ALLRR" /v1/rag/nothere/query "{\"query\":\"$Q\",\"rerank\":\"rr\"}" 404 "collection_not_found"
# scopes: the reranker needs embed, and the model in the key's patterns; the collection rag:c as before
refused "$NOEMBED" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\"}" 403 "embed"
req "$NOEMBED" /v1/rag/c/query "{\"query\":\"$Q\"}"; expect_code 200
refused "$ONLYSTORIES" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\"}" 403 "rr"
req "$ONLYSTORIES" /v1/rag/c/query "{\"query\":\"$Q\"}"; expect_code 200
refused "" /v1/rag/c/query "{\"query\":\"$Q\",\"rerank\":\"rr\"}" 401 ""
ok "refusals: unknown model 404, not a reranker 400, bad rerank/rerank_candidates 400, over the cap 400; 403 without embed or the model"

# ---- chat completions with a reranked retrieval ----
C="{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"$Q\"}],\"max_tokens\":4,\"temperature\":0,\"airlock\":{\"collection\":\"c\",\"k\":2,\"rerank\":\"rr:1\",\"rerank_candidates\":8}}"
refused "$CHATNOEMBED" /v1/chat/completions "$C" 403 "embed"
refused "$CHATRR" /v1/chat/completions "${C/\"rr:1\"/\"stories\"}" 400 "is not a reranker"
refused "$CHATRR" /v1/chat/completions "${C/\"rerank_candidates\":8/\"rerank_candidates\":5000}" 400 "AL_LIMIT_RERANK_DOCS"
req "$CHATRR" /v1/chat/completions "$C"; expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
d = json.load(sys.stdin); cli = json.load(open(sys.argv[1]))["hits"]
c = d["choices"][0]["message"]["citations"]
assert [x["chunk_id"] for x in c] == [h["chunk_id"] for h in cli[:2]], (c, cli[:2])
for x, h in zip(c, cli):
    assert x["fused_rank"] == h["fused_rank"] and abs(x["rerank_score"] - h["rerank_score"]) < 1e-4, (x, h)
' "$T/cli_rr.json" || fail "chat citations are not the reranked passages: $BODY"
req "$CHATNOEMBED" /v1/chat/completions "${C/,\"rerank\":\"rr:1\",\"rerank_candidates\":8/}"; expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
c = json.load(sys.stdin)["choices"][0]["message"]["citations"]
assert all("rerank_score" not in x for x in c), c' || fail "unreranked chat citations: $BODY"
ok "chat with a reranked retrieval cites the CLI's reranked passages; 403 without embed; 400 for a non-reranker or too many candidates"

serve_stop
airlock audit verify >/dev/null || fail "audit verify"
# the audit names the reranker (its weights), beside the model digest of the request
RRD="sha256:$(sha256sum "$T/rr.gguf" | cut -d' ' -f1)"
python3 - "$RRD" "$AIRLOCK_HOME"/audit/audit-*.jsonl <<'PY' || fail "the audit does not record the reranker"
import json, sys
recs = [json.loads(l) for p in sys.argv[2:] for l in open(p) if l.strip()]
q = [r for r in recs if r["route"] == "/v1/rag/{collection}/query" and r["status"] == 200]
rr = [r for r in q if "reranker" in r]
assert rr and all(r["reranker"] == "rr@" + sys.argv[1] for r in rr), rr
assert len(rr) < len(q), "a query without rerank recorded a reranker"
chat = [r for r in recs if r["route"] == "/v1/chat/completions" and r["status"] == 200]
assert any(r.get("reranker") == "rr@" + sys.argv[1] for r in chat), chat
PY
ok "the audit records the reranker's weights (name@digest) for reranked retrievals only"
