#!/usr/bin/env bash
# test_import.sh: `airlock import ollama` from an Ollama models directory
# built here by hand (manifest JSON, blobs named by digest: the fixture GGUF
# as the model layer, a template, parameters, a system prompt, a license),
# the golden completion from the imported version, the card keeping the
# texts, `show` naming the source; refused, each with the store's blobs and
# index.json byte-identical and one refusal event: a tampered blob, a blob
# of the wrong size, a manifest naming '../', a missing blob, an oversized
# manifest, a blob that is a link out of the directory. `airlock import oci`
# from our own store's layout copied by real skopeo into a fresh directory
# and an oci-archive: the same manifest digest, the golden completion; a
# layout with two refs and no REF names both. An ORAS layout (a GGUF under
# its title) imports; an oci-archive with a '..' entry, a symlink, a tampered
# layer is refused, the store unchanged, one event each.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v skopeo >/dev/null || skip_test "skopeo missing"
cd "$T"
FIX=$(fixture)
GREEDY=(--temperature 0 --max-tokens 40)

expect_status 0 airlock import --help
printf '%s' "$OUT" | qgrep 'usage: airlock import ollama NAME\[:TAG\]' || fail "import --help"
printf '%s' "$OUT" | qgrep 'unsigned by nature' || fail "import --help does not say imports are unsigned"
airlock --help 2>&1 | qgrep ' import ' || fail "import is not in the command list"
expect_status 2 airlock import
expect_status 2 airlock import docker x
ok "--help and usage errors"

# ---- an Ollama models directory, by hand ----
OM="$T/ollama"
mkdir -p "$OM/blobs"
# blob FILE: copies FILE into blobs/ under its digest; prints "DIGEST SIZE".
blob() {
    local h; h=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$OM/blobs/sha256-$h"
    echo "sha256:$h $(stat -c %s "$1")"
}
printf '{{ .System }}\nUSER: {{ .Prompt }}\nASSISTANT: ' >template.txt
printf '{"stop":["USER:"],"temperature":0.7}' >params.json
printf 'You tell short stories.' >system.txt
printf 'MIT License\n\nCopyright (c) Andrej Karpathy\n' >license.txt
printf '{"model_format":"gguf","model_family":"llama","model_type":"260K","file_type":"F32"}' >config.json
read -r MD MS < <(blob "$FIX")
read -r TD TS < <(blob template.txt)
read -r PD PS < <(blob params.json)
read -r SD SS < <(blob system.txt)
read -r LD LS < <(blob license.txt)
read -r CD CS < <(blob config.json)
# manifest NAME TAG [MODEL_DIGEST]: writes manifests/registry.ollama.ai/library/NAME/TAG.
manifest() {
    local d="$OM/manifests/registry.ollama.ai/library/$1"
    mkdir -p "$d"
    cat >"$d/$2" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
 "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"$CD","size":$CS},
 "layers":[
  {"mediaType":"application/vnd.ollama.image.model","digest":"${3:-$MD}","size":${4:-$MS}},
  {"mediaType":"application/vnd.ollama.image.template","digest":"$TD","size":$TS},
  {"mediaType":"application/vnd.ollama.image.params","digest":"$PD","size":$PS},
  {"mediaType":"application/vnd.ollama.image.system","digest":"$SD","size":$SS},
  {"mediaType":"application/vnd.ollama.image.license","digest":"$LD","size":$LS}]}
JSON
}
manifest stories 260k

airlock init >/dev/null
expect_status 0 airlock import ollama stories:260k --from "$OM" --json
J=$(printf '%s' "$OUT" | grep '^{')
[ "$(printf '%s' "$J" | json_get 'd["verdict"]')" = accepted ] || fail "import ollama: $OUT"
[ "$(printf '%s' "$J" | json_get 'd["version"]["name"]+":"+d["version"]["tag"]')" = stories:260k ] || fail "name: $J"
[ "$(printf '%s' "$J" | json_get 'd["source"]')" = "ollama://registry.ollama.ai/library/stories:260k" ] || fail "source: $J"
out=$(airlock run stories:260k "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "golden from the Ollama import: '$out'"
ok "import ollama: the fixture as the model layer gives the golden completion"

airlock show stories:260k --json >show.json
python3 - show.json <<'PY' || fail "show --json of the import: $(cat show.json)"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["card"]
assert c["template"] == "{{ .System }}\nUSER: {{ .Prompt }}\nASSISTANT: ", c
assert c["parameters"] == {"stop": ["USER:"], "temperature": 0.7}, c
assert c["system"] == "You tell short stories.", c
assert c["license_text"].startswith("MIT License"), c
assert c["source"] == "ollama://registry.ollama.ai/library/stories:260k", c
im = d["import"]
assert im["from"] == "ollama" and im["name"] == "registry.ollama.ai/library/stories:260k", im
assert "application/vnd.ollama.image.template" in im["media_types"], im
files = sorted(f["path"] for f in d["files"])
assert files == ["LICENSE", "model.gguf", "ollama/params.json", "ollama/system.txt", "ollama/template"], files
PY
airlock show stories:260k | qgrep 'imported  from ollama registry.ollama.ai/library/stories:260k' \
    || fail "show does not say the source: $(airlock show stories:260k)"
airlock log | tail -1 | qgrep ' import ' || fail "no import event: $(airlock log | tail -1)"
ok "the card keeps template, parameters, system prompt and license; show and the log say where it came from"

# Older Ollama versions named blobs sha256:<hex>.
mkdir -p old && cp -r "$OM" old/ && for f in old/ollama/blobs/sha256-*; do mv "$f" "${f/sha256-/sha256:}"; done
expect_status 0 airlock import ollama stories:260k --from old/ollama --as stories:old
ok "blobs named sha256:<hex> (older Ollama) import too"

# ---- refusals: the store unchanged, one event each ----
snapshot() {
    (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json) >"$1"
    airlock ls --json >>"$1"
}
snapshot before
events=$(airlock log | wc -l)
# refused EXIT MESSAGE KIND NAME [ARGS...]: the import of NAME is refused
# with EXIT and MESSAGE; the store unchanged; one more event of KIND (or
# none when KIND is "-").
refused() {
    local want=$1 msg=$2 kind=$3; shift 3
    expect_status "$want" airlock import ollama "$@" --from "$OM"
    printf '%s' "$OUT" | qgrep -F -- "$msg" || fail "$1: the refusal does not say '$msg': $OUT"
    snapshot after
    cmp -s before after || { diff before after >&2; fail "$1 changed the store"; }
    [ "$(find "$AIRLOCK_HOME/tmp" -type f | wc -l)" -eq 0 ] || fail "$1 left temporary files"
    local now; now=$(airlock log | wc -l)
    if [ "$kind" = - ]; then
        [ "$now" -eq "$events" ] || fail "$1: a usage error wrote an event"
    else
        [ "$now" -eq $((events + 1)) ] || fail "$1: expected one new event, got $((now - events))"
        airlock log | tail -1 | qgrep " $kind " || fail "$1: the event is not $kind: $(airlock log | tail -1)"
    fi
    events=$now
    ok "refused $1 (exit $want): $msg"
}
# A tampered blob: the model layer's file with one byte changed.
cp "$FIX" bad.gguf
printf 'X' | dd of=bad.gguf bs=1 seek=100000 conv=notrunc status=none
BAD=$(sha256sum "$FIX" | cut -d' ' -f1)
mkdir -p tampered && cp -r "$OM" tampered/ && cp bad.gguf "tampered/ollama/blobs/sha256-$BAD"
OM_SAVE=$OM; OM="$T/tampered/ollama"
refused 5 "its bytes hash to" import-refused stories:260k
# A blob longer than its manifest says.
cat "$FIX" template.txt >"$OM/blobs/sha256-$BAD"
refused 5 "bytes; its manifest says" import-refused stories:260k
OM=$OM_SAVE
# A manifest naming ../ (as a digest) and a name with ../.
manifest dotdot 1 "sha256:../../../etc/passwd"
refused 4 "without a valid sha256 digest" import-refused dotdot:1
refused 2 "not a valid Ollama model name" - ../stories:260k
# A missing blob.
rm "$OM/blobs/sha256-${TD#sha256:}"
manifest stories 260k
refused 3 "is missing from the models directory" import-refused stories:260k
cp template.txt "$OM/blobs/sha256-${TD#sha256:}"
# An oversized manifest (over AL_LIMIT_MANIFEST, 1 MiB).
d="$OM/manifests/registry.ollama.ai/library/huge"; mkdir -p "$d"
{ printf '{"pad":"'; head -c 1100000 /dev/zero | tr '\0' a; printf '"}'; } >"$d/1"
refused 4 "over the cap of 1048576 bytes (AL_LIMIT_MANIFEST)" import-refused huge:1
# A blob that is a symbolic link out of the directory.
mkdir -p linked/ollama && cp -r "$OM/manifests" linked/ollama/ && cp -r "$OM/blobs" linked/ollama/
ln -sf "$FIX" "linked/ollama/blobs/sha256-${MD#sha256:}"
OM="$T/linked/ollama"
refused 4 "is a symbolic link" import-refused stories:260k
OM=$OM_SAVE
refused 3 "no model 'nosuch:1'" import-refused nosuch:1
airlock log --verify >/dev/null || fail "event chain broken"

# ---- OCI: our own store's layout, copied by skopeo ----
printf '{"origin": "karpathy/tinyllamas"}' >card.json
airlock add stories:1.0 "$FIX" --card card.json >/dev/null
airlock add stories:2.0 "$FIX" >/dev/null
MAN=$(airlock show stories:1.0 --json | json_get 'd["manifest"]')
skopeo copy -q "oci:$AIRLOCK_HOME:stories:1.0" "oci:$T/lay:stories:1.0" >/dev/null 2>sk.err || fail "skopeo: $(cat sk.err)"
skopeo copy -q "oci:$AIRLOCK_HOME:stories:1.0" "oci-archive:$T/lay.tar:stories:1.0" >/dev/null 2>sk.err \
    || fail "skopeo oci-archive: $(cat sk.err)"
export AIRLOCK_HOME="$T/second"
airlock init >/dev/null
for src in "$T/lay:stories:1.0" "$T/lay.tar"; do
    expect_status 0 airlock import oci "$src" --as "oci-$( [ "${src%.tar}" = "$src" ] && echo dir || echo tar):1" --json
    J=$(printf '%s' "$OUT" | grep '^{')
    [ "$(printf '%s' "$J" | json_get 'd["manifest"]')" = "$MAN" ] || fail "import oci $src: another manifest: $J"
done
for n in oci-dir:1 oci-tar:1; do
    out=$(airlock run "$n" "Once upon a time" "${GREEDY[@]}")
    [ "$out" = "$GOLDEN" ] || fail "golden from $n: '$out'"
    airlock show "$n" | qgrep "imported  from oci" || fail "show $n does not say the source"
    [ "$(airlock show "$n" --json | json_get 'd["card"]["origin"]')" = karpathy/tinyllamas ] \
        || fail "$n: the source's card did not come along"
done
expect_status 0 airlock import oci "$T/lay:stories:1.0"
airlock ls --json | qgrep '"stories"' || fail "the ref name is not the default name: $(airlock ls)"
ok "import oci: a skopeo copy of the store's layout and its oci-archive give the same manifest and the golden text"

skopeo copy -q "oci:$T/home:stories:2.0" "oci:$T/lay:stories:2.0" >/dev/null 2>sk.err || fail "skopeo: $(cat sk.err)"
snapshot before
events=$(airlock log | wc -l)
expect_status 3 airlock import oci "$T/lay"
printf '%s' "$OUT" | qgrep "'stories:1.0', 'stories:2.0'" || fail "two refs are not named: $OUT"
expect_status 3 airlock import oci "$T/lay:stories:9"
printf '%s' "$OUT" | qgrep "no manifest is named 'stories:9'" || fail "a missing ref: $OUT"
snapshot after
cmp -s before after || fail "a refused oci import changed the store"
[ "$(airlock log | wc -l)" -eq $((events + 2)) ] || fail "expected two refusal events"
# A tampered layer in a layout.
GB=$(sha256sum "$FIX" | cut -d' ' -f1)
chmod u+w "$T/lay/blobs/sha256/$GB"
cp bad.gguf "$T/lay/blobs/sha256/$GB"
expect_status 5 airlock import oci "$T/lay:stories:1.0" --as tampered:1
snapshot after
cmp -s before after || fail "a tampered oci import changed the store"
ok "two refs and no REF names both; a missing ref and a tampered layer are refused, the store unchanged"

# ---- hand-made archives and an ORAS layout ----
python3 - "$FIX" <<'EOF'
import hashlib, io, json, os, sys, tarfile
gguf = open(sys.argv[1], "rb").read()
def layout(blobs, layer):
    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        blobs["blobs/sha256/" + h] = data
        return {"digest": "sha256:" + h, "size": len(data)}
    cfg = blob(b"{}")
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": "application/vnd.unknown.artifact.v1",
                      "config": dict(cfg, mediaType="application/vnd.oci.empty.v1+json"),
                      "layers": [dict(blob(gguf), **layer)]}).encode()
    idx = json.dumps({"schemaVersion": 2, "manifests": [dict(blob(man), mediaType="application/vnd.oci.image.manifest.v1+json",
                      annotations={"org.opencontainers.image.ref.name": "oras:1"})]}).encode()
    blobs["index.json"] = idx
    blobs["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
# ORAS: 'oras push --oci-layout' of a GGUF: the default layer media type, the file name as the title.
b = {}
layout(b, {"mediaType": "application/vnd.oci.image.layer.v1.tar",
           "annotations": {"org.opencontainers.image.title": "stories260K.gguf"}})
for name, data in b.items():
    os.makedirs(os.path.dirname(os.path.join("oras", name)) or "oras", exist_ok=True)
    open(os.path.join("oras", name), "wb").write(data)
def archive(path, extra):
    with tarfile.open(path, "w") as t:
        for name, data in sorted(b.items()):
            ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        t.addfile(extra)
ti = tarfile.TarInfo("../escape"); ti.size = 0
archive("dotdot.tar", ti)
ti = tarfile.TarInfo("blobs/sha256/link"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"
archive("symlink.tar", ti)
# A tampered layer: the same names, other bytes.
bad = bytearray(gguf); bad[100000] ^= 1
with tarfile.open("tampered.tar", "w") as t:
    for name, data in sorted(b.items()):
        if data == gguf:
            data = bytes(bad)
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
EOF
expect_status 0 airlock import oci oras --json
[ "$(printf '%s' "$OUT" | grep '^{' | json_get 'd["version"]["name"]+":"+d["version"]["tag"]')" = oras:1 ] || fail "oras: $OUT"
airlock show oras:1 --json | json_get '[f["path"] for f in d["files"]]' | qgrep "'stories260K.gguf'" \
    || fail "the ORAS title is not the file name"
out=$(airlock run oras:1 "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "golden from the ORAS layout: '$out'"
ok "an ORAS layout (a GGUF under its title) imports and gives the golden text"
snapshot before
events=$(airlock log | wc -l)
for c in "dotdot.tar|4|absolute or '..' path" "symlink.tar|4|not a regular file" "tampered.tar|5|its bytes hash to"; do
    IFS='|' read -r f st msg <<<"$c"
    expect_status "$st" airlock import oci "$f" --as bad:1
    printf '%s' "$OUT" | qgrep -F -- "$msg" || fail "$f: the refusal does not say '$msg': $OUT"
    snapshot after
    cmp -s before after || fail "$f changed the store"
    [ "$(find "$AIRLOCK_HOME/tmp" -type f | wc -l)" -eq 0 ] || fail "$f left temporary files"
    now=$(airlock log | wc -l)
    [ "$now" -eq $((events + 1)) ] || fail "$f: expected one new event, got $((now - events))"
    airlock log | tail -1 | qgrep import-refused || fail "$f: not import-refused"
    events=$now
    ok "refused $f (exit $st): $msg"
done
airlock log --verify >/dev/null || fail "event chain broken"
