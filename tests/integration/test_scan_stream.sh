#!/usr/bin/env bash
# test_scan_stream.sh: ingest checks a GGUF's tensor values as it writes the
# file (gguf.h, al_gguf_value_stream), so the scan gate does not read the
# written file a second time: with a full bundle, and with a delta whose
# result is rebuilt from the base. Counted with strace: the bytes read back
# from the store's tmp/ files, where the written files wait for the commit.
# The verdict is the same as a read of the file: a NaN planted in a bundle is
# still refused, named by tensor, with the store unchanged.
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
command -v strace >/dev/null || fail "strace missing (scripts/bootstrap.sh installs it)"
cd "$T"
gen() { "$AL_BUILD/airlock-ggufgen" --layers 2 --embd 256 --ff 512 --heads 2 --kv-heads 1 --ctx 64 --name demo \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf" "$@" >/dev/null 2>&1 || fail "cannot generate a model"; }
gen --out v1.gguf --seed 5
cp v1.gguf v2.gguf && python3 "$AL_SRC/tests/integration/gguf_edit.py" v2.gguf --first 1 >/dev/null
gen --out nan.gguf --seed 5 --type f16 --plant nan --plant-tensor blk.1.ffn_up.weight --plant-at 40
size=$(stat -c %s v1.gguf)

export AIRLOCK_HOME="$T/build"
airlock init >/dev/null
airlock key gen -o k --no-password >/dev/null
airlock add demo:1 v1.gguf >/dev/null 2>&1
airlock add demo:2 v2.gguf >/dev/null 2>&1
airlock pack demo:1 -o v1.tar --sign k.key --seq 1 >/dev/null 2>&1
airlock delta demo:1 demo:2 -o d12.tar --sign k.key --seq 2 >/dev/null 2>&1
airlock pack bad nan.gguf -o nan.tar --sign k.key --seq 1 --allow-dangerous >/dev/null 2>&1 \
    || fail "cannot pack the planted model"

export AIRLOCK_HOME="$T/site"
airlock init >/dev/null
airlock trust add k --minisign k.pub >/dev/null

# read_back TRACE: bytes read from files in the store's tmp/, by file, largest first.
read_back() {
    python3 - "$1" "$AIRLOCK_HOME/tmp/" <<'PY'
import collections, re, sys
by = collections.Counter()
for line in open(sys.argv[1]):
    m = re.search(r'\b(?:pread64|read)\(\d+<([^>]*)>.*\)\s+=\s+(\d+)$', line.rstrip())
    if m and m.group(1).startswith(sys.argv[2]):
        by[m.group(1)] += int(m.group(2))
print(sum(by.values()), " ".join(str(v) for _, v in by.most_common()))
PY
}
traced() { strace -f -y -qq -e trace=read,pread64 -o "$T/trace" "$AIRLOCK_BIN" "$@" >"$T/out" 2>&1; }

traced ingest v1.tar || fail "ingest of the full bundle: $(cat "$T/out")"
set -- $(read_back "$T/trace")
echo "full bundle: a ${size}-byte GGUF written, ${1} bytes read back from tmp/"
[ "$1" -lt $((size / 4)) ] || fail "the ingest read back $1 bytes of a $size-byte file: its values were read again"
ok "full bundle: the written GGUF is not read again ($1 of $size bytes, its header)"

patch=$(tar tvf d12.tar | awk '$6 ~ /^delta\// {print $3}')
traced ingest d12.tar || fail "ingest of the delta: $(cat "$T/out")"
set -- $(read_back "$T/trace")
echo "delta: patch $patch bytes, result $size bytes; read back from tmp/ by file: ${*:2}"
# What is read from tmp/ is the patch (apply reads it) and the result's header.
[ "$1" -lt $((patch + size / 4)) ] || fail "the delta ingest read back $1 bytes (patch $patch, result $size)"
airlock fsck >/dev/null || fail "fsck after the delta"
[ "$(sha256sum <"$(airlock path demo:2)")" = "$(sha256sum <v2.gguf)" ] || fail "the result differs from v2.gguf"
ok "delta: the rebuilt GGUF is not read again ($1 bytes read back: the patch and a header)"

snap() { (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json) >"$1"; }
snap before
expect_status 6 airlock ingest nan.tar
echo "$OUT" | qgrep "blk.1.ffn_up.weight" || fail "the refusal does not name the tensor: $OUT"
echo "$OUT" | qgrep -i "nan" || fail "the refusal does not say nan: $OUT"
snap after
cmp -s before after || fail "a refused ingest changed the store"
ok "a NaN in a bundle's GGUF is still refused from the streamed check, named by tensor; store unchanged"
