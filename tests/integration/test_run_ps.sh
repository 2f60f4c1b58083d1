#!/usr/bin/env bash
# `airlock run` and `airlock ps`: run answers a prompt with the fixture's
# golden text (greedy) in process and through a running server, reads the
# prompt from stdin when it is piped, and chats on a terminal (history,
# /set, /bye; driven through script(1) as a terminal); ps lists what a
# server has loaded; both have --help and say what to do when no server
# answers or a key is missing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
FIX=$(fixture)
airlock add stories:1 "$FIX" >/dev/null
unset AIRLOCK_SERVER AIRLOCK_API_KEY

airlock run --help | qgrep 'usage: airlock run REF \[PROMPT\]' || fail "run --help"
airlock ps --help | qgrep 'usage: airlock ps' || fail "ps --help"
airlock --help 2>&1 | qgrep ' run ' || fail "run is not in the command list"
expect_status 2 airlock run
expect_status 2 airlock run stories:1 a b
expect_status 2 airlock run stories:1 x --temperature 3
expect_status 3 airlock run no-such-model "x"
ok "--help, usage errors, an unknown model"

GREEDY=(--temperature 0 --max-tokens 40)
out=$(airlock run stories:1 "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "run in process: '$out'"
out=$(echo "Once upon a time" | airlock run stories:1 "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "run with the prompt piped: '$out'"
ok "run prints the golden text, the prompt as an argument or piped"

# The chat on a terminal: /set, a turn, /show, /bye.
if command -v script >/dev/null; then
    printf '/set temperature 0\n/set max_tokens 5\n/show\nOnce upon a time\n/nope\n/bye\n' >"$T/chat.in"
    script -qec "$AIRLOCK_BIN run stories:1" /dev/null <"$T/chat.in" >"$T/chat.out" 2>&1 || fail "chat: $(cat "$T/chat.out")"
    qgrep 'chatting with stories:1' "$T/chat.out" || fail "no chat banner: $(cat "$T/chat.out")"
    qgrep 'set temperature to 0' "$T/chat.out" || fail "/set: $(cat "$T/chat.out")"
    qgrep 'temperature 0  top_p' "$T/chat.out" || fail "/show: $(cat "$T/chat.out")"
    qgrep "unknown command '/nope'" "$T/chat.out" || fail "unknown command: $(cat "$T/chat.out")"
    qgrep '1 turn remembered\|2 turns remembered' "$T/chat.out" && fail "/show ran before the turn"
    ok "the chat on a terminal: /set, /show, a turn, /bye"
else
    skip_part "script(1) missing"
fi

# ps and run against a server, with a key.
expect_status 7 airlock ps --server http://127.0.0.1:1
echo "$OUT" | qgrep -- '--server URL' || fail "ps without a server: $OUT"
KEY=$(airlock apikey create runner --scopes chat --json | json_get 'd["token"]')
serve_start stories:1 --port 0
expect_status 5 airlock ps --server "$BASE"
echo "$OUT" | qgrep 'AIRLOCK_API_KEY' || fail "ps without a key: $OUT"
export AIRLOCK_API_KEY=$KEY
airlock ps --server "$BASE" >"$T/ps.txt" || fail "ps: $(cat "$T/ps.txt")"
qgrep '^NAME  *ID  *SIZE  *DEVICE  *CONTEXT  *IDLE  *UNTIL' "$T/ps.txt" || fail "ps header: $(cat "$T/ps.txt")"
qgrep '^stories  .* cpu .* kept loaded$' "$T/ps.txt" || fail "ps row: $(cat "$T/ps.txt")"
airlock ps --server "$BASE" --json | json_get 'd["models"][0]["name"]' | qgrep '^stories$' || fail "ps --json"
out=$(AIRLOCK_SERVER=$BASE airlock run stories:1 "Once upon a time" "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "run on the server: '$out'"
out=$(echo "Once upon a time" | airlock run --server "$BASE" stories:1 "${GREEDY[@]}")
[ "$out" = "$GOLDEN" ] || fail "run on the server, piped: '$out'"
expect_status 3 airlock run --server "$BASE" no-such-model "x"
echo "$OUT" | qgrep "404" || fail "unknown model on the server: $OUT"
AIRLOCK_API_KEY= expect_status 5 airlock run --server "$BASE" stories:1 "x"
ok "ps lists the loaded model; run on a server prints the golden text"
