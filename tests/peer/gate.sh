#!/usr/bin/env bash
# gate.sh: tests/peer/run.py fails when a test of its baseline does not pass
# (here one that can never run offline: its model is a download), and passes
# when the baseline holds only tests that pass. One suite file, airlock only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/al-peer-gate.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { python3 "$here/run.py" --no-control --baseline "$T/baseline" "$@" unit/test_basic.py; }

printf '# gate\nunit/test_basic.py::test_load_split_model\nunit/test_basic.py::test_server_start_simple\n' >"$T/baseline"
set +e; out=$(run -k 'test_load_split_model or test_server_start_simple' 2>&1); rc=$?; set -e
[ "$rc" = 77 ] && { echo "$out"; exit 77; }
[ "$rc" = 1 ] || fail "a baseline test that does not pass: expected exit 1, got $rc: $out"
grep -q 'REGRESSION: unit/test_basic.py::test_load_split_model: notrun: not runnable: model not available offline' \
    <<<"$out" || fail "no REGRESSION line naming the test and why: $out"
echo "ok - a baseline test that no longer passes fails the run, named with why"

printf 'unit/test_basic.py::test_server_start_simple\n' >"$T/baseline"
out=$(run -k 'test_load_split_model or test_server_start_simple' 2>&1) || fail "a passing baseline failed: $out"
grep -q 'baseline 1 tests, 0 regressed' <<<"$out" || fail "no baseline summary: $out"
echo "ok - a baseline of passing tests passes"
