# apikey create/ls/revoke/check and audit verify/tail/prune with the real binary.
. "$(dirname "$0")/lib.sh"
GEN="$AL_BUILD/airlock-auditgen"

# ---- API keys ----
airlock apikey ls | qgrep 'no API keys' || fail "empty ls"
echo "" | airlock apikey check --scope chat --model m | qgrep 'allowed: anonymous' || fail "open before any key"
airlock apikey create alice --scopes chat,embed --models 'llama*' --expires 30d --json >"$T/alice.json"
TOK=$(json_get 'd["token"]' <"$T/alice.json")
[[ "$TOK" =~ ^al-[0-9A-Za-z]{52}$ ]] || fail "token shape: $TOK"
airlock apikey create bob --scopes chat >"$T/bob.txt"
BOB=$(tail -n 1 "$T/bob.txt")
[[ "$BOB" =~ ^al-[0-9A-Za-z]{52}$ ]] || fail "plain create prints the token last: $(cat "$T/bob.txt")"
expect_status 6 airlock apikey create alice --scopes chat
expect_status 4 airlock apikey create carol --scopes root
expect_status 4 airlock apikey create carol --scopes chat --expires 2001-01-01
ok "create: token once, duplicate and bad input refused"

airlock apikey ls >"$T/ls.txt"
airlock apikey ls --json >"$T/ls.json"
grep -q "$TOK" "$T/ls.txt" "$T/ls.json" && fail "ls shows a secret"
grep -q "${TOK:0:11}\.\.\." "$T/ls.txt" || fail "ls shows the public id"
[ "$(json_get 'len(d)' <"$T/ls.json")" = 2 ] || fail "ls --json count"
[ "$(json_get 'd[0]["state"]' <"$T/ls.json")" = active ] || fail "state"
sqlite3 "$AIRLOCK_HOME/airlock.db" 'SELECT * FROM api_keys' | qgrep "${TOK:3}" && fail "the database holds a secret"
ok "ls never shows secrets; the database holds only hashes"

echo "$TOK" | airlock apikey check --scope chat --model llama3:8b | qgrep 'allowed: alice' || fail "check ok"
expect_status 6 airlock apikey check --scope chat --model qwen <<<"$TOK"
echo "$OUT" | qgrep "this key may not use model 'qwen'" || fail "403 model message: $OUT"
expect_status 6 airlock apikey check --scope embed <<<"$BOB"
echo "$OUT" | qgrep "lacks the 'embed' scope" || fail "403 scope message: $OUT"
expect_status 5 airlock apikey check --scope chat <<<"${TOK}x"
echo "$OUT" | qgrep "invalid or missing API key" || fail "401 message: $OUT"
expect_status 5 airlock apikey check --scope chat <<<""
airlock apikey revoke alice | qgrep revoked || fail "revoke"
expect_status 5 airlock apikey check --scope chat --model llama3 <<<"$TOK"
expect_status 3 airlock apikey revoke alice
airlock apikey revoke bob >/dev/null
expect_status 5 airlock apikey check --scope chat <<<""
ok "check: 401 for missing, wrong, revoked; 403 for scope and model; revoking every key keeps auth on"
[ "$(airlock log | grep -c 'apikey-')" = 4 ] || fail "events: $(airlock log)"
airlock log --verify >/dev/null || fail "event log verifies"
ok "create and revoke are in the event log"

# ---- audit ----
[ -x "$GEN" ] || fail "$GEN missing: build the tools (make build)"
airlock audit verify | qgrep 'intact: 0 records' || fail "empty log verifies"
"$GEN" 12 --capture --prompt 'mail jane@example.com, card 4111 1111 1111 1111'
F=$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl)
airlock audit verify | qgrep 'intact: 12 records' || fail "verify"
grep -q 'jane@example.com\|4111' "$F" && fail "PII in the audit log"
grep -q '\[EMAIL\], card \[CARD\]' "$F" || fail "scrubbed text missing"
[ "$(airlock audit tail -n 3 | wc -l)" = 3 ] || fail "tail -n 3"
airlock audit tail -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["seq"]==12 and d["caller"]=="alice", d'
[ "$(airlock audit tail | wc -l)" = 10 ] || fail "tail default 10"
python3 - "$F" <<'PY'
import hashlib, sys
for n, l in enumerate(open(sys.argv[1]), 1):
    l = l.rstrip("\n")
    assert hashlib.sha256((l[:-75] + "}").encode()).hexdigest() == l[-66:-2], n
PY
ok "12 records verify (also with python's hashlib); PII scrubbed; tail"

# tail -f gives no sign that it is following: write one record at a time
# until it shows one, then two more, which it must show exactly. In a store
# of its own: the log above keeps its 12 records for the checks below.
(
export AIRLOCK_HOME="$T/follow-home"
"$AIRLOCK_BIN" init >/dev/null
"$AIRLOCK_BIN" audit tail -n 0 -f >"$T/follow.txt" & follow=$!
lines() { wc -l <"$T/follow.txt"; }
for _ in $(seq 1 600); do [ "$(lines)" -gt 0 ] && break; "$GEN" 1; sleep 0.05; done
[ "$(lines)" -gt 0 ] || fail "tail -f showed none of 600 records"
# It may not have shown the last one written yet: wait until it has.
last() { tail -n 1 "$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | tail -n 1)"; }
for _ in $(seq 1 1200); do [ "$(tail -n 1 "$T/follow.txt")" = "$(last)" ] && break; sleep 0.05; done
n0=$(lines)
"$GEN" 2
for _ in $(seq 1 1200); do [ "$(lines)" -ge $((n0 + 2)) ] && break; sleep 0.05; done
kill "$follow"; wait "$follow" 2>/dev/null || true
[ "$(lines)" = $((n0 + 2)) ] || fail "tail -f saw $(($(lines) - n0)) of 2 new lines"
[ "$(tail -n 2 "$T/follow.txt")" = "$(tail -n 2 "$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | tail -n 1)")" ] ||
    fail "tail -f showed other lines than the last two records"
)
"$GEN" 2 # the two records the checks below count (14 in all)
ok "tail -f follows new records"

cp "$F" "$T/orig"
sed -i '5s/"status":200/"status":403/' "$F"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "audit-.*jsonl:5: edited" || fail "edit not named: $OUT"
cp "$T/orig" "$F"; sed -i '9d' "$F"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "jsonl:9: record 9 before this line is missing (deleted)" || fail "delete: $OUT"
cp "$T/orig" "$F"; head -n 10 "$T/orig" >"$F"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "records 11-14 are missing at the end (truncated)" || fail "truncate: $OUT"
cp "$T/orig" "$F"; truncate -s -7 "$F"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "jsonl:14: the last line is cut short" || fail "cut: $OUT"
cp "$T/orig" "$F"; awk 'NR==3{h=$0;next} NR==4{print;print h;next} {print}' "$T/orig" >"$F"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep "jsonl:3: out of order" || fail "reorder: $OUT"
cp "$T/orig" "$F"
airlock audit verify >/dev/null || fail "restored log verifies"
ok "verify names the first bad line: edited, deleted, truncated, cut, reordered"

# retention: records from 40 and 20 days ago, pruned at 30 days
rm -rf "$AIRLOCK_HOME/audit"
now=$(date +%s)
"$GEN" 3 --at $((now - 40 * 86400))
"$GEN" 3 --at $((now - 20 * 86400))
"$GEN" 2
[ "$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | wc -l)" = 3 ] || fail "three day files"
airlock audit prune --days 30 | qgrep pruned || fail "prune"
[ "$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | wc -l)" = 2 ] || fail "oldest file pruned"
head -c 14 "$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | head -n 1)" | qgrep '{"anchor":true' || fail "anchor"
airlock audit verify | qgrep 'intact: 5 records' || fail "verifies after prune: $(airlock audit verify)"
airlock log | qgrep audit-prune || fail "prune event"
ok "prune keeps the chain verifiable through an anchor recorded in the event log"
