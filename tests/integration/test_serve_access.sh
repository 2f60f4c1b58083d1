#!/usr/bin/env bash
# airlock serve with API keys and the audit log: no key, a revoked key, an
# expired key, a key without the scope or the model are refused with 401/403
# and reasons that leak nothing; the audit log of the run verifies, and one
# edited line is detected.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
airlock add other:1.0 "$FIX" >/dev/null

tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
CHAT=$(tok chatter --scopes chat --models 'stories*')
EMBED=$(tok embedder --scopes embed --models '*')
OLD=$(tok revoked --scopes chat)
airlock apikey revoke revoked >/dev/null
# A key past its expiry: made with a one-hour expiry, then its clock moved
# back in the database (the unix time it expires at), as if the hour had gone.
EXP=$(tok expired --scopes chat --expires 1h)
sqlite3 "$AIRLOCK_HOME/airlock.db" "UPDATE api_keys SET expires=strftime('%s','now')-60 WHERE name='expired'"
# A version whose blob is then damaged (a byte flipped), loaded on first use.
cp "$FIX" "$T/broken.gguf" && printf 'pad' >>"$T/broken.gguf"
airlock add stories-broken:1.0 "$T/broken.gguf" >/dev/null
BROKEN=$(airlock path stories-broken)
chmod u+w "$BROKEN" && printf '\xff' | dd of="$BROKEN" bs=1 seek=100000 conv=notrunc status=none

serve_start stories other --port 0 --parallel 2

req() { # req TOKEN PATH JSON -> CODE, BODY
    local auth=(); [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
    local out; out=$(curl -s -w '\n%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d "$3" "$BASE$2")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
C='{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'

req "" /v1/completions "$C"; expect_code 401
echo "$BODY" | qgrep 'invalid or missing API key' || fail "401 body: $BODY"
req "al-notarealkeynotarealkeynotarealkeynotarealkeynotarealk" /v1/completions "$C"; expect_code 401
req "$OLD" /v1/completions "$C"; expect_code 401
echo "$BODY" | qgrep 'invalid or missing API key' || fail "revoked key must look like any bad key: $BODY"
req "$EXP" /v1/completions "$C"; expect_code 401
echo "$BODY" | qgrep 'invalid or missing API key' || fail "expired key: $BODY"
ok "no key, unknown key, revoked key, expired key: 401 with the same message"

req "$EMBED" /v1/completions "$C"; expect_code 403
echo "$BODY" | qgrep "scope" || fail "403 scope body: $BODY"
req "$CHAT" /v1/completions '{"model":"other","prompt":"x","max_tokens":2}'; expect_code 403
echo "$BODY" | qgrep "model" || fail "403 model body: $BODY"
ok "a key without the scope or the model: 403"

req "$CHAT" /v1/completions "$C"; expect_code 200
[ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])' <<<"$BODY")" = "$GOLDEN" ] \
    || fail "golden with a key: $BODY"
req "$EMBED" /v1/embeddings '{"model":"stories","input":"hello"}'; expect_code 200
ok "allowed keys get their answers"

# A blob that fails its digest is an integrity fault, not an authentication
# one: a valid key gets the 500 it got before the two codes were split.
req "$CHAT" /v1/completions '{"model":"stories-broken","prompt":"x","max_tokens":2}'; expect_code 500
echo "$BODY" | qgrep 'does not match its digest' || fail "damaged blob body: $BODY"
echo "$BODY" | qgrep 'invalid_api_key' && fail "a damaged blob answered as a bad key: $BODY"
ok "a damaged blob with a valid key: 500, a bad key: 401"

# revocation takes effect on the running server
airlock apikey revoke chatter >/dev/null
req "$CHAT" /v1/completions "$C"; expect_code 401
ok "a key revoked while the server runs is refused at once"
serve_stop

# the audit log of this run: one line per request, the caller named, it verifies
airlock audit verify >"$T/verify.txt" || fail "audit verify: $(cat "$T/verify.txt")"
n=$(cat "$AIRLOCK_HOME"/audit/audit-*.jsonl | wc -l)
[ "$n" -ge 8 ] || fail "expected at least 8 audit records, got $n"
grep -q '"caller":"chatter"' "$AIRLOCK_HOME"/audit/audit-*.jsonl || fail "caller not recorded"
grep -q '"status":401' "$AIRLOCK_HOME"/audit/audit-*.jsonl || fail "refusals not recorded"
! grep -q 'Once upon a time' "$AIRLOCK_HOME"/audit/audit-*.jsonl || fail "prompt text recorded without --audit-text"
f=$(ls "$AIRLOCK_HOME"/audit/audit-*.jsonl | head -1)
sed -i '3s/"status":[0-9]*/"status":200/; 3s/"tokens_out":[0-9]*/"tokens_out":999/' "$f"
expect_status 5 airlock audit verify
echo "$OUT" | qgrep ':3' || fail "the edited line is not named: $OUT"
ok "the audit log verifies; one edited line is detected and named"
