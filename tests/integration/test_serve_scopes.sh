#!/usr/bin/env bash
# Scopes per route: `serve --help` names the scope of every route of the
# server's route table (src/server/routes.c, read here so that a new route
# without its line in the help fails), and /metrics has its own `metrics`
# scope: a metrics key reads it and nothing else, a chat key is refused,
# admin still reads it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"

airlock serve --help >"$T/help.txt"
python3 - "$AL_SRC/src/server/routes.c" "$T/help.txt" <<'PY' || fail "serve --help and the route table differ"
import re, sys
src = open(sys.argv[1]).read()
table = src[src.index("al_http_routes[] = {"):]
table = table[:table.index("};")]
helptext = open(sys.argv[2]).read().splitlines()
named = {"/v1/models/": "/v1/models/{id}", "/models/": "/models/{id}", "/v1/rag/": "/v1/rag/{collection}/query"}
want = {None: "none", "models": "chat or embed", "rag": "rag:{collection}", "": "any key"}
n = 0
for method, path, scope in re.findall(r'\{"(GET|POST)", "([^"]+)", (?:true|false), (NULL|"[^"]*")', table):
    scope = None if scope == "NULL" else scope.strip('"')
    path = named.get(path, path)
    need = want.get(scope, scope)
    lines = [l for l in helptext if re.search(r'(\s|^)' + re.escape(path) + r'(\s|,|$)', l)]
    if not any(l.rstrip().endswith("  " + need) and method in l for l in lines):
        print(f"FAIL: {method} {path} (scope {need}) has no line in serve --help: {lines}")
        sys.exit(1)
    n += 1
assert n >= 18, n
print(f"ok - {n} routes, each with its scope in serve --help")
PY
ok "serve --help names the scope of every route"

FIX=$(fixture)
airlock add stories:1.0 "$FIX" >/dev/null
tok() { airlock apikey create "$@" --json | json_get 'd["token"]'; }
METRICS=$(tok prometheus --scopes metrics)
CHAT=$(tok chatter --scopes chat)
ADMIN=$(tok root --scopes admin)
expect_status 4 airlock apikey create bad --scopes bogus
echo "$OUT" | qgrep "metrics" || fail "the unknown-scope message does not list metrics: $OUT"
airlock apikey --help | qgrep 'metrics (GET /metrics)' || fail "apikey --help does not explain metrics"

serve_start stories --port 0
code() { curl -s -o "$T/body" -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} "${@:2}"; }
[ "$(code "$METRICS" "$BASE/metrics")" = 200 ] || fail "metrics key on /metrics: $(cat "$T/body")"
qgrep '^# TYPE airlock_requests_total counter' "$T/body" || fail "no metrics in the body"
[ "$(code "$ADMIN" "$BASE/metrics")" = 200 ] || fail "admin key on /metrics"
[ "$(code "$CHAT" "$BASE/metrics")" = 403 ] || fail "chat key on /metrics: $(cat "$T/body")"
qgrep "lacks the 'metrics' scope" "$T/body" || fail "403 body: $(cat "$T/body")"
[ "$(code "" "$BASE/metrics")" = 401 ] || fail "no key on /metrics"
[ "$(code "$METRICS" "$BASE/v1/completions" -H 'Content-Type: application/json' \
      -d '{"model":"stories","prompt":"x","max_tokens":2}')" = 403 ] || fail "metrics key may not generate"
[ "$(code "$METRICS" "$BASE/v1/models")" = 403 ] || fail "metrics key may not list models"
ok "/metrics needs the metrics scope (or admin), and that scope grants nothing else"
