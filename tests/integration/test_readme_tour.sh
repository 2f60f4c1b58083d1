#!/usr/bin/env bash
# The README's tour runs as written (issue 16, part 6). Every command of the
# ```sh blocks between "## A short tour" and the next heading is taken from
# README.md and run, in order, in one shell, in a scratch directory that holds
# the files the tour names (model.gguf, legal-lora.gguf, tiny-f32.gguf, card.json, plain.tar.gz, ...).
# Only what cannot be literal is rewritten, and each rewrite is listed here:
#   /var/lib/airlock        -> a scratch store
#   reg.site:5000           -> 127.0.0.1:PORT, a loopback registry (Debian's docker-registry) with TLS from a test CA
#   --port 8741, 8742       -> free ports, and each `airlock serve` runs in the background
#   "# inside"              -> another store (AIRLOCK_HOME), made with `airlock init`: the air-gapped machine
# Around the commands the test supplies what a person would: the key
# password (AIRLOCK_KEY_PASSWORD), the API key `apikey create` printed
# (AIRLOCK_API_KEY) and the server's address (AIRLOCK_SERVER). A command that
# fails fails the test with its output, so the README cannot drift from the
# program.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
. "$(dirname "$0")/registry_lib.sh"
reg_need_tools
for t in gpg openssl sha256sum curl; do
    command -v "$t" >/dev/null || skip_test "$t missing (scripts/bootstrap.sh installs it)"
done
README="$(dirname "$0")/../../README.md"
GEN="$(dirname "$AIRLOCK_BIN")/airlock-ggufgen"
EDIT="$(dirname "$0")/gguf_edit.py"

# The tour's commands, one per line, in order.
awk '/^## A short tour/ {on=1; next} on && /^## / {exit}
     on && /^```sh/ {code=1; next} code && /^```/ {code=0; next} on && code' "$README" >"$T/tour.txt"
[ "$(grep -c 'airlock ' "$T/tour.txt")" -ge 30 ] || fail "README's tour has too few commands: $(cat "$T/tour.txt")"

# A scratch directory with what the tour names.
W="$T/tour"
mkdir -p "$W/bin" "$W/docs"
ln -s "$AIRLOCK_BIN" "$W/bin/airlock"
export PATH="$W/bin:$PATH"
cd "$W"
cp "$(fixture)" model.gguf
cp model.gguf model-v2.gguf && python3 "$EDIT" model-v2.gguf --first 1 >/dev/null
"$GEN" --lora-for model.gguf --out legal-lora.gguf --seed 3 2>/dev/null || fail "ggufgen --lora-for failed"
cp model.gguf tiny-f32.gguf   # the fixture is F32: the tour quantizes it
python3 - <<'EOF'   # text for the tour's finetune: a few windows of 256 tokens
names, things = ["Zorbo", "Quilla", "Mexit", "Pombo"], ["purple kettle", "silver drum", "green lamp", "tiny boat"]
open("notes.txt", "w").write(" ".join(f"{names[i % 4]} the robot found a {things[(i // 4) % 4]} on the hill."
                                      for i in range(64)) + "\n")
EOF
"$GEN" --reranker --out reranker.gguf --layers 2 --embd 64 --ff 128 --heads 4 --ctx 512 --seed 3 \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-bert-bge.gguf" 2>/dev/null || fail "ggufgen --reranker failed"
printf '{"version": 1, "merges": []}\n' >tokenizer.json
printf '{"title": "llama3 (the tour)", "description": "the fixture under another name",\n "licenses": ["MIT"], "origin": "tests"}\n' >card.json
printf -- '---\nlicense: mit\n---\n# llama3 (the tour)\n' >README.md
python3 - <<'EOF'
import pickle, struct, json
# a checkpoint that only holds plain data (ok) and a small valid safetensors file
with open("model.pt", "wb") as f:
    pickle.dump({"step": 1, "lr": 0.001}, f, protocol=4)
hdr = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
with open("model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 8)
EOF
# What other tools keep (import ollama, import oci): an Ollama models directory
# and an oci-archive in Docker Model Runner's media types, the fixture as the weights.
python3 - model.gguf <<'EOF'
import hashlib, io, json, os, sys, tarfile
gguf = open(sys.argv[1], "rb").read()
def put(d, data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "sha256-" + h), "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
cfg = put("ollama-models/blobs", b'{"model_format":"gguf"}')
layers = [dict(put("ollama-models/blobs", data), mediaType="application/vnd.ollama.image." + kind)
          for kind, data in (("model", gguf), ("template", b"{{ .Prompt }}"), ("params", b'{"temperature":0.7}'),
                             ("license", b"MIT License"))]
os.makedirs("ollama-models/manifests/registry.ollama.ai/library/llama3.2")
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": dict(cfg, mediaType="application/vnd.docker.container.image.v1+json"), "layers": layers},
          open("ollama-models/manifests/registry.ollama.ai/library/llama3.2/1b", "w"))
blobs = {}
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    blobs["blobs/sha256/" + h] = data
    return {"digest": "sha256:" + h, "size": len(data)}
config = blob(b'{"config":{"format":"gguf"},"descriptor":{}}')
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": dict(config, mediaType="application/vnd.docker.ai.model.config.v0.1+json"),
                  "layers": [dict(blob(gguf), mediaType="application/vnd.docker.ai.gguf.v3")]}).encode()
index = json.dumps({"schemaVersion": 2, "manifests": [
    dict(blob(man), mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": "tinyllama:dmr"})]}).encode()
with tarfile.open("llama3-dmr.tar", "w") as t:
    for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + sorted(blobs.items()):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
EOF
printf 'The pump seal is replaced every 2000 hours of running.\n' >docs/pump.txt
printf 'The generator is load tested once a month.\n' >docs/generator.txt

# The operator's hand-made bundle: sha256sum + gpg (ingest ... --as foo:1.0).
export GNUPGHOME="$T/gnupg"
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
# Every server the tour started is stopped the way serve_stop stops one.
SERVE_PIDS=()
stop_all_servers() {
    local p
    for p in "${SERVE_PIDS[@]}"; do SERVE_PID=$p; serve_stop; done
}
trap 'rc=$?; gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true; (stop_all_servers) || rc=1; reg_stop_all; rm -rf "$T"; exit $rc' EXIT
gpg --batch --quick-gen-key --passphrase '' --pinentry-mode loopback 'Ops <ops@example.org>' ed25519 sign never 2>/dev/null
gpg --armor --export ops@example.org >ops.asc
mkdir plain && cp model.gguf plain/foo.gguf && cp README.md plain/README.md
(cd plain && sha256sum foo.gguf README.md >checksums.txt && gpg --batch --detach-sign --armor checksums.txt 2>/dev/null &&
    tar czf ../plain.tar.gz foo.gguf README.md checksums.txt checksums.txt.asc)

# The site's registry, with TLS from the site CA (site-ca.pem).
reg_ca
cp "$REG_CA" site-ca.pem
reg_start site tls
SPORT=$(free_port)
RPORT=$(free_port)
export AIRLOCK_KEY_PASSWORD=tour-password

n=0
while IFS= read -r line; do
    case $line in
    '# inside'*)
        export AIRLOCK_HOME="$T/inside"
        airlock init >/dev/null
        echo "+ (inside: AIRLOCK_HOME=$AIRLOCK_HOME, airlock init)"
        continue ;;
    '' | '#'*) continue ;;
    esac
    n=$((n + 1))
    cmd=${line//\/var\/lib\/airlock/$T/home}
    cmd=${cmd//reg.site:5000/$REG}
    cmd=${cmd//--port 8741/--port $SPORT}
    cmd=${cmd//8742/$RPORT}
    echo "+ $line"
    case $cmd in
    'airlock serve '*)
        log="$T/serve.${#SERVE_PIDS[@]}.log"
        # exec: $! must be the server itself. Through the airlock function
        # the background subshell forked it, and stopping the subshell left
        # the server running after the test (seen in CI: two per run).
        eval "exec \"\$AIRLOCK_BIN\" ${cmd#airlock }" >"$log" 2>&1 &
        SERVE_PIDS+=($!)
        SERVE_LOGS+=("$log")
        wait_until 60 "airlock serve to be ready: $(cat "$log")" grep -q 'airlock: ready' "$log"
        case $cmd in *"--port $SPORT"*) export AIRLOCK_SERVER="http://127.0.0.1:$SPORT" ;; esac
        continue ;;
    esac
    set +e
    t0=$SECONDS
    eval "$cmd" >"$T/out" 2>&1
    st=$?
    set -e
    echo "  ($((SECONDS - t0)) s)"
    sed 's/^/  /' "$T/out" | head -20
    [ "$st" = 0 ] || { tail -8 "$T/out"; fail "README tour command $n exited $st: $line"; }
    case $cmd in
    'airlock apikey create'*)
        AIRLOCK_API_KEY=$(grep -o 'al-[A-Za-z0-9_-]*' "$T/out" | tail -1)
        [ -n "$AIRLOCK_API_KEY" ] || fail "apikey create printed no key"
        export AIRLOCK_API_KEY KEY="$AIRLOCK_API_KEY" ;;
    esac
done <"$T/tour.txt"
ok "the README's tour: $n commands ran as written"
