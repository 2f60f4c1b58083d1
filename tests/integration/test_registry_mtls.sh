#!/usr/bin/env bash
# test_registry_mtls.sh: `serve --registry` under mutual TLS (--tls-client-ca)
# and `airlock pull --cert FILE --key FILE` (curl's convention). Store A
# ingests a bundle signed by its build key and serves it; store B (trusting
# the build key) pulls: without a client certificate refused (nothing
# stored), with one from another CA refused, with the site's accepted (same
# manifest, the build key proven); skopeo copy --src-cert-dir with the same
# certificate works too; --key without --cert, --cert with --plain-http and
# an unreadable --cert are usage errors; the audit log has the 401s and 200s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
. "$(dirname "$0")/registry_lib.sh"
for t in skopeo curl openssl; do
    command -v $t >/dev/null || skip_test "$t missing (scripts/bootstrap.sh installs it)"
done
cd "$T"
FIX=$(fixture)
SITE_A="$T/home"

reg_ca
mkcert() { # name subject CA-prefix
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null \
        || fail "openssl: cannot make the key of $1"
    printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 -extfile "$1.ext" \
        -out "$1.pem" 2>/dev/null || fail "openssl: cannot sign $1"
}
cp "$T/ca/ca.pem" site-ca.pem && cp "$T/ca/ca.key" site-ca.key
mkcert pi "/CN=pi-07/O=airlock tests" site-ca
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout rogue-ca.key -out rogue-ca.pem \
    2>/dev/null || fail "openssl: cannot make the other CA"
mkcert rogue "/CN=mallory" rogue-ca

airlock key gen -o build --no-password >/dev/null
airlock pack stories:1.0 "$FIX" -o s.tar --sign build.key --seq 3 >/dev/null 2>&1 || fail "pack"
airlock trust add builder --minisign build.pub >/dev/null
expect_status 0 airlock ingest s.tar
MAN=$(airlock show stories:1.0 --json | json_get 'd["manifest"]')
PULL=$(airlock apikey create pis --scopes pull --json | json_get 'd["token"]')
serve_start --port 0 --registry --tls-cert "$REG_CERT" --tls-key "$REG_KEY" --tls-client-ca site-ca.pem
HP=${BASE#https://}

export AIRLOCK_HOME="$T/site-b"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null
pull() { printf '%s\n' "$PULL" | airlock pull --ca-file "$REG_CA" --user pis "$HP/stories:1.0" "$@" 2>&1; }
nothing_stored() { [ "$(airlock ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] \
    || fail "$1: something was stored"; }

out=$(pull) && fail "a pull without a client certificate succeeded: $out"
nothing_stored "no client certificate"
echo "$out" | qgrep "answered 401.*a valid client certificate is required; give one: --cert FILE --key FILE" \
    || fail "no client certificate: $out"
ok "pull without a client certificate: refused, nothing stored"
out=$(pull --cert rogue.pem --key rogue.key) && fail "a certificate from another CA was accepted: $out"
nothing_stored "another CA's certificate"
echo "$out" | qgrep "a valid client certificate is required" || fail "another CA's certificate: $out"
ok "pull with a certificate from another CA: refused, nothing stored"

out=$(pull --cert pi.pem --key pi.key) || fail "pull with the site's client certificate: $out"
[ "$(airlock show stories:1.0 --json | json_get 'd["manifest"]')" = "$MAN" ] || fail "another manifest: $out"
airlock show stories:1.0 | qgrep "$(airlock key show build.pub | awk '/^key id/ {print $3}')" \
    || fail "show does not name the build key"
ok "pull --cert/--key with the site's client certificate: the same manifest, the build key proven"

# The key inside the certificate's file, as curl --cert takes it.
cat pi.pem pi.key >pi-both.pem
export AIRLOCK_HOME="$T/site-c"
airlock init >/dev/null
airlock trust add builder --minisign build.pub >/dev/null
out=$(pull --cert pi-both.pem) || fail "pull with --cert holding the key too: $out"
ok "pull --cert FILE with the key in the same file"

# skopeo's convention (--src-cert-dir: *.cert, *.key, *.crt) reads the same mirror.
mkdir certs && cp pi.pem certs/client.cert && cp pi.key certs/client.key && cp "$REG_CA" certs/ca.crt
skopeo copy -q --src-cert-dir certs --src-creds "pis:$PULL" "docker://$HP/stories:1.0" "oci:$T/oc:x" \
    >/dev/null 2>skopeo.err || fail "skopeo copy with a client certificate: $(cat skopeo.err)"
[ -f "$T/oc/blobs/sha256/${MAN#sha256:}" ] || fail "skopeo copy: another manifest"
skopeo copy -q --src-cert-dir "$REG_CERT_DIR" --src-creds "pis:$PULL" "docker://$HP/stories:1.0" "oci:$T/oc2:x" \
    >/dev/null 2>&1 && fail "skopeo copy without a client certificate succeeded"
ok "skopeo copy --src-cert-dir: with the certificate it copies, without it is refused"

expect_status 2 airlock pull --key pi.key --ca-file "$REG_CA" "$HP/stories:1.0"
echo "$OUT" | qgrep -- "--key needs --cert" || fail "--key alone: $OUT"
expect_status 2 airlock pull --cert pi.pem --plain-http "$HP/stories:1.0"
echo "$OUT" | qgrep -- "cannot go with --plain-http" || fail "--cert --plain-http: $OUT"
out=$(pull --cert "$T/missing.pem") && fail "a missing certificate file: $out"
echo "$out" | qgrep "cannot read the client certificate file" || fail "missing --cert: $out"
ok "--key without --cert, --cert with --plain-http, an unreadable --cert: refused with a message"

export AIRLOCK_HOME="$SITE_A"
serve_stop
airlock audit tail -n 1000 >audit.jsonl
python3 - audit.jsonl <<'PY' || fail "audit"
import json, sys
reg = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
reg = [r for r in reg if r.get("route", "").startswith("/v2/")]
st = {r["status"] for r in reg}
assert 401 in st and 200 in st, st
PY
ok "the mirror's audit log has the refused (401) and served (200) requests"
