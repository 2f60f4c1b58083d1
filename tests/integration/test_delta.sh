#!/usr/bin/env bash
# test_delta.sh: signed delta bundles (issue 15). A build host ships version 2
# as a delta from version 1; the air-gapped side, which has version 1 from its
# full bundle, applies it: byte-identical files, fsck clean, show and log say
# it arrived as a delta from which base. Then the refusals, each leaving the
# store byte-identical with exactly one refusal event: base missing, base
# present with other content, a tampered patch, a signed patch whose result
# is not the manifest's file, an untrusted signer, a replayed sequence (another
# bundle at a sequence already used; the same bundle again is "already present").
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
cd "$T"
gen() { "$AL_BUILD/airlock-ggufgen" --layers 2 --embd 64 --ff 128 --heads 2 --kv-heads 1 --ctx 64 --name demo "$@" \
    >/dev/null 2>&1 || fail "cannot generate a model"; }
edit() { python3 "$AL_SRC/tests/integration/gguf_edit.py" "$@" >/dev/null; }
gen --out v1.gguf --seed 5
cp v1.gguf v2.gguf && edit v2.gguf --first 1          # one tensor changed
cp v1.gguf v2b.gguf && edit v2b.gguf --first 2        # same size, other content
gen --out v3.gguf --seed 5 --chat-template '{{ messages }}'  # metadata only
gen --out other1.gguf --seed 9                        # another "version 1"
echo '{"tokenizer": 1}' >tokenizer.json

# ---- the build host ----
export AIRLOCK_HOME="$T/build"
airlock init >/dev/null
airlock key gen -o build --no-password >/dev/null
airlock key gen -o other --no-password >/dev/null
airlock add demo:1 v1.gguf tokenizer.json >/dev/null
airlock add demo:2 v2.gguf tokenizer.json >/dev/null
airlock add demo:2b v2b.gguf tokenizer.json >/dev/null
airlock add demo:3 v3.gguf tokenizer.json >/dev/null
airlock pack demo:1 -o v1.tar --sign build.key --seq 1 >/dev/null
airlock pack demo:1 other1.gguf tokenizer.json -o alt1.tar --sign build.key --seq 1 >/dev/null

expect_status 0 airlock delta --help
echo "$OUT" | qgrep -F -- "--dry-run" || fail "delta --help lacks --dry-run"
expect_status 0 airlock delta --dry-run demo:1 demo:2
echo "$OUT" | qgrep -E "tensors unchanged [0-9]+ .*changed 1 .*new 0" || fail "dry run: $OUT"
echo "$OUT" | qgrep -E "^base .*tokenizer.json" || fail "dry run: tokenizer.json not from the base: $OUT"
expect_status 0 airlock delta --dry-run demo:1 demo:2 --json
[ "$(echo "$OUT" | json_get 'd["files"][0]["tensors_changed"]')" = 1 ] || fail "dry run json: $OUT"
ok "delta --dry-run: one tensor changed, tokenizer from the base"

expect_status 0 airlock delta demo:1 demo:2 -o d12.tar --sign build.key --seq 2
echo "$OUT" | qgrep "packed delta" || fail "delta: $OUT"
airlock delta demo:1 demo:2b -o d12b.tar --sign build.key --seq 2 >/dev/null
airlock delta demo:1 demo:3 -o d13.tar --sign build.key --seq 3 >/dev/null
airlock delta demo:1 demo:2 -o d12-other.tar --sign other.key --seq 4 >/dev/null
full=$(stat -c %s v2.gguf); dsz=$(stat -c %s d12.tar); msz=$(stat -c %s d13.tar)
[ "$dsz" -lt $((full / 2)) ] || fail "a one-tensor delta is $dsz bytes for a $full-byte model"
[ "$msz" -lt $((64 * 1024)) ] || fail "a metadata-only delta is $msz bytes"
echo "model $full bytes; one-tensor delta $dsz bytes; metadata-only delta $msz bytes"
# The bundle is a plain tar with checksums any sha256sum can check.
mkdir x && (cd x && tar xf ../d12.tar && sha256sum -c --quiet checksums.txt) || fail "sha256sum -c of the delta"
[ -f x/delta.json ] || fail "no delta.json"
ok "delta bundles made: one tensor ($dsz bytes), metadata only ($msz bytes)"

# ---- the air-gapped side ----
snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
    } >"$1"
}
# refuse NAME BUNDLE MESSAGE: refused with MESSAGE, store unchanged, one event.
refuse() {
    snapshot "$T/before"
    local events now
    events=$(airlock log | wc -l)
    set +e; OUT=$(airlock ingest "$2" 2>&1); local st=$?; set -e
    [ "$st" -ne 0 ] || fail "$1: accepted: $OUT"
    echo "$OUT" | grep '^airlock: error:' | qgrep -F "$3" || fail "$1: refusal does not say '$3': $OUT"
    snapshot "$T/after"
    cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" >&2; fail "$1 changed the store"; }
    [ "$(find "$AIRLOCK_HOME/tmp" -type f | wc -l)" -eq 0 ] || fail "$1 left temporary files"
    now=$(airlock log | wc -l)
    [ "$now" -eq $((events + 1)) ] || fail "$1: $((now - events)) new events, not one"
    airlock log | tail -1 | qgrep "ingest-refused" || fail "$1: the new event is not ingest-refused"
    ok "refused: $1"
}

export AIRLOCK_HOME="$T/gap"
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
refuse "base missing" d12.tar "needs the base demo:1"
airlock ingest v1.tar >/dev/null
expect_status 0 airlock verify d12.tar
echo "$OUT" | qgrep -F "delta     from base demo:1" || fail "verify does not say delta: $OUT"
echo "$OUT" | qgrep "present in this store" || fail "verify does not find the base: $OUT"
expect_status 0 airlock ingest d12.tar
echo "$OUT" | qgrep "1 files rebuilt from patches, 1 taken from the base" || fail "ingest: $OUT"
[ "$(sha256sum <"$(airlock path demo:2)")" = "$(sha256sum <v2.gguf)" ] || fail "demo:2 differs from the build host's"
airlock fsck >/dev/null || fail "fsck after the delta"
expect_status 0 airlock show demo:2
echo "$OUT" | qgrep "arrived   as a delta from demo:1" || fail "show does not say delta: $OUT"
airlock log | qgrep "ingest .*delta from demo:1" || fail "log does not say delta: $(airlock log)"
expect_status 0 airlock ingest d13.tar
[ "$(sha256sum <"$(airlock path demo:3)")" = "$(sha256sum <v3.gguf)" ] || fail "demo:3 differs"
airlock fsck >/dev/null || fail "fsck"
ok "round trip: demo:2 (one tensor) and demo:3 (metadata) byte-identical, fsck clean, show and log say delta"

# The same delta again is already present (nothing changes); another bundle at
# a sequence already used is a replay.
expect_status 0 airlock ingest d12.tar
echo "$OUT" | qgrep '^already present: demo:2 ' || fail "the same delta again: $OUT"
refuse "replayed sequence" d12b.tar "replay refused"
refuse "untrusted signer" d12-other.tar "no signature by a trusted key"
python3 "$AL_SRC/tests/integration/delta_craft.py" tamper d12.tar tampered.tar
python3 "$AL_SRC/tests/integration/delta_craft.py" swap d12.tar d12b.tar swapped.tar build.key
# Fresh store with the base, so sequence 2 is new there.
export AIRLOCK_HOME="$T/gap2"
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock ingest v1.tar >/dev/null
refuse "tampered patch" tampered.tar "does not match checksums.txt"
refuse "result digest" swapped.tar "but the signed manifest promises"
# A store whose demo:1 has other files.
export AIRLOCK_HOME="$T/gap3"
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock ingest alt1.tar >/dev/null
refuse "base with other content" d12.tar "with other files"
ok "delta refusals"
