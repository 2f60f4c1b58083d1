#!/usr/bin/env bash
# airlock scan: a hostile corpus made here by python3 (pickle.dumps of
# classes whose __reduce__ names os.system, builtins.exec, subprocess.Popen,
# protocols 0 to 5; making them runs nothing), a PyTorch-style zip, a
# safetensors file with overlapping tensors, a copy of /bin/true with its
# executable bit. Each gets its verdict, its finding and the exit status;
# --json is parsed; nothing the corpus names is run (a marker file proves it).
source "$(dirname "$0")/lib.sh"
C="$T/corpus"
mkdir -p "$C"
python3 - "$C" <<'PY'
import builtins, collections, json, os, pickle, struct, subprocess, sys, zipfile
out = sys.argv[1]
marker = os.path.join(out, 'RAN')
class OsSystem:
    def __reduce__(self): return (os.system, ('touch ' + marker,))
class Exec:
    def __reduce__(self): return (builtins.exec, ("open(%r, 'w')" % marker,))
class Popen:
    def __reduce__(self): return (subprocess.Popen, (['touch', marker],))
for p in range(6):
    for name, obj in (('os', OsSystem()), ('exec', Exec()), ('popen', Popen())):
        with open(os.path.join(out, '%s-p%d.pkl' % (name, p)), 'wb') as f:
            f.write(pickle.dumps(obj, protocol=p))
# The state dict of a tiny model, as plain data: ok.
with open(os.path.join(out, 'state.pt'), 'wb') as f:
    f.write(pickle.dumps(collections.OrderedDict(w=[1.0, 2.0], b=[0.5]), protocol=2))
# Truncated: a dangerous pickle cut before STOP.
d = pickle.dumps(OsSystem(), protocol=4)
with open(os.path.join(out, 'cut.pkl'), 'wb') as f:
    f.write(d[:len(d) // 2])
with zipfile.ZipFile(os.path.join(out, 'model.pth'), 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps(Popen(), protocol=2))
    z.writestr('archive/version', '3\n')
    z.writestr('archive/data/0', b'\0' * 16)
with zipfile.ZipFile(os.path.join(out, 'docs.zip'), 'w') as z:
    z.writestr('README', 'hello\n')
def safetensors(path, header, data_len):
    h = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b'\0' * data_len)
safetensors(os.path.join(out, 'overlap.safetensors'),
            {'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
             'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, 12)
safetensors(os.path.join(out, 'good.safetensors'),
            {'__metadata__': {'format': 'pt'},
             'a': {'dtype': 'F16', 'shape': [2, 2], 'data_offsets': [0, 8]}}, 8)
PY
cp /bin/true "$C/tool"
chmod 755 "$C/tool"

# Every pickle, every protocol: dangerous, named, exit 10.
for p in 0 1 2 3 4 5; do
    expect_status 10 airlock scan "$C/os-p$p.pkl"
    echo "$OUT" | qgrep -E "imports (os|posix)\.system: runs commands" || fail "os p$p: $OUT"
    echo "$OUT" | qgrep -E "REDUCE: calls (os|posix)\.system" || fail "os p$p call: $OUT"
    expect_status 10 airlock scan "$C/exec-p$p.pkl"
    echo "$OUT" | qgrep -E "imports (builtins|__builtin__)\.exec: evaluates code" || fail "exec p$p: $OUT"
    expect_status 10 airlock scan "$C/popen-p$p.pkl"
    echo "$OUT" | qgrep -E "imports (subprocess|commands)\.Popen: runs commands" || fail "popen p$p: $OUT"
done
[ "$p" -ge 4 ] && { echo "$OUT" | qgrep "STACK_GLOBAL" || fail "protocol 5 names STACK_GLOBAL: $OUT"; }
ok "pickles calling os.system, builtins.exec, subprocess.Popen: dangerous at protocols 0 to 5"

expect_status 0 airlock scan "$C/state.pt" "$C/good.safetensors"
echo "$OUT" | qgrep "state.pt: ok (pickle)" || fail "state dict: $OUT"
echo "$OUT" | qgrep "good.safetensors: ok (safetensors)" || fail "good safetensors: $OUT"
ok "a plain state dict and a sound safetensors file are ok"

expect_status 10 airlock scan "$C/cut.pkl"
echo "$OUT" | qgrep "malformed pickle: truncated" || fail "truncated: $OUT"
ok "a truncated pickle is dangerous"

expect_status 10 airlock scan "$C/model.pth"
echo "$OUT" | qgrep "model.pth: dangerous (pytorch-zip)" || fail "zip kind: $OUT"
echo "$OUT" | qgrep -E "member 'archive/data.pkl', offset [0-9]+, GLOBAL: imports (subprocess|commands)\.Popen" ||
    fail "zip finding: $OUT"
ok "a PyTorch zip checkpoint: its data.pkl is walked"

expect_status 10 airlock scan "$C/overlap.safetensors"
echo "$OUT" | qgrep "tensor 'b': its data \[4, 12) overlaps tensor 'a'" || fail "overlap: $OUT"
ok "overlapping safetensors are dangerous, the tensor named"

expect_status 9 airlock scan "$C/tool" "$C/docs.zip" "$C/state.pt"
echo "$OUT" | qgrep "tool: warn (elf)" || fail "elf: $OUT"
echo "$OUT" | qgrep "a native executable (elf), with an executable bit set" || fail "exec bit: $OUT"
echo "$OUT" | qgrep "a nested zip archive" || fail "zip: $OUT"
ok "an ELF with its exec bit and a nested zip are warnings: exit 9"

expect_status 3 airlock scan "$C/none.pkl" "$C/state.pt"
echo "$OUT" | qgrep "cannot open '$C/none.pkl'" || fail "missing file: $OUT"
expect_status 10 airlock scan "$C/none.pkl" "$C/os-p0.pkl"
expect_status 2 airlock scan
expect_status 2 airlock scan --bogus x
expect_status 0 airlock scan --help
echo "$OUT" | qgrep "exit status: 0 every file ok; 9 warnings only; 10 something dangerous" || fail "help: $OUT"
ok "exit statuses: missing file 3, dangerous wins 10, usage 2"

set +e
airlock scan --json "$C/os-p4.pkl" "$C/good.safetensors" "$C/tool" "$C/none.pkl" >"$T/scan.json"
st=$?
set -e
[ "$st" = 10 ] || fail "--json exit $st"
python3 - "$T/scan.json" "$C" <<'PY' || fail "--json: $(cat "$T/scan.json")"
import json, sys
r = json.load(open(sys.argv[1]))
c = sys.argv[2]
assert r['verdict'] == 'dangerous' and r['exit_status'] == 10 and r['scanner'].startswith('airlock '), r
f = {x['file']: x for x in r['files']}
p = f[c + '/os-p4.pkl']
assert p['kind'] == 'pickle' and p['verdict'] == 'dangerous', p
g = [x for x in p['findings'] if x.get('opcode') == 'STACK_GLOBAL']
assert g and g[0]['severity'] == 'dangerous' and 'system' in g[0]['what'] and g[0]['offset'] > 0, p
assert f[c + '/good.safetensors']['verdict'] == 'ok' and f[c + '/good.safetensors']['findings'] == []
assert f[c + '/tool']['verdict'] == 'warn' and f[c + '/tool']['kind'] == 'elf'
assert 'cannot open' in f[c + '/none.pkl']['error']
PY
set +e
airlock scan --json "$C/none.pkl" "$C/tool" >"$T/scan2.json"
st=$?
set -e
[ "$st" = 3 ] || fail "--json of a missing file: exit $st"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["verdict"] == "error" and r["exit_status"] == 3, r' \
    "$T/scan2.json" || fail "--json verdict of a missing file: $(cat "$T/scan2.json")"
ok "--json: files, findings with offset and opcode, verdict, exit status"

# GGUF tensor values: a clean model is ok; a NaN in an F16 value and an Inf
# in a Q4_0 block's scale (airlock-ggufgen --plant) are dangerous, naming the
# tensor; a model cut inside its tensor data is dangerous too.
gen="$AL_BUILD/airlock-ggufgen"
shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256
       --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
"$gen" --out "$C/clean.gguf" --type f16 --seed 3 "${shape[@]}" 2>/dev/null || fail "generating clean.gguf"
"$gen" --out "$C/nan.gguf" --type f16 --seed 3 --plant nan --plant-tensor blk.1.ffn_up.weight --plant-at 40 \
    "${shape[@]}" 2>/dev/null || fail "generating nan.gguf"
"$gen" --out "$C/inf.gguf" --type q4_0 --seed 3 --plant inf --plant-tensor blk.0.attn_q.weight \
    "${shape[@]}" 2>/dev/null || fail "generating inf.gguf"
expect_status 0 airlock scan "$C/clean.gguf"
expect_status 10 airlock scan "$C/nan.gguf"
echo "$OUT" | qgrep "blk.1.ffn_up.weight" || fail "nan.gguf: tensor not named: $OUT"
echo "$OUT" | qgrep "nan" || fail "nan.gguf: no nan finding: $OUT"
expect_status 10 airlock scan "$C/inf.gguf"
echo "$OUT" | qgrep "blk.0.attn_q.weight" || fail "inf.gguf: tensor not named: $OUT"
echo "$OUT" | qgrep "inf" || fail "inf.gguf: no inf finding: $OUT"
size=$(stat -c %s "$C/clean.gguf")
head -c $((size - 4096)) "$C/clean.gguf" >"$C/cut.gguf"
expect_status 10 airlock scan "$C/cut.gguf"
ok "gguf: clean ok, planted NaN (f16) and Inf (q4_0 scale) dangerous with the tensor named, truncated dangerous"

# Chat templates: every template of the pinned llama.cpp (models/templates,
# the real ones of 60-odd model families) scans without a template finding;
# a template reaching Python internals (the Jinja sandbox escape) and one over
# the 64 KiB cap are warnings, naming the key and what was found.
tiny=(--layers 1 --embd 32 --ff 64 --heads 2 --kv-heads 1 --ctx 64
      --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
n_tpl=0
for tpl in "$AL_VOCAB_DIR"/templates/*.jinja; do
    "$gen" --out "$C/tpl.gguf" --type f32 --seed 1 --chat-template-file "$tpl" "${tiny[@]}" 2>/dev/null \
        || fail "generating a model with $tpl"
    expect_status 0 airlock scan "$C/tpl.gguf"
    n_tpl=$((n_tpl + 1))
done
[ "$n_tpl" -ge 40 ] || fail "only $n_tpl templates under $AL_VOCAB_DIR/templates"
"$gen" --out "$C/escape.gguf" --type f32 --seed 1 \
    --chat-template "{% for m in messages %}{{ m.content }}{% endfor %}{{ ''.__class__.__mro__[1].__subclasses__() }}" \
    "${tiny[@]}" 2>/dev/null || fail "generating escape.gguf"
expect_status 9 airlock scan "$C/escape.gguf"
echo "$OUT" | qgrep "chat template tokenizer.chat_template uses '__class__'" || fail "escape.gguf: $OUT"
python3 -c 'print("{{ messages[0].content }}" + " " * 70000)' >"$C/big.jinja"
"$gen" --out "$C/big.gguf" --type f32 --seed 1 --chat-template-file "$C/big.jinja" "${tiny[@]}" 2>/dev/null \
    || fail "generating big.gguf"
expect_status 9 airlock scan "$C/big.gguf"
echo "$OUT" | qgrep "over the cap of 65536" || fail "big.gguf: $OUT"
ok "chat templates: all $n_tpl of llama.cpp's ok; a sandbox escape and one over the cap warn"

[ ! -e "$C/RAN" ] || fail "scanning ran something the corpus names"
ok "nothing the corpus names was run"
