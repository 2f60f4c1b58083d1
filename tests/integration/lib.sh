# lib.sh: shared by the integration tests. Each test runs the real airlock
# binary against a fresh AIRLOCK_HOME under a temporary directory.
set -euo pipefail

: "${AIRLOCK_BIN:?run through ctest (AIRLOCK_BIN unset)}"
export AIRLOCK_NO_PROGRESS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/al-int.XXXXXX")
export AIRLOCK_HOME="$T/home"
trap 'rm -rf "$T"' EXIT

airlock() { "$AIRLOCK_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# expect_status N cmd...: runs cmd, fails unless it exits with N; output in $OUT.
expect_status() {
    local want=$1; shift
    set +e; OUT=$("$@" 2>&1); local got=$?; set -e
    [ "$got" = "$want" ] || fail "expected exit $want, got $got from: $* -- $OUT"
}

fixture() {
    local f="${AL_FIXTURES:-}/stories260K.gguf"
    if [ ! -f "$f" ]; then
        echo "SKIP: fixture $f missing (needs ../shared/fixtures)"; exit 77
    fi
    echo "$f"
}

json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
