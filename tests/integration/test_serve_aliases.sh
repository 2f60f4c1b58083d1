#!/usr/bin/env bash
# serve --alias and --tags (llama-server's flags): a request that names an
# alias is served by the model it stands for, on every API; /v1/models lists
# the model under its first alias in sort order with its aliases and tags; an
# API key's model patterns are checked against the model, never the alias
# (an alias renames, it grants nothing); an alias that is another model's
# name, stands for nothing, or is malformed is refused at start; the config
# file's "aliases" and "tags" do the same, and survive a reload.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
airlock add other:1.0 "$FIX" >/dev/null

# ---- refused at start, exit 2 (usage), the reason named ----
refused() { # refused WHAT PATTERN ARGS...
    local what=$1 pat=$2; shift 2
    set +e; "$AIRLOCK_BIN" serve --port 0 "$@" >"$T/refused.out" 2>&1; local st=$?; set -e
    [ "$st" = 2 ] || fail "$what: exit $st, not 2: $(cat "$T/refused.out")"
    qgrep -- "$pat" "$T/refused.out" || fail "$what: no '$pat' in: $(cat "$T/refused.out")"
}
refused "an alias that is another model's name" "alias 'other' of 'stories' is the name of another model" \
    stories --alias code,other
refused "an alias without a model" "none is named" --alias code
refused "an alias for a model not in the store" "the aliases or tags of 'nosuch'" stories --alias nosuch=x
refused "a space in an alias" "no space" stories --alias 'co de'
refused "an alias for a collection" "rag/" stories --alias rag/x
refused "one alias for two models" "alias 'x' is given to two models" stories --alias x,y --alias other=x
ok "bad aliases refused at start with exit 2 and the reason"

# ---- served under aliases ----
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
ADMIN=$(tok admin --scopes admin)
STORIES=$(tok only-stories --scopes chat,embed --models 'stories*')
CODEKEY=$(tok only-code --scopes chat,embed --models 'code*')
# The alias that also stands as the model's own name, as llama-server's
# test suite starts it: allowed.
serve_start stories other --port 0 --alias code,fim,stories,tinyllama-2 --tags chat,fim,small \
    --alias other=zzz
req() { # req TOKEN METHOD PATH [JSON] -> CODE, BODY
    local auth=(-H "Authorization: Bearer $1") data=(); [ -n "${4:-}" ] && data=(-d "$4")
    local out; out=$(curl -s -w '\n%{http_code}' -X "$2" "${auth[@]}" -H 'Content-Type: application/json' "${data[@]}" "$BASE$3")
    CODE=${out##*$'\n'}; BODY=${out%$'\n'*}
}
req "$ADMIN" GET /v1/models; expect_code 200
printf '%s' "$BODY" | python3 -c '
import json, sys
d = {m["id"]: m for m in json.load(sys.stdin)["data"]}
assert set(d) == {"code", "zzz"}, sorted(d)
assert d["code"]["aliases"] == ["code", "fim", "stories", "tinyllama-2"], d["code"]
assert d["code"]["tags"] == ["chat", "fim", "small"], d["code"]
assert d["zzz"]["aliases"] == ["zzz"] and d["zzz"]["tags"] == ["1.0"], d["zzz"]
' || fail "/v1/models with aliases: $BODY"
req "$ADMIN" GET /v1/models/fim; expect_code 200
[ "$(jq_py 'd["id"], d["tags"]')" = "('fim', ['chat', 'fim', 'small'])" ] || fail "/v1/models/fim: $BODY"
ok "/v1/models: listed under the first alias, with the aliases and tags given"

for m in fim code tinyllama-2 stories stories:1.0; do
    req "$ADMIN" POST /v1/completions "{\"model\":\"$m\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0}"
    expect_code 200
    [ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "completion through '$m': $BODY"
    [ "$(jq_py 'd["model"]')" = "$m" ] || fail "the reply names '$m' as asked: $BODY"
done
req "$ADMIN" POST /v1/chat/completions '{"model":"tinyllama-2","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
expect_code 200
req "$ADMIN" POST /api/chat '{"model":"fim","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":4}}'
expect_code 200
req "$ADMIN" POST /v1/embeddings '{"model":"code","input":"hello"}'; expect_code 200
req "$ADMIN" POST /api/show '{"model":"code"}'; expect_code 200
req "$ADMIN" POST /v1/completions '{"model":"zzz","prompt":"x","max_tokens":2}'; expect_code 200
req "$ADMIN" POST /v1/completions '{"model":"nosuch","prompt":"x","max_tokens":2}'; expect_code 404
ok "completions, chat, Ollama's chat and show, embeddings: answered through every alias"

# A key for stories* may use stories through any alias; a key for code* (a
# pattern that matches an alias, not a model) may not use it at all.
req "$STORIES" POST /v1/completions '{"model":"fim","prompt":"x","max_tokens":2}'; expect_code 200
req "$STORIES" POST /v1/completions '{"model":"zzz","prompt":"x","max_tokens":2}'; expect_code 403
req "$CODEKEY" POST /v1/completions '{"model":"code","prompt":"x","max_tokens":2}'; expect_code 403
req "$CODEKEY" POST /v1/embeddings '{"model":"code","input":"x"}'; expect_code 403
req "$CODEKEY" GET /v1/models/code; expect_code 403
req "$CODEKEY" GET /v1/models; expect_code 200
[ "$(jq_py 'len(d["data"])')" = 0 ] || fail "a key for code* sees models through an alias: $BODY"
req "$STORIES" GET /v1/models; expect_code 200
[ "$(jq_py '[m["id"] for m in d["data"]]')" = "['code']" ] || fail "the stories key's list: $BODY"
ok "API keys: checked against the model an alias stands for; an alias grants nothing"

# The audit log records the weights that answered, whatever name was asked.
serve_stop
W=$(sha256sum "$FIX" | cut -d' ' -f1)
cat "$AIRLOCK_HOME"/audit/audit-*.jsonl | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
done = [r for r in rows if r.get("route") == "/v1/completions" and r.get("status") == 200]
assert len(done) >= 7, len(done)
assert all(r["model_digest"] == "sha256:" + sys.argv[1] for r in done), done
' "$W" || fail "audit records of completions through aliases"
ok "audit: each answer through an alias records the model's digest"

# ---- the config file, and a reload ----
cat >"$T/serve.json" <<'J'
{"models": ["stories"], "aliases": {"stories": ["b-name", "a-name"]}, "tags": {"stories": "small,chat"}}
J
serve_start --config "$T/serve.json" --port 0
req "$ADMIN" GET /v1/models; expect_code 200
[ "$(jq_py '[(m["id"], m["aliases"], m["tags"]) for m in d["data"] if m["id"] != "other"]')" = \
  "[('a-name', ['a-name', 'b-name'], ['small', 'chat'])]" ] || fail "config aliases: $BODY"
printf '{"models": ["stories"], "aliases": {"stories": "c-name"}}\n' >"$T/serve.json"
kill -HUP "$SERVE_PID"
wait_until 30 "the reload" grep -q "reload" "$SERVE_LOG"
wait_until 30 "the new alias" sh -c "curl -s '$BASE/v1/models' -H 'Authorization: Bearer $ADMIN' | grep -q c-name"
req "$ADMIN" POST /v1/completions '{"model":"a-name","prompt":"x","max_tokens":2}'; expect_code 404
req "$ADMIN" POST /v1/completions '{"model":"c-name","prompt":"x","max_tokens":2}'; expect_code 200
# A reload whose alias is another model's name is refused; the old ones stay.
printf '{"models": ["stories"], "aliases": {"stories": "other"}}\n' >"$T/serve.json"
kill -HUP "$SERVE_PID"
wait_until 30 "the refused reload" grep -q "is the name of another model" "$SERVE_LOG"
req "$ADMIN" POST /v1/completions '{"model":"c-name","prompt":"x","max_tokens":2}'; expect_code 200
ok "config file aliases and tags; a reload applies new ones and refuses a bad one, keeping the old"
