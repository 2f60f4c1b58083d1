# add refuses what it cannot serve, before copying anything: a file named
# .gguf that is not GGUF (empty, bad magic, random bytes, a cut header), and
# anything that is not a regular file (a FIFO with no writer must not hang).
# Each refusal names the file, and the store stays byte-identical.
. "$(dirname "$0")/lib.sh"
F=$(fixture)
command -v mkfifo >/dev/null || fail "mkfifo missing"
command -v timeout >/dev/null || fail "timeout missing"

airlock add stories:1.0 "$F" >/dev/null
state() { (cd "$AIRLOCK_HOME" && find blobs index.json -type f | sort | xargs sha256sum; airlock log --json); }
state >"$T/before"

: >"$T/empty.gguf"
printf 'GGUX\3\0\0\0not a model at all' >"$T/magic.gguf"
head -c 65536 /dev/urandom >"$T/random.gguf"
head -c 200 "$F" >"$T/cut.gguf"
for f in empty magic random; do
    expect_status 4 airlock add "bad:$f" "$T/$f.gguf"
    echo "$OUT" | qgrep "'$T/$f.gguf' is not a valid GGUF file: it does not start with the GGUF magic" ||
        fail "$f.gguf: unclear refusal: $OUT"
done
expect_status 4 airlock add bad:cut "$T/cut.gguf"
echo "$OUT" | qgrep "'$T/cut.gguf' is not a valid GGUF file" || fail "cut.gguf: $OUT"
# A good weight first and a bad second one: still refused as a whole.
expect_status 4 airlock add bad:two "$F" "$T/random.gguf"
state | diff "$T/before" - >/dev/null || fail "a refused add changed the store"
ok "non-GGUF .gguf files (empty, bad magic, random, cut) refused by name; store unchanged"

mkfifo "$T/pipe.gguf" "$T/notes.txt"
expect_status 4 timeout 30 "$AIRLOCK_BIN" add bad:fifo "$T/pipe.gguf"
echo "$OUT" | qgrep "'$T/pipe.gguf' is a FIFO; only regular files can be added" || fail "fifo weight: $OUT"
expect_status 4 timeout 30 "$AIRLOCK_BIN" add bad:fifo "$F" "$T/notes.txt"
echo "$OUT" | qgrep "'$T/notes.txt' is a FIFO" || fail "fifo beside a weight: $OUT"
expect_status 4 timeout 30 "$AIRLOCK_BIN" add bad:dir "$T"
state | diff "$T/before" - >/dev/null || fail "a refused add changed the store"
ok "a FIFO (as weight or beside one) and a directory are refused at once; store unchanged"
