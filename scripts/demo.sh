#!/usr/bin/env bash
# demo.sh: the main job on an embedded default, start to finish, with
# readable output. Generates its own model (nothing is downloaded), then walks
# through the store: add, show, tag, a second version, rollback, fsck, log,
# and ends by serving the model and answering a request through the API, next
# to a real trained model that is part of the tree (tests/fixtures).
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

# ---- both sides of the air gap ----
inside="$work/airgapped"
step "build host: make a signing key, pack demo:2.0 into a signed bundle"
run airlock key gen -o "$work/build-host" --no-password
run airlock pack demo:2.0 -o "$work/demo-2.0.tar" --sign "$work/build-host.key" --expires 2099-12-31
step "build host: version 2.1 (a chat template added) ships as a signed delta from 2.0"
run "$gen" --out "$work/demo-v21.gguf" --layers 2 --embd 64 --ff 128 --heads 4 --kv-heads 2 --ctx 256 --seed 2 --name demo \
    --type q8_0 --chat-template '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}'
run airlock add demo:2.1 "$work/demo-v21.gguf"
run airlock delta --dry-run demo:2.0 demo:2.1
run airlock delta demo:2.0 demo:2.1 -o "$work/demo-2.1-delta.tar" --sign "$work/build-host.key" --expires 2099-12-31 \
    --seq "$(( $(date +%s) + 60 ))"
step "anyone can check it with standard tools"
mkdir "$work/check" && tar xf "$work/demo-2.0.tar" -C "$work/check"
printf '$ (cd check && sha256sum -c checksums.txt && minisign -Vm checksums.txt -p build-host.pub)\n'
(cd "$work/check" && sha256sum -c checksums.txt)
if command -v minisign >/dev/null; then minisign -Vm "$work/check/checksums.txt" -p "$work/build-host.pub"; fi

step "air-gapped side: a second store trusts the key, verifies, ingests"
export AIRLOCK_HOME="$inside"
run airlock init
run airlock trust add build-host --minisign "$work/build-host.pub" --models 'demo*'
run airlock verify "$work/demo-2.0.tar"
run airlock ingest "$work/demo-2.0.tar"
run airlock show demo:2.0
step "a replayed bundle is refused, and the refusal recorded"
printf '$ airlock ingest demo-2.0.tar\n'
airlock ingest "$work/demo-2.0.tar" 2>&1 | tail -2 || true
run airlock log

step "air-gapped side: the delta names its base; ingest rebuilds 2.1 from 2.0 and proves every digest"
run airlock verify "$work/demo-2.1-delta.tar"
run airlock ingest "$work/demo-2.1-delta.tar"
run airlock show demo:2.1
printf '$ sha256sum demo-v21.gguf "$(airlock path demo:2.1)"\n'
sha256sum "$work/demo-v21.gguf" "$(airlock path demo:2.1)"

if command -v docker-registry >/dev/null; then
    step "inside the gap: the site's OCI registry carries it to a second node, as to a Pi"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/registry" "$port" >"$work/registry.yml"
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    reg_pid=$!
    trap 'kill "$reg_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
    run airlock key gen -o "$work/site" --no-password
    run airlock push demo:2.0 "127.0.0.1:$port/models/demo:2.0" --plain-http --sign "$work/site.key"
    export AIRLOCK_HOME="$work/node"
    run airlock init
    run airlock trust add site --minisign "$work/site.pub" --models 'demo*'
    run airlock pull "127.0.0.1:$port/models/demo:2.0" --plain-http
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    trap 'rm -rf "$work"' EXIT
    export AIRLOCK_HOME="$inside"

    export AIRLOCK_HOME="$inside"
fi

step "air-gapped side: serve the ingested model over the OpenAI-compatible API and ask it"
printf '(and a real trained model, the 1 MB TinyStories fixture, beside it)\n'
run airlock add stories:260k "$here/tests/fixtures/stories260K.gguf"
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
printf '$ curl -s %s/v1/completions -d '"'"'{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'"'"'\n' "$base"
curl -s "$base/v1/completions" -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])'
printf '(the real model, loaded on demand: its greedy story is what llama.cpp itself gives)\n'
run kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true

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
run airlock rag create manuals --embed demo --chunk-tokens 128
cd "$work"  # document keys are the paths as given: docs/...
run airlock rag add manuals docs
run airlock rag query manuals "how often is the impeller seal replaced" -k 3
run airlock rag query manuals "generator load test" --mode bm25 -k 2 --text
printf '(the answer comes from the TinyStories fixture, a real model that only knows children'"'"'s stories:\n its words are English but it cannot know the answer; the retrieval and the citations are the point)\n'
run airlock ask manuals "How often must the generator be tested?" --model stories:260k -k 2 --max-tokens 32 --temperature 0

# Last: an API key in the inside store turns key checks on for every route.
if [ -f "$work/site.key" ]; then
    step "every node a mirror: the inside server serves its own store as a registry, and a Pi pulls from it"
    printf '$ airlock apikey create pis --scopes pull\n'
    created=$(airlock apikey create pis --scopes pull)
    printf '%s\n' "$created"
    pull_key=$(printf '%s\n' "$created" | grep -o 'al-[A-Za-z0-9_-]*' | tail -1)
    printf '$ airlock serve --registry --registry-sign site.key --port 0 &\n'
    "$bin" serve --registry --registry-sign "$work/site.key" --port 0 -q 2>"$work/mirror.log" &
    mirror_pid=$!
    trap 'kill "$mirror_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
    for _ in $(seq 1 300); do grep -q 'airlock: ready' "$work/mirror.log" && break; sleep 0.1; done
    mirror=$(grep -o 'http://[^ ]*' "$work/mirror.log" | head -1)
    mirror=${mirror#http://}
    mirror=${mirror%/}
    export AIRLOCK_HOME="$work/pi"
    run airlock init
    run airlock trust add site --minisign "$work/site.pub" --models 'demo*'
    printf '$ echo "$KEY" | airlock pull --plain-http --user pi %s/demo:2.0\n' "$mirror"
    echo "$pull_key" | airlock pull --plain-http --user pi "$mirror/demo:2.0"
    kill -TERM "$mirror_pid" 2>/dev/null || true
    wait "$mirror_pid" 2>/dev/null || true
    trap 'rm -rf "$work"' EXIT
    export AIRLOCK_HOME="$inside"
fi

printf '\ndemo finished: stores were in %s (removed)\n' "$work"
