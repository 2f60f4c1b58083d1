#!/usr/bin/env bash
# test_bundle_corpus.sh: a generated corpus of bad bundles, each refused with
# a specific message, and after each the store exactly as before: blobs (by
# hash), index.json, versions and tags (ls --json), no temporary file, and
# one more event, an "ingest-refused".
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
command -v zstd >/dev/null || skip_test "zstd missing"

cd "$T"
# Random weights: not GGUF, so not named .gguf (pack and add refuse a .gguf that is not one).
# Its first byte is no pickle opcode: the scan of pack and ingest says "warn"
# (not a pickle), not "dangerous" (a malformed one).
{ printf '\0'; head -c 300000 /dev/urandom; } >model.bin
echo '{"tokenizer": true}' >tokenizer.json
airlock key gen -o build --no-password >/dev/null
airlock key gen -o revoked --no-password >/dev/null
airlock key gen -o t1 --no-password >/dev/null
airlock key gen -o t2 --no-password >/dev/null
minisign -G -W -p other.pub -s other.key >/dev/null

airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock trust add old --minisign revoked.pub >/dev/null
airlock trust revoke old >/dev/null
airlock trust add t1 --minisign t1.pub --models 'secure-*' --threshold 2 >/dev/null
airlock trust add t2 --minisign t2.pub --models 'secure-*' >/dev/null

# The store holds one good version (sequence 10) before the corpus runs.
airlock pack demo:1.0 model.bin tokenizer.json -o good.tar --sign build.key --seq 10 >/dev/null
airlock ingest good.tar >/dev/null
ok "a good bundle ingests"

mkdir corpus
n=$(python3 "$AL_SRC/tests/integration/bundle_corpus.py" corpus good.tar other.key build.key)
# Bundles that need airlock to make them.
airlock pack demo:1.1 model.bin -o corpus/expired.tar --sign build.key --seq 20 --expires 2000-01-01 >/dev/null
airlock pack demo:0.9 model.bin -o corpus/replay.tar --sign build.key --seq 3 >/dev/null
airlock pack demo:1.2 model.bin -o corpus/revoked-key.tar --sign revoked.key --seq 21 >/dev/null
airlock pack secure-x:1 model.bin -o corpus/below-threshold.tar --sign t1.key --seq 1 >/dev/null
airlock pack demo:1.3 model.bin -o corpus/key-not-for-model.tar --sign t1.key --seq 22 >/dev/null
airlock pack demo:1.4 model.bin -o corpus/both-revoked-and-good.tar --sign build.key --sign revoked.key --seq 23 >/dev/null
airlock pack demo:1.5 model.bin -o corpus/expired-zstd.tar.zst --zstd --sign build.key --seq 24 --expires 2001-01-01T00:00:00Z >/dev/null
cat >>corpus/cases.tsv <<'CASES'
expired.tar||expired on 2000-01-01
replay.tar||replay refused
revoked-key.tar||revoked
below-threshold.tar||needs 2 signatures
key-not-for-model.tar||no trusted key may sign model 'demo'
both-revoked-and-good.tar||revoked
expired-zstd.tar.zst||expired
CASES
total=$(wc -l <corpus/cases.tsv)
[ "$total" -ge 25 ] || fail "corpus has only $total bundles"

snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
        airlock trust ls --json
    } >"$1"
}
snapshot before
events=$(airlock log | wc -l)

while IFS='|' read -r file extra expect; do
    # shellcheck disable=SC2086
    set +e; OUT=$(airlock ingest "corpus/$file" $extra 2>&1); st=$?; set -e
    [ "$st" -ne 0 ] || fail "$file was accepted: $OUT"
    msg=$(printf '%s\n' "$OUT" | grep '^airlock: error:' || true)
    case "$msg" in
        *"$expect"*) ;;
        *) fail "$file: refusal does not say '$expect': $OUT" ;;
    esac
    snapshot after
    cmp -s before after || { diff before after >&2; fail "$file changed the store"; }
    left=$(find "$AIRLOCK_HOME/tmp" -type f | wc -l)
    [ "$left" -eq 0 ] || fail "$file left $left temporary files"
    now=$(airlock log | wc -l)
    [ "$now" -eq $((events + 1)) ] || { airlock log | tail -3 >&2; echo "$OUT" >&2; fail "$file: expected one new event, got $((now - events))"; }
    airlock log | tail -1 | qgrep ingest-refused || fail "$file: the new event is not ingest-refused"
    events=$now
    # verify agrees and changes nothing either
    set +e; airlock verify "corpus/$file" $extra >/dev/null 2>&1; vst=$?; set -e
    [ "$vst" -ne 0 ] || fail "verify accepts $file"
    [ "$(airlock log | wc -l)" -eq "$events" ] || fail "verify of $file wrote an event"
    ok "refused $file (exit $st): ${msg#airlock: error: }"
done <corpus/cases.tsv

airlock log --verify >/dev/null || fail "event chain broken"

ok "$total bad bundles refused; store unchanged; event chain intact"

# The overrides: accepted, and recorded.
expect_status 0 airlock ingest corpus/expired.tar --allow-expired
airlock log | qgrep ingest-override || fail "override not recorded"
expect_status 0 airlock ingest corpus/replay.tar --allow-downgrade
ok "--allow-expired and --allow-downgrade accept and are recorded"

# The threshold met: two trusted keys sign.
airlock pack secure-x:1 model.bin -o two.tar --sign t1.key --sign t2.key --seq 2 >/dev/null
expect_status 0 airlock ingest two.tar
ok "2-of-2 signatures accepted"
