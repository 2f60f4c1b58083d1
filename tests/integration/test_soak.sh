#!/usr/bin/env bash
# The soak (tests/soak/soak.sh) for two minutes: mixed load on a real
# `airlock serve`, RSS, descriptors and threads flat, no unexpected status,
# a clean stop and an audit log that verifies. `make soak` runs it for 30.
. "$(dirname "$0")/lib.sh"
FIX=$(fixture)
SOAK_SECONDS=${SOAK_SECONDS:-120} SOAK_OUT="$T/soak.json" bash "$AL_SRC/tests/soak/soak.sh" "$AL_BUILD" \
    || fail "the soak failed (see above)"
ok "soak: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d["requests"].values()), "requests, RSS", d["rss_kib"], "fds", d["fds"], "threads", d["threads"])' "$T/soak.json")"
