#!/usr/bin/env bash
# airlock show REF --bom (issue 18): a CycloneDX 1.6 ML-BOM of a stored
# version, validated against the 1.6 JSON schema committed under
# tests/schemas/cyclonedx (with Debian's python3-jsonschema, offline). Its
# content is checked against the store and against the files as sha256sum
# sees them: the model's manifest digest and purl, each file's SHA-256, the
# license (an SPDX id as license.id, a model license such as llama3.1 as
# license.name), the signer of the bundle and the scan verdict.
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
validate=(/usr/bin/python3 "$AL_SRC/tests/integration/cyclonedx_validate.py" "$AL_SRC/tests/schemas/cyclonedx")
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip_test "python3-jsonschema missing (scripts/bootstrap.sh deps)"
gen="$AL_BUILD/airlock-ggufgen"
cd "$T"
shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256
       --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
mkdir src
"$gen" --out src/model.gguf --type f16 --seed 5 --license "Apache 2.0" "${shape[@]}" 2>/dev/null \
    || fail "generating model.gguf"
printf -- '---\nlicense: apache-2.0\n---\n# tiny\nA test model.\n' >src/README.md
"$gen" --out llama.gguf --type f16 --seed 6 --license llama3.1 "${shape[@]}" 2>/dev/null || fail "generating llama.gguf"
airlock key gen -o build --no-password >/dev/null
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock pack tiny:1 src/model.gguf src/README.md -o tiny.tar --sign build.key >/dev/null || fail "pack"
airlock ingest tiny.tar >/dev/null || fail "ingest"

# ---- an ingested, signed version: valid, and true to the store ----
airlock show tiny:1 --bom >bom.json || fail "show --bom"
"${validate[@]}" bom.json >/dev/null || { "${validate[@]}" bom.json; fail "the BOM does not validate"; }
airlock show tiny:1 --json >show.json
(cd src && sha256sum model.gguf README.md) >sums
/usr/bin/python3 - bom.json show.json sums "$(sed -n 's/^untrusted comment: minisign public key //p' build.pub)" <<'PY' \
    || fail "BOM content"
import json, sys
bom, show = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sums = dict(reversed(l.split()) for l in open(sys.argv[3]))
key = sys.argv[4]
m = bom["metadata"]["component"]
assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6", bom
assert m["type"] == "machine-learning-model" and m["name"] == "tiny", m
hexd = show["manifest"].split(":")[1]
assert m["hashes"] == [{"alg": "SHA-256", "content": hexd}], m["hashes"]
assert m["purl"] == "pkg:oci/tiny@sha256%3A" + hexd, m["purl"]
assert m["licenses"] == [{"license": {"id": "Apache-2.0"}}], m.get("licenses")
props = {}
for p in m["properties"]:
    props.setdefault(p["name"], []).append(p["value"])
assert props["airlock:scan:verdict"] == ["ok"], props
assert props["airlock:entered"] == ["ingest"], props
signers = props.get("airlock:signer", [])
# The public key's comment prints the id as minisign does (no leading zeros),
# the signer record with 16 digits: compare the numbers.
assert len(signers) == 1, signers
kind, sid, status = signers[0].split()
assert (kind, int(sid, 16), status) == ("minisign", int(key, 16), "good"), (signers, key)
files = {c["name"]: c["hashes"][0]["content"] for c in bom["components"]}
for name, digest in sums.items():
    assert files.get(name) == digest, (name, digest, files)
assert bom["dependencies"][0]["ref"] == m["bom-ref"]
assert sorted(bom["dependencies"][0]["dependsOn"]) == sorted(c["bom-ref"] for c in bom["components"])
PY
airlock show tiny:1 --bom >bom2.json
[ "$(sed -n 's/.*"serialNumber": "\(.*\)".*/\1/p' bom.json)" = \
  "$(sed -n 's/.*"serialNumber": "\(.*\)".*/\1/p' bom2.json)" ] || fail "serial number differs between two BOMs of one version"
ok "show --bom: a valid CycloneDX 1.6 ML-BOM; manifest digest, purl, file SHA-256s (as sha256sum), license id, signer, scan ok"

# ---- a model license is a license name, and still valid ----
airlock policy license allow llama3.1 >/dev/null
airlock add llama:1 llama.gguf --ack-license llama3.1 >/dev/null 2>&1 || airlock add llama:1 llama.gguf >/dev/null \
    || fail "add llama"
airlock show llama:1 --bom >llama.json
"${validate[@]}" llama.json >/dev/null || { "${validate[@]}" llama.json; fail "the llama BOM does not validate"; }
/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["metadata"]["component"]
assert m["licenses"] == [{"license": {"name": "llama3.1"}}], m.get("licenses")
assert {"name": "airlock:entered", "value": "add"} in m["properties"]
' llama.json || fail "llama BOM license"
ok "show --bom: a model license (llama3.1) goes out as license.name and validates"

# ---- the validator is not vacuous; errors are errors ----
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
d["components"][0]["hashes"][0]["content"] = "not-hex"
d["metadata"]["component"]["type"] = "firmware-blob"
json.dump(d, open(sys.argv[2], "w"))' bom.json broken.json
expect_status 1 "${validate[@]}" broken.json
echo "$OUT" | qgrep "does not match" || fail "validator: $OUT"
expect_status 3 airlock show nosuch:1 --bom
expect_status 2 airlock show --bom
ok "a broken BOM fails the schema; --bom of an unknown ref exits 3, without a ref 2"
