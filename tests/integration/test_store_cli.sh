# The store's commands end to end on the real fixture model.
. "$(dirname "$0")/lib.sh"
F=$(fixture)

airlock init >/dev/null
airlock add stories:1.0 "$F" >"$T/add.out"
grep -q '^added stories:1.0' "$T/add.out" || fail "add output: $(cat "$T/add.out")"
ok "add"

# show: what the GGUF says
airlock show stories >"$T/show.txt"
grep -Eq 'architecture +llama' "$T/show.txt" || fail "no llama architecture: $(cat "$T/show.txt")"
grep -Eq 'vocabulary +512 tokens' "$T/show.txt" || fail "vocab not 512"
grep -Eq 'parameters +292\.8K' "$T/show.txt" || fail "parameters not 292.8K"
grep -Eq 'tensor types +F32' "$T/show.txt" || fail "tensor types not F32"
airlock show stories --json >"$T/show.json"
[ "$(json_get 'd["gguf"]["architecture"]' <"$T/show.json")" = llama ] || fail "json architecture"
[ "$(json_get 'd["gguf"]["vocab_size"]' <"$T/show.json")" = 512 ] || fail "json vocab"
ok "show reads the GGUF: llama, 512 tokens, F32, 292.8K parameters"

# path: the blob is what airlock says it is, checked by a standard tool
P=$(airlock path stories)
digest=$(json_get 'd["files"][0]["digest"]' <"$T/show.json")
[ "sha256:$(sha256sum "$P" | cut -d' ' -f1)" = "$digest" ] || fail "sha256sum differs from $digest"
[ "$(sha256sum "$P" | cut -d' ' -f1)" = 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d ] || fail "blob differs from fixture"
[ ! -w "$P" ] || [ "$(id -u)" = 0 ] || fail "blob is writable"
ok "sha256sum of 'airlock path' equals the reported digest"

# a second version, tags, activate, rollback
cp "$F" "$T/v2.gguf"; printf 'x' >>"$T/v2.gguf"   # a GGUF with trailing bytes is still a valid file
airlock add stories:2.0 "$T/v2.gguf" >/dev/null
v2=$(airlock show stories --json | json_get 'd["manifest"]')
v1=$(airlock show stories:1.0 --json | json_get 'd["manifest"]')
[ "$v1" != "$v2" ] || fail "versions share a manifest"
airlock rollback stories >/dev/null
[ "$(airlock show stories --json | json_get 'd["manifest"]')" = "$v1" ] || fail "rollback did not activate 1.0"
airlock activate "stories@$v2" >/dev/null
[ "$(airlock show stories --json | json_get 'd["manifest"]')" = "$v2" ] || fail "activate by digest"
airlock tag stories:1.0 stable >/dev/null
[ "$(airlock show stories:stable --json | json_get 'd["manifest"]')" = "$v1" ] || fail "tag"
airlock ls | qgrep 'stories' || fail "ls"
[ "$(airlock ls --json | json_get 'len(d)')" = 2 ] || fail "ls --json count"
ok "tags, activate, rollback"

# index.json is an OCI image index that names both versions
python3 - "$AIRLOCK_HOME" "$v1" "$v2" <<'PY'
import json, sys, os
home, v1, v2 = sys.argv[1:]
idx = json.load(open(os.path.join(home, "index.json")))
assert idx["schemaVersion"] == 2
digests = {m["digest"] for m in idx["manifests"]}
assert {v1, v2} <= digests, digests
for m in idx["manifests"]:
    man = json.load(open(os.path.join(home, "blobs/sha256", m["digest"][7:])))
    assert man["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert man["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    for l in man["layers"]:
        assert l["mediaType"].startswith("application/vnd.cncf.model."), l
        assert "org.cncf.model.filepath" in l["annotations"]
assert json.load(open(os.path.join(home, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
PY
ok "index.json and manifests follow OCI + ModelPack"

# errors: unknown refs with close matches, bad input
expect_status 3 airlock show storeis
echo "$OUT" | qgrep "did you mean: stories" || fail "no close match: $OUT"
expect_status 3 airlock show stories:nope
expect_status 4 airlock show 'Bad Name'
expect_status 2 airlock add onlyname
expect_status 3 airlock add x "$T/missing.gguf"
printf 'GGUF\3\0\0\0garbage' >"$T/bad.gguf"
expect_status 4 airlock add bad "$T/bad.gguf"
echo "$OUT" | qgrep -i "gguf" || fail "malformed gguf message: $OUT"
[ "$(airlock ls --json | json_get 'len(d)')" = 2 ] || fail "a failed add changed the index"
ok "clear errors with meaningful exit codes"

# every command has --help
for c in init add ls show tag activate rollback rm path fsck gc log version; do
    airlock "$c" --help | qgrep "usage: airlock $c" || fail "$c --help"
done
airlock help | qgrep 'exit status' || fail "help lists exit codes"
ok "--help everywhere"

# rm + gc, fsck clean, log verified
airlock rm stories:2.0 >/dev/null
[ "$(airlock ls --json | json_get 'len(d)')" = 1 ] || fail "rm"
airlock gc | qgrep 'removed 0 versions and [1-9]' || fail "gc removed nothing"
airlock fsck >"$T/fsck.txt" || fail "fsck not clean: $(cat "$T/fsck.txt")"
airlock log --verify | qgrep 'chain verified' || fail "log verify"
airlock log --json | python3 -c 'import json,sys; k=[e["kind"] for e in json.load(sys.stdin)]; assert k[:2]==["add","add"] and "rollback" in k and "rm" in k, k'
ok "rm, gc, fsck, log"
