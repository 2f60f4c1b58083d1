#!/usr/bin/env bash
# The server configurations shipped in dist/ (the default, the Raspberry Pi's)
# are read by airlock serve as they are, and serve the golden text.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
airlock add stories:1.0 "$(fixture)" >/dev/null
for cfg in "$AL_SRC"/dist/*.json; do
    serve_start stories --config "$cfg" --port 0
    post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
    expect_code 200
    [ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden text with $cfg: $BODY"
    serve_stop
    ok "dist/${cfg##*/} serves the golden text"
done
