#!/usr/bin/env bash
# test_rag_recall.sh: retrieval quality on a labeled set generated at run
# time from Debian's manual pages: >= 200 pages rendered as text (their NAME
# section removed, so the answer is not a copy of the question); each sampled
# page's one-line description (whatis) is a question whose answer is that
# page. Reports recall@5 for bm25, vector and hybrid.
#
# Embedding model: the fixture stories260K (a 260K-parameter model trained on
# children's stories, mean-pooled): it embeds "in a pinch", so its vector
# recall says little about a real embedding model; BM25 and the plumbing of
# fusion are what this test holds to a floor.
. "$(dirname "$0")/lib.sh"
model=$(fixture)
mandir=/usr/share/man/man1
[ "$(ls "$mandir" 2>/dev/null | wc -l)" -ge 400 ] || skip_test "fewer than 400 manual pages in $mandir"
airlock init >/dev/null
airlock add stories "$model" >/dev/null

C="$T/corpus"; mkdir -p "$C"
python3 - "$mandir" "$C" "$T/questions.tsv" <<'PY'
import os, re, subprocess, sys
mandir, out, qfile = sys.argv[1:]
pages = sorted(p for p in os.listdir(mandir) if p.endswith(".1.gz"))
step = max(1, len(pages) // 600)
docs, seen = [], set()
env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
for p in pages[::step]:
    if len(docs) >= 212:
        break
    try:
        txt = subprocess.run(["man", "-P", "cat", "-l", os.path.join(mandir, p)], env=env,
                             capture_output=True, timeout=20).stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        continue
    txt = re.sub(r".\x08", "", txt)
    m = re.search(r"^NAME\n(.*?)\n(?=[A-Z])", txt, re.S | re.M)
    if not m or len(txt) < 800:
        continue
    name = " ".join(m.group(1).split())
    if " - " not in name:
        continue
    desc = name.split(" - ", 1)[1].strip()
    if len(desc.split()) < 3 or desc.lower() in seen:
        continue
    seen.add(desc.lower())
    body = txt[:m.start()] + txt[m.end():]  # the NAME section goes
    key = p[:-3] + ".txt"
    with open(os.path.join(out, key), "w") as f:
        f.write(body)
    docs.append((key, desc))
with open(qfile, "w") as f:
    for key, desc in docs[::4]:
        f.write("%s\t%s\n" % (key, desc))
print("corpus: %d pages, %d questions" % (len(docs), len(docs[::4])))
PY
nd=$(ls "$C" | wc -l); nq=$(wc -l <"$T/questions.tsv")
[ "$nd" -ge 200 ] && [ "$nq" -ge 50 ] || fail "corpus too small: $nd documents, $nq questions"

airlock rag create man --embed stories >/dev/null
(cd "$T" && airlock rag add man corpus --threads 1) | tail -1
cut -f2 "$T/questions.tsv" >"$T/q.txt"
declare -A recall
for mode in bm25 vector hybrid; do
    airlock rag query man --batch "$T/q.txt" --mode "$mode" -k 5 --threads 1 >"$T/$mode.jsonl"
    recall[$mode]=$(python3 - "$T/questions.tsv" "$T/$mode.jsonl" <<'PY'
import json, sys
want = [l.split("\t")[0] for l in open(sys.argv[1]).read().splitlines()]
got = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(want), (len(got), len(want))
hits = sum(1 for w, g in zip(want, got) if any(h["doc"].endswith("/" + w) for h in g["hits"]))
print("%.3f" % (hits / len(want)))
PY
)
done
echo "recall@5 over $nq questions, $nd manual pages (embedding model: stories260K fixture):"
echo "  bm25 ${recall[bm25]}  vector ${recall[vector]}  hybrid ${recall[hybrid]}"
python3 -c "import sys; b,v,h=map(float,sys.argv[1:]); assert b>=0.5, 'bm25 recall %.3f under 0.5'%b; assert h>=0.8*b, 'hybrid %.3f far under bm25 %.3f'%(h,b)" \
    "${recall[bm25]}" "${recall[vector]}" "${recall[hybrid]}" || fail "recall under the floor"
ok "recall@5 bm25 ${recall[bm25]}, vector ${recall[vector]}, hybrid ${recall[hybrid]}"
echo "1 passed, 0 failed"
