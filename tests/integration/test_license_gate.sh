#!/usr/bin/env bash
# The license policy at the boundary (issue 18): pack refuses a license that
# needs an acknowledgement unless --ack-license, which goes into the signed
# manifest; ingest and add decide the license (README.md card, GGUF
# general.license) by the site's policy.json: deny, or ack unacknowledged,
# refuses with exit 6, the store unchanged and one license-refused event; an
# accepted decision is recorded under "license" in the event.
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
gen="$AL_BUILD/airlock-ggufgen"
cd "$T"
shape=(--layers 1 --embd 32 --ff 64 --heads 2 --ctx 64 --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
"$gen" --out llama.gguf --license llama3.1 "${shape[@]}" 2>/dev/null || fail "ggufgen llama"
"$gen" --out bare.gguf "${shape[@]}" 2>/dev/null || fail "ggufgen bare"
"$gen" --out apache.gguf --license apache-2.0 "${shape[@]}" 2>/dev/null || fail "ggufgen apache"
mkdir card && printf -- '---\nlicense: mit\n---\n# a model\n' >card/README.md
airlock key gen -o build --no-password >/dev/null
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null

snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
    } >"$1"
}
n_events() { airlock log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
last() { airlock log --json | python3 -c "import json,sys; e=json.load(sys.stdin)[-1]; d=e['detail']; print($1)"; }
# refused CMD...: exit 6 naming the license and the rule, store unchanged, one license-refused event.
refused() {
    snapshot before
    local n0; n0=$(n_events)
    expect_status 6 "$@"
    echo "$OUT" | qgrep "refused: license '" || fail "$*: no license refusal: $OUT"
    echo "$OUT" | qgrep -E "rule|unknown: " || fail "$*: rule not named: $OUT"
    snapshot after
    cmp -s before after || { diff before after >&2; fail "$*: the store changed"; }
    [ "$(n_events)" -eq $((n0 + 1)) ] || fail "$*: expected one new event"
    [ "$(last 'e["kind"]')" = license-refused ] || fail "$*: event is $(last 'e["kind"]')"
}

# ---- pack ----
expect_status 6 airlock pack llama:1 llama.gguf -o l.tar --sign build.key
echo "$OUT" | qgrep "pack refused: license 'llama3.1' is ack-needed" || fail "pack: $OUT"
echo "$OUT" | qgrep -- "--ack-license llama3.1" || fail "pack: no next step: $OUT"
[ -z "$(ls l.tar* 2>/dev/null)" ] || fail "a refused pack wrote a bundle"
expect_status 6 airlock pack llama:1 llama.gguf -o l.tar --sign build.key --ack-license gemma
airlock pack llama:1 llama.gguf -o noack.tar --sign build.key --ack-license llama3.1 --created 2026-01-01T00:00:00Z \
    --seq 5 >out1 || fail "pack --ack-license"
qgrep "license   allow llama3.1 (acknowledged)" <out1 || fail "pack output: $(cat out1)"
airlock pack llama:1 llama.gguf -o acked.tar --sign build.key --ack-license Llama-3.1 \
    --created 2026-01-01T00:00:00Z --seq 5 >/dev/null || fail "pack --ack-license again"
cmp -s noack.tar acked.tar || fail "pack with the same ack is not deterministic"
rm noack.tar
mkdir x && tar xf acked.tar -C x
(cd x && sha256sum -c checksums.txt >/dev/null) || fail "checksums"
m=$(python3 -c 'import json; i=json.load(open("x/index.json")); print(i["manifests"][0]["digest"].split(":")[1])')
grep -q "  blobs/sha256/$m\$" x/checksums.txt || fail "the manifest is not covered by checksums.txt"
[ "$(python3 -c "import json; print(json.load(open('x/blobs/sha256/$m'))['annotations']['io.airlock.license-ack'])")" = llama3.1 ] \
    || fail "no license ack in the signed manifest"
airlock pack apache:1 apache.gguf -o apache.tar --sign build.key >/dev/null || fail "pack of a free license"
airlock pack bare:1 bare.gguf -o bare.tar --sign build.key >/dev/null 2>&1 || fail "pack of an unlicensed model"
airlock pack plain:1 llama.gguf -o plain.tar --sign build.key --ack-license llama3.1 >/dev/null
# the same model packed without the ack in the manifest: a hand-made plain bundle
mkdir pl && cp llama.gguf pl/model.gguf && (cd pl && sha256sum model.gguf >checksums.txt &&
    minisign -S -s ../build.key -m checksums.txt >/dev/null </dev/null && tar cf ../unacked.tar *)
ok "pack: llama3.1 refused without --ack-license (nothing written), a wrong id refused; with it deterministic, the ack in the signed manifest"

# ---- ingest under a policy ----
airlock policy license ack llama3.1 >/dev/null
refused airlock ingest unacked.tar --as llama:0
[ "$(last 'd["license"]["decision"]')" = ack-needed ] || fail "refusal detail: $(last 'd')"
[ "$(last 'd["license"]["license"]')" = llama3.1 ] || fail "refusal detail license"
last 'd["license"]["rule"]' | qgrep "rule ack" || fail "refusal detail rule"
airlock ingest acked.tar >/dev/null || fail "ingest of an acknowledged bundle"
[ "$(last '(e["kind"], d["license"]["decision"], d["license"]["license"], d["license"]["acked_by"])')" = \
  "('ingest', 'allow', 'llama3.1', 'bundle (the signed manifest)')" ] || fail "ingest record: $(last 'd["license"]')"
airlock ingest unacked.tar --as llama:op --ack-license llama3.1 >/dev/null || fail "ingest --ack-license"
last 'd["license"]["acked_by"]' | qgrep "^operator .*--ack-license" || fail "operator ack: $(last 'd["license"]')"
ok "ingest, policy ack llama3.1: the signed ack accepts; none refused (exit 6, store unchanged, one license-refused event); --ack-license accepts, recorded"

airlock policy license deny llama3.1 >/dev/null
refused airlock ingest acked.tar --as llama:2 --allow-downgrade
[ "$(last 'd["license"]["decision"]')" = deny ] || fail "deny detail"
refused airlock ingest unacked.tar --as llama:3 --ack-license llama3.1
airlock policy license unknown deny >/dev/null
refused airlock ingest bare.tar
echo "$OUT" | qgrep "license 'none'" || fail "no-license refusal: $OUT"
airlock ingest apache.tar >/dev/null 2>&1 && fail "apache-2.0 has no rule and unknown is deny"
airlock policy license allow apache-2.0 mit >/dev/null
airlock ingest apache.tar >/dev/null || fail "ingest of an allowed license"
ok "deny refuses even with the ack (in the bundle or given); unknown deny refuses a GGUF without a license"

# ---- add ----
refused airlock add llama:9 llama.gguf --ack-license llama3.1
refused airlock add bare:9 bare.gguf
airlock policy license ack llama3.1 >/dev/null
refused airlock add llama:9 llama.gguf
airlock add llama:9 llama.gguf --ack-license llama3.1 >/dev/null || fail "add --ack-license"
[ "$(last '(e["kind"], d["license"]["decision"], d["license"]["ack"], d["scan"]["verdict"])')" = \
  "('add', 'allow', 'llama3.1', 'ok')" ] || fail "add record: $(last 'd')"
# card and GGUF disagree: recorded (both decided; mit and apache-2.0 allowed)
airlock add mixed:1 apache.gguf card/README.md >/dev/null || fail "add of a card and a GGUF that disagree"
last 'd["license"]["finding"]' | qgrep "the model card declares 'mit' but the GGUF file's general.license is 'apache-2.0'" \
    || fail "disagreement not recorded: $(last 'd["license"]')"
ok "add: deny, unknown deny and ack refused (exit 6, store unchanged, one event); --ack-license accepted and recorded; card/GGUF disagreement recorded"

# ---- show and ls --json ----
airlock show llama:9 | qgrep "^  license   allow llama3.1 (license llama3.1: rule ack" || fail "show: $(airlock show llama:9)"
airlock show llama:9 | qgrep "acknowledged llama3.1 by operator" || fail "show: no ack line"
airlock show mixed:1 | qgrep "finding: the model card declares 'mit'" || fail "show: no finding"
[ "$(airlock show --json llama:9 | json_get '(d["license"]["decision"], d["license"]["ack"])')" = "('allow', 'llama3.1')" ] \
    || fail "show --json license"
v=$(airlock ls --json llama | json_get '[(x["license"] or {}).get("decision") for x in d]')
echo "$v" | qgrep "'allow'" || fail "ls --json license: $v"
ok "show prints the license line (decision, license, rule, ack, finding); show --json and ls --json carry license"
