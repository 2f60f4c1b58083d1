#!/usr/bin/env bash
# soak.sh [BUILD_DIR]: `airlock serve` under mixed load for SOAK_SECONDS
# (default 1800) on loopback: completions, streams cut off by their clients,
# embeddings, retrieval queries, API keys created and revoked, SIGHUP reloads.
# Fails when RSS (not under ASan: see below), open descriptors or threads
# grow (tolerances in soak.py),
# on any unexpected HTTP status, when SIGTERM does not stop the server
# cleanly, or when the audit log does not verify afterwards.
# The report (every sample) goes to $SOAK_OUT (default: a temporary file,
# printed path), the server's log to $SOAK_OUT.serve.log. SOAK_KINDS picks
# the kinds of load (see soak.py). `make soak` runs it; tests/integration/test_soak.sh runs it
# for 120 s inside `make test`.
set -euo pipefail
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
AIRLOCK_BIN=${AIRLOCK_BIN:-$(cd "$BUILD" && pwd)/airlock}
FIX=${AL_FIXTURES:-$SRC/../shared/fixtures}/stories260K.gguf
SOAK_SECONDS=${SOAK_SECONDS:-1800}
command -v curl >/dev/null || { echo "soak: curl is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "soak: python3 is needed" >&2; exit 1; }
[ -f "$FIX" ] || { echo "soak: the fixture $FIX is missing" >&2; exit 1; }
[ -x "$AIRLOCK_BIN" ] || { echo "soak: no airlock binary at $AIRLOCK_BIN (make build)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/al-soak.XXXXXX")
export AIRLOCK_HOME="$T/home" AIRLOCK_NO_PROGRESS=1
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
al() { "$AIRLOCK_BIN" "$@"; }

al add stories:1.0 "$FIX" >/dev/null
mkdir -p "$T/docs"
printf '# Pumps\n\nPumps move coolant through the primary loop.\n\n## Safety\n\nAlways close the isolation valve first.\n' >"$T/docs/pumps.md"
printf 'GENERATOR\nThe standby generator runs on diesel fuel.\n\nChange its oil monthly.\n' >"$T/docs/generator.txt"
printf 'HALON\nThe halon bottle is inspected every quarter by a certified technician.\n' >"$T/docs/halon.txt"
al rag create docs --embed stories >/dev/null
al rag add docs "$T/docs" >/dev/null
TOKEN=$(al apikey create soak-client --scopes 'chat,embed,rag:docs' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

LOG="$T/serve.log"
"$AIRLOCK_BIN" serve stories --port 0 --ctx 512 --parallel 4 --drain-timeout 30 >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 600); do grep -q "airlock: ready" "$LOG" && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
grep -q "airlock: ready" "$LOG" || { cat "$LOG" >&2; echo "soak: the server did not start" >&2; exit 1; }
BASE=$(grep -o 'http://[^ ]*' "$LOG" | head -1)

OUT=${SOAK_OUT:-$T/soak.json}
# Under AddressSanitizer RSS measures no leak: freed memory waits in its
# quarantine (256 MiB by default) and its allocator keeps what it got, so
# RSS climbs for minutes. LeakSanitizer's check at the server's exit (the
# log check below) finds leaks in that build; RSS is reported, not gated.
if ldd "$AIRLOCK_BIN" 2>/dev/null | grep libasan >/dev/null; then export SOAK_RSS_GATE=0; fi
st=0
python3 "$SRC/tests/soak/soak.py" "$BASE" "$PID" "$SOAK_SECONDS" "$AIRLOCK_BIN" "$TOKEN" "$OUT" || st=$?
[ -n "${SOAK_OUT:-}" ] && echo "soak: report in $OUT"

kill -TERM "$PID"
for _ in $(seq 1 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then echo "soak: FAIL: the server did not stop within 60 s of SIGTERM" >&2; st=1; fi
wait "$PID" || { echo "soak: FAIL: the server exited with $? after SIGTERM" >&2; st=1; }
PID=
if ! al audit verify >"$T/verify.txt" 2>&1; then
    echo "soak: FAIL: the audit log does not verify: $(head -3 "$T/verify.txt")" >&2; st=1
else
    echo "soak: $(cat "$T/verify.txt")"
fi
# Kept for reading (e.g. LeakSanitizer's report at exit of an ASan build).
[ -n "${SOAK_OUT:-}" ] && cp "$LOG" "$OUT.serve.log"
if grep -E "AddressSanitizer|LeakSanitizer|runtime error|Segmentation" "$LOG" >/dev/null; then
    echo "soak: FAIL: the server log shows a crash or sanitizer report" >&2; st=1
fi
exit "$st"
