#!/usr/bin/env bash
# Rough edges a new user hit (issue 16, part 6): `ls --json` and `show
# --json` give tags as an array; counts of one are singular (fsck);
# /v1/models' `created` is the version's creation time, not 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
airlock tag stories:1.0 stable >/dev/null

airlock ls --json >"$T/ls.json"
python3 - "$T/ls.json" <<'PY' || fail "ls --json tags: $(cat "$T/ls.json")"
import json, sys
d = json.load(open(sys.argv[1]))
v = [x for x in d if x["name"] == "stories"][0]
assert v["tags"] == ["1.0", "stable"], v["tags"]
PY
[ "$(airlock show stories --json | json_get 'd["tags"]')" = "['1.0', 'stable']" ] || fail "show --json tags"
ok "ls --json and show --json give tags as an array"

airlock fsck >"$T/fsck.txt" || fail "fsck: $(cat "$T/fsck.txt")"
qgrep ', 1 version, ' "$T/fsck.txt" || fail "fsck of one version: $(cat "$T/fsck.txt")"
qgrep ': 0 problems' "$T/fsck.txt" || fail "fsck problems: $(cat "$T/fsck.txt")"
ok "fsck counts one version in the singular"

created=$(airlock ls --json | json_get '[x for x in d if x["name"] == "stories"][0]["created"]')
want=$(python3 -c 'import sys,datetime; print(int(datetime.datetime.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()))' "$created")
serve_start stories --port 0
get /v1/models; expect_code 200
[ "$(jq_py 'd["data"][0]["created"]')" = "$want" ] || fail "/v1/models created: $BODY (want $want from $created)"
get /v1/models/stories:stable; expect_code 200
[ "$(jq_py 'd["created"]')" = "$want" ] || fail "/v1/models/{id} created: $BODY"
get /v1/models/nope; expect_code 404
ok "/v1/models created is the version's creation time ($want)"
