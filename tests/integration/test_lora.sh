#!/usr/bin/env bash
# LoRA adapters as versions (issue 20): airlock-ggufgen writes an adapter for
# the fixture; `add --base` binds it to the fixture's weight digest; run loads
# base + adapter (the greedy text changes; --lora-scale 0 gives the golden
# text back); show lists the binding both ways (text and --json). Refused at
# add, each with its message, the store unchanged and one 'adapter-refused'
# event: an adapter for a model of another shape, a model given as adapter, an
# unknown base, an adapter as base. Refused at load: a tampered adapter blob.
# Served: the adapter version's name loads base + adapter. Bundled: the
# binding travels, and a second store takes the adapter after its base.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
FIX=$(fixture)
GEN="$AL_BUILD/airlock-ggufgen"
unset AIRLOCK_SERVER AIRLOCK_API_KEY
GREEDY=(--temperature 0 --max-tokens 40)

"$GEN" --help | qgrep -- '--lora-for BASE' || fail "ggufgen --help names --lora-for"
airlock add --help | qgrep -- '--base REF' || fail "add --help names --base"
airlock run --help | qgrep -- '--lora-scale S' || fail "run --help names --lora-scale"

airlock add stories:1 "$FIX" >/dev/null
FIXD="sha256:$(sha256sum "$FIX" | cut -d' ' -f1)"
"$GEN" --lora-for "$FIX" --out "$T/lora.gguf" --seed 3 2>"$T/gen.log" || fail "ggufgen --lora-for: $(cat "$T/gen.log")"
qgrep '10 tensor pairs, rank 4' "$T/gen.log" || fail "an adapter of the fixture's 5 blocks (q, v): $(cat "$T/gen.log")"
"$GEN" --lora-for "$FIX" --out "$T/lora2.gguf" --seed 3 2>/dev/null
cmp -s "$T/lora.gguf" "$T/lora2.gguf" || fail "same seed, different adapter bytes"
ok "ggufgen writes a seeded LoRA adapter for the fixture"

out=$(airlock add stories-lora:1 "$T/lora.gguf" --base stories:1) || fail "add --base: $out"
echo "$out" | qgrep '^added stories-lora:1' || fail "add --base said: $out"
airlock show stories-lora:1 >"$T/show.txt"
qgrep "adapter   lora for the weights $FIXD" "$T/show.txt" || fail "show of the adapter: $(cat "$T/show.txt")"
qgrep "base    stories:1 " "$T/show.txt" || fail "show names the base: $(cat "$T/show.txt")"
airlock show stories:1 | qgrep '^    stories-lora:1 ' || fail "show of the base lists its adapter"
j=$(airlock show stories-lora:1 --json)
[ "$(echo "$j" | json_get 'd["adapter"]["base"]')" = "$FIXD" ] || fail "--json adapter.base: $j"
[ "$(echo "$j" | json_get 'd["adapter"]["base_version"]["name"]')" = stories ] || fail "--json base_version"
[ "$(airlock show stories:1 --json | json_get 'd["adapters"][0]["name"]')" = stories-lora ] ||
    fail "--json of the base lists the adapter"
[ "$(airlock show stories:1 --json | json_get 'd["adapter"]')" = None ] || fail "a model is no adapter"
# The binding is in the manifest (annotations) and the add event.
M=$(echo "$j" | json_get 'd["manifest"]')
python3 - "$AIRLOCK_HOME/blobs/sha256/${M#sha256:}" "$FIXD" <<'EOF' || fail "manifest annotations"
import json, sys
a = json.load(open(sys.argv[1]))["annotations"]
assert a["io.airlock.adapter.type"] == "lora" and a["io.airlock.adapter.base"] == sys.argv[2], a
EOF
airlock log --json | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["kind"] == "add" and e["model"] == "stories-lora"]
a = ev[0]["detail"]["adapter"]
assert a["type"] == "lora" and a["base"] == sys.argv[1] and a["base_ref"] == "stories:1", a
assert a["pairs"] == 10 and a["rank"] == 4, a' "$FIXD" || fail "the add event records the binding"
ok "add --base binds the adapter to the base's weight digest; show and show --json list both sides"

base=$(airlock run stories:1 "Once upon a time" "${GREEDY[@]}")
[ "$base" = "$GOLDEN" ] || fail "the base's golden text: '$base'"
adapted=$(airlock run stories-lora:1 "Once upon a time" "${GREEDY[@]}")
[ -n "$adapted" ] && [ "$adapted" != "$GOLDEN" ] || fail "the adapter did not change the greedy text: '$adapted'"
again=$(airlock run stories-lora:1 "Once upon a time" "${GREEDY[@]}" --lora-scale 1)
[ "$again" = "$adapted" ] || fail "--lora-scale 1 is the default: '$again'"
zero=$(airlock run stories-lora:1 "Once upon a time" "${GREEDY[@]}" --lora-scale 0)
[ "$zero" = "$GOLDEN" ] || fail "--lora-scale 0 must give the golden text: '$zero'"
expect_status 2 airlock run stories:1 "x" --lora-scale 0.5
echo "$OUT" | qgrep "'stories:1' is not a LoRA adapter version" || fail "--lora-scale on a model: $OUT"
expect_status 2 airlock run stories-lora:1 "x" --lora-scale 101
ok "run of the adapter version changes the greedy text; --lora-scale 0 gives the golden text back"

# Served: the adapter version's name is its base with the adapter applied.
serve_start stories:1 stories-lora:1 --port 0
out=$(airlock run --server "$BASE" stories-lora:1 "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$adapted" ] || fail "the served adapter version: '$out'"
out=$(airlock run --server "$BASE" stories:1 "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "the served base beside it: '$out'"
post /v1/completions '{"model":"stories-lora:1","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$adapted" ] || fail "/v1/completions of the adapter: $BODY"
serve_stop
ok "serve: the adapter version's name answers with base + adapter, the base beside it unchanged"

# A signed bundle carries the adapter with its binding; a second store takes
# it only once its base is there, and serves it.
airlock key gen -o "$T/build" --no-password >/dev/null
airlock pack stories-lora:1 -o "$T/lora.tar" --sign "$T/build.key" >/dev/null
airlock pack stories:1 -o "$T/base.tar" --sign "$T/build.key" >/dev/null
HOME1=$AIRLOCK_HOME
export AIRLOCK_HOME="$T/home2"
airlock init >/dev/null
airlock trust add build --minisign "$T/build.pub" --models '*' >/dev/null
expect_status 3 airlock ingest "$T/lora.tar"
echo "$OUT" | qgrep "is a LoRA adapter for the weights $FIXD, and no version in this store has them" ||
    fail "an adapter before its base: $OUT"
[ "$(airlock log --json | json_get 'len([e for e in d if e["kind"] == "ingest-refused"])')" = 1 ] ||
    fail "one ingest-refused event"
airlock ingest "$T/base.tar" >/dev/null
airlock ingest "$T/lora.tar" >/dev/null || fail "the adapter after its base"
airlock show stories:1 | qgrep '^    stories-lora:1 ' || fail "the ingested adapter is bound to the base"
serve_start stories-lora:1 --port 0
post /v1/completions '{"model":"stories-lora:1","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$adapted" ] || fail "the ingested adapter served: $BODY"
serve_stop
export AIRLOCK_HOME=$HOME1
ok "a bundle carries the adapter: refused before its base, ingested after it, served in the second store"

# Refusals at add: the store unchanged but for one event each.
"$GEN" --out "$T/other.gguf" --layers 2 --embd 128 --ff 256 --heads 2 --kv-heads 1 --ctx 64 2>/dev/null
"$GEN" --lora-for "$T/other.gguf" --out "$T/lora-other.gguf" 2>/dev/null
airlock add other:1 "$T/other.gguf" >/dev/null
# An adapter of other targets (attn_k) for the fixture: its shapes fit.
"$GEN" --lora-for "$FIX" --lora-targets attn_k,ffn_up --out "$T/lora-k.gguf" 2>/dev/null
state() { (cd "$AIRLOCK_HOME" && find blobs index.json -type f | sort | xargs sha256sum); }
refusals() { airlock log --json | json_get 'len([e for e in d if e["kind"] == "adapter-refused"])'; }
state >"$T/before"
n=0
refused() { # STATUS MESSAGE add-args...
    local want=$1 msg=$2; shift 2
    expect_status "$want" airlock add "$@"
    echo "$OUT" | qgrep -F "$msg" || fail "unclear refusal of add $*: $OUT"
    n=$((n + 1))
    [ "$(refusals)" = "$n" ] || fail "add $* did not record exactly one 'adapter-refused' event"
    state | diff "$T/before" - >/dev/null || fail "a refused add $* changed the store"
}
refused 4 "does not fit 'stories:1': 'blk.0.attn_q.weight' is [64, 64] in the base" \
    bad:1 "$T/lora-other.gguf" --base stories:1
refused 4 "is not a LoRA adapter: its general.type is 'none'" bad:1 "$T/other.gguf" --base stories:1
refused 3 "the base 'no-such' of the adapter: no model named 'no-such'" bad:1 "$T/lora.gguf" --base no-such
refused 4 "the base 'stories-lora:1' is itself an adapter" bad:1 "$T/lora.gguf" --base stories-lora:1
refused 4 "does not fit 'other:1'" bad:1 "$T/lora.gguf" --base other:1
# Crafted adapters (lora_craft.py): each breaks one rule of llama-adapter.cpp.
craft() { python3 "$AL_SRC/tests/integration/lora_craft.py" "$@"; }
QA=blk.0.attn_q.weight.lora_a QB=blk.0.attn_q.weight.lora_b
craft "$T/c-ia3.gguf" --kv adapter.type=ia3 $QA:64x4 $QB:4x64
refused 4 "is not a LoRA adapter: its general.type is 'adapter' and its adapter.type 'ia3'" bad:1 "$T/c-ia3.gguf" --base stories:1
craft "$T/c-arch.gguf" --kv general.architecture=gpt2 $QA:64x4 $QB:4x64
refused 4 "is an adapter for the architecture 'gpt2', and the base 'stories:1' is 'llama'" bad:1 "$T/c-arch.gguf" --base stories:1
craft "$T/c-noa.gguf" $QB:4x64
refused 4 "'$QB' has no '$QA'" bad:1 "$T/c-noa.gguf" --base stories:1
craft "$T/c-nob.gguf" $QA:64x4
refused 4 "'$QA' has no '$QB'" bad:1 "$T/c-nob.gguf" --base stories:1
craft "$T/c-suffix.gguf" $QA:64x4 $QB:4x64 blk.0.attn_q.weight:64x64
refused 4 "tensor 'blk.0.attn_q.weight' ends in neither .lora_a nor .lora_b" bad:1 "$T/c-suffix.gguf" --base stories:1
craft "$T/c-nobase.gguf" blk.9.attn_q.weight.lora_a:64x4 blk.9.attn_q.weight.lora_b:4x64
refused 4 "the base has no tensor 'blk.9.attn_q.weight'" bad:1 "$T/c-nobase.gguf" --base stories:1
craft "$T/c-transposed.gguf" $QA:4x64 $QB:4x64
refused 4 "'blk.0.attn_q.weight' is [64, 64] in the base, and the adapter's A [4, 64]" bad:1 "$T/c-transposed.gguf" --base stories:1
craft "$T/c-rank.gguf" $QA:64x4 $QB:8x64
refused 4 "do not make that shape" bad:1 "$T/c-rank.gguf" --base stories:1
craft "$T/c-3d.gguf" $QA:64x4x2 $QB:4x64
refused 4 "do not make that shape" bad:1 "$T/c-3d.gguf" --base stories:1
craft "$T/c-empty.gguf" blk.0.attn_norm.weight:64
refused 4 "holds no .lora_a/.lora_b tensor pair" bad:1 "$T/c-empty.gguf" --base stories:1
# What fits is taken and runs: a q pair, and token_embd's flipped pair.
craft "$T/c-ok.gguf" $QA:64x4 $QB:4x64 token_embd.weight.lora_a:4x512 token_embd.weight.lora_b:4x64
airlock add crafted:1 "$T/c-ok.gguf" --base stories:1 >/dev/null || fail "a crafted adapter that fits"
airlock run crafted:1 "Once upon a time" "${GREEDY[@]}" >/dev/null || fail "llama.cpp loads what add let in"
ok "a corpus of crafted adapters: each misfit refused with its message, one event, store unchanged"

airlock log --json | python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin) if e["kind"] == "adapter-refused"][0]
assert e["model"] == "bad" and e["detail"]["base"] == "stories:1" and "does not fit" in e["detail"]["reason"], e
' || fail "the refusal event names the model, the base and the reason"
airlock add stories-k:1 "$T/lora-k.gguf" --base stories:1 >/dev/null || fail "an attn_k/ffn_up adapter fits"
state >"$T/before"
expect_status 4 airlock add bad:2 "$T/lora.gguf"
echo "$OUT" | qgrep "'$T/lora.gguf' is a lora adapter, not a model; add it with --base REF" || fail "an adapter as a model: $OUT"
state | diff "$T/before" - >/dev/null || fail "an adapter refused as a model changed the store"
ok "misfits refused at add (other shape, a model, unknown base, an adapter as base), one event each, store unchanged; an adapter added without --base refused"

# A tampered adapter blob is refused before llama.cpp reads it.
BLOB="$AIRLOCK_HOME/blobs/sha256/$(sha256sum "$T/lora.gguf" | cut -d' ' -f1)"
[ -f "$BLOB" ] || fail "no blob $BLOB"
chmod u+w "$BLOB"
printf '\x01' | dd of="$BLOB" bs=1 seek=$(($(stat -c %s "$BLOB") - 8)) conv=notrunc status=none
expect_status 5 airlock run stories-lora:1 "Once upon a time" "${GREEDY[@]}"
echo "$OUT" | qgrep "does not match its digest" || fail "tampered adapter: $OUT"
ok "a tampered adapter blob is refused at load"
