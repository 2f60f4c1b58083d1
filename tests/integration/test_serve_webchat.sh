#!/usr/bin/env bash
# The web chat of airlock serve: its three files at / with a strict
# Content-Security-Policy and nosniff, no key needed for them while every API
# call needs one, nothing else served from the folder, off with --no-webui
# (and "webui": false); then a real browser (Debian's chromium, driven by
# puppeteer-core, pinned in tests/interop/webchat/package-lock.json and
# installed by npm ci into the test's folder) enters a key, reads the golden
# text from the page, stops an answer, asks a collection for citations, with
# no request leaving 127.0.0.1. The screenshot is kept in the build directory
# (test-artifacts/webchat.png).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
airlock add stories "$FIX" >/dev/null

D="$T/docs"; mkdir -p "$D"
printf 'GENERATOR\nThe standby generator runs on diesel fuel.\n\nChange its oil monthly.\n' >"$D/generator.txt"
printf 'HALON\nThe halon bottle is inspected every quarter by a certified technician.\n' >"$D/halon.txt"
airlock rag create manuals --embed stories >/dev/null
airlock rag create other --embed stories >/dev/null # the key may not read it: not offered
(cd "$T" && airlock rag add manuals docs >/dev/null)
KEY=$(airlock apikey create webchat --scopes chat,rag:manuals --json | json_get 'd["token"]')

serve_start stories --port 0

# headers URL: the response headers of a GET, lowercased names; CODE set.
headers() {
    local out; out=$(curl -s -D - -o "$T/body" -w '%{http_code}' "$BASE$1")
    CODE=${out##*$'\n'}
    HDRS=$(printf '%s' "${out%$'\n'*}" | tr -d '\r' | sed -E 's/^([^:]*):/\L\1:/')
    BODY=$(cat "$T/body")
}
hdr() { printf '%s\n' "$HDRS" | sed -n "s/^$1: //p"; }

# ---- the files: no key, their types, the policy ----
for f in / /app.js /app.css; do
    headers "$f"; expect_code 200
    case $f in
        *.js) want='text/javascript; charset=utf-8' ;;
        *.css) want='text/css; charset=utf-8' ;;
        *) want='text/html; charset=utf-8' ;;
    esac
    [ "$(hdr content-type)" = "$want" ] || fail "$f: Content-Type '$(hdr content-type)'"
    [ "$(hdr x-content-type-options)" = nosniff ] || fail "$f: no nosniff: $HDRS"
    csp=$(hdr content-security-policy)
    for d in "default-src 'self'" "script-src 'self'" "style-src 'self'" "connect-src 'self'" "object-src 'none'" \
        "base-uri 'none'" "frame-ancestors 'none'" "form-action 'none'"; do
        [[ "$csp" == *"$d"* ]] || fail "$f: CSP lacks $d: '$csp'"
    done
    [[ "$csp" != *unsafe* && "$csp" != *http* && "$csp" != *'*'* ]] || fail "$f: CSP too loose: '$csp'"
done
cmp -s "$T/body" "$AL_SRC/src/webui/app.css" || fail "/app.css is not src/webui/app.css"
curl -s "$BASE/" | cmp -s - "$AL_SRC/src/webui/index.html" || fail "/ is not src/webui/index.html"
curl -s "$BASE/app.js" | cmp -s - "$AL_SRC/src/webui/app.js" || fail "/app.js is not src/webui/app.js"
# The page has no inline script, style or handler, and names no other host.
python3 - "$AL_SRC/src/webui" <<'PY' || fail "inline code or another host in the page"
import re, sys, pathlib
d = pathlib.Path(sys.argv[1])
html = (d / "index.html").read_text()
for tag in re.findall(r"<script\b[^>]*>", html):
    assert "src=" in tag, tag
assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
assert "<style" not in html and "style=" not in html, "inline style"
assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
for f in ("index.html", "app.js", "app.css"):
    text = (d / f).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), f + " names another host"
    assert "innerHTML" not in text and "eval(" not in text and "document.write" not in text, f
PY
ok "/, /app.js, /app.css: no key needed, their types, nosniff, a strict CSP, no inline code"

headers /v1/models; expect_code 401
ok "the API the page calls still needs the key"
for p in /app.js/ /webui.h /webui.c /embed.cmake /index.htm /APP.JS /%2e%2e/CMakeLists.txt /../CMakeLists.txt; do
    headers "$p"; [ "$CODE" = 404 ] || fail "$p: $CODE"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$BASE/")
[ "$code" = 405 ] || fail "POST /: $code"
ok "nothing else is served: other names 404, POST / 405"
serve_stop

serve_start stories --port 0 --no-webui
for p in / /app.js /app.css; do
    headers "$p"; expect_code 404
done
grep -q -- '--no-webui' "$T/body" || fail "the 404 should name --no-webui: $(cat "$T/body")"
serve_stop
printf '{"webui": false}\n' >"$T/serve.json"
serve_start stories --port 0 --config "$T/serve.json"
headers /; expect_code 404
serve_stop
airlock serve --help | qgrep -- '--no-webui' || fail "serve --help does not mention --no-webui"
ok "--no-webui and \"webui\": false answer 404"

# ---- a real browser ----
command -v node >/dev/null && command -v npm >/dev/null || skip_test "node/npm missing"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip_test "$CHROMIUM missing (scripts/bootstrap.sh installs chromium)"
mkdir -p "$T/webchat"
cp "$AL_SRC/tests/interop/webchat/"{package.json,package-lock.json,webchat_check.mjs} "$T/webchat/"
if ! (cd "$T/webchat" && npm ci --no-audit --no-fund --loglevel=error >"$T/npm.log" 2>&1); then
    cat "$T/npm.log"; skip_test "cannot install puppeteer-core from the npm registry"
fi
serve_start stories --port 0
ART="${AL_BUILD:-$T}/test-artifacts"
mkdir -p "$ART"
rm -f "$ART/webchat.png"
CHROMIUM=$CHROMIUM timeout 600 node "$T/webchat/webchat_check.mjs" "$BASE" stories "$KEY" "$ART/webchat.png" manuals \
    || fail "the browser check"
[ -s "$ART/webchat.png" ] || fail "no screenshot"
ok "chromium: key, golden text, stop, citations, no request off 127.0.0.1; screenshot $ART/webchat.png"
