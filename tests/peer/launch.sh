#!/usr/bin/env bash
# launch.sh: a stand-in for llama-server for llama.cpp's own server test suite
# (tools/server/tests; its utils.py starts the binary named by
# LLAMA_SERVER_BIN_PATH with llama-server's flags). It maps those flags and the
# suite's models to local files, then execs the server named by
# AL_PEER_TARGET:
#
#   airlock  `airlock serve` ($AIRLOCK_BIN) on a fresh AIRLOCK_HOME holding the
#            model under the name the suite's --alias gives
#   llama    the real llama-server ($AL_LLAMA_SERVER), the control: the same
#            flags less the Hugging Face download ones, the model a local file
#
# Models: only the suite's stories260K presets are known offline; they map to
# $AL_FIXTURES/stories260K.gguf. Any other model (a Hugging Face repo or URL
# not cached here) ends the launch with exit 3 and a line on stderr that says
# so: tests/peer/conftest.py reports such a test as not runnable. A flag
# airlock has no equivalent for, where the test depends on it (--api-key,
# --lora, --slot-save-path ...), ends it with exit 2 and the reason; a flag that
# only tunes llama-server (--no-slots, -fa, --jinja ...) is dropped with a note.
# A flag that `airlock serve --help` lists under the same name is passed on
# as it is, so options airlock gains are used without editing this file.
#
# Work files (the AIRLOCK_HOME) go under $AL_PEER_WORK (default $TMPDIR);
# the runner removes them. The server is exec'd: the suite's SIGTERM reaches it.
set -euo pipefail

EXIT_UNSUPPORTED=2
EXIT_NO_MODEL=3
note() { printf 'peer-launch: %s\n' "$*" >&2; }
# why the launch ended, for conftest.py to put in the test's report
why() { [ -z "${AL_PEER_WORK:-}" ] || printf '%s\n' "$*" >"$AL_PEER_WORK/launch-error"; }
refuse() { note "error: $*"; why "$*"; exit "$EXIT_UNSUPPORTED"; }
no_model() { note "$*"; why "$*"; exit "$EXIT_NO_MODEL"; }

target=${AL_PEER_TARGET:-airlock}
fixture="${AL_FIXTURES:-}/stories260K.gguf"

# llama-server's options that take a value (those utils.py passes, and their
# short forms); every other flag stands alone.
takes_value=" --host --port --temp --seed --model -m --model-url --model-draft --hf-repo -hfr
 --hf-file -hff --models-dir --models-max --models-preset --cors-origins --batch-size -b
 --ubatch-size -ub --threads -t --n-gpu-layers -ngl --pooling --alias -a --tags --ctx-size -c
 --parallel -np -ctk -ctv -fa --n-predict -n --slot-save-path --grp-attn-n --grp-attn-w --lora
 --spec-type --api-key --spec-draft-n-max --spec-draft-n-min --spec-synth-len --spec-synth-rates
 --reasoning-format --reasoning --chat-template --chat-template-file --mmproj-url --media-path
 --sleep-idle-seconds --cache-ram --tools --tools-runtime --mcp-servers-config --mcp-servers-json "

# Parse into an ordered list of (flag, value) pairs; value "" for lone flags.
flags=() values=()
while [ $# -gt 0 ]; do
    f=$1; shift
    case "$f" in
        --*=*) flags+=("${f%%=*}"); values+=("${f#*=}"); continue ;;
    esac
    if [[ "$takes_value" == *" $f "* ]]; then
        [ $# -gt 0 ] || refuse "$f needs a value"
        flags+=("$f"); values+=("$1"); shift
    else
        flags+=("$f"); values+=("")
    fi
done
get() { # get FLAG...: the last value given for any of the names
    local i v="" n
    for i in "${!flags[@]}"; do
        for n in "$@"; do [ "${flags[$i]}" = "$n" ] && v=${values[$i]}; done
    done
    printf '%s' "$v"
}

# The model: a local file, or one of the presets known offline.
model=$(get --model -m)
hf_repo=$(get --hf-repo -hfr)
hf_file=$(get --hf-file -hff)
model_url=$(get --model-url)
if [ -n "$model" ]; then
    [ -f "$model" ] || no_model "model file '$model' does not exist"
elif [ -n "$model_url" ]; then
    no_model "model not available offline: --model-url $model_url (no download here)"
elif [ -n "$hf_repo" ]; then
    case "$hf_repo|$hf_file" in
        "ggml-org/test-model-stories260K|" | "ggml-org/models|tinyllamas/stories260K.gguf") model=$fixture ;;
        *)
            no_model "model not available offline: --hf-repo $hf_repo${hf_file:+ --hf-file $hf_file}" \
                "(only the stories260K presets map to a local file)"
            ;;
    esac
    [ -f "$model" ] || no_model "model not available offline: the fixture '$model' is missing (set AL_FIXTURES)"
fi
# No model at all: llama-server's router mode, which loads models on demand;
# airlock serve on an empty store is the nearest (it loads on demand too).

# ---- the control: llama-server itself, with a local model file ----
if [ "$target" = llama ]; then
    bin=${AL_LLAMA_SERVER:?AL_LLAMA_SERVER unset: the path of llama-server}
    args=()
    for i in "${!flags[@]}"; do
        case "${flags[$i]}" in
            --model | -m | --model-url | --hf-repo | -hfr | --hf-file | -hff | --offline) continue ;;
        esac
        args+=("${flags[$i]}")
        [[ "$takes_value" == *" ${flags[$i]} "* ]] && args+=("${values[$i]}")
    done
    exec "$bin" ${model:+--model "$model"} --offline "${args[@]}"
fi
[ "$target" = airlock ] || refuse "AL_PEER_TARGET must be airlock or llama, not '$target'"

# ---- airlock serve ----
bin=${AIRLOCK_BIN:?AIRLOCK_BIN unset: the path of the airlock binary}
help=$("$bin" serve --help 2>&1 || true)
airlock_has() { [[ "$help" == *"$1 "* || "$help" == *"$1,"* || "$help" == *"$1"$'\n'* ]]; }

# llama-server's --ctx-size is its KV cache's cells, as airlock's --ctx. Its
# slots share them with --kv-unified (and by default, where --parallel is
# not given); otherwise each slot has ctx-size / parallel of its own, which
# airlock's --ctx-per-seq caps a request at, in its always shared cache.
parallel=$(get --parallel -np)
unified=no
for f in "${flags[@]}"; do [ "$f" = --kv-unified ] && unified=yes; done
[ -n "$parallel" ] || unified=yes
args=()
alias_list=$(get --alias -a)
for i in "${!flags[@]}"; do
    f=${flags[$i]} v=${values[$i]}
    case "$f" in
        # the model (below)
        --model | -m | --model-url | --hf-repo | -hfr | --hf-file | -hff) continue ;;
        # the names it is served under: the first names it in the store
        # (below); all of them go on where airlock serve takes --alias
        --alias | -a) airlock_has --alias && args+=(--alias "$v"); continue ;;
        # always so in airlock: it never downloads, has no web UI, batches
        # requests, serves /metrics, applies templates through llama.cpp's Jinja
        --offline | --no-ui | --cont-batching | --metrics | --jinja | --no-jinja) continue ;;
        --ctx-size | -c)
            args+=(--ctx "$v")
            [ "$unified" = yes ] || args+=(--ctx-per-seq "$((v / parallel))")
            continue ;;
        --batch-size | -b) args+=(--batch "$v"); continue ;;
        --threads | -t) args+=(--threads "$v"); continue ;;
        --parallel | -np) args+=(--parallel "$v"); continue ;;
        -n) args+=(--n-predict "$v"); continue ;;
        --n-gpu-layers | -ngl) args+=(--gpu-layers "$v"); continue ;;
        --verbose) args+=(-v); continue ;;
        --api-key)
            refuse "--api-key: airlock's API keys are made by 'airlock apikey create' and stored" \
                "hashed; a key chosen on the command line has no equivalent"
            ;;
    esac
    if airlock_has "$f"; then
        args+=("$f")
        [[ "$takes_value" == *" $f "* ]] && args+=("$v")
        continue
    fi
    case "$f" in
        # tuning that does not change what a client sees
        --ubatch-size | -ub | -ctk | -ctv | -fa | --kv-unified | --swa-full | --no-slots | \
            --cache-ram | --no-cache-idle-slots | --sleep-idle-seconds | --backend_sampling | --no-mmproj)
            note "dropping $f${v:+ $v}: llama-server tuning with no airlock equivalent" ;;
        # airlock serve takes --temp, --seed, --n-predict, --reasoning and
        # --tags by these names (above); what is left has no airlock
        # equivalent that changes what a client sees
        --reasoning-format | --embedding)
            note "dropping $f${v:+ $v}: airlock serve has no such option" ;;
        *) refuse "$f${v:+ $v}: llama-server's option has no airlock equivalent" ;;
    esac
done

# The model goes into a fresh store under the first alias (the suite's model
# id), or "model" where the alias is not a name airlock accepts.
work=$(mktemp -d "${AL_PEER_WORK:-${TMPDIR:-/tmp}}/airlock-home.XXXXXX")
export AIRLOCK_HOME="$work/home" AIRLOCK_NO_PROGRESS=1
refs=()
if [ -n "$model" ]; then
    name=${alias_list%%,*}
    [ -n "$name" ] || name=model
    if ! out=$("$bin" add "$name:latest" "$model" 2>&1); then
        note "'$name' is not a model name airlock accepts ($out); using 'model'"
        name=model
        "$bin" add "$name:latest" "$model" >&2 || refuse "airlock add failed"
    fi
    refs=("$name")
fi
note "exec $bin serve ${refs[*]} ${args[*]}"
exec "$bin" serve "${refs[@]}" "${args[@]}"
