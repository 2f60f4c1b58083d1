#!/usr/bin/env bash
# The GPU offload path on a real Vulkan device in software (Mesa's lavapipe),
# in a build whose llama.cpp has the Vulkan backend (make test-vulkan):
# airlock serve --gpu-layers 99 logs the device, answers the golden request
# and shows the device's memory in /metrics; airlock validate passes a suite
# recorded on the CPU within its tolerance with every layer on the device;
# a tampered blob is refused before any weight reaches the device; a LoRA
# adapter on the offloaded model is refused cleanly (ggml-vulkan crashes when
# a context's adapters change), and served with --gpu-layers 0.
. "$AL_SRC/tests/integration/lib.sh"
. "$AL_SRC/tests/integration/serve_lib.sh"
F=$(fixture)
command -v vulkaninfo >/dev/null || skip_test "vulkaninfo missing (scripts/bootstrap.sh deps-vulkan)"

# ggml skips CPU-type Vulkan devices unless named: find lavapipe's index.
idx=$(vulkaninfo --summary 2>/dev/null | awk '/^GPU[0-9]+:/ { g = substr($1, 4, length($1) - 4) }
                                            /deviceName *= *llvmpipe/ { print g; exit }')
[ -n "$idx" ] || skip_test "no lavapipe Vulkan device (mesa-vulkan-drivers)"
export GGML_VK_VISIBLE_DEVICES=$idx

airlock add stories:1.0 "$F" >/dev/null

# serve: the device in the log, the golden text, device memory in /metrics
serve_start stories --port 0 --gpu-layers 99 -v
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "golden text with every layer on Vulkan: $BODY"
grep -q "runs on Vulkan0 (llvmpipe" "$SERVE_LOG" || { cat "$SERVE_LOG"; fail "the Vulkan device is not logged"; }
grep -q "offloaded 6/6 layers to GPU" "$SERVE_LOG" || { cat "$SERVE_LOG"; fail "llama.cpp did not offload every layer"; }
# what the tampered case below must not show, shown here by a good load
grep -q "Vulkan0 model buffer" "$SERVE_LOG" || { cat "$SERVE_LOG"; fail "no Vulkan0 model buffer in the -v log"; }
total=$(metric 'airlock_device_memory_bytes{device="Vulkan0",state="total"}')
[ -n "$total" ] && [ "$total" -gt 0 ] || fail "no device memory in /metrics: $(curl -s "$BASE/metrics" | grep device)"
serve_stop
ok "serve --gpu-layers 99: $(grep -o 'runs on Vulkan0.*' "$SERVE_LOG" | head -1); the golden text"

# LoRA on a model offloaded to Vulkan: ggml-vulkan (lavapipe) kills the
# process at the first decode after a context's adapters change, so airlock
# refuses adapters there with a 400 that says what to do, and goes on
# serving; with --gpu-layers 0 the same build serves the adapter.
"$AL_BUILD/airlock-ggufgen" --lora-for "$F" --out "$T/la.gguf" --seed 3 2>/dev/null
airlock add la:1 "$T/la.gguf" --base stories:1.0 >/dev/null
serve_start stories --port 0 --gpu-layers 99
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":8,"temperature":0,"lora":[{"id":0,"scale":1}]}'
expect_code 400
echo "$BODY" | qgrep "not served on a model offloaded to Vulkan" || fail "the adapter refusal: $BODY"
echo "$BODY" | qgrep -- "--gpu-layers 0" || fail "the refusal does not say what to do: $BODY"
post /v1/completions '{"model":"la:1","prompt":"Once upon a time","max_tokens":8,"temperature":0}'
expect_code 400
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "the base after a refused adapter: $BODY"
serve_stop
serve_start stories --port 0 --gpu-layers 0
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0,"lora":[{"id":0,"scale":1}]}'
expect_code 200
LA=$(jq_py 'd["choices"][0]["text"]')
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] && [ "$LA" != "$GOLDEN" ] || fail "--gpu-layers 0: adapter '$LA', base: $BODY"
serve_stop
ok "LoRA on Vulkan: refused with a 400 that names --gpu-layers 0, the server goes on; served with --gpu-layers 0"

# bench: the report says where the model ran
airlock bench stories --concurrency 1 --prompt-lengths 16 --gen-tokens 8 --requests 2 --gpu-layers 99 \
    --json "$T/bench.json" >/dev/null 2>"$T/bench.err" || fail "bench on Vulkan: $(cat "$T/bench.err")"
python3 - "$T/bench.json" <<'PY' || fail "bench report: $(head -c 600 "$T/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"]["runs_on"].startswith("Vulkan0 (llvmpipe"), r["model"]
assert r["model"]["gpu_layers"] == 5 and r["machine"]["gpu_layers"] == 99, r["model"]
assert any(d["name"] == "Vulkan0" and d["type"] == "gpu" for d in r["machine"]["devices"]), r["machine"]["devices"]
PY
ok "bench --gpu-layers 99 reports: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["runs_on"])' "$T/bench.json")"

# validate: recorded on the CPU, checked on the device within the tolerance.
# Every token must match; log-probabilities drift with the position (another
# summation order, part of it in F16, compounding through the KV cache): up
# to 0.017 by token 28 of 32 on lavapipe, over the starter suite's 0.01. A
# suite meant to pass on GPU nodes sets 0.05 (docs/internals/platforms.md);
# the starter's 0.01 stays right for CPU-to-CPU checks.
S="$T/suite"
airlock validate --init-suite "$S" >/dev/null
python3 - "$S/suite.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p)); s["golden"]["tolerance"]["logprob"] = 0.05
json.dump(s, open(p, "w"), indent=2)
PY
airlock validate -t 2 stories --suite "$S" --record >"$T/rec.txt" || fail "record on the CPU: $(cat "$T/rec.txt")"
airlock validate -t 2 stories --suite "$S" --gpu-layers 99 >"$T/val.txt" 2>&1 || fail "validate on Vulkan: $(cat "$T/val.txt")"
grep -q "device CPU (recorded) vs Vulkan0" "$T/val.txt" || fail "the device change is not named: $(cat "$T/val.txt")"
grep -q "^result: all 4 prompts pass" "$T/val.txt" || fail "validate on Vulkan did not pass: $(cat "$T/val.txt")"
[ "$(grep -c 'all 32 tokens match' "$T/val.txt")" = 4 ] || fail "a token differs on Vulkan: $(cat "$T/val.txt")"
grep -E '^  (ok|FAIL) ' "$T/val.txt"
ok "validate with every layer on Vulkan: $(grep '^result' "$T/val.txt")"

# a tampered blob: refused by the digest check, before llama.cpp allocates a
# device buffer or reads a tensor (its -v log would show "model buffer")
BLOB=$(airlock path stories)
chmod u+w "$BLOB"
printf '\xff' | dd of="$BLOB" bs=1 seek=600000 conv=notrunc status=none
expect_status 5 airlock validate -t 2 stories --suite "$S" --gpu-layers 99
echo "$OUT" | qgrep "does not match its digest" || fail "tampered blob not refused by digest: $OUT"
# serve loads its models before it is ready: it refuses to start (exit 5)
expect_status 5 airlock serve stories --port 0 --gpu-layers 99 -v
echo "$OUT" | qgrep "does not match its digest" || fail "serve did not refuse the tampered blob: $OUT"
if echo "$OUT" | grep -Eq "Vulkan0 model buffer|load_tensors"; then
    fail "weights went to the device before the digest check: $OUT"
fi
ok "a tampered blob is refused before any weight reaches the device"
