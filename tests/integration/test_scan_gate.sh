#!/usr/bin/env bash
# The scan at the boundary (issue 18): add, pack and ingest scan every file.
# A dangerous one (a pickle importing os.system, a GGUF with a NaN weight, an
# executable with its bit set inside a bundle) is refused with exit 6, the
# store byte-identical (blobs by hash, index.json, ls --json), exactly one
# "scan-refused" event naming the file, verdict, rules and findings; pack
# writes no bundle. A warning is accepted and shown by show and ls --json; an
# ok model shows "ok". --allow-dangerous overrides and is recorded.
. "$(dirname "$0")/lib.sh"
command -v minisign >/dev/null || skip_test "minisign missing"
gen="$AL_BUILD/airlock-ggufgen"
cd "$T"
python3 - "$T" <<'PY'
import os, pickle, sys
out = sys.argv[1]
class OsSystem:
    def __reduce__(self): return (os.system, ('touch ' + os.path.join(out, 'RAN'),))
open(os.path.join(out, 'evil.pkl'), 'wb').write(pickle.dumps(OsSystem(), protocol=4))
PY
printf '#!/bin/sh\necho setup\n' >setup.sh
cp /bin/true tool
chmod 755 tool
shape=(--layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256
       --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
"$gen" --out ok.gguf --type f16 --seed 3 "${shape[@]}" 2>/dev/null || fail "generating ok.gguf"
"$gen" --out nan.gguf --type f16 --seed 3 --plant nan --plant-tensor blk.1.ffn_up.weight --plant-at 40 \
    "${shape[@]}" 2>/dev/null || fail "generating nan.gguf"
airlock key gen -o build --no-password >/dev/null
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock add base ok.gguf >/dev/null

snapshot() {
    {
        (cd "$AIRLOCK_HOME" && find blobs -type f -exec sha256sum {} + | sort && sha256sum index.json)
        airlock ls --json
    } >"$1"
}
n_events() { airlock log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# last_event KIND: the newest event's kind, and the detail's scan verdict and file.
last_event() {
    airlock log --json | python3 -c '
import json, sys
e = json.load(sys.stdin)[-1]
s = e["detail"].get("scan", {})
f = (s.get("files") or [{}])[0]
print(e["kind"], s.get("verdict"), s.get("rules"), f.get("file"), len(f.get("first", [])))'
}
# refused WHAT CMD...: exit 6 with the message, store unchanged, one scan-refused event.
refused() {
    local what=$1; shift
    snapshot before
    local n0; n0=$(n_events)
    expect_status 6 "$@"
    echo "$OUT" | qgrep "refused: '$what' is dangerous" || fail "$*: no refusal naming $what: $OUT"
    snapshot after
    cmp -s before after || { diff before after >&2; fail "$*: the store changed"; }
    [ "$(n_events)" -eq $((n0 + 1)) ] || fail "$*: expected one new event"
    local ev; ev=$(last_event)
    case "$ev" in "scan-refused dangerous 1 $what "[1-5]) ;; *) fail "$*: event is '$ev'" ;; esac
    [ -z "$(find "$AIRLOCK_HOME/tmp" -type f)" ] || fail "$*: temporary files left"
}

# ---- add ----
refused evil.pkl airlock add bad evil.pkl
echo "$OUT" | qgrep -E "imports (os|posix)\.system: runs commands" || fail "add: finding not named: $OUT"
refused evil.pkl airlock add bad:2 ok.gguf evil.pkl
refused nan.gguf airlock add bad nan.gguf
echo "$OUT" | qgrep "blk.1.ffn_up.weight" || fail "add nan: tensor not named: $OUT"
[ ! -e RAN ] || fail "a pickle ran"
ok "add: a pickle calling os.system and a GGUF with NaN refused (exit 6), store unchanged, one scan-refused event"

airlock add warned:1 ok.gguf setup.sh >/dev/null
airlock show warned:1 | qgrep "scan      warn (scan rules 1, airlock " || fail "show: no warn line: $(airlock show warned:1)"
airlock show warned:1 | qgrep "setup.sh.*warn: a script for '/bin/sh'" || fail "show: warn file not named"
airlock show base | qgrep "scan      ok (scan rules 1" || fail "show: base not ok: $(airlock show base)"
v=$(airlock ls --json | json_get '[(x["name"], x["scan"]["verdict"], x["scan"]["rules"]) for x in d]')
[ "$v" = "[('base', 'ok', 1), ('warned', 'warn', 1)]" ] || fail "ls --json scan: $v"
airlock show --json warned:1 | json_get 'd["scan"]["files"][1]["verdict"]' | qgrep '^warn$' || fail "show --json"
ok "add: a warning is accepted and shown by show and ls --json; an ok model shows ok"

airlock add risky evil.pkl --allow-dangerous >/dev/null 2>&1 || fail "--allow-dangerous refused"
airlock log --json | json_get '[e["kind"] for e in d][-2:]' | qgrep "\['add', 'scan-override'\]" || fail "override not recorded"
airlock show risky | qgrep "scan      dangerous" || fail "show risky: $(airlock show risky)"
airlock rm risky >/dev/null
ok "add --allow-dangerous: accepted, a scan-override event, show says dangerous"

# ---- pack: refused on the build host, nothing written ----
mkdir -p src
cp ok.gguf evil.pkl src/
expect_status 6 airlock pack evil:1 src/ok.gguf src/evil.pkl -o evil.tar --sign build.key
echo "$OUT" | qgrep "pack refused: 'evil.pkl' is dangerous" || fail "pack: $OUT"
[ -z "$(ls evil.tar* 2>/dev/null)" ] || fail "pack wrote a bundle"
expect_status 6 airlock pack nan:1 nan.gguf -o nan.tar --sign build.key
[ -z "$(ls nan.tar* 2>/dev/null)" ] || fail "pack wrote a bundle"
airlock pack good:1 ok.gguf -o good.tar --sign build.key | qgrep "scan      ok" || fail "pack of an ok model"
ok "pack: a dangerous pickle or NaN model refused, no bundle file written; an ok one says scan ok"

# ---- ingest: a signed native bundle carrying a dangerous pickle ----
airlock pack evil:1 ok.gguf evil.pkl -o evil.tar --sign build.key --allow-dangerous >/dev/null 2>&1
refused evil.pkl airlock ingest evil.tar
airlock pack nan:1 nan.gguf -o nan.tar --sign build.key --allow-dangerous >/dev/null 2>&1
refused nan.gguf airlock ingest nan.tar

# A plain bundle by hand carrying an executable with its bit set.
mkdir plain
cp ok.gguf plain/model.gguf
cp tool plain/tool
(cd plain && sha256sum model.gguf tool >checksums.txt &&
    minisign -S -s ../build.key -m checksums.txt >/dev/null </dev/null)
python3 - <<'PY'
import tarfile
with tarfile.open("exec.tar", "w") as t:
    for n in ("checksums.txt", "checksums.txt.minisig", "model.gguf", "tool"):
        ti = t.gettarinfo("plain/" + n, n)
        ti.mode = 0o755 if n == "tool" else 0o444
        t.addfile(ti, open("plain/" + n, "rb"))
PY
refused tool airlock ingest exec.tar --as tooly:1
echo "$OUT" | qgrep "executable bit" || fail "ingest exec: $OUT"
ok "ingest: a signed bundle with a dangerous pickle, a NaN model, an executable with +x: refused, store unchanged, one event"

airlock ingest good.tar >/dev/null
airlock show good | qgrep "scan      ok (scan rules 1" || fail "show good: $(airlock show good)"
airlock ingest exec.tar --as tooly:1 --allow-dangerous >/dev/null
airlock log --json | json_get '[e["kind"] for e in d][-2:]' | qgrep "\['ingest', 'ingest-override'\]" || fail "ingest override not recorded"
airlock show tooly | qgrep "scan      dangerous" || fail "show tooly"
ok "ingest: an ok bundle records scan ok; --allow-dangerous accepts and records the override"

# ---- the site's policy: scan require ok refuses a warning on add and ingest ----
# refused_warn WHAT CMD...: exit 6 naming the rule, store unchanged, one scan-refused event (warn).
refused_warn() {
    local what=$1; shift
    snapshot before
    local n0; n0=$(n_events)
    expect_status 6 "$@"
    echo "$OUT" | qgrep "refused: '$what' is warn" || fail "$*: no refusal naming $what: $OUT"
    echo "$OUT" | qgrep "the rule: the site's policy says scan: ok" || fail "$*: rule not named: $OUT"
    snapshot after
    cmp -s before after || { diff before after >&2; fail "$*: the store changed"; }
    [ "$(n_events)" -eq $((n0 + 1)) ] || fail "$*: expected one new event"
    local ev; ev=$(last_event)
    case "$ev" in "scan-refused warn 1 $what "[1-5]) ;; *) fail "$*: event is '$ev'" ;; esac
}
airlock pack warned:2 ok.gguf setup.sh -o warned.tar --sign build.key >/dev/null || fail "pack of a warn file"
airlock policy scan require ok >/dev/null || fail "policy scan require ok"
airlock policy license unknown allow >/dev/null # these files declare no license (test_license_gate.sh)
refused_warn setup.sh airlock add warned:3 ok.gguf setup.sh
refused_warn setup.sh airlock ingest warned.tar
airlock add base:2 ok.gguf >/dev/null || fail "scan: ok refused an ok file"
airlock policy scan require warn >/dev/null
airlock add warned:3 ok.gguf setup.sh >/dev/null || fail "scan: warn refused a warn file"
airlock ingest warned.tar >/dev/null || fail "scan: warn refused a warn bundle"
ok "policy scan require ok: a warn file refused on add and ingest (exit 6, rule named, store unchanged, one event); ok files pass; warn lets it in again"
