#!/usr/bin/env bash
# airlock finetune (issue 20 part 3): the fixture stories260K is fully
# fine-tuned on a few KB of text written here, through llama.cpp's training
# API on the CPU. The loss on that text goes down (the numbers are printed);
# the new version's provenance (base weights, the data file's digest, the
# hyperparameters, the loss curve, the operator) is in show and show --json
# and in its manifest (so a signed bundle carries it); its greedy output differs from the base's. A run
# killed (SIGKILL) in the middle of its second epoch resumes from the
# checkpoint of the first when run again, says so, and finishes. Refused
# with the store byte-identical: empty data, data too short for one window,
# a base that is no GGUF model, a '../' name, --resume with no checkpoint.
. "$(dirname "$0")/lib.sh"
FIX=$(fixture)
export TMPDIR="$T/fttmp"
mkdir "$TMPDIR"
export AIRLOCK_OPERATOR=ft-tester
GREEDY=(--temperature 0 --max-tokens 24)

airlock finetune --help | qgrep -- '--epochs N' || fail "finetune --help names --epochs"
airlock finetune --help | qgrep -- 'cannot train LoRA' || fail "finetune --help says it trains the full model"
airlock --help 2>&1 | qgrep '^ *finetune ' || fail "airlock --help lists finetune"

mkdir "$T/src"
printf -- '---\nlicense: mit\n---\n# stories260K\n' >"$T/src/README.md"
airlock add stories:base "$FIX" "$T/src/README.md" >/dev/null
BASEW="sha256:$(sha256sum "$FIX" | cut -d' ' -f1)"

# About 6 KB of a story the base has never seen, repeated with variations.
python3 - "$T/data.txt" <<'EOF'
import sys
names = ["Zorbo", "Quilla", "Mexit", "Pombo"]
things = ["purple kettle", "silver drum", "green lamp", "tiny boat"]
out = []
for i in range(48):
    n, t = names[i % 4], things[(i // 4) % 4]
    out.append(f"{n} the robot found a {t} on the hill. {n} said: beep, the {t} is mine now.")
open(sys.argv[1], "w").write(" ".join(out) + "\n")
EOF
DATAD="sha256:$(sha256sum "$T/data.txt" | cut -d' ' -f1)"
FT=(stories:base --data "$T/data.txt" --epochs 3 --lr 0.002 --ctx 256 --seed 7 --threads 2)

# 1. Train, kill in the middle of epoch 2, resume.
AIRLOCK_FINETUNE_TEST_STALL=2 "$AIRLOCK_BIN" finetune "${FT[@]}" -o stories:ft >"$T/k.out" 2>"$T/k.err" &
pid=$!
for _ in $(seq 1200); do
    qgrep 'stalled in epoch 2' "$T/k.err" && break
    kill -0 "$pid" 2>/dev/null || fail "the first run ended before epoch 2: $(cat "$T/k.err")"
    sleep 0.1
done
qgrep 'stalled in epoch 2' "$T/k.err" || fail "the first run never reached epoch 2: $(cat "$T/k.err")"
qgrep '^epoch 1/3: train loss' "$T/k.err" || fail "no epoch 1 line: $(cat "$T/k.err")"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
state=$(echo "$AIRLOCK_HOME"/tmp/finetune/*/state.json)
[ -f "$state" ] || fail "no checkpoint state after epoch 1"
[ "$(json_get 'd["epochs_done"]' <"$state")" = 1 ] || fail "checkpoint: $(cat "$state")"
airlock show stories:ft >/dev/null 2>&1 && fail "a killed run added a version"
out=$(airlock finetune "${FT[@]}" -o stories:ft --json 2>"$T/r.err") || fail "resumed run: $(cat "$T/r.err")"
qgrep 'resuming from the checkpoint after epoch 1/3' "$T/r.err" || fail "the re-run did not resume: $(cat "$T/r.err")"
qgrep '^epoch 1/3' "$T/r.err" && fail "the resumed run trained epoch 1 again: $(cat "$T/r.err")"
qgrep '^epoch 3/3: train loss' "$T/r.err" || fail "the resumed run did not finish: $(cat "$T/r.err")"
[ ! -e "$(dirname "$state")" ] || fail "the checkpoint was left behind after the version was added"
ok "killed (SIGKILL) in epoch 2, the re-run resumed after epoch 1 and finished"

# 2. The loss on the training text went down.
echo "$out" | python3 -c '
import json, sys
p = json.load(sys.stdin)["provenance"]; l = p["loss"]
print("  loss (nats/token): train %.4f -> %.4f, held-out %.4f -> %.4f" % (l["before"]["train"], l["after"]["train"], l["before"]["val"], l["after"]["val"]))
for e in l["epochs"]:
    print("  epoch %d: train %.4f, held-out %.4f" % (e["epoch"], e["train"], e["val"]))
assert l["after"]["train"] < l["before"]["train"] - 0.1, l
assert l["after"]["val"] < l["before"]["val"], l
assert [e["epoch"] for e in l["epochs"]] == [1, 2, 3], l
assert p["resumed_after_epoch"] == 1, p
' || fail "the loss did not go down: $out"
ok "the loss on the training text went down"

# 3. Provenance: show, show --json, the manifest.
airlock show stories:ft >"$T/show.txt"
qgrep "finetuned from stories@sha256:.* (stories:base) by ft-tester" "$T/show.txt" || fail "show: $(cat "$T/show.txt")"
qgrep "base weights    $BASEW" "$T/show.txt" || fail "show names the base weights: $(cat "$T/show.txt")"
qgrep "data            data.txt  [0-9]* bytes  $DATAD" "$T/show.txt" || fail "show lists the data digest: $(cat "$T/show.txt")"
qgrep "hyperparameters full, epochs 3, lr 0.002, ctx 256, seed 7, adamw" "$T/show.txt" ||
    fail "show lists the hyperparameters: $(cat "$T/show.txt")"
qgrep "epoch 3 .* train [0-9.]*, held-out" "$T/show.txt" || fail "show lists the loss curve: $(cat "$T/show.txt")"
qgrep -F "Zorbo" "$T/show.txt" && fail "show leaks the training text"
M=$(airlock show stories:ft --json | json_get 'd["manifest"]')
python3 - "$AIRLOCK_HOME/blobs/sha256/${M#sha256:}" "$BASEW" "$DATAD" <<'EOF' || fail "the manifest's io.airlock.finetuned"
import json, sys
f = json.loads(json.load(open(sys.argv[1]))["annotations"]["io.airlock.finetuned"])
assert f["base_weights"] == sys.argv[2] and f["data"][0]["sha256"] == sys.argv[3], f
assert f["hyperparameters"] == {"mode": "full", "epochs": 3, "lr": 0.002, "ctx": 256, "seed": 7, "optimizer": "adamw"}, f
assert f["operator"] == "ft-tester", f
EOF
airlock show stories:ft --json | python3 -c '
import json, sys
d = json.load(sys.stdin); f = d["finetuned"]
assert f["data"][0]["file"] == "data.txt" and f["tokens"]["val_windows"] >= 1, f
' || fail "show --json of the fine-tuned version"
airlock show stories:ft --json | python3 -c '
import json, sys, hashlib
d = json.load(sys.stdin)
f = {x["path"]: x["digest"] for x in d["files"]}
want = "sha256:" + hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
assert f.get("README.md") == want and len(f) == 2 and "stories.gguf" in f, f
' "$T/src/README.md" || fail "stories:ft carries the base's README.md"
ok "show, show --json and the manifest record base, data digest, hyperparameters, loss curve and operator"

# A signed bundle carries the provenance into a second store.
airlock key gen -o "$T/build" --no-password >/dev/null
airlock pack stories:ft -o "$T/ft.tar" --sign "$T/build.key" >/dev/null
HOME1=$AIRLOCK_HOME
export AIRLOCK_HOME="$T/home2"
airlock init >/dev/null
airlock trust add build --minisign "$T/build.pub" --models '*' >/dev/null
airlock ingest "$T/ft.tar" >/dev/null || fail "ingest the fine-tuned version"
airlock show stories >"$T/show2.txt"
qgrep "data            data.txt  [0-9]* bytes  $DATAD" "$T/show2.txt" || fail "show after ingest: $(cat "$T/show2.txt")"
[ "$(airlock show stories --json | json_get 'd["finetuned"]["base_weights"]')" = "$BASEW" ] || fail "show --json after ingest"
export AIRLOCK_HOME=$HOME1
ok "a signed bundle carries the provenance into another store"

# 4. It loads and answers differently from the base.
a=$(airlock run stories:base "Once upon a time" "${GREEDY[@]}" 2>/dev/null)
b=$(airlock run stories:ft "Once upon a time" "${GREEDY[@]}" 2>"$T/run.err") || fail "run stories:ft: $(cat "$T/run.err")"
echo "  base:       $a"
echo "  fine-tuned: $b"
if [ -z "$b" ] || [ "$a" = "$b" ]; then fail "the fine-tuned version answers as the base does: '$b'"; fi
ok "the fine-tuned version loads and its greedy output differs from the base's"

# 5. Refusals: a clear message, the store byte-identical, no checkpoint.
printf 'notes\n' >"$T/README.md"
airlock add notes:1 "$T/README.md" >/dev/null 2>&1
: >"$T/empty.txt"
printf 'Zorbo the robot found a lamp.\n' >"$T/short.txt"
mkdir "$T/emptydir"
state() { (cd "$AIRLOCK_HOME" && find . -type f ! -name '*.lock' | sort | xargs sha256sum); }
state >"$T/before"
refused() { # STATUS MESSAGE finetune-args...
    local want=$1 msg=$2; shift 2
    expect_status "$want" airlock finetune "$@"
    echo "$OUT" | qgrep -F -- "$msg" || fail "unclear refusal of finetune $*: $OUT"
    state | diff "$T/before" - >/dev/null || fail "a refused finetune $* changed the store"
    [ ! -e "$AIRLOCK_HOME/tmp/finetune" ] || [ -z "$(ls -A "$AIRLOCK_HOME/tmp/finetune")" ] ||
        fail "a refused finetune $* left a checkpoint"
}
A=(--epochs 1 --lr 0.001)
refused 4 "is empty: there is nothing to train on" stories:base --data "$T/empty.txt" "${A[@]}" -o stories:x
refused 4 "is empty: there is nothing to train on" stories:base --data "$T/emptydir" "${A[@]}" -o stories:x
refused 4 "the training text is too short" stories:base --data "$T/short.txt" "${A[@]}" -o stories:x
refused 4 "'notes:1' is not a GGUF model" notes:1 --data "$T/data.txt" "${A[@]}" -o stories:x
refused 2 "-o needs NAME[:TAG], not '../x:1'" stories:base --data "$T/data.txt" "${A[@]}" -o ../x:1
refused 2 "--ctx must be a multiple of 256" stories:base --data "$T/data.txt" "${A[@]}" --ctx 300 -o stories:x
refused 2 "needs --lr" stories:base --data "$T/data.txt" --epochs 1 -o stories:x
refused 3 "--resume: no checkpoint of this job" stories:base --data "$T/data.txt" "${A[@]}" --resume -o stories:x
refused 3 "" nosuch:1 --data "$T/data.txt" "${A[@]}" -o stories:x
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary files left behind: $(ls -A "$TMPDIR")"
ok "refused with the store unchanged: empty data, an empty folder, too short, no GGUF, '../' name, bad ctx, no lr, no checkpoint, unknown base"

# 6. A damaged checkpoint is refused before llama.cpp reads it; --restart
# discards it and starts afresh.
FT2=(stories:base --data "$T/data.txt" --epochs 2 --lr 0.001 --threads 2 -o stories:ft2)
AIRLOCK_FINETUNE_TEST_STALL=2 "$AIRLOCK_BIN" finetune "${FT2[@]}" >/dev/null 2>"$T/k2.err" &
pid=$!
for _ in $(seq 1200); do
    qgrep 'stalled in epoch 2' "$T/k2.err" && break
    kill -0 "$pid" 2>/dev/null || fail "the run ended before epoch 2: $(cat "$T/k2.err")"
    sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
ck=$(echo "$AIRLOCK_HOME"/tmp/finetune/*/epoch-1.gguf)
[ -f "$ck" ] || fail "no checkpoint of epoch 1: $(cat "$T/k2.err")"
printf '\x01' | dd of="$ck" bs=1 seek=$(($(stat -c %s "$ck") - 8)) conv=notrunc status=none
expect_status 5 airlock finetune "${FT2[@]}"
echo "$OUT" | qgrep "does not match the digest its state recorded" || fail "unclear refusal of a damaged checkpoint: $OUT"
airlock show stories:ft2 >/dev/null 2>&1 && fail "a damaged checkpoint gave a version"
airlock finetune "${FT2[@]}" --restart >/dev/null 2>"$T/r2.err" || fail "--restart: $(cat "$T/r2.err")"
qgrep resuming "$T/r2.err" && fail "--restart resumed: $(cat "$T/r2.err")"
qgrep '^epoch 2/2' "$T/r2.err" || fail "--restart did not train: $(cat "$T/r2.err")"
[ -z "$(ls -A "$AIRLOCK_HOME/tmp/finetune")" ] || fail "a checkpoint was left: $(ls -A "$AIRLOCK_HOME/tmp/finetune")"
ok "a damaged checkpoint is refused (exit 5); --restart discards it and trains afresh"
