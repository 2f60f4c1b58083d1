#!/usr/bin/env bash
# bench/ingest.sh: ingest of a bundle holding a SIZE_MIB (default 2048) MiB
# weight file, side by side with what an operator does by hand on the same
# bundle (tar xf, sha256sum -c, gpg --verify, mv into place), with the bounds
# of the machine: cp of the same bytes and `openssl speed -evp sha256`.
# Reports seconds, MB/s, the ratio airlock/manual and airlock's max RSS.
#
# usage: bench/ingest.sh [BUILD_DIR]     (SIZE_MIB=512 for a quick run)
# Needs about 6x SIZE_MIB of free disk under TMPDIR. The page cache is warm
# for every step alike (each reads a bundle just written or just read).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/$build/airlock"
size=${SIZE_MIB:-2048}
work=$(mktemp -d "${TMPDIR:-/tmp}/al-bench.XXXXXX")
export GNUPGHOME
GNUPGHOME=$(mktemp -d /tmp/albg.XXXXXX)
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true
    [ -d "$work/home/trust/gnupg" ] && gpgconf --homedir "$work/home/trust/gnupg" --kill all 2>/dev/null || true
    rm -rf "$work" "$GNUPGHOME"
}
trap cleanup EXIT
export AIRLOCK_NO_PROGRESS=1
cd "$work"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
mbps() { python3 -c "print(f'{$size * 1.048576 / ($2 - $1):.0f}')"; }

echo "== preparing a $size MiB weight file and bundles"
head -c "$((size << 20))" /dev/urandom >model.gguf
echo '{"tokenizer": 1}' >tokenizer.json
gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Bench <bench@example.org>' ed25519 sign never 2>/dev/null
gpg --armor --export bench@example.org >bench.asc
mkdir plain && mv model.gguf tokenizer.json plain/
(cd plain && sha256sum model.gguf tokenizer.json >checksums.txt && gpg --batch --detach-sign --armor checksums.txt 2>/dev/null &&
    tar cf ../plain.tar model.gguf tokenizer.json checksums.txt checksums.txt.asc)
"$bin" key gen -o k --no-password >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$bin" pack bench:1 plain/model.gguf plain/tokenizer.json -o native.tar --sign k.key --seq 1 >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$bin" pack bench:1 plain/model.gguf plain/tokenizer.json -o native.tar.zst --zstd --sign k.key --seq 1 >/dev/null
rm -rf plain

echo "== bounds"
t0=$(now); cp plain.tar copy.tmp; sync copy.tmp; t1=$(now); rm copy.tmp
echo "cp + sync of the bundle:           $(secs "$t0" "$t1") s  $(mbps "$t0" "$t1") MB/s"
openssl speed -evp sha256 -bytes 1048576 -seconds 2 2>/dev/null | awk '/^sha256/ {print "openssl speed -evp sha256 (1 MiB): " $2 " (k bytes/s) = " int($2/1000) " MB/s"}'

echo "== manual: tar xf, sha256sum -c, gpg --verify, mv into place (plain.tar)"
mkdir -p manual/store
t0=$(now)
mkdir manual/x && tar xf plain.tar -C manual/x
(cd manual/x && sha256sum -c --quiet checksums.txt && gpg --batch --verify checksums.txt.asc checksums.txt 2>/dev/null)
mv manual/x/model.gguf manual/x/tokenizer.json manual/store/ && sync manual/store/model.gguf
t1=$(now)
manual=$(secs "$t0" "$t1")
echo "manual:                            $manual s  $(mbps "$t0" "$t1") MB/s"
rm -rf manual

run_ingest() { # label bundle args...
    local label=$1 bundle=$2; shift 2
    rm -rf home
    export AIRLOCK_HOME="$work/home"
    "$bin" init >/dev/null
    "$bin" trust add k --minisign k.pub >/dev/null
    "$bin" trust add ops --gpg bench.asc >/dev/null
    t0=$(now)
    /usr/bin/time -v -o time.txt "$bin" ingest "$bundle" "$@" >/dev/null
    t1=$(now)
    rss=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' time.txt)
    printf '%-34s %s s  %s MB/s  max RSS %s KiB\n' "$label:" "$(secs "$t0" "$t1")" "$(mbps "$t0" "$t1")" "$rss"
    LAST=$(secs "$t0" "$t1")
}
echo "== airlock ingest"
run_ingest "airlock ingest plain.tar (gpg)" plain.tar --as bench:1
plain_t=$LAST
run_ingest "airlock ingest native.tar" native.tar
run_ingest "airlock ingest native.tar.zst" native.tar.zst
echo "== ratio airlock/manual on plain.tar: $(python3 -c "print(f'{$plain_t / $manual:.2f}')") (target <= 0.35)"
