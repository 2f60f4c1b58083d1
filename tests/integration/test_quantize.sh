#!/usr/bin/env bash
# airlock quantize (issue 20 part 4): a generated F32 model stored as a
# version (with a README and a card) is quantized to Q8_0 and Q4_0 through
# the engine's llama_model_quantize. Each result is a new version that loads
# and answers, whose tensors are of the type asked, byte for byte what the
# pinned llama-quantize writes from the same file, that carries the source's
# README and card, and whose provenance (source version, source weights,
# type, llama.cpp commit) is in its add event, its manifest and show /
# show --json. validate against the source's recorded suite tells them apart
# as weights that differ (Q8_0 slightly, every token the same; Q4_0 more). A
# signed bundle carries the provenance into a second store. Refused with a
# clear message, the store byte-identical: an unknown or missing type, a
# source already of that type or quantized to another, a LoRA adapter, a
# version that is no GGUF, an unknown source, and a tampered source blob.
# The result is written by llama.cpp into the store's tmp/ and adopted there
# (hashed where it lies, committed), not copied: nothing is left in tmp/ or
# $TMPDIR; a commit that fails (EIO at its fsync) leaves the store as it was,
# and one killed there leaves only debris in tmp/ that the next open sweeps.
. "$(dirname "$0")/lib.sh"
GEN="$AL_BUILD/airlock-ggufgen"
QUANT="$AL_LLAMA_PREFIX/build/bin/llama-quantize"
GREEDY=(--temperature 0 --max-tokens 8)
# quantize copies the source's other files through $TMPDIR: this test's own.
export TMPDIR="$T/qtmp"
mkdir "$TMPDIR"
shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256 --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")

airlock quantize --help | qgrep -- '--type TYPE' || fail "quantize --help names --type"
airlock quantize --help | qgrep -- '--threads N' || fail "quantize --help names --threads"
airlock --help 2>&1 | qgrep '^ *quantize ' || fail "airlock --help lists quantize"

"$GEN" --out "$T/g32.gguf" --type f32 --seed 7 "${shape[@]}" 2>/dev/null
mkdir "$T/src"
printf -- '---\nlicense: mit\n---\n# gen\n' >"$T/src/README.md"
printf '{"origin": "test_quantize", "license": "mit"}\n' >"$T/card.json"
airlock add gen:f32 "$T/g32.gguf" "$T/src/README.md" --card "$T/card.json" >/dev/null
SRCW="sha256:$(sha256sum "$T/g32.gguf" | cut -d' ' -f1)"
SRCM=$(airlock show gen:f32 --json | json_get 'd["manifest"]')

for ty in Q8_0 Q4_0; do
    tag=${ty,,}
    out=$(airlock quantize gen:f32 "gen:$tag" --type "$ty" --threads 1 2>"$T/q.log") ||
        fail "quantize to $ty: $out $(cat "$T/q.log")"
    echo "$out" | qgrep "^quantized gen:$tag " || fail "quantize said: $out"
    left="$(ls -A "$AIRLOCK_HOME/tmp")$(ls -A "$TMPDIR")"
    [ -z "$left" ] || fail "files left behind in the store's tmp/ or \$TMPDIR: $left"
    j=$(airlock show "gen:$tag" --json)
    # the tensor types asked: the file type, and the type of most parameters
    echo "$j" | python3 -c '
import json, sys
d = json.load(sys.stdin); g = d["gguf"]; ty = sys.argv[1]
assert g["file_type"] == ty, g
top = max(g["tensor_types"], key=lambda t: t["parameters"])
assert top["type"] == ty, g["tensor_types"]
q = d["quantized"]
assert q["type"] == ty and q["source"] == "gen@" + sys.argv[2] and q["source_ref"] == "gen:f32", q
assert q["source_weights"] == sys.argv[3] and q["llama_cpp"] and q["llama_cpp"] != "unknown", q
' "$ty" "$SRCM" "$SRCW" || fail "show --json of gen:$tag: $j"
    airlock show "gen:$tag" >"$T/show.txt"
    qgrep "quantized $ty from gen@$SRCM (gen:f32)" "$T/show.txt" || fail "show: $(cat "$T/show.txt")"
    qgrep "source weights  $SRCW" "$T/show.txt" || fail "show names the source weights: $(cat "$T/show.txt")"
    qgrep "file type       $ty" "$T/show.txt" || fail "show's file type: $(cat "$T/show.txt")"
    # the source's other files and card come along
    echo "$j" | python3 -c '
import json, sys, hashlib
d = json.load(sys.stdin)
f = {x["path"]: x["digest"] for x in d["files"]}
want = "sha256:" + hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
assert f.get("README.md") == want and len(f) == 2, f
assert "gen-" + sys.argv[2] + ".gguf" in f, f  # the name given, not the spool file name
assert d["card"]["origin"] == "test_quantize", d["card"]
' "$T/src/README.md" "$ty" || fail "gen:$tag carries README.md and the card: $j"
    # the add event records the provenance
    airlock log --json | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["kind"] == "add" and e["detail"].get("tag") == sys.argv[1]]
assert len(ev) == 1, ev
q = ev[0]["detail"]["quantized"]
assert q["type"] == sys.argv[2] and q["source_weights"] == sys.argv[3], q
' "$tag" "$ty" "$SRCW" || fail "the add event of gen:$tag records its provenance"
    # it loads and answers
    a=$(airlock run "gen:$tag" "Once upon a time" "${GREEDY[@]}" 2>"$T/run.log") ||
        fail "run gen:$tag: $(cat "$T/run.log")"
    [ -n "$a" ] || fail "gen:$tag answered nothing"
    b=$(airlock run "gen:$tag" "Once upon a time" "${GREEDY[@]}" 2>/dev/null)
    [ "$a" = "$b" ] || fail "gen:$tag: greedy output not repeatable: '$a' vs '$b'"
    # byte for byte what the pinned llama-quantize writes
    if [ -x "$QUANT" ]; then
        "$QUANT" "$T/g32.gguf" "$T/ref-$tag.gguf" "$ty" 1 >"$T/lq.log" 2>&1 || fail "llama-quantize: $(cat "$T/lq.log")"
        cmp -s "$T/ref-$tag.gguf" "$(airlock path "gen:$tag")" || fail "gen:$tag differs from llama-quantize's $ty"
    else
        skip_part "no llama-quantize at $QUANT: the byte comparison"
    fi
    ok "quantized to $ty: loads and answers, tensors $ty, provenance in the event and show, same bytes as llama-quantize"
done

# validate against the source's recorded suite: the divergence expected
S="$T/suite"
airlock validate --init-suite "$S" >/dev/null
airlock validate -t 1 "$T/g32.gguf" --suite "$S" --record >/dev/null || fail "record the source's suite"
expect_status 0 airlock validate -t 1 gen:f32 --suite "$S"
expect_status 1 airlock validate -t 1 gen:q8_0 --suite "$S"
V8=$OUT
[ "$(echo "$V8" | grep -c 'weights-differ: all 32 tokens match')" = 4 ] ||
    fail "Q8_0: every token the same, the weights a little different: $V8"
expect_status 1 airlock validate -t 1 gen:q4_0 --suite "$S"
V4=$OUT
[ "$(echo "$V4" | grep -c 'FAIL .*weights-differ')" = 4 ] || fail "Q4_0 seen as differing weights: $V4"
maxdrift() { grep -o 'drift up to [0-9.]*' | awk '{ if ($4 > m) m = $4 } END { print m + 0 }'; }
d8=$(echo "$V8" | maxdrift)
d4=$(echo "$V4" | maxdrift)
awk -v a="$d8" -v b="$d4" 'BEGIN { exit !(a > 0 && a < 0.01 && b > a) }' ||
    fail "drift: Q8_0 $d8 (expected under 0.01), Q4_0 $d4 (expected more): $V8 $V4"
ok "validate against the F32 source's recording: Q8_0 drifts up to $d8 with every token kept, Q4_0 up to $d4"

# The provenance is in the manifest too: a signed bundle carries it, and a
# second store shows it after ingest.
M=$(airlock show gen:q8_0 --json | json_get 'd["manifest"]')
python3 - "$AIRLOCK_HOME/blobs/sha256/${M#sha256:}" "$SRCW" <<'EOF' || fail "the manifest's io.airlock.quantized"
import json, sys
q = json.loads(json.load(open(sys.argv[1]))["annotations"]["io.airlock.quantized"])
assert q["type"] == "Q8_0" and q["source_weights"] == sys.argv[2], q
EOF
airlock key gen -o "$T/build" --no-password >/dev/null
airlock pack gen:q8_0 -o "$T/q8.tar" --sign "$T/build.key" >/dev/null
HOME1=$AIRLOCK_HOME
export AIRLOCK_HOME="$T/home2"
airlock init >/dev/null
airlock trust add build --minisign "$T/build.pub" --models '*' >/dev/null
airlock ingest "$T/q8.tar" >/dev/null || fail "ingest the quantized version"
airlock show gen >"$T/show2.txt"
qgrep "quantized Q8_0 from gen@$SRCM (gen:f32)" "$T/show2.txt" || fail "show after ingest: $(cat "$T/show2.txt")"
[ "$(airlock show gen --json | json_get 'd["quantized"]["source_weights"]')" = "$SRCW" ] || fail "show --json after ingest"
export AIRLOCK_HOME=$HOME1
ok "the manifest records the provenance; a signed bundle carries it into another store"

# Refusals: a clear message, the store byte-identical.
"$GEN" --lora-for "$T/g32.gguf" --out "$T/lora.gguf" 2>/dev/null
airlock add gen-lora:1 "$T/lora.gguf" --base gen:f32 >/dev/null
printf 'notes\n' >"$T/README.md"
airlock add notes:1 "$T/README.md" >/dev/null 2>&1
state() { (cd "$AIRLOCK_HOME" && find . -type f ! -name '*.lock' | sort | xargs sha256sum); }
state >"$T/before"
refused() { # STATUS MESSAGE quantize-args...
    local want=$1 msg=$2; shift 2
    expect_status "$want" airlock quantize "$@"
    echo "$OUT" | qgrep -F -- "$msg" || fail "unclear refusal of quantize $*: $OUT"
    state | diff "$T/before" - >/dev/null || fail "a refused quantize $* changed the store"
}
refused 2 "unknown quantization type 'Q9_9'" gen:f32 gen:x --type Q9_9
refused 2 "needs --type" gen:f32 gen:x
refused 4 "'gen:q8_0' is already Q8_0" gen:q8_0 gen:x --type Q8_0
refused 4 "'gen:q8_0' is already quantized (Q8_0); quantize from an F32, F16 or BF16" gen:q8_0 gen:x --type Q4_0
refused 4 "'gen-lora:1' is a LoRA adapter, not a model" gen-lora:1 gen:x --type Q8_0
refused 4 "'notes:1' is not a GGUF model" notes:1 gen:x --type Q8_0
refused 3 "" nosuch:1 gen:x --type Q8_0
ok "refused with the store unchanged: unknown type, no type, already Q8_0, already quantized, an adapter, no GGUF, unknown source"

# The adoption's commit under faults (the shim of tests/faults): the first
# fsync under the store's tmp/ is the spool's, in al_blob_writer_commit.
SHIM="$AL_BUILD/faultshim.so"
faulted() { # faulted MODE: quantize gen:f32 to gen:f1 with that fsync failing
    rm -f "$T/fault.rep"
    set +e
    (env LD_PRELOAD="$SHIM" FAULT_PREFIX="$AIRLOCK_HOME/tmp" FAULT_OPS=fsync FAULT_N=1 FAULT_MODE="$1" \
        FAULT_REPORT="$T/fault.rep" "$AIRLOCK_BIN" quantize gen:f32 gen:f1 --type Q8_0 --threads 1 >"$T/fault.out" 2>&1; exit $?) \
        2>/dev/null # no "Killed" line from the shell
    FST=$?
    set -e
    grep -q "^1 fsync $AIRLOCK_HOME/tmp/blob\." "$T/fault.rep" 2>/dev/null # the shim loaded and hit the spool
}
state >"$T/before"
if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}${AL_EMULATOR:-}" ]; then
    # An LD_PRELOAD shim cannot go before a sanitizer's runtime, nor into an
    # emulated process: this part belongs to the normal build (make test runs both).
    echo "# the spool under faults: checked by the normal build's run, not this one"
elif ! faulted eio; then
    fail "the fault shim ($SHIM) did not load or did not reach the spool's fsync: $(cat "$T/fault.out")"
else
    [ "$FST" = 7 ] && qgrep "cannot fsync '$AIRLOCK_HOME/tmp/blob\." "$T/fault.out" ||
        fail "EIO at the spool's fsync: exit $FST, $(cat "$T/fault.out")"
    state | diff "$T/before" - >/dev/null || fail "a failed commit changed the store: $(state | diff "$T/before" -)"
    faulted kill || fail "the kill did not fire: $(cat "$T/fault.rep" 2>/dev/null)"
    [ "$FST" = 137 ] || fail "killed at the spool's fsync: exit $FST, $(cat "$T/fault.out")"
    left=$(ls -A "$AIRLOCK_HOME/tmp")
    [[ "$left" =~ ^blob\.[A-Za-z0-9]{6}$ ]] || fail "after the kill, tmp/ holds: $left"
    # (besides the spool, the index's SQLite -wal and -shm that a killed process leaves open)
    state | grep -vE " \./(tmp/blob\.|airlock\.db-(wal|shm)$)" | diff "$T/before" - >/dev/null ||
        fail "a killed quantize changed the store: $(state | diff "$T/before" -)"
    airlock fsck >/dev/null || fail "fsck after the kill"
    rm -rf "$TMPDIR"/airlock-quantize-* # the killed process's copies of the carried files, outside the store
    touch -d '1 minute ago' "$AIRLOCK_HOME/tmp/$left" # crash debris is swept once older than 5 s
    airlock quantize gen:f32 gen:f1 --type Q8_0 --threads 1 >/dev/null 2>&1 || fail "quantize after the kill"
    [ -z "$(ls -A "$AIRLOCK_HOME/tmp")" ] || fail "the debris was not swept: $(ls -A "$AIRLOCK_HOME/tmp")"
    cmp -s "$(airlock path gen:f1)" "$(airlock path gen:q8_0)" || fail "gen:f1 differs from gen:q8_0"
    airlock rm gen:f1 >/dev/null
    ok "the spool's commit: EIO leaves the store unchanged; a kill leaves debris in tmp/ that the next open sweeps"
fi

# A tampered source blob is refused: its hash runs beside the quantization,
# and what llama.cpp wrote from it is discarded, never added.
BLOB="$AIRLOCK_HOME/blobs/sha256/${SRCW#sha256:}"
[ -f "$BLOB" ] || fail "no blob $BLOB"
chmod u+w "$BLOB"
printf '\x01' | dd of="$BLOB" bs=1 seek=$(($(stat -c %s "$BLOB") - 8)) conv=notrunc status=none
state >"$T/before"
refused 5 "does not match its digest" gen:f32 gen:t --type Q8_0
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary files left behind: $(ls -A "$TMPDIR")"
[ -z "$(ls -A "$AIRLOCK_HOME/tmp" 2>/dev/null)" ] || fail "the quantized file left in the store's tmp/: $(ls -A "$AIRLOCK_HOME/tmp")"
ok "a tampered source blob is refused, nothing added"
