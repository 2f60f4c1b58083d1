#!/usr/bin/env bash
# test_registry.sh: push and pull through Debian's real docker-registry
# (distribution 2.8: no referrers API, so the sha256-<hex> fallback tag) and
# real skopeo. Round trip: add the fixture, push --sign, skopeo inspect --raw
# and skopeo copy read it, pull into a second empty store gives the same
# manifest digest and the golden completion. Then TLS from a test CA with
# basic auth (--ca-file, --user with the password on stdin, auth.json) and
# chunked PATCH uploads; unsigned push and pull --allow-unsigned; a Docker
# Model Runner artifact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
. "$(dirname "$0")/registry_lib.sh"
reg_need_tools
cd "$T"
FIX=$(fixture)
SITE_A="$T/home"
SITE_B="$T/site-b"

airlock add stories:1.0 "$FIX" >/dev/null
airlock key gen -o build --no-password >/dev/null
expect_status 0 airlock push --help
expect_status 0 airlock pull --help

# ---- plain HTTP ----
reg_start plain
REG_PLAIN=$REG
expect_status 0 airlock push stories:1.0 "$REG/models/stories:1.0" --plain-http --sign build.key --json
MAN=$(printf '%s' "$OUT" | grep '^{' | json_get 'd["manifest"]')
[ "$(printf '%s' "$OUT" | grep '^{' | json_get 'd["referrers"]')" = tag ] || fail "referrers: $OUT"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG/models/stories:1.0") || fail "skopeo inspect --raw"
[ "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" = "$MAN" ] || fail "skopeo sees another manifest"
printf '%s' "$raw" | json_get 'd["artifactType"]' | qgrep 'application/vnd.cncf.model.manifest.v1+json' \
    || fail "artifactType: $raw"
idx=$(skopeo inspect --raw --tls-verify=false "docker://$REG/models/stories:sha256-${MAN#sha256:}") \
    || fail "no fallback tag"
printf '%s' "$idx" | json_get 'd["manifests"][0]["artifactType"]' | qgrep 'application/vnd.airlock.signatures' \
    || fail "fallback index: $idx"
ok "push --sign: skopeo inspect --raw reads the manifest; the signatures are listed under sha256-<hex>"
skopeo copy -q --src-tls-verify=false "docker://$REG/models/stories:1.0" "oci:$T/ocicopy:x" >/dev/null 2>&1 \
    || fail "skopeo copy docker:// oci: failed"
[ -f "$T/ocicopy/blobs/sha256/${MAN#sha256:}" ] || fail "skopeo copy did not keep the manifest"
ok "skopeo copy docker://... oci:DIR copies it (same manifest digest)"

# Pushing again sends nothing new.
expect_status 0 airlock push stories:1.0 "$REG/models/stories:1.0" --plain-http --sign build.key --json
[ "$(printf '%s' "$OUT" | grep '^{' | json_get 'd["blobs_sent"]')" = 0 ] || fail "second push sent blobs: $OUT"
ok "a second push skips every blob the registry has (HEAD)"

# ---- pull into a second, empty store ----
export AIRLOCK_HOME="$SITE_B"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null
expect_status 0 airlock pull --plain-http "$REG/models/stories:1.0"
echo "$OUT" | qgrep "pulled stories:1.0  $MAN" || fail "pull: $OUT"
[ "$(airlock ls --json | json_get 'd[0]["manifest"]')" = "$MAN" ] \
    || fail "the pulled version has another manifest digest: $(airlock ls --json)"
airlock show stories:1.0 | qgrep "docker://$REG/models/stories@$MAN" || fail "show does not say where it came from"
airlock fsck >/dev/null || fail "fsck after pull"
ok "pull into an empty store: the same manifest digest; show names the registry"
AIRLOCK_HOME="$T/site-d" airlock init >/dev/null
AIRLOCK_HOME="$T/site-d" airlock trust add builder --minisign build.pub >/dev/null
AIRLOCK_HOME="$T/site-d" expect_status 0 airlock pull --plain-http "$REG/models/stories@$MAN" --json
printf '%s' "$OUT" | grep '^{' | json_get 'd["version"]["manifest"]' | qgrep "$MAN" || fail "pull by digest: $OUT"
ok "pull by digest"
serve_start stories --port 0 --parallel 1
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden after pull: $BODY"
serve_stop
ok "the pulled version gives the golden completion"

# ---- unsigned push; pull --allow-unsigned ----
export AIRLOCK_HOME="$SITE_A"
expect_status 0 airlock push stories:1.0 "$REG/models/unsigned:1.0" --plain-http
echo "$OUT" | qgrep UNSIGNED || fail "unsigned push not said: $OUT"
export AIRLOCK_HOME="$SITE_B"
expect_status 0 airlock pull --plain-http "$REG/models/unsigned:1.0" --allow-unsigned --as loose:1.0
echo "$OUT" | qgrep "overrides  unsigned" || fail "override not shown: $OUT"
airlock log --json | json_get '[e["kind"] for e in d][-2:]' | qgrep "\['ingest', 'ingest-override'\]" \
    || fail "override not recorded"
airlock show loose:1.0 | qgrep stories260K.gguf || fail "unsigned pull lost the file name"
ok "unsigned: pulled only with --allow-unsigned, recorded as an override"

# ---- TLS from a test CA, basic auth, chunked uploads ----
reg_ca
reg_start secure tls auth alice s3cret-pw
export AIRLOCK_HOME="$SITE_A"
expect_status 7 airlock push stories:1.0 "$REG/models/stories:1.0" --sign build.key
ok "TLS without the site CA is refused"
expect_status 5 airlock push stories:1.0 "$REG/models/stories:1.0" --sign build.key --ca-file "$REG_CA"
echo "$OUT" | qgrep "credentials" || fail "no credentials hint: $OUT"
ok "no credentials: refused, naming --user and skopeo login"
out=$(echo 's3cret-pw' | AIRLOCK_REGISTRY_CHUNK_SIZE=65536 airlock push stories:1.0 "$REG/models/stories:1.0" \
      --sign build.key --ca-file "$REG_CA" --user alice --json) || fail "push over TLS with --user: $out"
MAN2=$(printf '%s' "$out" | json_get 'd["manifest"]')
[ "$MAN2" = "$MAN" ] || fail "the same version pushed twice has two manifests"
ok "push over TLS with basic auth (--user, password on stdin), in 64 KiB PATCH chunks"
skopeo inspect --raw --cert-dir "$REG_CERT_DIR" --creds alice:s3cret-pw "docker://$REG/models/stories:1.0" \
    >/dev/null || fail "skopeo cannot read the TLS registry"
mkdir -p "$T/xdg/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$(printf 'alice:s3cret-pw' | base64)" >"$T/xdg/containers/auth.json"
export AIRLOCK_HOME="$T/site-c"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null
XDG_RUNTIME_DIR="$T/xdg" expect_status 0 airlock pull "$REG/models/stories:1.0" --ca-file "$REG_CA"
echo "$OUT" | qgrep "pulled stories:1.0  $MAN" || fail "pull over TLS: $OUT"
ok "pull over TLS with credentials from \${XDG_RUNTIME_DIR}/containers/auth.json"

# ---- a Docker Model Runner artifact (application/vnd.docker.ai.gguf.v3), put by hand ----
put_blob() { # FILE: a monolithic upload to the plain registry
    local d; d="sha256:$(sha256sum "$1" | cut -d' ' -f1)"
    local loc; loc=$(curl -sf -X POST -D - -o /dev/null "http://$REG_PLAIN/v2/ai/stories/blobs/uploads/" \
        | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    case $loc in http*) ;; *) loc="http://$REG_PLAIN$loc" ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" \
        "$loc&digest=$d" >/dev/null || fail "blob upload of $1"
    echo "$d"
}
printf '{"config":{"format":"gguf","quantization":"F32","parameters":"292.8K"}}' >dmr-config.json
cd_=$(put_blob dmr-config.json)
gd=$(put_blob "$FIX")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.docker.ai.model.config.v0.1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.docker.ai.gguf.v3","digest":"%s","size":%s}]}' \
    "$cd_" "$(stat -c %s dmr-config.json)" "$gd" "$(stat -c %s "$FIX")" >dmr.json
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @dmr.json \
    "http://$REG_PLAIN/v2/ai/stories/manifests/latest" >/dev/null || fail "cannot put the DMR manifest"
export AIRLOCK_HOME="$T/site-dmr"
airlock init >/dev/null
expect_status 5 airlock pull --plain-http "$REG_PLAIN/ai/stories"
expect_status 0 airlock pull --plain-http "$REG_PLAIN/ai/stories" --allow-unsigned --as dmr:1
airlock show dmr:1 | qgrep model.gguf || fail "the DMR GGUF layer is not model.gguf"
airlock show dmr:1 | qgrep "docker://$REG_PLAIN/ai/stories@" || fail "show does not say where it came from"
ok "a Docker Model Runner artifact pulls with --allow-unsigned (model.gguf, recorded)"
