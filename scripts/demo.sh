#!/usr/bin/env bash
# demo.sh: the main job on an embedded default, start to finish, with
# readable output. Generates its own model (nothing is downloaded), then walks
# through the store: add, show, tag, a second version, rollback, fsck, log,
# and ends by serving the model and answering a request through the API.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/$build/airlock"
gen="$here/$build/airlock-ggufgen"
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export AIRLOCK_HOME="$work/store"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
airlock() { "$bin" "$@"; }

step "generate a small llama-architecture model (random weights, real vocabulary)"
run "$gen" --out "$work/demo-v1.gguf" --layers 2 --embd 64 --ff 128 --heads 4 --kv-heads 2 --ctx 256 --seed 1 --name demo
run "$gen" --out "$work/demo-v2.gguf" --layers 2 --embd 64 --ff 128 --heads 4 --kv-heads 2 --ctx 256 --seed 2 --name demo --type q8_0
cat >"$work/card.json" <<'CARD'
{"title": "demo", "description": "a generated model for the airlock demo",
 "licenses": ["MIT"], "origin": "airlock-ggufgen", "quantization": "F32"}
CARD

step "add it to the store as demo:1.0"
run airlock init
run airlock add demo:1.0 "$work/demo-v1.gguf" --card "$work/card.json"
run airlock show demo

step "check the blob with a standard tool"
printf '$ sha256sum "$(airlock path demo)"\n'
sha256sum "$(airlock path demo)"

step "a second version, quantized to Q8_0, becomes active"
run airlock add demo:2.0 "$work/demo-v2.gguf"
run airlock tag demo:1.0 stable
run airlock ls

step "roll back to the previous version"
run airlock rollback demo
run airlock ls

step "verify the whole store and the event log"
run airlock fsck
run airlock log
run airlock log --verify
step "serve the active version over the OpenAI-compatible API and ask it something"
printf '$ airlock serve demo --port 0 &\n'
"$bin" serve demo --port 0 -q 2>"$work/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do grep -q 'airlock: ready' "$work/serve.log" && break; sleep 0.1; done
cat "$work/serve.log"
base=$(grep -o 'http://[^ ]*' "$work/serve.log" | head -1)
run curl -s "$base/v1/models"
echo
printf '$ curl -s %s/v1/completions -d '"'"'{"model":"demo","prompt":"Once upon a time","max_tokens":12,"temperature":0}'"'"'\n' "$base"
curl -s "$base/v1/completions" -d '{"model":"demo","prompt":"Once upon a time","max_tokens":12,"temperature":0}' |
    python3 -m json.tool
printf '(random weights: the text is noise; the shape is what OpenAI clients expect)\n'
run kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true

printf '\ndemo finished: store was in %s (removed)\n' "$AIRLOCK_HOME"
