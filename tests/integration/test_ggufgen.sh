#!/usr/bin/env bash
# airlock-ggufgen writes models that the real llama.cpp loads and runs:
# F32, F16, Q8_0 and Q4_0 (the Q4_0 run guards against the AMX SIGILL of
# llama.cpp builds made with -march=native, see the architecture notes).
# The generator is deterministic: same options and seed, same bytes.
set -euo pipefail

gen="$AL_BUILD/airlock-ggufgen"
cli="$AL_LLAMA_PREFIX/build/bin/llama-completion"
vocab="$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf"
work=$(mktemp -d "${TMPDIR:-/tmp}/al-ggufgen.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$gen" ] || fail "no generator at $gen"
[ -x "$cli" ] || fail "no llama-completion at $cli"

"$gen" --help | grep -- '--params' >/dev/null || fail "--help does not describe --params"
if "$gen" --out "$work/bad.gguf" --type q3 2>/dev/null; then fail "accepted --type q3"; fi
if "$gen" --out "$work/bad.gguf" --embd 64 --heads 5 2>/dev/null; then fail "accepted 64/5 heads"; fi

shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256 --vocab "$vocab")
for t in f32 f16 q8_0 q4_0; do
    m="$work/tiny-$t.gguf"
    "$gen" --out "$m" --type "$t" --seed 7 "${shape[@]}" 2>"$work/gen-$t.log" \
        || { cat "$work/gen-$t.log" >&2; fail "generating $t"; }
    [ -s "$m" ] || fail "$t: empty output"
    [ ! -e "$m.part" ] && [ ! -e "$m.f16.tmp" ] || fail "$t: temporary files left behind"
    # stdin from /dev/null: llama-completion must not wait for input
    if ! "$cli" -m "$m" -p "hello" -n 8 -no-cnv --temp 0 -t 2 -c 256 -v \
            </dev/null >"$work/out-$t.txt" 2>"$work/err-$t.txt"; then
        tail -n 30 "$work/err-$t.txt" >&2
        fail "llama-completion failed on the $t model"
    fi
    grep -q "hello" "$work/out-$t.txt" || fail "$t: prompt not echoed in the output"
    # llama.cpp's loader lists the tensor types: the asked type must be there
    # (quantization is pure: every 2-D tensor, embeddings and output too)
    # (2 blocks: 16 matrices and 5 norm vectors, the norms stay f32)
    want=16; [ "$t" = f32 ] && want=21
    grep -Eq "type +$t: +$want tensors" "$work/err-$t.txt" \
        || { grep "type " "$work/err-$t.txt" >&2; fail "$t: llama.cpp does not see $want $t tensors"; }
    echo "ok: $t model runs ($(stat -c %s "$m") bytes)"
done

# deterministic: same seed, same bytes; another seed, other bytes
"$gen" --out "$work/again.gguf" --type f32 --seed 7 "${shape[@]}" 2>/dev/null
cmp -s "$work/tiny-f32.gguf" "$work/again.gguf" || fail "same seed gave different files"
"$gen" --out "$work/other.gguf" --type f32 --seed 8 "${shape[@]}" 2>/dev/null
if cmp -s "$work/tiny-f32.gguf" "$work/other.gguf"; then fail "seed has no effect"; fi

# --params picks a shape near the target
"$gen" --out "$work/p.gguf" --params 20M --vocab "$vocab" 2>"$work/p.log"
n=$(sed -n 's/.* \([0-9]*\) parameters$/\1/p' "$work/p.log")
[ -n "$n" ] && [ "$n" -gt 16000000 ] && [ "$n" -lt 24000000 ] || fail "--params 20M gave '$n' parameters"
"$cli" -m "$work/p.gguf" -p "hello" -n 4 -no-cnv --temp 0 -t 2 -c 128 </dev/null >/dev/null 2>&1 \
    || fail "llama-completion failed on the --params 20M model"
echo "ok: --params 20M -> $n parameters"

# --plant: llama.cpp's own tensor check (--check-tensors) refuses the planted model, and
# airlock's value scan (airlock-scanvalues) names the same tensor
if "$gen" --out "$work/bad.gguf" --plant zero 2>/dev/null; then fail "accepted --plant zero"; fi
scan="$AL_BUILD/airlock-scanvalues"
for t in f16 q4_0; do
    m="$work/plant-$t.gguf"
    "$gen" --out "$m" --type "$t" --seed 7 --plant inf --plant-tensor blk.1.ffn_up.weight --plant-at 40 \
        "${shape[@]}" 2>/dev/null || fail "generating a planted $t model"
    # airlock-llcheck, not llama-completion --check-tensors: both call the
    # same llama.cpp check, but llama-completion's log thread may drop the
    # line naming the tensor when it exits (CI saw it under ASan's load)
    if "$AL_BUILD/airlock-llcheck" "$m" >/dev/null 2>"$work/check-$t.txt"; then
        fail "$t: llama.cpp --check-tensors accepted the planted model"
    fi
    grep -q "tensor 'blk.1.ffn_up.weight' has invalid data" "$work/check-$t.txt" \
        || { tail -n 5 "$work/check-$t.txt" >&2; fail "$t: llama.cpp names another problem"; }
    rc=0; "$scan" "$m" >"$work/scan-$t.txt" 2>/dev/null || rc=$?
    [ "$rc" = 1 ] && grep -q "blk.1.ffn_up.weight (.*) at [0-9]*: inf" "$work/scan-$t.txt" \
        || { cat "$work/scan-$t.txt" >&2; fail "$t: airlock-scanvalues exit $rc"; }
    "$scan" "$work/tiny-$t.gguf" >/dev/null || fail "$t: findings in the clean model"
    echo "ok: $t planted inf found by llama.cpp and by airlock"
done
