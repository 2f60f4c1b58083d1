#!/usr/bin/env bash
# airlock policy: rules set, shown (text and --json), each change an event in
# the chained log; policy check on a model card and on GGUF files made by
# airlock-ggufgen --license (agreeing, disagreeing, none), its exit statuses;
# --pack's table; a corrupt policy file is a clear error and stays unchanged.
source "$(dirname "$0")/lib.sh"
C="$T/c"
mkdir -p "$C"
airlock init >/dev/null

# The default policy, before anything is written.
airlock policy show | qgrep "unknown licenses  ack" || fail "default unknown is not ack"
[ "$(airlock policy show --json | json_get 'd["scan"]')" = warn ] || fail "default scan is not warn"
[ ! -e "$AIRLOCK_HOME/policy.json" ] || fail "show wrote a policy file"
ok "default policy: unknown ack, scan warn, nothing written"

airlock policy license allow apache-2.0 MIT >/dev/null
airlock policy license ack Llama3.1 gemma >/dev/null
airlock policy license deny cc-by-nc-4.0 proprietary >/dev/null
airlock policy license rm gemma >/dev/null
airlock policy scan require ok >/dev/null
j=$(airlock policy show --json)
[ "$(echo "$j" | json_get 'd["licenses"]')" = "{'apache-2.0': 'allow', 'cc-by-nc-4.0': 'deny', 'llama3.1': 'ack', 'mit': 'allow', 'proprietary': 'deny'}" ] \
    || fail "rules: $j"
[ "$(echo "$j" | json_get 'd["scan"]')" = ok ] || fail "scan: $j"
airlock policy show | qgrep -E "^llama3.1 +ack +conditions" || fail "show text: $(airlock policy show)"
ok "rules set, removed, normalized; show and --json agree"

# Refusals change nothing.
expect_status 2 airlock policy license allow 'bad id!'
expect_status 2 airlock policy license maybe mit
expect_status 2 airlock policy scan require dangerous
expect_status 3 airlock policy license rm gemma
echo "$OUT" | qgrep "policy show" || fail "rm of a missing rule says nothing useful: $OUT"
[ "$(airlock policy show --json)" = "$j" ] || fail "a refused change changed the policy"
ok "bad ids, verbs, verdicts refused (exit 2), rm of no rule (exit 3), policy unchanged"

# Every change is an event, in a chain that verifies.
n=$(airlock log --json | python3 -c 'import json,sys; print(sum(e["kind"]=="policy-change" for e in json.load(sys.stdin)))')
[ "$n" = 5 ] || fail "expected 5 policy-change events, got $n"
airlock log --json | python3 -c '
import json, sys, hashlib
ev = [e for e in json.load(sys.stdin) if e["kind"] == "policy-change"]
d = ev[-1]["detail"]
d = d if isinstance(d, dict) else json.loads(d)
assert d["change"] == "scan require" and d["args"] == ["ok"], d
pol = open(sys.argv[1], "rb").read()
assert d["policy"] == "sha256:" + hashlib.sha256(pol).hexdigest(), "event does not name the file in force"
' "$AIRLOCK_HOME/policy.json" || fail "the last event does not describe the change"
airlock log --verify >/dev/null || fail "event chain does not verify"
airlock policy license allow mit >/dev/null   # the same rule again: no event
n2=$(airlock log --json | python3 -c 'import json,sys; print(sum(e["kind"]=="policy-change" for e in json.load(sys.stdin)))')
[ "$n2" = 5 ] || fail "a change that changes nothing was recorded"
ok "5 changes, 5 policy-change events naming the policy's digest; a no-op records nothing"

# policy check: cards.
printf -- '---\nlicense: apache-2.0\n---\n# m\n' >"$C/apache.md"
printf -- '---\nlicense: other\nlicense_name: llama3.1\n---\n' >"$C/llama.md"
printf -- '# no front matter\n' >"$C/none.md"
printf -- '---\nlicense: mit\n' >"$C/open.md"
expect_status 0 airlock policy check "$C/apache.md"
echo "$OUT" | qgrep "allow: license apache-2.0: rule allow" || fail "check apache: $OUT"
expect_status 6 airlock policy check "$C/llama.md"
echo "$OUT" | qgrep "ack-needed: license llama3.1: rule ack (set by 'airlock policy license ack llama3.1')" \
    || fail "check llama: $OUT"
echo "$OUT" | qgrep "^next:" || fail "no next step: $OUT"
expect_status 0 airlock policy check --ack "$C/llama.md"
expect_status 6 airlock policy check "$C/none.md"
echo "$OUT" | qgrep "no front matter" || fail "check none: $OUT"
expect_status 4 airlock policy check "$C/open.md"
echo "$OUT" | qgrep "never closes" || fail "unclosed front matter: $OUT"
ok "check on cards: allow 0, ack-needed 6 (0 with --ack), no license 6, broken card 4"

# policy check: GGUF files with general.license, alone and with a card.
gen="$AL_BUILD/airlock-ggufgen"
shape=(--layers 1 --embd 32 --ff 64 --heads 2 --ctx 64 --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf")
"$gen" --out "$C/apache.gguf" --license apache-2.0 "${shape[@]}" 2>/dev/null || fail "ggufgen apache"
"$gen" --out "$C/nc.gguf" --license CC-BY-NC-4.0 "${shape[@]}" 2>/dev/null || fail "ggufgen nc"
"$gen" --out "$C/bare.gguf" "${shape[@]}" 2>/dev/null || fail "ggufgen bare"
expect_status 0 airlock policy check "$C/apache.gguf"
echo "$OUT" | qgrep "gguf  .*apache.gguf: apache-2.0" || fail "gguf license not read: $OUT"
expect_status 0 airlock policy check "$C/apache.md" "$C/apache.gguf"
echo "$OUT" | qgrep "finding" && fail "agreeing card and GGUF gave a finding: $OUT"
expect_status 6 airlock policy check "$C/apache.md" "$C/nc.gguf"
echo "$OUT" | qgrep "finding: the model card declares 'apache-2.0' but the GGUF file's general.license is 'CC-BY-NC-4.0'" \
    || fail "no disagreement finding: $OUT"
echo "$OUT" | qgrep "deny: license cc-by-nc-4.0: rule deny" || fail "stricter license did not decide: $OUT"
j=$(airlock policy check --json "$C/apache.md" "$C/nc.gguf" 2>/dev/null || true)
[ "$(echo "$j" | json_get '(d["decision"], d["disagree"], d["license"], d["gguf_license"])')" = \
  "('deny', True, 'cc-by-nc-4.0', 'CC-BY-NC-4.0')" ] || fail "check --json: $j"
expect_status 6 airlock policy check "$C/bare.gguf"
echo "$OUT" | qgrep "no general.license" || fail "bare gguf: $OUT"
expect_status 2 airlock policy check "$C/apache.gguf" "$C/nc.gguf"
head -c 100 "$C/apache.gguf" >"$C/cut.gguf"
expect_status 4 airlock policy check "$C/cut.gguf"
ok "check on GGUF: general.license read, agreement, disagreement finding (stricter wins), --json, a cut file 4"

# --pack: the built-in table, acknowledged with --ack.
expect_status 0 airlock policy check --pack "$C/apache.gguf"
expect_status 6 airlock policy check --pack "$C/llama.md"
echo "$OUT" | qgrep "redistribution conditions" || fail "pack llama: $OUT"
expect_status 0 airlock policy check --pack --ack "$C/llama.md"
airlock policy show --table | qgrep -E "^proprietary +forbidden" || fail "table"
ok "check --pack: free 0, conditions 6, acknowledged 0; the table prints"

# A valid file edited by hand (outside the audited path) is reported by show.
cp "$AIRLOCK_HOME/policy.json" "$T/policy.saved"
python3 - "$AIRLOCK_HOME/policy.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["licenses"]["cc-by-nc-4.0"] = "allow"
open(sys.argv[1], "w").write(json.dumps(d))
PY
expect_status 5 airlock policy show
echo "$OUT" | qgrep "changed outside 'airlock policy'" || fail "hand edit not reported: $OUT"
cp "$T/policy.saved" "$AIRLOCK_HOME/policy.json"
expect_status 0 airlock policy show
ok "a hand-edited policy.json is reported by show (exit 5); the recorded one is not"

# A corrupt policy file: a clear error, nothing changed, no event.
printf '{"licenses": {"mit": "perhaps"}}' >"$AIRLOCK_HOME/policy.json"
before=$(sha256sum "$AIRLOCK_HOME/policy.json")
expect_status 5 airlock policy show
echo "$OUT" | qgrep "policy.json' is not valid" || fail "corrupt: $OUT"
expect_status 5 airlock policy license allow gemma
expect_status 5 airlock policy check "$C/apache.md"
[ "$(sha256sum "$AIRLOCK_HOME/policy.json")" = "$before" ] || fail "a corrupt policy file was rewritten"
n3=$(airlock log --json | python3 -c 'import json,sys; print(sum(e["kind"]=="policy-change" for e in json.load(sys.stdin)))')
[ "$n3" = 5 ] || fail "a refused change was recorded"
ok "corrupt policy.json: exit 5 naming the file, file unchanged, no event"

airlock policy --help | qgrep "license|scan|show|check" || fail "help"
airlock policy license --help | qgrep "unknown" || fail "license help"
ok "help"
