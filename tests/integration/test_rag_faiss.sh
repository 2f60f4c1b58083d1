#!/usr/bin/env bash
# test_rag_faiss.sh: FAISS files cross between Python's faiss (Debian's
# python3-faiss) and airlock both ways. Python writes a flat and an HNSW
# index with a chunk table; airlock attaches each and must answer the same
# nearest neighbours, in the same order, as Python does. Then Python reads the
# index airlock wrote for a collection and finds every stored vector at rank 1.
. "$(dirname "$0")/lib.sh"
# Debian's python3-faiss lives in the system Python; another python3 may come first in PATH.
PYF=
for p in /usr/bin/python3 python3; do "$p" -c 'import faiss, numpy' 2>/dev/null && { PYF=$p; break; }; done
[ -n "$PYF" ] || skip_test "python3-faiss missing"
model=$(fixture)
airlock init >/dev/null
airlock add stories "$model" >/dev/null
airlock rag create probe --embed stories >/dev/null
dim=$(airlock rag info probe --json | json_get 'd["dim"]')

"$PYF" - "$T" "$dim" <<'PY'
import json, sys, faiss, numpy as np
out, d = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
n = 2000
x = rng.standard_normal((n, d)).astype("float32"); faiss.normalize_L2(x)
q = rng.standard_normal((20, d)).astype("float32"); faiss.normalize_L2(q)
flat = faiss.IndexFlatIP(d); flat.add(x)
faiss.write_index(flat, out + "/flat.faiss")
hnsw = faiss.IndexIDMap2(faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT))
ids = np.arange(n, dtype="int64") * 7 + 1000
hnsw.add_with_ids(x, ids)
faiss.write_index(hnsw, out + "/hnsw.faiss")
for name, idmap in (("flat", np.arange(n)), ("hnsw", ids)):
    with open(out + "/%s.jsonl" % name, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": int(idmap[i]), "doc": "doc%03d.txt" % (i // 20), "page": 1 + i % 3,
                                "heading": "part %d" % (i % 5), "text": "chunk %d" % idmap[i]}) + "\n")
_, fl = flat.search(q, 10)
hnsw_index = faiss.downcast_index(hnsw.index); hnsw_index.hnsw.efSearch = 128
_, hl = hnsw.search(q, 10)
for j in range(len(q)):
    q[j].tofile(out + "/q%d.f32" % j)
json.dump({"flat": fl.tolist(), "hnsw": hl.tolist()}, open(out + "/expected.json", "w"))
PY

for kind in flat hnsw; do
    airlock rag create "py-$kind" --embed stories >/dev/null
    expect_status 0 airlock rag attach "py-$kind" --index "$T/$kind.faiss" --chunks "$T/$kind.jsonl"
    for j in $(seq 0 19); do
        airlock rag query "py-$kind" --vector "$T/q$j.f32" --mode vector -k 10 --json >"$T/got-$kind-$j.json"
    done
    python3 - "$T" "$kind" <<'PY'
import json, sys
out, kind = sys.argv[1:]
want = json.load(open(out + "/expected.json"))[kind]
same = 0
for j, w in enumerate(want):
    got = [int(h["text"].split()[1]) for h in json.load(open("%s/got-%s-%d.json" % (out, kind, j)))["hits"]]
    if kind == "flat":
        assert got == w, (j, got, w)  # exact search: the same list, in order
    same += len(set(got) & set(w))
frac = same / (10 * len(want))
print("%s: %.3f of Python's neighbours" % (kind, frac))
assert frac >= (1.0 if kind == "flat" else 0.95), frac
PY
done
expect_status 6 airlock rag rm py-flat doc000.txt
ok "python-written flat (identical lists) and HNSW indexes attached; attached collections are read-only"

# the other way: Python reads what airlock wrote
D="$T/docs"; mkdir -p "$D"
for i in $(seq 1 12); do printf '# Note %d\n\nThe number %d is written here with some words about item %d.\n' $i $i $i >"$D/n$i.md"; done
airlock rag add probe "$D" >/dev/null
f=$(ls "$AIRLOCK_HOME/rag/probe/"vectors-*.faiss)
"$PYF" - "$f" "$AIRLOCK_HOME/rag/probe/chunks.db" <<'PY'
import sqlite3, sys, faiss, numpy as np
ix = faiss.read_index(sys.argv[1])
rows = sqlite3.connect(sys.argv[2]).execute("SELECT id, vec FROM chunks ORDER BY id").fetchall()
assert ix.ntotal == len(rows) > 0, (ix.ntotal, len(rows))
for rid, blob in rows:
    v = np.frombuffer(blob, dtype="float32").reshape(1, -1)
    _, I = ix.search(v, 1)
    assert I[0][0] == rid, (rid, I)
print("python read airlock's index: %d vectors, each its own nearest" % ix.ntotal)
PY
ok "Python's faiss reads airlock's index"
echo "1 passed, 0 failed"
