# serve_lib.sh: start and stop `airlock serve` for the integration tests.
# Source after lib.sh. serve_start ARGS... starts a server on a free loopback
# port (or as ARGS say), waits until it is ready and sets BASE and SERVE_PID.

SERVE_PID=
SERVE_LOGS=()
# Under an emulator (make test-arm64) every wait is AL_TIME_SCALE times longer.
TIME_SCALE=${AL_TIME_SCALE:-1}
serve_stop() {
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        for _ in $(seq 1 $((600 * TIME_SCALE))); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVE_PID" 2>/dev/null || true
    fi
    SERVE_PID=
    sanitizer_check
}
# A sanitizer's report in a server's log fails the test, even where the
# server's exit status is not looked at (a race found at shutdown, say).
sanitizer_check() {
    local l
    for l in "${SERVE_LOGS[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$l" 2>/dev/null; then
            cat "$l" >&2
            SERVE_LOGS=()
            fail "sanitizer report in $l"
        fi
    done
}
trap 'rc=$?; (serve_stop) || rc=1; rm -rf "$T"; exit $rc' EXIT

serve_start() {
    SERVE_LOG="$T/serve.$RANDOM.log"
    SERVE_LOGS+=("$SERVE_LOG")
    "$AIRLOCK_BIN" serve "$@" >"$SERVE_LOG" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 1 $((600 * TIME_SCALE))); do
        if grep -q "airlock: ready" "$SERVE_LOG"; then break; fi
        kill -0 "$SERVE_PID" 2>/dev/null || { cat "$SERVE_LOG" >&2; fail "airlock serve exited at start"; }
        sleep 0.1
    done
    grep -q "airlock: ready" "$SERVE_LOG" || { cat "$SERVE_LOG" >&2; fail "airlock serve not ready in $((60 * TIME_SCALE)) s"; }
    BASE=$(grep -o 'https\?://[^ ]*' "$SERVE_LOG" | head -1 || true)
}

# post PATH JSON: prints the body, sets CODE to the HTTP status.
post() {
    local out; out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' -d "$2" "$BASE$1")
    CODE=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
get() {
    local out; out=$(curl -s -w '\n%{http_code}' "$BASE$1")
    CODE=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
expect_code() { [ "$CODE" = "$1" ] || fail "expected HTTP $1, got $CODE: $BODY"; }
jq_py() { printf '%s' "$BODY" | json_get "$1"; }

# metric NAME: the value of the first sample of NAME in /metrics.
metric() { curl -s "$BASE/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# has_event FILE: FILE holds at least one streamed event (the request runs).
has_event() { grep -q '^data: {' "$1" 2>/dev/null; }

# wait_until SECS WHAT CMD...: polls CMD until it succeeds; fails naming WHAT
# after SECS seconds. Tests order events by what the server reports (a
# metric, a streamed event, a log line), never by sleeping a guessed time.
wait_until() {
    local secs=$(($1 * TIME_SCALE)) what=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || fail "waited ${secs} s for $what"
        sleep 0.05
    done
}

GOLDEN=', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.'
