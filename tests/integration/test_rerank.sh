#!/usr/bin/env bash
# test_rerank.sh: reranking end to end on a generated reranker (airlock-ggufgen
# --reranker: BERT, classification head, rank pooling). airlock serve's
# /v1/rerank (and its aliases) orders documents by the model's scores, and its
# shapes and scores match the pinned llama-server's /rerank (--reranking) on
# the same file; refusals (no documents, over the caps, a model that is not a
# reranker, a reranker asked to generate) are 400s with their messages;
# `rag query --rerank` reorders the fused candidates by the same scores and
# `ask --rerank` answers from the reranked passages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
LS="$AL_LLAMA_PREFIX/build/bin/llama-server"
[ -x "$LS" ] || skip_test "no llama-server at $LS"

RR="$T/rr.gguf"
"$AL_BUILD/airlock-ggufgen" --reranker --out "$RR" --layers 2 --embd 64 --ff 128 --heads 4 --ctx 512 --seed 3 \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-bert-bge.gguf" 2>/dev/null || fail "ggufgen --reranker"
"$AL_BUILD/airlock-ggufgen" --reranker --out "$T/rr2.gguf" --layers 2 --embd 64 --ff 128 --heads 4 --ctx 512 \
    --seed 3 --vocab "$AL_VOCAB_DIR/ggml-vocab-bert-bge.gguf" 2>/dev/null
cmp -s "$RR" "$T/rr2.gguf" || fail "the same options and seed gave other bytes"
ok "ggufgen --reranker writes the same bytes for the same seed"

airlock init >/dev/null
airlock add rr:1 "$RR" >/dev/null
airlock add stories "$(fixture)" >/dev/null

QUERY='how often is the pump gasket inspected'
DOCS='["The pump gasket is inspected every six months.","Bananas are yellow.","Inspect the gasket of the pump twice a year, in spring and autumn.","The standby generator runs on diesel fuel.","Pumps move coolant through the primary loop."]'
REQ="{\"model\":\"rr\",\"query\":\"$QUERY\",\"documents\":$DOCS}"

# ---- the real llama-server on the same file ----
"$LS" -m "$RR" --reranking -t 1 -np 1 -c 512 --host 127.0.0.1 --port 0 >"$T/ls.log" 2>&1 &
LSPID=$!
trap 'rc=$?; kill $LSPID 2>/dev/null || true; wait $LSPID 2>/dev/null || true; (serve_stop) || rc=1; rm -rf "$T"; exit $rc' EXIT
LSURL=
for _ in $(seq 1 1200); do
    kill -0 $LSPID 2>/dev/null || fail "llama-server exited at start: $(tail -5 "$T/ls.log")"
    LSURL=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$T/ls.log" | head -n 1 | cut -d' ' -f3 || true)
    [ -n "$LSURL" ] && curl -sf "$LSURL/health" >/dev/null && break
    LSURL=
    sleep 0.1
done
[ -n "$LSURL" ] || fail "llama-server not ready: $(tail -5 "$T/ls.log")"
curl -s -H 'Content-Type: application/json' -d "$REQ" "$LSURL/v1/rerank" >"$T/ls.json"
curl -s -H 'Content-Type: application/json' -d "{\"query\":\"$QUERY\",\"texts\":$DOCS,\"return_text\":true}" \
    "$LSURL/rerank" >"$T/ls_tei.json"
kill $LSPID; wait $LSPID 2>/dev/null || true

# ---- airlock serve ----
serve_start rr:1 stories --port 0
post /v1/rerank "$REQ"
expect_code 200
printf '%s' "$BODY" >"$T/al.json"
python3 - "$T/al.json" "$T/ls.json" <<'PY' || fail "/v1/rerank differs from llama-server's /rerank"
import json, sys
a, l = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert set(a) == set(l) == {"model", "object", "usage", "results"}, (sorted(a), sorted(l))
assert a["object"] == l["object"] == "list" and a["model"] == "rr", a
assert a["usage"] == l["usage"], (a["usage"], l["usage"])
ra, rl = a["results"], l["results"]
assert len(ra) == len(rl) == 5
for x, y in zip(ra, rl):
    assert set(x) == set(y) == {"index", "relevance_score"}, (x, y)
    assert x["index"] == y["index"], ([r["index"] for r in ra], [r["index"] for r in rl])
    assert abs(x["relevance_score"] - y["relevance_score"]) < 1e-4, (x, y)
s = [r["relevance_score"] for r in ra]
assert s == sorted(s, reverse=True), s
assert len(set(round(v, 6) for v in s)) == 5, s  # five different scores: the order means something
print("ok - order", [r["index"] for r in ra], "scores", [round(v, 5) for v in s])
PY
ok "/v1/rerank: sorted, and the shapes, order and scores of llama-server's /rerank on the same model"

# the same request again: the same bytes (deterministic); the aliases answer the same
post /v1/rerank "$REQ"; [ "$BODY" = "$(cat "$T/al.json")" ] || fail "a second request scored differently"
for p in /rerank /v1/reranking /reranking; do
    post $p "$REQ"; expect_code 200
    [ "$BODY" = "$(cat "$T/al.json")" ] || fail "$p answers otherwise: $BODY"
done
# top_n, return_text, return_documents (Cohere/Jina), documents as {"text"} objects
post /v1/rerank "{\"model\":\"rr\",\"query\":\"$QUERY\",\"documents\":$DOCS,\"top_n\":2,\"return_text\":true,\"return_documents\":true}"
expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
full = json.load(open(sys.argv[1]))["results"]; docs = json.loads(sys.argv[2]); r = json.load(sys.stdin)["results"]
assert [x["index"] for x in r] == [x["index"] for x in full[:2]], r
for x in r:
    assert x["text"] == docs[x["index"]] and x["document"] == {"text": docs[x["index"]]}, x
' "$T/al.json" "$DOCS" || fail "top_n/return_text: $BODY"
objs=$(python3 -c 'import json,sys; print(json.dumps([{"text": d} for d in json.loads(sys.argv[1])]))' "$DOCS")
post /v1/rerank "{\"model\":\"rr\",\"query\":\"$QUERY\",\"documents\":$objs}"
[ "$(printf '%s' "$BODY" | json_get 'd["results"]')" = "$(json_get 'd["results"]' <"$T/al.json")" ] \
    || fail "documents as objects: $BODY"
# TEI's shape ("texts" in, a bare array with "score" out), as llama-server answers it
post /rerank "{\"model\":\"rr\",\"query\":\"$QUERY\",\"texts\":$DOCS,\"return_text\":true}"
expect_code 200
python3 - "$T/ls_tei.json" <<PY || fail "TEI shape differs: $BODY"
import json, sys
a, l = json.loads('''$BODY'''), json.load(open(sys.argv[1]))
assert isinstance(a, list) and isinstance(l, list) and len(a) == len(l) == 5
for x, y in zip(a, l):
    assert set(x) == set(y) == {"index", "score", "text"}, (x, y)
    assert x["index"] == y["index"] and x["text"] == y["text"] and abs(x["score"] - y["score"]) < 1e-4
PY
ok "same bytes twice; /rerank /v1/reranking /reranking; top_n, return_text, return_documents, {text} objects, TEI"

# ---- refusals ----
refused() { # PATH JSON STATUS PATTERN
    post "$1" "$2"
    [ "$CODE" = "$3" ] || fail "expected $3 for $2, got $CODE: $BODY"
    printf '%s' "$BODY" | qgrep -- "$4" || fail "message for $2: $BODY"
}
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":[]}" 400 "'documents' must be a non-empty array"
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\"}" 400 "'documents' must be a non-empty array"
refused /v1/rerank "{\"model\":\"rr\",\"documents\":[\"a\"]}" 400 "'query' must be a string"
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":[\"a\",3]}" 400 "'documents' item 1 must be a string"
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":0}" 400 "'top_n' must be a positive integer"
many=$(python3 -c 'import json; print(json.dumps(["d"] * 1001))')
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":$many}" 400 "1001 documents, over the cap of 1000 (AL_LIMIT_RERANK_DOCS)"
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":[\"a\",\"$big\"]}" 400 "item 1 has 70000 bytes, over the cap of 65536 (AL_LIMIT_RERANK_DOC_BYTES)"
# within the byte cap but over the model's context of 512 tokens
long=$(python3 -c 'print(" ".join(["gasket"] * 600))')
refused /v1/rerank "{\"model\":\"rr\",\"query\":\"q\",\"documents\":[\"a\",\"$long\"]}" 400 "document 1 is over the context of 512 tokens"
refused /v1/rerank "{\"model\":\"stories\",\"query\":\"q\",\"documents\":[\"a\"]}" 400 "model 'stories' is not a reranker"
refused /v1/chat/completions '{"model":"rr","messages":[{"role":"user","content":"hi"}],"max_tokens":2}' 400 "is a reranker"
refused /v1/embeddings '{"model":"rr","input":"hi"}' 400 "rank: a reranker"
post /v1/rerank "$REQ"; expect_code 200
ok "refusals: no documents, no query, a non-string, top_n 0, 1001 documents, 70000 bytes, over the context, not a reranker; a reranker neither chats nor embeds"
serve_stop

# ---- rag query --rerank ----
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
airlock rag query c "$Q" -k 8 --json >"$T/plain.json"
airlock rag query c "$Q" -k 3 --rerank rr:1 --rerank-candidates 8 --json >"$T/rr.json"
airlock rag query c "$Q" -k 3 --rerank rr:1 --rerank-candidates 8 --json >"$T/rr_again.json"
cmp -s "$T/rr.json" "$T/rr_again.json" || python3 - "$T/rr.json" "$T/rr_again.json" <<'PY' || fail "rerank not deterministic"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert [(h["chunk_id"], h["rerank_score"]) for h in a["hits"]] == [(h["chunk_id"], h["rerank_score"]) for h in b["hits"]]
PY
# the expected order: the 8 fused candidates scored by the same model through /v1/rerank
serve_start rr:1 --port 0
texts=$(python3 -c 'import json,sys; print(json.dumps([h["text"] for h in json.load(open(sys.argv[1]))["hits"]]))' "$T/plain.json")
post /v1/rerank "{\"query\":\"$Q\",\"documents\":$texts}"
expect_code 200
printf '%s' "$BODY" >"$T/srv.json"
serve_stop
python3 - "$T/plain.json" "$T/rr.json" "$T/srv.json" <<'PY' || fail "rag query --rerank"
import json, sys
plain, rr, srv = (json.load(open(p)) for p in sys.argv[1:])
fused = [h["chunk_id"] for h in plain["hits"]]
assert len(fused) == 8, fused
want = [fused[r["index"]] for r in srv["results"]][:3]
got = [h["chunk_id"] for h in rr["hits"]]
assert rr["reranked"] is True and len(got) == 3, rr
assert got == want, (got, want)
assert got != fused[:3], "reranking kept the fused order: the test shows nothing"
for h, r in zip(rr["hits"], srv["results"]):
    assert h["fused_rank"] == r["index"] + 1, (h["fused_rank"], r["index"])
    assert abs(h["rerank_score"] - r["relevance_score"]) < 1e-4, (h, r)
print("ok - fused", [fused.index(c) + 1 for c in fused[:3]], "reranked", [fused.index(c) + 1 for c in got])
PY
ok "rag query --rerank: the fused candidates reordered by the reranker's /v1/rerank scores"
airlock rag query c "$Q" -k 3 --rerank rr:1 | qgrep "fused #" || fail "the text output does not show the reranking"
expect_status 2 airlock rag query c "$Q" --rerank stories
echo "$OUT" | qgrep "'stories' is not a reranker" || fail "a non-reranker was taken: $OUT"
expect_status 0 airlock ask c "$Q" --model stories --rerank rr:1 -k 2 --rerank-candidates 8 --max-tokens 4 --json
printf '%s' "$OUT" | python3 -c '
import json, sys
a = json.load(sys.stdin); want = json.load(open(sys.argv[1]))["hits"][:2]
assert a["reranked"] is True and [h["chunk_id"] for h in a["hits"]] == [h["chunk_id"] for h in want], a["hits"]
' "$T/rr.json" || fail "ask --rerank: $OUT"
ok "a non-reranker is refused; ask --rerank answers from the reranked passages"
