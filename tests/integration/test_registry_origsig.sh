#!/usr/bin/env bash
# test_registry_origsig.sh: a version that arrived signed keeps its original
# signatures (issue 14). A bundle signed by key A is ingested into store 1;
# `airlock push` without --sign sends the signatures it arrived with as its
# referrer; store 2, trusting only A, pulls it: accepted, `show` names A's
# key as the signer. A store trusting only key B refuses it (one refusal
# event, store byte-identical); a tampered original signature is refused.
# Store 2 then serves it with `serve --registry` (no --registry-sign): store
# 3, trusting only A, pulls from that mirror and proves A again, and `push`
# from store 2 sends the same referrer on (the same digest at every hop).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
. "$(dirname "$0")/registry_lib.sh"
reg_need_tools
cd "$T"
FIX=$(fixture)
ONE="$T/home"

snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
        find "$AIRLOCK_HOME/tmp" -type f | sort
    } >"$1"
}
n_events() { airlock log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
last_kind() { airlock log --json | json_get 'd[-1]["kind"]'; }
refused() {
    local want=$1 what=$2; shift 2
    snapshot "$T/before"
    local n0; n0=$(n_events)
    expect_status "$want" airlock pull "$@"
    snapshot "$T/after"
    cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" >&2; fail "$what: the store changed"; }
    [ "$(n_events)" = $((n0 + 1)) ] || fail "$what: not exactly one new event"
    last_kind | qgrep -- '-refused$' || fail "$what: the last event is $(last_kind)"
    REFUSAL=$OUT
    ok "$what: refused (exit $want), store unchanged, one refusal event"
}

reg_start main
airlock key gen -o a --no-password >/dev/null
airlock key gen -o b --no-password >/dev/null
A_ID=$(airlock key show a.pub | awk '/^key id/ {print $3}')
[ -n "$A_ID" ] || fail "no key id for a.pub"

# Store 1: the bundle from the build host, signed by A.
airlock pack stories:1.0 "$FIX" -o s.tar --sign a.key --seq 7 >/dev/null || fail "pack"
airlock trust add builder --minisign a.pub >/dev/null
expect_status 0 airlock ingest s.tar
MAN=$(airlock show stories:1.0 --json | json_get 'd["manifest"]')
KEPT=$(airlock show stories:1.0 --json | json_get 'd["signatures_kept"][0]')
airlock show stories:1.0 | qgrep "signatures kept  $KEPT" || fail "show does not name the kept signatures"
airlock fsck >/dev/null || fail "fsck after an ingest that kept its signatures"
airlock gc >/dev/null || fail "gc"
airlock fsck >/dev/null || fail "fsck after gc: the kept signatures were collected"

# push without --sign: the signatures it arrived with travel as its referrer.
expect_status 0 airlock push stories:1.0 "$REG/models/stories:1.0" --plain-http --json
echo "$OUT" | json_get 'd["signed"]' | qgrep -i true || fail "push without --sign sent no signatures: $OUT"
REF1=$(echo "$OUT" | json_get 'd["referrer"]')
[ "$REF1" = "$KEPT" ] || fail "the pushed referrer $REF1 is not the kept one $KEPT: $OUT"
[ "$(echo "$OUT" | json_get 'd["manifest"]')" = "$MAN" ] || fail "another manifest was pushed: $OUT"
ok "push without --sign sends the ingested bundle's signatures ($REF1)"

# Store 2 trusts only A: accepted, A named as the signer.
export AIRLOCK_HOME="$T/site-2"
airlock init >/dev/null
airlock trust add builder --minisign a.pub >/dev/null
expect_status 0 airlock pull --plain-http "$REG/models/stories:1.0"
[ "$(airlock show stories:1.0 --json | json_get 'd["manifest"]')" = "$MAN" ] || fail "store 2: another manifest"
airlock show stories:1.0 >show.txt
qgrep "$A_ID" show.txt || fail "show does not name A ($A_ID): $(cat show.txt)"
[ "$(airlock show stories:1.0 --json | json_get 'd["signatures_kept"][0]')" = "$KEPT" ] \
    || fail "store 2 keeps another referrer than store 1"
ok "store 2 (trusts A only) pulls it: same manifest, show names A ($A_ID)"

# Store 3 trusts only B: refused.
export AIRLOCK_HOME="$T/site-3"
airlock init >/dev/null
airlock trust add other --minisign b.pub >/dev/null
refused 6 "a store trusting only another key" --plain-http "$REG/models/stories:1.0"
echo "$REFUSAL" | qgrep "no signature by a trusted key" || fail "untrusted: $REFUSAL"

# A tampered original signature: the referrer rebuilt with one byte of the
# minisign signature changed, put under the fallback tag in its place.
base="http://$REG/v2/models/stories"
acc_m='Accept: application/vnd.oci.image.manifest.v1+json'
acc_i='Accept: application/vnd.oci.image.index.v1+json'
curl -sf -H "$acc_m" "$base/manifests/$REF1" >ref.json || fail "cannot read the referrer"
SIG_D=$(python3 -c 'import json; m=json.load(open("ref.json")); print([l["digest"] for l in m["layers"] if l["annotations"]["org.opencontainers.image.title"].endswith(".minisig")][0])')
curl -sf "$base/blobs/$SIG_D" >sig.orig || fail "cannot read the signature"
python3 - <<'PY'
import base64
lines = open("sig.orig", "rb").read().split(b"\n")
raw = bytearray(base64.b64decode(lines[1]))
raw[20] ^= 1
lines[1] = base64.b64encode(bytes(raw))
open("sig.bad", "wb").write(b"\n".join(lines))
PY
BAD_D="sha256:$(sha256sum sig.bad | cut -d' ' -f1)"
up=$(curl -sf -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
case $up in http*) ;; *) up="http://$REG$up" ;; esac
sep='?'; case $up in *\?*) sep='&' ;; esac
curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @sig.bad "$up${sep}digest=$BAD_D" >/dev/null \
    || fail "cannot upload the tampered signature"
python3 - "$SIG_D" "$BAD_D" "$(stat -c %s sig.bad)" <<'PY'
import json, sys
m = json.load(open("ref.json"))
for l in m["layers"]:
    if l["digest"] == sys.argv[1]:
        l["digest"], l["size"] = sys.argv[2], int(sys.argv[3])
open("ref2.json", "w").write(json.dumps(m, separators=(",", ":"), sort_keys=True))
PY
REF2="sha256:$(sha256sum ref2.json | cut -d' ' -f1)"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @ref2.json \
    "$base/manifests/$REF2" >/dev/null || fail "cannot put the tampered referrer"
python3 - "$REF2" "$(stat -c %s ref2.json)" <<'PY'
import json, sys
ix = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sys.argv[1],
                     "size": int(sys.argv[2]), "artifactType": "application/vnd.airlock.signatures.v1+json"}]}
open("ix.json", "w").write(json.dumps(ix, separators=(",", ":")))
PY
curl -sf -H "$acc_m" "$base/manifests/1.0" >m.json || fail "cannot read the manifest"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @m.json \
    "$base/manifests/tampered" >/dev/null || fail "cannot tag the manifest"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @ix.json \
    "$base/manifests/sha256-${MAN#sha256:}" >/dev/null || fail "cannot replace the referrers index"
export AIRLOCK_HOME="$T/site-4"
airlock init >/dev/null
airlock trust add builder --minisign a.pub >/dev/null
refused 5 "a tampered original signature" --plain-http "$REG/models/stories:tampered"
echo "$REFUSAL" | qgrep "does not verify" || fail "tampered: $REFUSAL"

# Store 2 as a mirror without --registry-sign: it serves the signatures the
# version arrived with; store 5, trusting only A, proves A through it.
export AIRLOCK_HOME="$T/site-2"
airlock apikey create mirror --scopes pull --json >key.json
PULL=$(json_get 'd["token"]' <key.json)
serve_start --port 0 --registry
HP=${BASE#http://}
code=$(curl -s -o /dev/null -w '%{http_code}' -u "x:$PULL" -H "$acc_m" "$BASE/v2/stories/manifests/$REF1")
[ "$code" = 200 ] || fail "the mirror does not serve the kept referrer: $code"
curl -s -u "x:$PULL" -H "$acc_i" "$BASE/v2/stories/referrers/$MAN" | qgrep "$REF1" \
    || fail "the mirror's referrers API does not list the kept referrer"
export AIRLOCK_HOME="$T/site-5"
airlock init >/dev/null
airlock trust add builder --minisign a.pub >/dev/null
echo "$PULL" | expect_status 0 airlock pull --user x --plain-http "$HP/stories:1.0"
[ "$(airlock show stories:1.0 --json | json_get 'd["manifest"]')" = "$MAN" ] || fail "store 5: another manifest"
airlock show stories:1.0 | qgrep "$A_ID" || fail "store 5: show does not name A"
ok "the mirror (no --registry-sign) serves the original signatures; store 5 proves A"

# The pulled version keeps them too: store 2 pushes the same referrer on.
export AIRLOCK_HOME="$T/site-2"
expect_status 0 airlock push stories:1.0 "$REG/relay/stories:1.0" --plain-http --json
[ "$(echo "$OUT" | json_get 'd["referrer"]')" = "$REF1" ] || fail "the relayed referrer differs: $OUT"
ok "a pulled version pushes the same referrer on ($REF1)"

# Both: the original signatures (push without --sign) and a re-signing by B
# (push --sign b.key) of the same manifest in one repository. Both referrers
# are listed; their checksums.txt is the same, so a puller trusting only A
# and one trusting only B each find a good signature.
export AIRLOCK_HOME="$ONE"
expect_status 0 airlock push stories:1.0 "$REG/both/stories:1.0" --plain-http
out=$(airlock push stories:1.0 "$REG/both/stories:1.0" --plain-http --sign b.key --json 2>/dev/null) \
    || fail "push --sign b.key"
[ "$(echo "$out" | json_get 'd["manifest"]')" = "$MAN" ] || fail "push --sign changed the manifest: $out"
for who in a b; do
    export AIRLOCK_HOME="$T/site-both-$who"
    airlock init >/dev/null
    airlock trust add "k$who" --minisign "$who.pub" >/dev/null
    expect_status 0 airlock pull --plain-http "$REG/both/stories:1.0"
done
ok "the original signatures and a re-signing side by side: a store trusting only A and one trusting only B both accept"
