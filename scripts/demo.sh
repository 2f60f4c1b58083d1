#!/usr/bin/env bash
# demo.sh: the main job on an embedded default, start to finish, with
# readable output. Generates its own model (nothing is downloaded), then walks
# through the store: add, show, tag, a second version, rollback, fsck, log.
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
step "offline RAG: index a few documents, retrieve, answer with citations"
mkdir -p "$work/docs"
cat >"$work/docs/pump.md" <<'DOC'
# Coolant pump

## Safety
Close the isolation valve and lock out the motor before opening the pump housing.

## Maintenance
Replace the impeller seal every 2000 operating hours.
DOC
cat >"$work/docs/generator.html" <<'DOC'
<html><head><title>Standby generator</title><script>ignored()</script></head><body>
<h1>Standby generator</h1><h2>Fuel</h2><p>The generator runs on diesel; keep the day tank above half.</p>
<h2>Testing</h2><p>Run the generator under load for 30 minutes every month.</p></body></html>
DOC
printf 'SHIFT HANDOVER\nLog every alarm and every valve position change before handing over.\n' >"$work/docs/handover.txt"
run airlock rag create manuals --embed demo:1.0 --chunk-tokens 128
cd "$work"  # document keys are the paths as given: docs/...
run airlock rag add manuals docs
run airlock rag query manuals "how often is the impeller seal replaced" -k 3
run airlock rag query manuals "generator load test" --mode bm25 -k 2 --text
printf '(the demo model has random weights: its answer is noise; the citations are real)\n'
run airlock ask manuals "How often must the generator be tested?" --model demo:1.0 -k 2 --max-tokens 24

printf '\ndemo finished: store was in %s (removed)\n' "$AIRLOCK_HOME"
