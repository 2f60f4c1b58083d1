#!/usr/bin/env bash
# make_seeds.sh: regenerates the committed seeds that are derived from
# airlock itself (bundles, their checksums.txt and manifest) and the GGUF
# seeds. The signature seeds of fuzz_minisign_sig and fuzz_pgp and the JSON,
# audit and document seeds are written by hand (docs/internals/fuzz.md).
#
#   tests/fuzz/make_seeds.sh path/to/airlock
set -euo pipefail
airlock=${1:?usage: make_seeds.sh path/to/airlock}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 "$here/make_gguf_seeds.py" "$corpus/fuzz_gguf"

# A native bundle of a tiny GGUF, signed with the fuzz test key, which
# fuzz_bundle_tar's store trusts. Fixed dates: the same bytes every time.
cp "$corpus/fuzz_gguf/llama-f32" "$tmp/model.gguf"
export AIRLOCK_HOME=$tmp/home AIRLOCK_NO_PROGRESS=1
out=$corpus/fuzz_bundle_tar
mkdir -p "$out"
"$airlock" pack fuzz:seed "$tmp/model.gguf" -o "$tmp/native.tar" \
    --sign "$here/fuzz-test.key" --seq 7 --created 2026-01-01T00:00:00Z --expires 2099-01-01 >/dev/null
"$airlock" pack fuzz:seed "$tmp/model.gguf" -o "$out/native.tar.zst" --zstd \
    --sign "$here/fuzz-test.key" --seq 8 --created 2026-01-01T00:00:00Z >/dev/null
gzip -9n <"$tmp/native.tar" >"$out/native.tar.gz"
# The uncompressed seed without tar's padding to a 10 KiB record: the end
# marker (two zero blocks) is enough for libarchive, and seeds stay small.
python3 - "$tmp/native.tar" "$out/native.tar" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read().rstrip(b'\0')
d += b'\0' * ((-len(d)) % 512) + b'\0' * 1024
open(sys.argv[2], 'wb').write(d)
PY

# A plain bundle as an operator makes one by hand: files, checksums.txt, signature.
mkdir "$tmp/plain" && cp "$tmp/model.gguf" "$tmp/plain/"
(cd "$tmp/plain" && sha256sum model.gguf >checksums.txt &&
    minisign -S -s "$here/fuzz-test.key" -m checksums.txt -x checksums.txt.minisig -t seed >/dev/null &&
    tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner -cf - \
        checksums.txt checksums.txt.minisig model.gguf | gzip -9n >"$out/plain.tar.gz")

# checksums.txt and the manifest of the native bundle.
mkdir "$tmp/x" && tar -xf "$tmp/native.tar" -C "$tmp/x"
mkdir -p "$corpus/fuzz_checksums" "$corpus/fuzz_oci_manifest"
install -m 644 "$tmp/x/checksums.txt" "$corpus/fuzz_checksums/native.txt"
install -m 644 "$tmp/plain/checksums.txt" "$corpus/fuzz_checksums/plain.txt"
man=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$tmp/x/index.json")
install -m 644 "$tmp/x/blobs/sha256/$man" "$corpus/fuzz_oci_manifest/native.json"
