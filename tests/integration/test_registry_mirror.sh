#!/usr/bin/env bash
# test_registry_mirror.sh: every node a mirror (issue 14, item 3). Store A
# adds the fixture and serves it with `serve --registry --registry-sign KEY`
# behind an API key with the `pull` scope; store B `airlock pull`s from it
# (Basic credentials: the key as the password on stdin) and gets the same
# manifest digest with the signature proven under its trust policy (and
# the golden completion from the pulled version); real
# skopeo copies from it; no key: 401 with a Basic challenge, a key without
# pull or for another model: 403; Range GETs return the right bytes; HEAD
# and GET carry Docker-Content-Digest and Content-Length; the referrers API
# and the sha256-<hex> fallback tag list the signatures; ../, malformed
# digests, other models' blobs and over-long URLs are refused; every request
# is in the audit log. Then over TLS from a test CA (pull --ca-file, skopeo
# --src-cert-dir), and unsigned (no --registry-sign).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
. "$(dirname "$0")/registry_lib.sh"
for t in skopeo curl sha256sum openssl; do
    command -v $t >/dev/null || skip_test "$t missing (scripts/bootstrap.sh installs it)"
done
cd "$T"
FIX=$(fixture)
SITE_A="$T/home"

airlock add stories:1.0 "$FIX" >/dev/null
cp "$FIX" other.gguf
python3 "$AL_SRC/tests/integration/gguf_edit.py" other.gguf --first 1 >/dev/null
airlock add other:1.0 other.gguf >/dev/null
airlock key gen -o site --no-password >/dev/null
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
PULL=$(tok mirror --scopes pull)
CHAT=$(tok chatter --scopes chat)
ONLY_OTHER=$(tok narrow --scopes pull --models 'other*')

# Without --registry, /v2/ is no registry.
serve_start --port 0
out=$(curl -s -o /dev/null -w '%{http_code}' -u "x:$PULL" "$BASE/v2/")
[ "$out" = 404 ] || fail "/v2/ without --registry: $out"
serve_stop
ok "without --registry, /v2/ answers 404"

serve_start --port 0 --registry --registry-sign site.key
HP=${BASE#http://}

# ---- access ----
hdr=$(curl -s -D - -o /dev/null "$BASE/v2/" | tr -d '\r')
echo "$hdr" | head -1 | qgrep ' 401' || fail "no key: $hdr"
echo "$hdr" | qgrep -i '^www-authenticate: Basic realm="airlock"' || fail "no Basic challenge: $hdr"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CHAT" "$BASE/v2/")
[ "$code" = 403 ] || fail "a chat key: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "x:$CHAT" "$BASE/v2/stories/manifests/1.0")
[ "$code" = 403 ] || fail "a chat key as Basic: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "x:$ONLY_OTHER" "$BASE/v2/stories/manifests/1.0")
[ "$code" = 403 ] || fail "a pull key for other*: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "x:wrong-key" "$BASE/v2/")
[ "$code" = 401 ] || fail "a wrong key: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Basic !!not*base64' "$BASE/v2/")
[ "$code" = 401 ] || fail "malformed Basic credentials: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $(head -c 3000 /dev/zero | tr '\0' A)" "$BASE/v2/")
[ "$code" = 401 ] || fail "over-long Basic credentials: $code"
hdr=$(curl -s -D - -o /dev/null -u "x:$PULL" "$BASE/v2/" | tr -d '\r')
echo "$hdr" | head -1 | qgrep ' 200' || fail "/v2/ with the pull key: $hdr"
echo "$hdr" | qgrep -i '^docker-distribution-api-version: registry/2.0' || fail "no API version: $hdr"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PULL" "$BASE/v2/")
[ "$code" = 200 ] || fail "the pull key as Bearer: $code"
ok "no key: 401 with a Basic challenge; a key without pull, or for other models: 403; pull: 200"

# ---- manifests: HEAD and GET, by tag and digest ----
C=(-s -u "x:$PULL")
curl "${C[@]}" -o man.json -D man.hdr "$BASE/v2/stories/manifests/1.0"
tr -d '\r' <man.hdr >man.h
head -1 man.h | qgrep ' 200' || fail "manifest by tag: $(cat man.h)"
MAN=$(awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}' man.h)
[ "sha256:$(sha256sum man.json | cut -d' ' -f1)" = "$MAN" ] || fail "Docker-Content-Digest is not the body's"
qgrep -i '^content-type: application/vnd.oci.image.manifest.v1+json' man.h || fail "media type: $(cat man.h)"
qgrep -i "^content-length: $(stat -c %s man.json)\$" man.h || fail "Content-Length: $(cat man.h)"
head=$(curl "${C[@]}" -I "$BASE/v2/stories/manifests/$MAN" | tr -d '\r')
echo "$head" | head -1 | qgrep ' 200' || fail "HEAD by digest: $head"
echo "$head" | qgrep -i "^docker-content-digest: $MAN" || fail "HEAD digest: $head"
echo "$head" | qgrep -i "^content-length: $(stat -c %s man.json)" || fail "HEAD length: $head"
cmp <(curl "${C[@]}" "$BASE/v2/stories/manifests/$MAN") man.json || fail "GET by digest differs"
curl "${C[@]}" "$BASE/v2/stories/tags/list" | json_get 'd["tags"]' | qgrep "'1.0'" || fail "tags/list"
ok "manifests by tag and digest (HEAD, GET): Docker-Content-Digest, media type, Content-Length; tags/list"

# ---- referrers: the API and the fallback tag ----
ix=$(curl "${C[@]}" "$BASE/v2/stories/referrers/$MAN")
REF=$(printf '%s' "$ix" | json_get 'd["manifests"][0]["digest"]')
printf '%s' "$ix" | json_get 'd["manifests"][0]["artifactType"]' | qgrep 'application/vnd.airlock.signatures' \
    || fail "referrers API: $ix"
fb=$(curl "${C[@]}" "$BASE/v2/stories/manifests/sha256-${MAN#sha256:}")
[ "$(printf '%s' "$fb" | json_get 'd["manifests"][0]["digest"]')" = "$REF" ] || fail "fallback tag: $fb"
curl "${C[@]}" "$BASE/v2/stories/manifests/$REF" | json_get 'd["subject"]["digest"]' | qgrep "$MAN" \
    || fail "the referrer's subject"
ok "the signature referrer: listed by the referrers API and under sha256-<hex>, its subject the manifest"

# ---- blobs: whole, Range, HEAD ----
LAYER=$(json_get 'd["layers"][0]["digest"]' <man.json)
SIZE=$(json_get 'd["layers"][0]["size"]' <man.json)
[ "$SIZE" = "$(stat -c %s "$FIX")" ] || fail "the layer is not the fixture"
curl "${C[@]}" -o layer.bin "$BASE/v2/stories/blobs/$LAYER"
cmp layer.bin "$FIX" || fail "GET blob differs from the fixture"
hdr=$(curl "${C[@]}" -D - -o part.bin -H 'Range: bytes=100-1123' "$BASE/v2/stories/blobs/$LAYER" | tr -d '\r')
echo "$hdr" | head -1 | qgrep ' 206' || fail "Range: $hdr"
echo "$hdr" | qgrep -i "^content-range: bytes 100-1123/$SIZE" || fail "Content-Range: $hdr"
cmp part.bin <(tail -c +101 "$FIX" | head -c 1024) || fail "Range bytes differ"
curl "${C[@]}" -o tail.bin -H 'Range: bytes=-7' "$BASE/v2/stories/blobs/$LAYER"
cmp tail.bin <(tail -c 7 "$FIX") || fail "suffix Range differs"
curl "${C[@]}" -o from.bin -H "Range: bytes=$((SIZE - 10))-" "$BASE/v2/stories/blobs/$LAYER"
cmp from.bin <(tail -c 10 "$FIX") || fail "open Range differs"
code=$(curl "${C[@]}" -o /dev/null -w '%{http_code}' -H "Range: bytes=$SIZE-" "$BASE/v2/stories/blobs/$LAYER")
[ "$code" = 416 ] || fail "Range past the end: $code"
for r in 'bytes=5-2' 'bytes=abc' 'bytes=-0' 'bytes=1-2x'; do
    code=$(curl "${C[@]}" -o /dev/null -w '%{http_code}' -H "Range: $r" "$BASE/v2/stories/blobs/$LAYER")
    [ "$code" = 416 ] || fail "Range '$r': $code"
done
code=$(curl "${C[@]}" -o many.bin -w '%{http_code}' -H 'Range: bytes=0-1,5-6' "$BASE/v2/stories/blobs/$LAYER")
[ "$code" = 200 ] && cmp many.bin "$FIX" || fail "several ranges are not answered whole: $code"
head=$(curl "${C[@]}" -I "$BASE/v2/stories/blobs/$LAYER" | tr -d '\r')
echo "$head" | qgrep -i "^content-length: $SIZE" || fail "HEAD blob: $head"
echo "$head" | qgrep -i "^docker-content-digest: $LAYER" || fail "HEAD blob digest: $head"
ok "blobs: GET is the file, Range (A-B, -N, A-) the right bytes, 416 past the end or malformed, several ranges whole, HEAD its length"

# ---- what is refused ----
code() { curl "${C[@]}" --path-as-is -o /dev/null -w '%{http_code}' "$BASE$1"; }
[ "$(code "/v2/../../etc/passwd")" = 404 ] || fail "../ outside /v2/"
[ "$(code "/v2/stories/blobs/../../../airlock.db")" = 404 ] || fail "../ in a blob"
[ "$(code "/v2/../stories/manifests/1.0")" = 404 ] || fail "../ in a name"
[ "$(code "/v2/stories/blobs/sha256:../../index.json")" = 404 ] || fail "a digest with ../"
[ "$(code "/v2/stories/blobs/sha256:..%2F..%2Findex.json")" = 404 ] || fail "a digest with %2F"
[ "$(code "/v2/stories/blobs/sha256:$(printf 'z%.0s' $(seq 64))")" = 400 ] || fail "a malformed digest"
[ "$(code "/v2/stories/blobs/sha256:ABC")" = 400 ] || fail "a short digest"
[ "$(code "/v2/stories/blobs/sha256:$(printf 0%.0s $(seq 64))")" = 404 ] || fail "an unknown digest"
[ "$(code "/v2/stories/manifests/2.0")" = 404 ] || fail "an unknown tag"
[ "$(code "/v2/nosuch/manifests/1.0")" = 404 ] || fail "an unknown repository"
[ "$(code "/v2/stories/manifests/bad:tag")" = 400 ] || fail "a malformed tag"
OLAYER=$(curl "${C[@]}" "$BASE/v2/other/manifests/1.0" | json_get 'd["layers"][0]["digest"]')
[ "$OLAYER" != "$LAYER" ] || fail "the other model has the same layer"
[ "$(code "/v2/other/blobs/$OLAYER")" = 200 ] || fail "other's blob under other"
[ "$(code "/v2/stories/blobs/$OLAYER")" = 404 ] || fail "another model's blob under stories"
[ "$(code "/v2/stories/manifests/$(printf 'a%.0s' $(seq 600))")" = 414 ] || fail "an over-long URL"
ok "refused: ../ (404, nothing outside the store), malformed digests and tags (400), unknown ones (404), another model's blob, an over-long URL (414)"

# ---- store B pulls from A ----
export AIRLOCK_HOME="$T/site-b"
airlock init >/dev/null
airlock trust add site --minisign site.pub >/dev/null
expect_status 5 airlock pull --plain-http "$HP/stories:1.0"
ok "pull without credentials is refused"
out=$(printf '%s\n' "$PULL" | airlock pull --plain-http --user mirror "$HP/stories:1.0" 2>&1) \
    || fail "pull from the mirror: $out"
echo "$out" | qgrep "pulled stories:1.0  $MAN" || fail "pull: $out"
[ "$(airlock ls --json | json_get 'd[0]["manifest"]')" = "$MAN" ] || fail "another manifest digest: $(airlock ls --json)"
airlock show stories:1.0 | qgrep "docker://$HP/stories@$MAN" || fail "show does not say where it came from"
airlock log --json | json_get '[e["kind"] for e in d][-1]' | qgrep ingest || fail "no ingest event"
airlock fsck >/dev/null || fail "fsck after pull"
ok "store B pulls from A's mirror: the same manifest digest, the signature proven, show names the mirror"
export AIRLOCK_HOME="$T/site-c"
airlock init >/dev/null
out=$(printf '%s\n' "$PULL" | airlock pull --plain-http --user mirror "$HP/stories:1.0" 2>&1) \
    && fail "a store that does not trust the key pulled: $out"
airlock ls --json | json_get 'len(d)' | qgrep '^0$' || fail "the refused pull left a version"
ok "a store that does not trust A's key refuses the pull (the signature is really checked)"

# ---- skopeo copy from the mirror ----
skopeo copy -q --src-tls-verify=false --src-creds "mirror:$PULL" "docker://$HP/stories:1.0" "oci:$T/oc:x" \
    >/dev/null 2>skopeo.err || fail "skopeo copy: $(cat skopeo.err)"
[ -f "$T/oc/blobs/sha256/${MAN#sha256:}" ] || fail "skopeo copy did not keep the manifest"
cmp "$T/oc/blobs/sha256/${LAYER#sha256:}" "$FIX" || fail "skopeo copied other bytes"
skopeo copy -q --src-tls-verify=false "docker://$HP/stories:1.0" "oci:$T/oc2:x" >/dev/null 2>&1 \
    && fail "skopeo copied without credentials"
skopeo copy -q --src-tls-verify=false --src-creds "x:$CHAT" "docker://$HP/stories:1.0" "oci:$T/oc3:x" \
    >/dev/null 2>&1 && fail "skopeo copied with a chat key"
ok "skopeo copy docker://... oci:DIR from the mirror (same manifest, same bytes); refused without a pull key"

# ---- the audit log ----
export AIRLOCK_HOME="$SITE_A"
serve_stop
airlock audit tail -n 1000 >audit.jsonl
python3 - audit.jsonl <<'PY' || fail "audit"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
reg = [r for r in recs if r.get("route", "").startswith("/v2/")]
assert len(reg) >= 40, len(reg)
st = {r["status"] for r in reg}
assert {200, 206, 401, 403, 404, 416}.issubset(st), st
assert any(r["caller"] == "mirror" and r["status"] == 200 for r in reg)
assert any(r["caller"] == "chatter" and r["status"] == 403 for r in reg)
print(f"ok - {len(reg)} /v2/ requests in the audit log")
PY
ok "every /v2/ request is in the audit log, with its caller and status"

export AIRLOCK_HOME="$T/site-b"
serve_start stories --port 0 --parallel 1
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden after the mirror pull: $BODY"
serve_stop
export AIRLOCK_HOME="$SITE_A"
ok "the version pulled from the mirror gives the golden completion"

# ---- unsigned: --registry without a key serves the stored manifests as they are ----
STORED=$(airlock ls --json | json_get '[v["manifest"] for v in d if v["name"] == "stories"][0]')
serve_start --port 0 --registry
HP=${BASE#http://}
hdr=$(curl "${C[@]}" -I "$BASE/v2/stories/manifests/1.0" | tr -d '\r')
echo "$hdr" | qgrep -i "^docker-content-digest: $STORED" || fail "unsigned: not the stored manifest: $hdr"
curl "${C[@]}" "$BASE/v2/stories/referrers/$STORED" | json_get 'len(d["manifests"])' | qgrep '^0$' \
    || fail "unsigned: referrers listed"
[ "$(code "/v2/stories/manifests/sha256-${STORED#sha256:}")" = 404 ] || fail "unsigned: a fallback tag"
export AIRLOCK_HOME="$T/site-d"
airlock init >/dev/null
out=$(printf '%s\n' "$PULL" | airlock pull --plain-http --user mirror "$HP/stories:1.0" 2>&1) \
    && fail "an unsigned pull without --allow-unsigned: $out"
echo "$out" | qgrep "not signed" || fail "unsigned refusal: $out"
out=$(printf '%s\n' "$PULL" | airlock pull --plain-http --user mirror "$HP/stories:1.0" --allow-unsigned \
    --as stories:1.0 2>&1) || fail "pull --allow-unsigned: $out"
airlock show stories:1.0 | qgrep stories260K.gguf || fail "unsigned pull lost the file: $(airlock show stories:1.0)"
export AIRLOCK_HOME="$SITE_A"
serve_stop
ok "without --registry-sign: the stored manifest, no referrers; pullers need --allow-unsigned"

# ---- over TLS from a test CA ----
reg_ca
serve_start --port 0 --registry --registry-sign site.key --tls-cert "$REG_CERT" --tls-key "$REG_KEY"
HP=${BASE#https://}
export AIRLOCK_HOME="$T/site-e"
airlock init >/dev/null
airlock trust add site --minisign site.pub >/dev/null
out=$(printf '%s\n' "$PULL" | airlock pull --user mirror "$HP/stories:1.0" 2>&1) \
    && fail "pull over TLS without the CA: $out"
out=$(printf '%s\n' "$PULL" | airlock pull --ca-file "$REG_CA" --user mirror "$HP/stories:1.0" 2>&1) \
    || fail "pull over TLS: $out"
echo "$out" | qgrep "pulled stories:1.0  $MAN" || fail "pull over TLS: $out"
skopeo copy -q --src-cert-dir "$REG_CERT_DIR" --src-creds "mirror:$PULL" "docker://$HP/stories:1.0" \
    "oci:$T/oc4:x" >/dev/null 2>skopeo.err || fail "skopeo copy over TLS: $(cat skopeo.err)"
[ -f "$T/oc4/blobs/sha256/${MAN#sha256:}" ] || fail "skopeo copy over TLS: another manifest"
export AIRLOCK_HOME="$SITE_A"
serve_stop
ok "over TLS from a test CA: pull --ca-file (refused without it) and skopeo copy --src-cert-dir"
