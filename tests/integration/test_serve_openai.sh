#!/usr/bin/env bash
# The official openai npm package (pinned in tests/interop/package-lock.json,
# installed from the npm registry into a temporary folder) against airlock
# serve: chat, completions, embeddings, models, errors, streaming and not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v node >/dev/null && command -v npm >/dev/null || skip_test "node/npm missing"
FIX=$(fixture)
interop="$AL_SRC/tests/interop"
mkdir -p "$T/interop"
cp "$interop/package.json" "$interop/package-lock.json" "$interop/openai_check.mjs" "$T/interop/"
if ! (cd "$T/interop" && npm ci --no-audit --no-fund --loglevel=error >"$T/npm.log" 2>&1); then
    cat "$T/npm.log"; skip_test "cannot install the openai package from the npm registry"
fi
airlock add stories:1.0 "$FIX" >/dev/null
serve_start stories --port 0 --parallel 2
node "$T/interop/openai_check.mjs" "$BASE" stories || fail "openai SDK check"
node "$T/interop/openai_check.mjs" "$BASE" stories:1.0 >/dev/null || fail "openai SDK check with name:tag"
ok "openai SDK runs unchanged"
