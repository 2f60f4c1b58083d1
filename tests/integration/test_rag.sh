#!/usr/bin/env bash
# test_rag.sh: collections end to end with the real binary: formats (a PDF of
# several pages made by groff + ps2pdf, HTML, Markdown, text) with pages and
# headings in the hits; determinism (the same files in another order give a
# byte-identical chunk table and the same hits); unchanged documents skipped;
# rm; another model refused; ask with citations.
. "$(dirname "$0")/lib.sh"
command -v groff >/dev/null && command -v ps2pdf >/dev/null || skip_test "groff/ps2pdf missing"
model=$(fixture)
airlock init >/dev/null
airlock add stories "$model" >/dev/null
"$AL_BUILD/airlock-ggufgen" --out "$T/other.gguf" --layers 1 --embd 32 --ff 64 --heads 2 --kv-heads 1 \
    --ctx 256 --seed 7 --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf" >/dev/null 2>&1 \
  || "$AL_BUILD/airlock-ggufgen" --out "$T/other.gguf" --layers 1 --embd 32 --ff 64 --heads 2 --kv-heads 1 --ctx 256 --seed 7 >/dev/null
airlock add other "$T/other.gguf" >/dev/null

# ---- the corpus ----
D="$T/docs"; mkdir -p "$D/sub"
cat >"$T/manual.man" <<'MAN'
.TH FIELD 7 2024 airlock "Field Manual"
.SH HYDRAULIC SYSTEMS
The hydraulic pump must be primed before first use. Check the reservoir level daily.
.bp
.SH ELECTRICAL SAFETY
Disconnect the battery before servicing the alternator. Insulated tools are required.
.bp
.SH FIRE SUPPRESSION
The halon bottle is inspected every quarter by a certified technician.
MAN
groff -man -Tps "$T/manual.man" >"$T/manual.ps" && ps2pdf "$T/manual.ps" "$D/manual.pdf"
cat >"$D/pumps.md" <<'MD'
# Pump maintenance

Pumps move coolant through the primary loop.

## Safety

Always close the isolation valve before opening the pump housing.

## Cleaning

Flush the impeller with clean water for ten minutes.
MD
cat >"$D/sub/valves.html" <<'HTML'
<html><head><title>Valve guide</title><style>p { color: red } .gasket {}</style>
<script>var s = "<h1>gasket torque</h1>";</script></head>
<body><h1>Valves</h1><p>A valve controls &amp; regulates flow.</p>
<h2>Inspection</h2><p>Inspect every gasket each <b>six</b> months.</p></body></html>
HTML
printf 'GENERATOR\nThe standby generator runs on diesel fuel.\n\nChange its oil monthly.\n' >"$D/sub/generator.txt"
printf '\x00\x01binary' >"$D/blob.bin"

# ---- create, add (the directory, then the same files named in reverse order elsewhere) ----
airlock rag create c1 --embed stories >/dev/null
airlock rag create c2 --embed stories >/dev/null
expect_status 0 airlock rag add c1 "$D"
echo "$OUT" | qgrep "4 documents: 4 added" || fail "add: $OUT"
(cd "$T" && airlock rag add c2 docs/sub/valves.html docs/sub/generator.txt docs/pumps.md docs/manual.pdf >/dev/null)
# c2's keys are docs/...; c1's are $D/...: compare with the prefix removed
airlock rag dump c1 | sed "s|$D/|docs/|" >"$T/d1"
airlock rag dump c2 >"$T/d2"
cmp -s "$T/d1" "$T/d2" || { diff "$T/d1" "$T/d2" | head; fail "chunk tables differ"; }
[ "$(wc -l <"$T/d1")" -ge 6 ] || fail "too few chunks: $(cat "$T/d1")"
ok "same files, other order: byte-identical chunk tables ($(wc -l <"$T/d1") chunks)"
# a collection built the same way again, compared as SQLite rows, and the hits
(cd "$T" && airlock rag create c3 --embed stories >/dev/null && airlock rag add c3 docs/pumps.md docs/manual.pdf docs/sub >/dev/null)
rows() { sqlite3 "$AIRLOCK_HOME/rag/$1/chunks.db" "SELECT c.id, c.chunk_id, d.path, c.page, c.heading, c.start, c.\"end\", c.ntok, c.text, hex(c.vec) FROM chunks c JOIN docs d ON d.id = c.doc ORDER BY c.id" | sha256sum; }
[ "$(rows c2)" = "$(rows c3)" ] || fail "chunk rows differ between c2 and c3"
for m in hybrid vector bm25; do
    a=$(airlock rag query c2 "how often is the gasket inspected" --mode $m --json | python3 -c 'import json,sys; print([(h["chunk_id"],h["score"]) for h in json.load(sys.stdin)["hits"]])')
    b=$(airlock rag query c3 "how often is the gasket inspected" --mode $m --json | python3 -c 'import json,sys; print([(h["chunk_id"],h["score"]) for h in json.load(sys.stdin)["hits"]])')
    [ "$a" = "$b" ] || fail "$m hits differ: $a / $b"
done
ok "identical rows (ids, text, vectors) and identical hits in all three modes"

# ---- formats: pages and headings in the hits ----
hit() { airlock rag query c1 "$1" --mode bm25 -k 1 --json | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"][0]; print("%s|%s|%s" % (h["doc"].split("/")[-1], h["page"], h["heading"]))'; }
[ "$(hit 'halon bottle quarter')" = "manual.pdf|3|FIRE SUPPRESSION" ] || fail "pdf page 3: $(hit 'halon bottle quarter')"
[ "$(hit 'battery alternator insulated')" = "manual.pdf|2|ELECTRICAL SAFETY" ] || fail "pdf page 2: $(hit 'battery alternator insulated')"
[ "$(hit 'hydraulic reservoir primed')" = "manual.pdf|1|HYDRAULIC SYSTEMS" ] || fail "pdf page 1: $(hit 'hydraulic reservoir primed')"
[ "$(hit 'isolation valve housing')" = "pumps.md|0|Pump maintenance > Safety" ] || fail "markdown: $(hit 'isolation valve housing')"
[ "$(hit 'gasket six months')" = "valves.html|0|Valves > Inspection" ] || fail "html: $(hit 'gasket six months')"
[ "$(hit 'diesel fuel standby')" = "generator.txt|0|GENERATOR" ] || fail "text: $(hit 'diesel fuel standby')"
# scripts and styles are dropped: "torque" only appears inside <script>
n=$(airlock rag query c1 "torque" --mode bm25 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')
[ "$n" = 0 ] || fail "script text was indexed"
# offsets point into the source: the Markdown hit's bytes are the paragraph
airlock rag query c1 "isolation valve housing" --mode bm25 -k 1 --json >"$T/q.json"
s=$(json_get 'd["hits"][0]["start"]' <"$T/q.json"); e=$(json_get 'd["hits"][0]["end"]' <"$T/q.json")
[ "$(dd if="$D/pumps.md" bs=1 skip="$s" count=$((e - s)) 2>/dev/null)" = "Always close the isolation valve before opening the pump housing." ] \
  || fail "markdown offsets $s-$e"
ok "PDF pages 1-3, headings of PDF/Markdown/HTML/text, scripts dropped, byte offsets"

# ---- re-add: unchanged skipped; a changed file replaced; rm ----
expect_status 0 airlock rag add c1 "$D"
echo "$OUT" | qgrep "0 added, 0 replaced, 4 unchanged" || fail "re-add: $OUT"
echo "Check the impeller seal weekly." >>"$D/pumps.md"
expect_status 0 airlock rag add c1 "$D"
echo "$OUT" | qgrep "1 replaced, 3 unchanged" || fail "changed: $OUT"
[ "$(hit 'impeller seal weekly' | cut -d'|' -f1)" = pumps.md ] || fail "changed document not searchable"
expect_status 0 airlock rag rm c1 "$D/sub/generator.txt"
n=$(airlock rag query c1 "diesel" --mode bm25 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')
[ "$n" = 0 ] || fail "removed document still found"
expect_status 3 airlock rag rm c1 nothing.txt
n=$(airlock rag query c1 "coolant loop" --mode vector -k 100 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')
[ "$n" = "$(airlock rag info c1 --json | json_get 'd["chunks"]')" ] || fail "vector index not in step after rm"
ok "unchanged skipped, changed replaced, rm drops chunks and vectors"

# ---- another model is refused ----
airlock rag create c4 --embed other --chunk-tokens 128 >/dev/null
dim_other=$(airlock rag info c4 --json | json_get 'd["dim"]')
[ "$dim_other" = 32 ] || fail "dim $dim_other"
# point c4 at stories' manifest while keeping other's weight digest: the load must refuse
man=$(airlock rag info c1 --json | json_get 'd["embed_manifest"]')
sqlite3 "$AIRLOCK_HOME/rag/c4/chunks.db" "UPDATE meta SET value='stories' WHERE key='embed_model'; UPDATE meta SET value='$man' WHERE key='embed_manifest'"
expect_status 5 airlock rag add c4 "$D/pumps.md"
echo "$OUT" | qgrep "collection was built with" || fail "wrong model accepted: $OUT"
ok "a collection refuses an embedding model other than its own"

# ---- ask: answer and citations ----
expect_status 0 airlock ask c1 "When is the halon bottle inspected?" --model stories -k 3 --max-tokens 24 --json
echo "$OUT" | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["template"]=="airlock-rag-prompt-1", d
assert d["hits"] and d["answer"] is not None, d
print("ask: %d passages, answer %r" % (len(d["hits"]), d["answer"][:60]))'
expect_status 0 airlock ask c1 "When is the halon bottle inspected?" --model stories -k 2 --max-tokens 16
echo "$OUT" | qgrep "^sources" || fail "ask output: $OUT"
ok "ask prints an answer with its sources"
echo "1 passed, 0 failed"
