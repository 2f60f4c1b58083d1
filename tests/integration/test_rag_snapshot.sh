#!/usr/bin/env bash
# Collection snapshots as signed bundles: `rag export` is deterministic (the
# same collection gives the same bytes), the bundle verifies with tar +
# sha256sum -c + minisign -V, `rag import` in another AIRLOCK_HOME (trusting
# the key, holding the same embedding model) gives a read-only collection with
# the same hits in every mode; rag add refuses; a tampered snapshot, an
# untrusted signer and a replayed older snapshot are refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
for t in sha256sum python3; do command -v $t >/dev/null || skip_test "$t missing"; done
FIX=$(fixture)
cd "$T"
A="$T/a"; B="$T/b"; C="$T/c"
export AIRLOCK_HOME="$A"
airlock init >/dev/null
airlock add stories "$FIX" >/dev/null
mkdir -p docs
cat >docs/pumps.md <<'MD'
# Pump maintenance

Pumps move coolant through the primary loop.

## Safety

Always close the isolation valve before opening the pump housing.
MD
printf 'GENERATOR\nThe standby generator runs on diesel fuel.\n\nChange its oil monthly.\n' >docs/generator.txt
printf 'HALON\nThe halon bottle is inspected every quarter by a certified technician.\n' >docs/halon.txt
airlock rag create manuals --embed stories >/dev/null
airlock rag add manuals docs >/dev/null
airlock key gen -o build --no-password >/dev/null

# ---- export: deterministic, verifiable with standard tools ----
expect_status 0 airlock rag export manuals -o s1.tar --sign build.key --seq 5
G=$(airlock rag info manuals --json | json_get 'd["generation"]')
echo "$OUT" | qgrep "rag/manuals:g$G" || fail "export output: $OUT"
sleep 1.1 # a later clock must not change the bytes
airlock rag export manuals -o s2.tar --sign build.key --seq 5 >/dev/null
cmp s1.tar s2.tar || fail "exporting the same collection twice gave different bytes"
airlock rag export manuals -o z1.tar.zst --sign build.key --zstd >/dev/null
airlock rag export manuals -o z2.tar.zst --sign build.key --zstd >/dev/null
cmp z1.tar.zst z2.tar.zst || fail "zstd export not deterministic"
ok "rag export gives the same bytes twice (tar and tar.zst)"
mkdir x && tar xf s1.tar -C x
(cd x && sha256sum -c --quiet checksums.txt) || fail "sha256sum -c fails"
if command -v minisign >/dev/null; then
    minisign -Vm x/checksums.txt -p build.pub >/dev/null || fail "minisign -V fails"
fi
python3 - x <<'PY' || fail "bundle layout"
import json, sys, os
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
mdig = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(os.path.join(d, "blobs/sha256", mdig)))
titles = sorted(l["annotations"]["org.cncf.model.filepath"] for l in man["layers"])
assert titles == ["chunks.db", "rag-snapshot.json", "vectors.faiss"], titles
assert man["annotations"]["org.opencontainers.image.title"] == "rag/manuals", man["annotations"]
PY
ok "tar xf + sha256sum -c + minisign -V accept the snapshot; layers chunks.db, vectors.faiss, rag-snapshot.json"

# ---- another site: trust, the embedding model, import ----
export AIRLOCK_HOME="$B"
airlock init >/dev/null
airlock add stories "$FIX" >/dev/null  # the same file, name and tag: the same manifest
expect_status 6 airlock rag import s1.tar
[ ! -e "$B/rag/manuals" ] || fail "an untrusted snapshot was installed"
airlock trust add build --minisign build.pub --models 'rag/*' >/dev/null
expect_status 0 airlock rag import s1.tar
echo "$OUT" | qgrep "read-only collection 'manuals'" || fail "import output: $OUT"
airlock ls | qgrep "rag/manuals" || fail "the snapshot is not a stored version: $(airlock ls)"
for q in "how often is the halon bottle inspected" "isolation valve" "diesel fuel"; do
    for m in hybrid vector bm25; do
        a=$(AIRLOCK_HOME="$A" airlock rag query manuals "$q" --mode $m --json | json_get '[(h["chunk_id"], h["doc"], h["page"], h["heading"], h["text"], h["score"]) for h in d["hits"]]')
        b=$(airlock rag query manuals "$q" --mode $m --json | json_get '[(h["chunk_id"], h["doc"], h["page"], h["heading"], h["text"], h["score"]) for h in d["hits"]]')
        [ "$a" = "$b" ] || fail "$m '$q': hits differ:\n$a\n$b"
        [ "$a" != "[]" ] || [ $m = bm25 ] || fail "$m '$q': no hits"
    done
done
cmp <(AIRLOCK_HOME="$A" airlock rag dump manuals) <(airlock rag dump manuals) || fail "chunk tables differ"
airlock rag info manuals --json | json_get 'd["readonly"]' | qgrep True || fail "not read-only"
ok "imported in another home: the same chunk table and hits (hybrid, vector, bm25); read-only"

expect_status 6 airlock rag add manuals docs/pumps.md
echo "$OUT" | qgrep "read-only" || fail "rag add message: $OUT"
expect_status 6 airlock rag rm manuals docs/pumps.md
ok "a snapshot refuses rag add and rag rm"

# served: the imported collection answers over HTTP; the snapshot is not a model
if command -v curl >/dev/null; then
    serve_start stories --port 0
    post /v1/rag/manuals/query '{"query":"how often is the halon bottle inspected","k":3}'; expect_code 200
    a=$(printf '%s' "$BODY" | json_get '[h["chunk_id"] for h in d["hits"]]')
    b=$(AIRLOCK_HOME="$A" airlock rag query manuals "how often is the halon bottle inspected" -k 3 --json | json_get '[h["chunk_id"] for h in d["hits"]]')
    [ "$a" = "$b" ] || fail "served snapshot hits differ: $a / $b"
    get /v1/models; ! printf '%s' "$BODY" | qgrep 'rag/manuals' || fail "/v1/models lists the snapshot: $BODY"
    post /v1/chat/completions '{"model":"rag/manuals","messages":[{"role":"user","content":"x"}]}'; expect_code 404
    serve_stop
    ok "the imported collection is served (same hits as the source); the snapshot is no model"
fi

# ingest + activation as two steps; --as; a newer snapshot replaces the old one
expect_status 0 airlock rag import rag/manuals:g$G --as manuals2
[ "$(airlock rag dump manuals2 | sha256sum)" = "$(airlock rag dump manuals | sha256sum)" ] || fail "--as copy differs"
export AIRLOCK_HOME="$A"
printf 'COMPRESSOR\nThe air compressor drains its tank every evening.\n' >docs/compressor.txt
airlock rag add manuals docs/compressor.txt >/dev/null
airlock rag export manuals -o s3.tar --sign build.key --seq 10 >/dev/null
export AIRLOCK_HOME="$B"
expect_status 0 airlock rag import s3.tar
n=$(airlock rag query manuals "compressor tank evening" --mode bm25 --json | json_get 'len(d["hits"])')
[ "$n" -ge 1 ] || fail "the newer snapshot is not in place"
# an older snapshot never ingested here (sequence 5 < 10, other bytes): a replay
export AIRLOCK_HOME="$A"
airlock rag export manuals -o s4.tar --sign build.key --seq 7 >/dev/null
export AIRLOCK_HOME="$B"
expect_status 6 airlock rag import s4.tar
echo "$OUT" | qgrep -i "sequence" || fail "replay message: $OUT"
ok "ingest then 'rag import rag/manuals:g$G --as'; a newer snapshot replaces; an older sequence is refused"

# a local collection of the same name is not overwritten
airlock rag create local --embed stories >/dev/null
expect_status 6 airlock rag import rag/manuals:g$G --as local
ok "a local collection is not replaced by an import"

# ---- tampering: one byte of the database entry ----
export AIRLOCK_HOME="$C"
airlock init >/dev/null
airlock trust add build --minisign "$T/build.pub" >/dev/null
python3 - s1.tar tampered.tar <<'PY'
import json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
t = tarfile.open(src)
man = None
idx = json.load(t.extractfile("index.json"))
man = json.load(t.extractfile("blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
db = [l for l in man["layers"] if l["annotations"]["org.cncf.model.filepath"] == "chunks.db"][0]
m = t.getmember("blobs/sha256/" + db["digest"].split(":")[1])
data = bytearray(open(src, "rb").read())
data[m.offset_data + m.size // 2] ^= 0x01
open(dst, "wb").write(data)
PY
cmp -s s1.tar tampered.tar && fail "tampering did nothing"
expect_status 5 airlock rag import tampered.tar
[ ! -e "$C/rag/manuals" ] || fail "a tampered snapshot was installed"
airlock log | qgrep "ingest-refused" || fail "refusal not recorded"
expect_status 5 airlock ingest tampered.tar
ok "a snapshot with one flipped byte in chunks.db is refused (and recorded)"
