#!/usr/bin/env bash
# The audit log on a full disk (a real 256 KiB tmpfs mounted over
# $AIRLOCK_HOME/audit): with audit_fail closed (the default) requests are
# refused with 503 while a record cannot be written, /health and the log say
# so, nothing is lost (the record is kept and written once there is room)
# and the server serves again by itself. With audit_fail open requests go
# on, and records the server could not write before it stopped are counted
# (HEAD) and marked (a loss marker line): `audit verify` exits 5 naming them.
# Needs root for the mount (the test fails, not skips, without it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || fail "curl is needed"
[ "$(id -u)" = 0 ] || fail "this test mounts a tmpfs and needs root"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
A="$AIRLOCK_HOME/audit"
mkdir -p "$A"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$A" || fail "cannot mount a tmpfs on $A"
trap 'serve_stop; umount "$A" 2>/dev/null || umount -l "$A"; rm -rf "$T"' EXIT

fill() { dd if=/dev/zero of="$A/fill" bs=4k 2>/dev/null || true; }
complete() { post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":4,"temperature":0}'; }

# ---- closed (the default): refuse while the audit cannot write ----
serve_start stories --port 0
for _ in 1 2 3; do complete; expect_code 200; done
fill
# A record may still fit the last page of the day file; the first one that
# does not is kept, and from then on requests are refused.
for _ in $(seq 1 200); do complete; [ "$CODE" = 503 ] && break; done
expect_code 503
grep -q '"code":"audit_unavailable"' <<<"$BODY" || fail "503 without its reason: $BODY"
grep -qi "no space left on device" <<<"$BODY" || fail "the 503 does not say why: $BODY"
get /health; expect_code 503
[ "$(jq_py 'd["status"]')" = audit_unavailable ] || fail "/health: $BODY"
grep -q "cannot write the audit record" "$SERVE_LOG" || fail "nothing in the log: $(tail -5 "$SERVE_LOG")"
post /v1/embeddings '{"model":"stories","input":"a cat"}'; expect_code 503
ok "closed: a full audit disk refuses requests with 503 (audit_unavailable), /health 503, logged"
rm -f "$A/fill"
for _ in $(seq 1 100); do complete; [ "$CODE" = 200 ] && break; sleep 0.1; done
expect_code 200
get /health; expect_code 200
grep -q "audit: the log is written again" "$SERVE_LOG" || fail "no recovery in the log"
serve_stop
expect_status 0 airlock audit verify
echo "$OUT" | qgrep "audit log intact" || fail "verify: $OUT"
# Every request has its record: the refused ones too (status 503), none lost.
n503=$(cat "$A"/audit-*.jsonl | grep -c '"status":503' || true)
[ "$n503" -ge 3 ] || fail "the refused requests are not in the audit log ($n503)"
ok "closed: served again once there is room, every record written (verify intact, $n503 refusals audited)"

# ---- open: serve on; what is lost is counted and verify says so ----
serve_start stories --port 0 --audit-fail open
complete; expect_code 200
fill
for _ in $(seq 1 20); do complete; expect_code 200; done
get /health; expect_code 200
[ "$(jq_py 'd["audit"]')" = "failing, requests served" ] || fail "/health in open mode: $BODY"
serve_stop  # the records still unwritten are lost now, and counted in HEAD
grep -q "records\? lost" "$SERVE_LOG" || fail "the loss is not in the log: $(tail -5 "$SERVE_LOG")"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "records\? w[ae][sr]e\? lost after record" || fail "verify does not name the loss: $OUT"
rm -f "$A/fill"
serve_start stories --port 0
complete; expect_code 200
serve_stop
expect_status 5 airlock audit verify
echo "$OUT" | grep -Eq "audit-[0-9-]+\.jsonl:[0-9]+: [0-9]+ records? lost since" || fail "no loss marker: $OUT"
python3 - "$A" <<'PY' || fail "the loss marker does not chain"
import glob, hashlib, json, sys
prev = "0" * 64
for f in sorted(glob.glob(sys.argv[1] + "/audit-*.jsonl")):
    for line in open(f):
        line = line.rstrip("\n")
        d = json.loads(line)
        assert d["prev"] == prev, "chain broken"
        assert hashlib.sha256((line[:-75] + "}").encode()).hexdigest() == d["hash"], "hash"
        prev = d["hash"]
PY
ok "open: requests served on a full disk; lost records counted in HEAD, then a loss marker; verify exits 5"
