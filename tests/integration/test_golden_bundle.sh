#!/usr/bin/env bash
# The suite travels in the bundle. Build host: add the fixture, write a suite,
# `pack --bench DIR --record-golden --sign`: the recording is in bench/, listed
# in checksums.txt and signed, and packing again with the same files (the
# recording included) gives the same bytes. Air-gapped side: trust, ingest,
# `airlock validate stories` with no --suite passes; a second bundle of a
# tampered model carrying the original's recording fails naming the prompt and
# the position; `airlock serve` of the good version validates with --server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
F=$(fixture)
TAMPER="$(dirname "$0")/gguf_tamper.py"
BUILD_HOME="$T/build-home" GAP="$T/gap-home"
cd "$T"
export SOURCE_DATE_EPOCH=1767225600

# ---- build host ----
export AIRLOCK_HOME="$BUILD_HOME"
airlock add stories:1.0 "$F" >/dev/null
airlock key gen -o build --no-password >/dev/null
airlock validate --init-suite suite >/dev/null
expect_status 2 airlock pack stories:1.0 "$F" -o x.tar --sign build.key --record-golden
echo "$OUT" | qgrep "needs files and --bench DIR" || fail "--record-golden without --bench: $OUT"
expect_status 0 airlock pack stories:1.0 "$F" -o good.tar --sign build.key --seq 1 --bench suite --record-golden -t 1
echo "$OUT" | qgrep "recorded 4 golden prompts" || fail "no recording made: $OUT"
[ -f suite/recording.json ] || fail "suite/recording.json not written"
mkdir x && tar xf good.tar -C x
(cd x && sha256sum -c --quiet checksums.txt) || fail "sha256sum -c fails"
minisign -Vm x/checksums.txt -p build.pub >/dev/null || fail "minisign -V fails"
rec=$(sha256sum suite/recording.json | cut -d' ' -f1)
grep -q "^$rec  blobs/sha256/$rec\$" x/checksums.txt || fail "recording.json is not listed in checksums.txt"
python3 - x "$rec" <<'PY' || fail "recording not in the manifest as bench/recording.json"
import json, os, sys
d, rec = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(d, "index.json")))
man = json.load(open(os.path.join(d, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
paths = {l["annotations"]["org.cncf.model.filepath"]: l["digest"] for l in man["layers"]}
assert paths.get("bench/recording.json") == "sha256:" + rec, paths
assert "bench/suite.json" in paths and "bench/golden.json" in paths, paths
PY
ok "pack --record-golden: bench/recording.json in the manifest, checksums.txt and the signature"

airlock pack stories:1.0 "$F" -o again.tar --sign build.key --seq 1 --bench suite -t 1 >/dev/null
cmp good.tar again.tar || fail "packing the same files (recording included) gave different bytes"
ok "pack stays deterministic: the same files and recording give the same bundle"

# a tampered model, packed with the ORIGINAL model's recording (no --record-golden)
cp "$F" tampered.gguf; chmod u+w tampered.gguf
python3 "$TAMPER" tampered.gguf blk.4.ffn_down.weight --every 64 >/dev/null
mkdir bad-suite && cp suite/suite.json suite/golden.json suite/recording.json bad-suite/
airlock pack stories:2.0 tampered.gguf -o bad.tar --sign build.key --seq 2 --bench bad-suite >/dev/null
airlock pack plain:1.0 "$F" -o plain.tar --sign build.key --seq 1 >/dev/null

# ---- the air-gapped side ----
export AIRLOCK_HOME="$GAP"
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock ingest good.tar >/dev/null
expect_status 0 airlock validate stories -t 1
echo "$OUT" | qgrep "^suite: stored with stories" || fail "the stored suite is not named: $OUT"
echo "$OUT" | qgrep "exact match required" || fail "same conditions not recognized: $OUT"
[ "$(echo "$OUT" | grep -c '^  ok .* identical: ')" = 4 ] || fail "not 4 identical: $OUT"
ok "after ingest, 'airlock validate stories' passes with no --suite"

airlock bench stories --concurrency 1 --prompt-lengths 8 --gen-tokens 4 --requests 1 -t 1 >"$T/bench.txt" 2>&1 \
    || fail "bench: $(cat "$T/bench.txt")"
grep -q "bench: suite stored with stories" "$T/bench.txt" || fail "bench did not use the stored suite: $(cat "$T/bench.txt")"
ok "'airlock bench stories' takes the stored suite"

airlock ingest bad.tar >/dev/null
expect_status 1 airlock validate stories -t 1
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "tampered model not caught: $OUT"
echo "$OUT" | qgrep "stories:2.0\|weights differ\|weights-differ" || fail "no verdict: $OUT"
ok "a tampered model carrying the original's recording fails: $(echo "$OUT" | grep '^result')"

airlock ingest plain.tar >/dev/null
expect_status 3 airlock validate plain -t 1
echo "$OUT" | qgrep "packed without --bench; give --suite DIR" || fail "no-suite error unclear: $OUT"
ok "a version without a suite: $(echo "$OUT" | tail -1)"

# ---- the deployed service ----
serve_start stories:1.0 --port 0 --threads 1 --parallel 1
expect_status 0 airlock validate stories:1.0 --server "$BASE"
[ "$(echo "$OUT" | grep -Ec '^  ok    story-[a-z]+ +(identical|float-noise): all 32 tokens match')" = 4 ] \
    || fail "airlock serve differs from the recording: $OUT"
ok "'airlock serve stories:1.0' validates with --server against the stored suite"
serve_stop
serve_start stories:2.0 --port 0 --threads 1 --parallel 1
expect_status 1 airlock validate stories:2.0 --server "$BASE"
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "tampered model behind airlock serve not caught: $OUT"
ok "the tampered version behind airlock serve fails: $(echo "$OUT" | grep '^result')"
