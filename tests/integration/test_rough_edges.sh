#!/usr/bin/env bash
# Rough edges a new user hit (issue 16, part 6): `ls --json` and `show
# --json` give tags as an array; counts of one are singular (fsck);
# /v1/models' `created` is the version's creation time, not 0; the same
# bundle ingested again is "already present" (a replayed sequence of another
# bundle is still refused); rollback prints a valid ref; every tag is a ref
# name in index.json (skopeo); a non-GGUF is labelled at add and named at
# load; key unlocking says it derives the key and options come before the
# password; the openpgp refusal names the key; the model card in the ModelPack
# config's own fields, the whole card in an annotation, printed by show.
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
serve_stop

# Re-ingesting the identical bundle says it is already present (exit 0, one
# "ingest-existing" event, nothing moved); a different bundle with a replayed
# sequence is still refused.
airlock key gen -o "$T/build" --no-password >/dev/null
airlock trust add build --minisign "$T/build.pub" >/dev/null
{ printf '\0'; head -c 50000 /dev/urandom; } >"$T/w1.bin"
{ printf '\0'; head -c 50000 /dev/urandom; } >"$T/w2.bin"
airlock pack re:1 "$T/w1.bin" -o "$T/re1.tar" --sign "$T/build.key" --seq 10 >/dev/null
airlock pack re:2 "$T/w2.bin" -o "$T/re2.tar" --sign "$T/build.key" --seq 11 >/dev/null
airlock pack re:0 "$T/w2.bin" -o "$T/re0.tar" --sign "$T/build.key" --seq 10 >/dev/null
airlock ingest "$T/re1.tar" >/dev/null
expect_status 0 airlock ingest "$T/re1.tar"
echo "$OUT" | qgrep '^already present: re:1 ' || fail "identical re-ingest: $OUT"
airlock ingest "$T/re2.tar" >/dev/null
airlock ls --json >"$T/before.json"
events=$(airlock log | wc -l)
expect_status 0 airlock ingest "$T/re1.tar"
echo "$OUT" | qgrep '^already present: re:1 ' || fail "identical old bundle: $OUT"
echo "$OUT" | qgrep 'nothing changed' || fail "identical old bundle: $OUT"
airlock ls --json | cmp -s - "$T/before.json" || fail "re-ingest of an old bundle changed the store: $(airlock ls)"
[ "$(airlock show re --json | json_get 'd["tags"]')" = "['2']" ] || fail "active version moved: $(airlock show re)"
[ "$(airlock log | wc -l)" -eq $((events + 1)) ] || fail "re-ingest: not one event"
airlock log | tail -1 | qgrep ingest-existing || fail "re-ingest event: $(airlock log | tail -1)"
expect_status 0 airlock verify "$T/re1.tar"
echo "$OUT" | qgrep 'VALID: already present as re:1' || fail "verify of an identical bundle: $OUT"
expect_status 6 airlock ingest "$T/re0.tar"
echo "$OUT" | qgrep 'replay refused' || fail "a different bundle at a replayed sequence: $OUT"
ok "an identical bundle is already present (exit 0); a replayed sequence is still refused"

# rollback (and activate) print a ref that show and serve take: name:tag,
# not the list of tags; name@digest for a version without a tag.
cp "$FIX" "$T/v2.gguf"; printf 'x' >>"$T/v2.gguf"
airlock add stories:2.0 "$T/v2.gguf" >/dev/null
airlock rollback stories >"$T/rb.txt" || fail "rollback: $(cat "$T/rb.txt")"
ref=$(awk '{print $4; exit}' "$T/rb.txt")
[ "$ref" = "stories:1.0" ] || fail "rollback printed '$ref': $(cat "$T/rb.txt")"
qgrep 'also tagged stable' "$T/rb.txt" || fail "rollback's other tags: $(cat "$T/rb.txt")"
airlock show "$ref" >/dev/null || fail "show does not take rollback's ref '$ref'"
airlock tag --delete stories 2.0 >/dev/null
v2=$(airlock ls --json | json_get '[x["manifest"] for x in d if x["name"] == "stories" and not x["tags"]][0]')
airlock activate "stories@$v2" >"$T/act.txt"
ref=$(awk '{print $2; exit}' "$T/act.txt")
[ "$ref" = "stories@$v2" ] || fail "activate of an untagged version printed '$ref': $(cat "$T/act.txt")"
serve_start "$ref" --port 0
get /v1/models; expect_code 200
serve_stop
ok "rollback and activate print a ref show and serve take ($ref)"

# Every tag of a version is a ref name in index.json, so skopeo reads
# oci:STORE:name:tag for each; tagging, moving and removing a tag keep it so.
command -v skopeo >/dev/null || skip_test "skopeo missing"
skopeo_manifest() { skopeo inspect --raw "oci:$AIRLOCK_HOME:$1" 2>"$T/skopeo.err" | sha256sum | cut -d' ' -f1; }
refs_ok() {
    airlock ls --json >"$T/refs.json"
    python3 - "$T/refs.json" "$AIRLOCK_HOME/index.json" <<'PY' || fail "index.json ref names: $(cat "$AIRLOCK_HOME/index.json")"
import json, sys
vs = json.load(open(sys.argv[1]))
idx = json.load(open(sys.argv[2]))["manifests"]
refs = {}
for m in idx:
    r = m["annotations"]["org.opencontainers.image.ref.name"]
    assert r not in refs, "ref %s listed twice" % r
    refs[r] = m["digest"]
want = {}
for v in vs:
    for t in v["tags"]:
        want[v["name"] + ":" + t] = v["manifest"]
    if not v["tags"]:
        want[v["name"]] = v["manifest"]
assert refs == want, (refs, want)
PY
    for ref in $(python3 -c 'import json,sys; [print(v["name"] + ":" + t) for v in json.load(open(sys.argv[1])) for t in v["tags"]]' "$T/refs.json"); do
        m=$(python3 -c 'import json,sys; n, t = sys.argv[2].split(":"); print([v["manifest"] for v in json.load(open(sys.argv[1])) if v["name"] == n and t in v["tags"]][0])' "$T/refs.json" "$ref")
        [ "sha256:$(skopeo_manifest "$ref")" = "$m" ] || fail "skopeo inspect oci:STORE:$ref: $(cat "$T/skopeo.err")"
    done
}
airlock tag stories:1.0 golden >/dev/null
refs_ok
[ "sha256:$(skopeo_manifest stories:golden)" = "$(airlock show stories:1.0 --json | json_get 'd["manifest"]')" ] \
    || fail "skopeo inspect of a second tag: $(cat "$T/skopeo.err")"
airlock tag "stories@$v2" stable >/dev/null   # moves stable to the other version
refs_ok
[ "sha256:$(skopeo_manifest stories:stable)" = "$v2" ] || fail "skopeo after moving a tag: $(cat "$T/skopeo.err")"
airlock tag --delete stories golden >/dev/null
refs_ok
skopeo inspect --raw "oci:$AIRLOCK_HOME:stories:golden" >/dev/null 2>&1 && fail "a removed tag is still in index.json"
airlock fsck >"$T/fsck2.txt" || fail "fsck after the tags: $(cat "$T/fsck2.txt")"
ok "every tag is a ref name in index.json: skopeo inspect oci:STORE:name:tag reads each; moved and removed tags too"

# A file that is not a GGUF: add warns and labels the version by what it is
# (the scan's kind, as the config's format); loading it says it is no GGUF
# (exit 4, invalid input), not a digest or load failure (exit 5).
python3 - "$T/m.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 8)
PY
airlock add st:1 "$T/m.safetensors" >"$T/add.out" 2>"$T/add.err" || fail "add of a safetensors file: $(cat "$T/add.err")"
qgrep "warning: no file is a GGUF: '.*m.safetensors' is safetensors" "$T/add.err" || fail "add did not warn: $(cat "$T/add.err")"
cfg=$(airlock show st:1 --json | json_get 'd["config"]')
[ "$(json_get 'd["config"].get("format")' <"$AIRLOCK_HOME/blobs/sha256/${cfg#sha256:}")" = safetensors ] \
    || fail "config format: $(cat "$AIRLOCK_HOME/blobs/sha256/${cfg#sha256:}")"
airlock show st:1 | qgrep '^  format    safetensors  (not a GGUF' || fail "show: $(airlock show st:1)"
airlock add gg:1 "$FIX" 2>"$T/add2.err" >/dev/null
qgrep warning "$T/add2.err" && fail "add of a GGUF warned: $(cat "$T/add2.err")"
expect_status 4 airlock run st:1 "Once upon a time"
echo "$OUT" | qgrep "'st:1' is not a GGUF model: its file 'm.safetensors' is not a GGUF" || fail "run of a non-GGUF: $OUT"
expect_status 4 timeout 60 "$AIRLOCK_BIN" serve st:1 --port 0
echo "$OUT" | qgrep "'st:1' is not a GGUF model" || fail "serve of a non-GGUF: $OUT"
# `airlock path` is a store query, not a load: it prints a non-GGUF's blob.
p=$(airlock path st:1) || fail "path of a non-GGUF version refused"
cmp -s "$p" "$T/m.safetensors" || fail "path of a non-GGUF version: '$p' is not its file"
ok "add of a safetensors file warns and labels it; run and serve say it is not a GGUF (exit 4); path prints its blob"

# Unlocking a secret key says that scrypt is at work (it takes seconds); the
# options are checked before a password is asked for.
AIRLOCK_KEY_PASSWORD=pw airlock key gen -o "$T/enc" >/dev/null 2>"$T/gen.err" || fail "key gen: $(cat "$T/gen.err")"
qgrep 'deriving the encryption key from the password (scrypt' "$T/gen.err" || fail "key gen says nothing: $(cat "$T/gen.err")"
AIRLOCK_KEY_PASSWORD=pw airlock pack enc:1 "$T/w1.bin" -o "$T/enc.tar" --sign "$T/enc.key" >/dev/null 2>"$T/pack.err" \
    || fail "pack with an encrypted key: $(cat "$T/pack.err")"
qgrep "unlocking '.*enc.key': deriving the key from the password (scrypt" "$T/pack.err" || fail "pack: $(cat "$T/pack.err")"
# No password to be had (none in the environment, no terminal): a bad option
# is named, not the password.
nopw() { expect_status "$1" env -u AIRLOCK_KEY_PASSWORD setsid -w "$AIRLOCK_BIN" "${@:2}"; }
nopw 3 pack enc:1 -o "$T/x.tar" --sign "$T/enc.key"
echo "$OUT" | qgrep "no model named 'enc'" || fail "an unknown stored ref after the password: $OUT"
nopw 4 pack enc:1 "$T/w1.bin" -o "$T/x.tar" --sign "$T/enc.key" --expires 2031-02-29
echo "$OUT" | qgrep "not a date of the calendar" || fail "a bad --expires after the password: $OUT"
nopw 3 pack enc:1 "$T/missing.bin" -o "$T/x.tar" --sign "$T/enc.key"
echo "$OUT" | qgrep "missing.bin' is not a file" || fail "a missing file after the password: $OUT"
nopw 3 export nosuch:1 -o "$T/x.tar" --sign "$T/enc.key"
echo "$OUT" | qgrep -i "nosuch" || fail "an unknown ref after the password: $OUT"
nopw 2 pack enc:1 "$T/w1.bin" -o "$T/x.tar" --sign "$T/enc.key" --ack-license 'no such!'
nopw 2 pack enc:1 "$T/w1.bin" -o "$T/x.tar" --sign "$T/enc.key"
echo "$OUT" | qgrep "is encrypted: set AIRLOCK_KEY_PASSWORD" || fail "no password: $OUT"
ok "unlocking says it derives the key; options are checked before the password"

# The OpenPGP refusal names the key's fingerprint and says how to trust it,
# as the minisign one does: with no openpgp key trusted (read from the
# signature packet) and with another one trusted (from GnuPG).
if command -v gpg >/dev/null && command -v gpgconf >/dev/null; then
    export GNUPGHOME="$T/gnupg"
    mkdir -m 700 "$GNUPGHOME"
    gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Build <build@example.org>' ed25519 sign never 2>/dev/null
    gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Other <other@example.org>' ed25519 sign never 2>/dev/null
    gfpr=$(gpg --with-colons --list-keys build@example.org | awk -F: '/^fpr/ {print $10; exit}')
    gpg --armor --export other@example.org >"$T/other.asc"
    mkdir "$T/gp" && cp "$T/w1.bin" "$T/gp/model.bin"
    (cd "$T/gp" && sha256sum model.bin >checksums.txt && gpg --local-user "$gfpr" --detach-sign --armor checksums.txt 2>/dev/null &&
        tar cf ../gp.tar model.bin checksums.txt checksums.txt.asc)
    for trusted in none other; do
        [ "$trusted" = other ] && airlock trust add other --gpg "$T/other.asc" >/dev/null
        expect_status 6 airlock ingest "$T/gp.tar" --as gp:1
        msg=$(echo "$OUT" | grep '^airlock: error:')
        echo "$msg" | qgrep "signed by openpgp key $gfpr" || fail "gpg refusal ($trusted trusted) names no key: $OUT"
        echo "$msg" | qgrep "gpg --armor --export $gfpr > KEY.asc" || fail "gpg refusal ($trusted trusted): $OUT"
        echo "$msg" | qgrep "airlock trust add NAME --gpg KEY.asc" || fail "gpg refusal ($trusted trusted): $OUT"
    done
    gpgconf --kill all >/dev/null 2>&1 || true
    ok "the openpgp refusal names fingerprint $gfpr and how to trust it"
else
    skip_part "gpg missing"
fi

# The model card: its ModelPack fields in the config's own (descriptor.
# licenses, createdAt, authors, sourceURL), so the config validates against
# the ModelPack config schema, which allows no other properties; the card
# whole in the manifest's io.airlock.card; show prints it. Through add, and
# through pack, ingest and export.
cat >"$T/card.json" <<'CARD'
{"origin": "https://example.org/stories", "license": "MIT", "date": "2026-01-01", "authors": ["Ann", "Bo"],
 "quantization": "F32", "notes": {"eval": "tiny"}}
CARD
modelpack_valid() {
    local cfg man
    cfg=$(airlock show "$1" --json | json_get 'd["config"]')
    man=$(airlock show "$1" --json | json_get 'd["manifest"]')
    python3 - "$AIRLOCK_HOME/blobs/sha256/${cfg#sha256:}" "$AIRLOCK_HOME/blobs/sha256/${man#sha256:}" \
        "$AL_SRC/tests/schemas/modelpack/config-schema.json" "$AL_SRC/../shared/modelpack/config-schema.json" \
        <<'PY' || fail "$1: the config is not a valid ModelPack config"
import json, os, sys
import jsonschema
cfg = json.load(open(sys.argv[1]))
man = json.load(open(sys.argv[2]))
# The real schema where a person has put it (with its license): in the tree,
# or in the steering repo's shared/ beside it. Else our copy of its fields.
real = [p for p in sys.argv[3:5] if os.path.exists(p)]
if real:
    schema = json.load(open(real[0]))
else:
    # The ModelPack config's properties (model-spec docs/config.md), none other allowed.
    s, a = {"type": "string"}, {"type": "array", "items": {"type": "string"}}
    schema = {"type": "object", "additionalProperties": False, "required": ["descriptor", "config", "modelfs"],
              "properties": {
                  "descriptor": {"type": "object", "additionalProperties": False, "properties": {
                      "createdAt": {"type": "string", "format": "date-time"}, "authors": a, "family": s,
                      "name": {"type": "string", "minLength": 1}, "docURL": s, "sourceURL": s,
                      "datasetsURL": a, "version": s, "revision": s, "vendor": s, "licenses": a, "title": s,
                      "description": s}},
                  "config": {"type": "object", "additionalProperties": False, "properties": {
                      "architecture": s, "format": s, "paramSize": s, "precision": s, "quantization": s,
                      "capabilities": {"type": "object"}}},
                  "modelfs": {"type": "object", "additionalProperties": False, "required": ["type", "diffIds"],
                              "properties": {"type": {"enum": ["layers"]},
                                             "diffIds": dict(a, minItems=1)}}}}
jsonschema.validate(cfg, schema, format_checker=jsonschema.FormatChecker())
d = cfg["descriptor"]
assert d["licenses"] == ["MIT"], d
assert d["createdAt"] == "2026-01-01T00:00:00Z", d
assert d["authors"] == ["Ann", "Bo"], d
assert d["sourceURL"] == "https://example.org/stories", d
card = json.loads(man["annotations"]["io.airlock.card"])
assert card["notes"] == {"eval": "tiny"} and card["license"] == "MIT", card
PY
    airlock show "$1" >"$T/show-card.txt"
    qgrep '^  card$' "$T/show-card.txt" || fail "$1: show prints no card: $(cat "$T/show-card.txt")"
    qgrep '^    license        MIT$' "$T/show-card.txt" || fail "$1: show card: $(cat "$T/show-card.txt")"
    qgrep '^    notes          {"eval":"tiny"}$' "$T/show-card.txt" || fail "$1: show card: $(cat "$T/show-card.txt")"
    [ "$(airlock show "$1" --json | json_get 'd["card"]["origin"]')" = https://example.org/stories ] || fail "$1: show --json card"
}
airlock add carded:1 "$FIX" --card "$T/card.json" >/dev/null
modelpack_valid carded:1
airlock pack packed:1 "$FIX" --card "$T/card.json" -o "$T/card.tar" --sign "$T/build.key" --seq 5 >/dev/null
airlock ingest "$T/card.tar" >/dev/null
modelpack_valid packed:1
airlock export packed:1 -o "$T/card2.tar" --sign "$T/build.key" --seq 6 >/dev/null
airlock rm packed >/dev/null
airlock ingest "$T/card2.tar" >/dev/null
modelpack_valid packed:1
ok "the card's ModelPack fields are in the config (valid ModelPack config), the card whole in io.airlock.card; show prints it (add, pack, export)"
