#!/usr/bin/env bash
# test_registry_refusals.sh: what `airlock pull` refuses, each refusal
# leaving the store byte-identical (blobs, index.json, ls --json, nothing
# left in tmp/) with exactly one refusal event: unsigned content without
# --allow-unsigned, a signature by an untrusted key, a replayed older
# sequence, a manifest swapped after signing, a dangerous file (scan), a
# license the policy denies or wants acknowledged, and from a misbehaving registry
# (bad_registry.py): blob bytes that do not match the digest, a blob larger
# than its descriptor, a connection dropped mid-blob every time (fails
# cleanly) and once (resumed with a Range request).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/registry_lib.sh"
reg_need_tools
cd "$T"
FIX=$(fixture)
HERE=$(cd "$(dirname "$0")" && pwd)
SITE_A="$T/home"
SITE_B="$T/site-b"

snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
        find "$AIRLOCK_HOME/tmp" -type f | sort
    } >"$1"
}
n_events() { airlock log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
last_kind() { airlock log --json | json_get 'd[-1]["kind"]'; }
# refused WANT_STATUS WHAT PULL-ARGS...: the pull fails with WANT_STATUS, the
# store is unchanged and one refusal event is added.
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
airlock add stories:1.0 "$FIX" >/dev/null
airlock key gen -o build --no-password >/dev/null
airlock key gen -o other --no-password >/dev/null
push() { airlock push "$@" --plain-http >/dev/null 2>&1 || fail "push $*"; }
push stories:1.0 "$REG/models/stories:1.0" --sign build.key
push stories:1.0 "$REG/models/stories:old" --sign build.key --seq 5
push stories:1.0 "$REG/models/stories:new" --sign build.key --seq 10
push stories:1.0 "$REG/models/stories:unsigned"
push stories:1.0 "$REG/models/stories:other" --sign other.key --seq 77
# A version carrying a pickle that imports os.system (never run: the scan walks opcodes).
python3 - "$T" <<'PY'
import os, pickle, sys
class OsSystem:
    def __reduce__(self): return (os.system, ('touch ' + os.path.join(sys.argv[1], 'RAN'),))
open(os.path.join(sys.argv[1], 'evil.pkl'), 'wb').write(pickle.dumps(OsSystem(), protocol=4))
PY
airlock add evil:1 "$FIX" evil.pkl --allow-dangerous >/dev/null 2>&1 || fail "add --allow-dangerous"
push evil:1 "$REG/models/evil:1" --sign build.key --allow-dangerous

export AIRLOCK_HOME="$SITE_B"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null

refused 5 "unsigned without --allow-unsigned" --plain-http "$REG/models/stories:unsigned" --as x:1
echo "$REFUSAL" | qgrep "is not signed" || fail "unsigned: $REFUSAL"
refused 6 "a signature by an untrusted key" --plain-http "$REG/models/stories:other"
echo "$REFUSAL" | qgrep "no signature by a trusted key" || fail "untrusted: $REFUSAL"

expect_status 0 airlock pull --plain-http "$REG/models/stories:new"
refused 6 "a replayed older sequence" --plain-http "$REG/models/stories:old"
echo "$REFUSAL" | qgrep "replay refused: sequence 5" || fail "replay: $REFUSAL"

# A manifest swapped after signing, with the signatures' index copied to its
# fallback tag: the referrer names another subject; and the swapped manifest
# is not the one checksums.txt lists.
base="http://$REG/v2/models/stories"
acc='Accept: application/vnd.oci.image.manifest.v1+json'
curl -sf -H "$acc" "$base/manifests/1.0" >m.json || fail "cannot read the manifest"
python3 -c 'import json,sys; m=json.load(open("m.json")); m["annotations"]["org.opencontainers.image.version"]="9.9"; open("m2.json","w").write(json.dumps(m,separators=(",",":")))'
d1=$(sha256sum m.json | cut -d' ' -f1)
d2=$(sha256sum m2.json | cut -d' ' -f1)
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @m2.json \
    "$base/manifests/swapped" >/dev/null || fail "cannot put the swapped manifest"
curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' "$base/manifests/sha256-$d1" >ix.json
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @ix.json \
    "$base/manifests/sha256-$d2" >/dev/null || fail "cannot copy the index"
refused 5 "a manifest swapped after signing" --plain-http "$REG/models/stories:swapped"

refused 6 "a dangerous file (the scan gate of ingest)" --plain-http "$REG/models/evil:1"
[ "$(last_kind)" = scan-refused ] || fail "scan: the event is $(last_kind)"
[ ! -e "$T/RAN" ] || fail "a pickle ran"

# The license gate of ingest: a site whose policy denies unknown licenses
# refuses the fixture (it declares none) with one license-refused event.
export AIRLOCK_HOME="$T/site-l"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null
airlock policy license unknown deny >/dev/null
refused 6 "a license the site's policy denies" --plain-http "$REG/models/stories:1.0"
[ "$(last_kind)" = license-refused ] || fail "license: the event is $(last_kind)"
airlock policy license unknown ack >/dev/null
refused 6 "a license the policy wants acknowledged" --plain-http "$REG/models/stories:1.0"
expect_status 0 airlock pull --plain-http "$REG/models/stories:1.0" --ack-license none
airlock show stories:1.0 --json | json_get 'd["license"]["ack"]' | qgrep none || fail "the ack is not recorded"
ok "pull --ack-license none accepts it, the acknowledgement recorded"
export AIRLOCK_HOME="$SITE_B"

# ---- a misbehaving registry ----
python3 "$HERE/bad_registry.py" copy "http://$REG" models/stories 1.0 "$T/copy" || fail "copy for the bad registry"
WEIGHT=$(python3 -c 'import json; m=json.load(open("m.json")); print(max(m["layers"], key=lambda l: l["size"])["digest"])')
BAD_PID=
bad_start() {
    rm -f "$T/bad.port"
    python3 "$HERE/bad_registry.py" serve "$T/copy" "$1" "$WEIGHT" "$T/bad.port" &
    BAD_PID=$!
    REG_PIDS+=("$BAD_PID")
    for _ in $(seq 1 400); do [ -f "$T/bad.port" ] && break; kill -0 $BAD_PID || break; sleep 0.05; done
    [ -f "$T/bad.port" ] || fail "bad_registry.py did not start"
    BAD="127.0.0.1:$(cat "$T/bad.port")"
}
bad_stop() { kill $BAD_PID 2>/dev/null || true; wait $BAD_PID 2>/dev/null || true; }

# The honest copy pulls: the server itself is sound.
bad_start honest
AIRLOCK_HOME="$T/site-h" airlock init >/dev/null
AIRLOCK_HOME="$T/site-h" airlock trust add builder --minisign build.pub >/dev/null
AIRLOCK_HOME="$T/site-h" expect_status 0 airlock pull --plain-http "$BAD/models/stories:1.0"
bad_stop
ok "the test server's honest copy pulls"

bad_start corrupt
refused 5 "blob bytes that do not match the digest" --plain-http "$BAD/models/stories:1.0"
echo "$REFUSAL" | qgrep "hash to" || fail "corrupt: $REFUSAL"
bad_stop
bad_start larger
refused 5 "a blob larger than its descriptor" --plain-http "$BAD/models/stories:1.0"
echo "$REFUSAL" | qgrep "more than the" || fail "larger: $REFUSAL"
bad_stop
bad_start drop-always
refused 7 "a connection dropped mid-blob every time" --plain-http "$BAD/models/stories:1.0"
bad_stop
bad_start drop
AIRLOCK_HOME="$T/site-r" airlock init >/dev/null
AIRLOCK_HOME="$T/site-r" airlock trust add builder --minisign build.pub >/dev/null
AIRLOCK_HOME="$T/site-r" expect_status 0 airlock pull --plain-http "$BAD/models/stories:1.0"
AIRLOCK_HOME="$T/site-r" airlock fsck >/dev/null || fail "fsck after a resumed pull"
bad_stop
ok "a connection dropped once mid-blob: the pull resumes with a Range request"
