#!/usr/bin/env bash
# test_rag_hostile.sh: 'rag add' on hostile trees. Each bad file is reported by
# name with what to do, skipped, and the rest of the tree is still added; the
# exit status is 4 when anything was skipped.
# - text with NUL bytes (once read past its buffer), UTF-16 with a byte order
#   mark, random bytes named .txt;
# - a paragraph of more tokens than the tokenizer's cap (once aborted the
#   whole directory without naming the file; now chunked by streaming, and
#   here over the chunk cap) and a file over the size cap;
# - file links leading outside the tree (once followed to anything):
#   refused unless --follow-links.
. "$(dirname "$0")/lib.sh"
model=$(fixture)
airlock init >/dev/null
airlock add stories "$model" >/dev/null

# ---- hostile text ----
D="$T/text"; mkdir -p "$D"
python3 - "$D" <<'PY'
import random, sys
d = sys.argv[1]
open(d + "/good.txt", "w").write("The coolant pump is primed every morning.\n")
# one long paragraph with a NUL after its first word: the slice copy stopped
# at the NUL while the chunker read the whole length
words = ["hydraulic", "reservoir", "gasket", "valve", "impeller", "flow"]
r = random.Random(1)
body = " ".join(r.choice(words) for _ in range(2000))
open(d + "/nul.txt", "wb").write(b"manifold\0" + body.encode() + b"\0\0 tail\n")
open(d + "/utf16.txt", "wb").write("Turbine blades are inspected weekly.\n".encode("utf-16"))
open(d + "/random.txt", "wb").write(bytes(r.getrandbits(8) for _ in range(65536)))
PY
airlock rag create c --embed stories >/dev/null
expect_status 4 airlock rag add c "$D"
echo "$OUT" | qgrep "skipped '$D/utf16.txt': UTF-16 text.*iconv" || fail "utf16 not named: $OUT"
echo "$OUT" | qgrep "skipped '$D/random.txt': not UTF-8 text" || fail "random bytes not named: $OUT"
echo "$OUT" | qgrep "4 documents: 2 added, 0 replaced, 0 unchanged, 2 skipped" || fail "summary: $OUT"
hit=$(airlock rag query c "manifold" --mode bm25 -k 1 --json | json_get 'd["hits"][0]["doc"] + "|" + d["hits"][0]["text"][:9]')
[ "$hit" = "$D/nul.txt|manifold " ] || fail "nul.txt not searchable, or its NUL not a space: $hit"
ok "NULs become spaces; UTF-16 and random bytes skipped by name; the rest added"

# ---- over the caps: named, skipped, the rest added ----
B="$T/big"; mkdir -p "$B"
echo "The standby generator runs on diesel fuel." >"$B/a-before.txt"
# 1.1 million one-letter words in one paragraph: more tokens than
# AL_LIMIT_PROMPT_TOKENS (262144) when the paragraph is tokenized whole (it
# was: the whole directory stopped without naming the file), and more than
# AL_LIMIT_RAG_DOC_CHUNKS (65536) chunks of 16 tokens, found while chunking,
# before anything is embedded
python3 -c 'import sys; sys.stdout.write("x " * 1100000 + "\n")' >"$B/long.txt"
truncate -s 65M "$B/huge.txt"   # over AL_LIMIT_RAG_DOC_BYTES (64 MiB)
echo "Flush the impeller with clean water." >"$B/z-after.txt"
airlock rag create big --embed stories --chunk-tokens 16 --overlap 0 >/dev/null
expect_status 4 airlock rag add big "$B"
echo "$OUT" | qgrep "skipped '$B/long.txt': more than 65536 chunks .*(AL_LIMIT_RAG_DOC_CHUNKS)" \
    || fail "chunk cap not named: $OUT"
echo "$OUT" | qgrep "skipped '$B/huge.txt': .*(AL_LIMIT_RAG_DOC_BYTES)" || fail "size cap not named: $OUT"
echo "$OUT" | qgrep "4 documents: 2 added, 0 replaced, 0 unchanged, 2 skipped" || fail "summary: $OUT"
airlock rag ls big | qgrep "z-after.txt" || fail "the file after the skipped ones is missing"
ok "files over a cap are named with the cap and skipped; the rest added"

# ---- links: inside the tree followed, outside refused unless --follow-links ----
L="$T/linked"; mkdir -p "$L/sub"
echo "Inspect the gasket every six months." >"$L/a.txt"
echo "secret outside the tree" >"$T/outside.txt"
ln -s ../a.txt "$L/sub/inside.txt"
ln -s "$T/outside.txt" "$L/out.txt"
ln -s /etc/passwd "$L/passwd.txt"
airlock rag create l --embed stories >/dev/null
expect_status 4 airlock rag add l "$L"
echo "$OUT" | qgrep "skipped '$L/out.txt': a link to '$T/outside.txt', outside '$L'.*--follow-links" \
    || fail "outside link not refused by name: $OUT"
echo "$OUT" | qgrep "skipped '$L/passwd.txt': a link to '/etc/passwd'" || fail "passwd link: $OUT"
echo "$OUT" | qgrep "4 documents: 2 added, 0 replaced, 0 unchanged, 2 skipped" || fail "summary: $OUT"
n=$(airlock rag query l "secret outside" --mode bm25 --json | json_get 'len(d["hits"])')
[ "$n" = 0 ] || fail "the outside file was indexed"
rm "$L/passwd.txt"
airlock rag create f --embed stories >/dev/null
expect_status 0 airlock rag add f "$L" --follow-links
echo "$OUT" | qgrep "3 documents: 3 added" || fail "--follow-links: $OUT"
ok "links leaving the tree refused by name; --follow-links follows them"
