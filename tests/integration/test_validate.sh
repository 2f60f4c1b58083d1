#!/usr/bin/env bash
# airlock validate: a suite recorded on the fixture validates on it (by file
# and by store reference); a copy with one tensor altered fails and the report
# names the first divergent prompt and the position; a Q8_0 quantization of the
# same model is told apart from a bit-identical copy; float noise within the
# tolerance passes where the conditions differ and fails where they match;
# a missed target exits 1 naming the target and the measured value.
source "$(dirname "$0")/lib.sh"
F=$(fixture)
TAMPER="$(dirname "$0")/gguf_tamper.py"
QUANT="$AL_LLAMA_PREFIX/build/bin/llama-quantize"
# make test-arm64: the prefix's tools are aarch64 too, run by the emulator
quant() { ${AL_EMULATOR:-} "$QUANT" "$@"; }
S="$T/suite"

airlock validate --init-suite "$S" >/dev/null
expect_status 3 airlock validate -t 1 -t 1 "$F" --suite "$S"          # no recording yet
echo "$OUT" | qgrep "no recording.json" || fail "missing recording not explained: $OUT"

airlock validate -t 1 "$F" --suite "$S" --record -t 2 >"$T/rec.txt" || fail "record: $(cat "$T/rec.txt")"
grep -q "recorded 4 golden prompts" "$T/rec.txt" || fail "record summary: $(cat "$T/rec.txt")"
python3 - "$S/recording.json" <<'PY' || fail "recording.json content"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "airlock-golden/1"
c = r["conditions"]
assert c["llama_commit"] and c["system_info"].startswith("CPU") and c["model_digest"].startswith("sha256:270cba1b")
once = [x for x in r["results"] if x["id"] == "story-once"][0]
assert once["prompt_ids"] == [1, 403, 407, 261, 378], once["prompt_ids"]
text = "".join(t["text"] for t in once["tokens"])
assert text.startswith(", there was a little girl named Lily"), text
assert all(len(t["top"]) == 5 and t["top"][0][0] == t["id"] for t in once["tokens"])
PY
ok "recorded: token ids, top-5 log-probabilities, conditions"

expect_status 0 airlock validate -t 1 -t 1 "$F" --suite "$S"
echo "$OUT" | qgrep "exact match required" || fail "same conditions not recognized: $OUT"
[ "$(echo "$OUT" | grep -c ' identical: ')" = 4 ] || fail "not 4 identical: $OUT"
ok "validates where it was recorded"

# by store reference, and a bit-identical copy under another name
cp "$F" "$T/copy.gguf"
airlock add stories "$F" >/dev/null
airlock add copy "$T/copy.gguf" >/dev/null
expect_status 0 airlock validate -t 1 stories --suite "$S"
expect_status 0 airlock validate -t 1 copy --suite "$S"
ok "store references and a bit-identical copy validate"

# one tensor altered: 1 in 64 weights of one matrix negated
cp "$F" "$T/tampered.gguf"; chmod u+w "$T/tampered.gguf"
python3 "$TAMPER" "$T/tampered.gguf" blk.4.ffn_down.weight --every 64 >/dev/null
expect_status 1 airlock validate -t 1 -t 1 "$T/tampered.gguf" --suite "$S"
echo "$OUT" | qgrep "^  FAIL  story-" || fail "no failing prompt named: $OUT"
echo "$OUT" | grep -Eq "^result: FAILED: [0-9] of 4 prompts diverged, first 'story-[a-z]+' at position [0-9]+" \
    || fail "summary does not name the first divergent prompt and position: $OUT"
echo "$OUT" | qgrep "weights differ" || fail "tampering not diagnosed as weights: $OUT"
ok "a tampered tensor fails: $(echo "$OUT" | grep '^result')"

# another quantization of the same model: told apart from the identical copy
quant "$F" "$T/q8.gguf" q8_0 >"$T/quant.log" 2>&1 || { cat "$T/quant.log"; fail "llama-quantize"; }
expect_status 1 airlock validate -t 1 -t 1 "$T/q8.gguf" --suite "$S"
[ "$(echo "$OUT" | grep -c 'weights-differ')" -ge 3 ] || fail "q8_0 not seen as differing weights: $OUT"
echo "$OUT" | qgrep "another quantization" || fail "q8_0 drift not recognized as slight: $OUT"
ok "Q8_0 told apart from F32: $(echo "$OUT" | grep '^result')"

# the same for generated models (random weights, flat distributions): Q8_0
# against F32 from the same seed, and a bit-identical F32 copy
gen="$AL_BUILD/airlock-ggufgen"
shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256 --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
"$gen" --out "$T/g32.gguf" --type f32 --seed 7 "${shape[@]}" 2>/dev/null
"$gen" --out "$T/g8.gguf" --type q8_0 --seed 7 "${shape[@]}" 2>/dev/null
"$gen" --out "$T/g32b.gguf" --type f32 --seed 7 "${shape[@]}" 2>/dev/null
mkdir "$T/gs" && cp "$S/suite.json" "$S/golden.json" "$T/gs/"
airlock validate -t 1 "$T/g32.gguf" --suite "$T/gs" --record >/dev/null
expect_status 0 airlock validate -t 1 -t 1 "$T/g32b.gguf" --suite "$T/gs"
expect_status 1 airlock validate -t 1 -t 1 "$T/g8.gguf" --suite "$T/gs"
echo "$OUT" | qgrep "weights-differ" || fail "generated q8_0 not told apart: $OUT"
ok "generated Q8_0 told apart from a bit-identical F32: $(echo "$OUT" | grep '^result')"

# float noise: where conditions differ, a drift under the tolerance passes...
python3 - "$S/recording.json" "$T/noisy" <<'PY'
import json, sys, os, shutil
src = os.path.dirname(sys.argv[1]); dst = sys.argv[2]
shutil.copytree(src, dst)
r = json.load(open(sys.argv[1]))
for res in r["results"]:
    for t in res["tokens"]:
        t["logprob"] += 1e-4
        for e in t["top"]:
            e[1] += 1e-4
json.dump(r, open(dst + "/recording.json", "w"))
r["conditions"]["llama_commit"] = "0000000"
json.dump(r, open(dst + "/recording-other.json", "w"))
PY
expect_status 1 airlock validate -t 1 -t 1 "$F" --suite "$T/noisy"
echo "$OUT" | qgrep "nondeterministic" || fail "a drift under matching conditions must fail: $OUT"
mv "$T/noisy/recording-other.json" "$T/noisy/recording.json"
expect_status 0 airlock validate -t 1 -t 1 "$F" --suite "$T/noisy"
[ "$(echo "$OUT" | grep -c 'float-noise')" = 4 ] || fail "drift within tolerance not float noise: $OUT"
echo "$OUT" | qgrep "llama.cpp 0000000 (recorded) vs" || fail "differing conditions not named: $OUT"
ok "float noise passes where conditions differ, fails where they match"

# targets: a missed one exits 1 with the target and the measured value
python3 - "$S/suite.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["targets"] = {"min_decode_tps": 1e8, "max_rss_mb": 100000}
json.dump(s, open(sys.argv[1], "w"))
PY
expect_status 1 airlock validate -t 1 -t 1 "$F" --suite "$S"
echo "$OUT" | grep -Eq "target min_decode_tps 1e\+08 missed: measured [0-9.]+" || fail "missed target not named: $OUT"
echo "$OUT" | qgrep "ok    max_rss_mb 100000: measured" || fail "met target not shown: $OUT"
ok "a missed target fails naming target and value"

# malformed suites are refused with a reason
echo '{"format": "airlock-suite/9"}' >"$S/suite.json"
expect_status 4 airlock validate -t 1 -t 1 "$F" --suite "$S"
echo "$OUT" | qgrep 'must be "airlock-suite/1"' || fail "bad format not explained: $OUT"
ok "malformed suite refused"
