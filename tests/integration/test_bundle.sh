#!/usr/bin/env bash
# test_bundle.sh: bundles end to end: determinism, interop with sha256sum,
# minisign and gpg both ways, the operator's hand-made GPG plain bundle,
# export between two air-gapped sites, verify changing nothing.
. "$(dirname "$0")/lib.sh"
for t in minisign gpg gpgconf sha256sum zstd; do
    command -v $t >/dev/null || skip_test "$t missing"
done
cd "$T"
BUILD_HOME="$T/build-home"
SITE_A="$T/home"
SITE_B="$T/site-b"
GNUPGHOME=$(mktemp -d /tmp/algpg.XXXXXX)
export GNUPGHOME
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true
    for h in "$SITE_A" "$SITE_B"; do
        [ -d "$h/trust/gnupg" ] && gpgconf --homedir "$h/trust/gnupg" --kill all 2>/dev/null || true
    done
    rm -rf "$GNUPGHOME" "$T"
}
trap cleanup EXIT

"$AL_BUILD/airlock-ggufgen" --out model.gguf --layers 1 --embd 32 --ff 64 --heads 2 --kv-heads 1 --ctx 64 \
    --seed 3 --name demo >/dev/null 2>&1 || fail "cannot generate a model"
echo '{"tokenizer": 1}' >tokenizer.json
mkdir prompts bench
echo 'Say hello.' >prompts/hello.txt
echo '{"q": "2+2", "a": "4"}' >bench/arith.jsonl
echo '{"origin": "test", "license": "MIT", "date": "2026-01-01", "quantization": "F32"}' >card.json

# ---- build host: key, pack, determinism ----
export AIRLOCK_HOME="$BUILD_HOME"
airlock key gen -o build --no-password >/dev/null
expect_status 0 airlock key show build.pub
keyid=$(airlock key show build.pub | awk '/key id/ {print $3}')
expect_status 0 airlock pack demo:1.0 model.gguf tokenizer.json -o b1.tar --sign build.key --seq 7 \
    --prompts prompts --bench bench --card card.json --expires 2999-01-01
airlock pack demo:1.0 model.gguf tokenizer.json -o b2.tar --sign build.key --seq 7 \
    --prompts prompts --bench bench --card card.json --expires 2999-01-01 >/dev/null
cmp b1.tar b2.tar || fail "packing twice gave different bytes"
airlock pack demo:1.0 model.gguf tokenizer.json -o z1.tar.zst --zstd --sign build.key --seq 7 >/dev/null
airlock pack demo:1.0 model.gguf tokenizer.json -o z2.tar.zst --zstd --sign build.key --seq 7 >/dev/null
cmp z1.tar.zst z2.tar.zst || fail "zstd packing twice gave different bytes"
zstd -tq z1.tar.zst || fail "zstd cannot read the zstd bundle"
ok "pack is deterministic (tar and tar.zst)"
# A date that is not in the calendar is refused, not rolled over to March.
expect_status 4 airlock pack demo:1.0 model.gguf -o bad.tar --sign build.key --seq 7 --expires 2031-02-29
echo "$OUT" | grep -q "'2031-02-29' is not a date of the calendar" || fail "29 February 2031: $OUT"
[ ! -e bad.tar ] || fail "a refused pack left bad.tar"
ok "pack refuses a date that is not in the calendar"

# ---- standard tools verify airlock's bundle ----
mkdir x && tar xf b1.tar -C x
(cd x && sha256sum -c --quiet checksums.txt) || fail "sha256sum -c fails"
minisign -Vm x/checksums.txt -p build.pub >/dev/null || fail "minisign -V fails"
[ "$(head -1 <(tar tf b1.tar))" = checksums.txt ] || fail "checksums.txt is not first"
ok "tar xf + sha256sum -c + minisign -V accept the bundle"

# ---- the air-gapped side: trust, verify (changes nothing), ingest ----
export AIRLOCK_HOME="$SITE_A"
airlock init >/dev/null
expect_status 6 airlock verify b1.tar
airlock trust add build --minisign build.pub >/dev/null
before=$(airlock log | wc -l)
expect_status 0 airlock verify b1.tar
echo "$OUT" | qgrep "VALID" || fail "verify does not say VALID"
echo "$OUT" | qgrep "$keyid" || fail "verify does not name the signer"
[ "$(airlock log | wc -l)" = "$before" ] || fail "verify wrote an event"
[ -z "$(airlock ls --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d if d else "")')" ] || \
    [ "$(airlock ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] || fail "verify added something"
expect_status 0 airlock ingest b1.tar
expect_status 0 airlock show demo:1.0
for w in "$keyid" prompts/hello.txt bench/arith.jsonl 'sequence   7' 'bundle     sha256:' 'operator' 'key_id=' "sequence  7"; do
    echo "$OUT" | qgrep -F "$w" || fail "show lacks '$w': $OUT"
done
airlock log --verify >/dev/null
ok "trust add, verify, ingest; show prints the provenance"

# ---- a signature made by the real minisign is accepted ----
minisign -G -W -p ms.pub -s ms.key >/dev/null
mkdir y && tar xf b1.tar -C y
rm y/checksums.txt.minisig
minisign -S -s ms.key -m y/checksums.txt >/dev/null </dev/null
airlock trust add ms --minisign ms.pub >/dev/null
(cd y && tar cf ../ms.tar checksums.txt checksums.txt.minisig oci-layout index.json blobs)
expect_status 0 airlock ingest ms.tar --allow-downgrade
echo "$OUT" | qgrep "'ms'" || fail "minisign's signature not the one accepted: $OUT"
ok "a bundle signed by the real minisign -S is accepted"

# ---- the operator's plain bundle, made exactly by the issue's commands ----
gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Build Host <build@example.org>' ed25519 sign never 2>/dev/null
fpr=$(gpg --with-colons --list-keys build@example.org | awk -F: '/^fpr/ {print $10; exit}')
gpg --armor --export "$fpr" >build.asc
mkdir plain && cp model.gguf plain/foo.gguf && cp tokenizer.json plain/
(
    cd plain
    sha256sum foo.gguf tokenizer.json > checksums.txt; gpg --detach-sign --armor checksums.txt 2>/dev/null; tar czf foo-model-bundle.tar.gz foo.gguf tokenizer.json checksums.txt checksums.txt.asc
)
expect_status 6 airlock ingest plain/foo-model-bundle.tar.gz --as foo:1.0
airlock trust add ops --gpg build.asc >/dev/null
expect_status 2 airlock ingest plain/foo-model-bundle.tar.gz
expect_status 0 airlock verify plain/foo-model-bundle.tar.gz --as foo:1.0
expect_status 0 airlock ingest plain/foo-model-bundle.tar.gz --as foo:1.0
expect_status 0 airlock show foo:1.0
echo "$OUT" | qgrep "$fpr" || fail "show lacks the gpg fingerprint $fpr: $OUT"
[ "$(sha256sum <"$(airlock path foo:1.0)")" = "$(sha256sum <model.gguf)" ] || fail "stored weights differ"
ok "the hand-made GPG plain bundle ingests with --as foo:1.0; show has fingerprint $fpr"

# a tampered plain bundle signed by gpg is refused
mkdir plain2 && cp plain/foo.gguf plain/tokenizer.json plain/checksums.txt plain/checksums.txt.asc plain2/
sed -i '1s/^./0/; 1s/^00/11/' plain2/checksums.txt
(cd plain2 && tar czf ../bad-gpg.tar.gz foo.gguf tokenizer.json checksums.txt checksums.txt.asc)
expect_status 5 airlock ingest bad-gpg.tar.gz --as foo:2.0
ok "a changed checksums.txt under a gpg signature is refused"

# most operators' keys sign with a subkey: trust names the primary key
gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Release <release@example.org>' ed25519 cert never 2>/dev/null
rfpr=$(gpg --with-colons --list-keys release@example.org | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --passphrase '' --pinentry-mode loopback --quick-add-key "$rfpr" ed25519 sign never 2>/dev/null
sfpr=$(gpg --with-colons --list-keys release@example.org | awk -F: '/^fpr/ {n++} /^fpr/ && n == 2 {print $10; exit}')
[ -n "$sfpr" ] && [ "$sfpr" != "$rfpr" ] || fail "no signing subkey was made"
gpg --armor --export "$rfpr" >release.asc
mkdir plain3 && cp plain/foo.gguf plain/tokenizer.json plain/checksums.txt plain3/
(cd plain3 && gpg --batch --local-user "$rfpr" --detach-sign --armor checksums.txt 2>/dev/null &&
    tar czf ../sub.tar.gz foo.gguf tokenizer.json checksums.txt checksums.txt.asc)
gpg --batch --list-packets plain3/checksums.txt.asc 2>/dev/null | qgrep -i "${sfpr: -16}" || fail "gpg did not sign with the subkey"
expect_status 6 airlock verify sub.tar.gz --as foo:4.0
airlock trust add release --gpg release.asc >/dev/null
expect_status 0 airlock ingest sub.tar.gz --as foo:4.0
expect_status 0 airlock show foo:4.0
echo "$OUT" | qgrep "$rfpr" || fail "show lacks the primary key $rfpr of subkey $sfpr: $OUT"
ok "a signature by a signing subkey counts for its trusted primary key"

# revoking the gpg key refuses its old bundle
airlock trust revoke ops >/dev/null
expect_status 6 airlock verify plain/foo-model-bundle.tar.gz --as foo:3.0
echo "$OUT" | qgrep revoked || fail "revocation not named: $OUT"
ok "a revoked gpg key is refused even for an old bundle"

# ---- export from site A, ingest at site B ----
airlock key gen -o site-a --no-password >/dev/null
expect_status 0 airlock export demo:1.0 -o exported.tar --sign site-a.key
export AIRLOCK_HOME="$SITE_B"
airlock init >/dev/null
airlock trust add site-a --minisign site-a.pub --models 'demo*' >/dev/null
expect_status 0 airlock ingest exported.tar
expect_status 0 airlock show demo:1.0
echo "$OUT" | qgrep prompts/hello.txt || fail "export lost files"
ok "export re-packs a stored version; a second site ingests it"

# ---- help everywhere ----
for c in key trust pack export verify ingest; do
    expect_status 0 airlock $c --help
done
ok "every command has --help"
