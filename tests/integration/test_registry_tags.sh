#!/usr/bin/env bash
# test_registry_tags.sh: tags/list pagination on `serve --registry` (the
# distribution spec's n and last, and its Link header with rel="next"):
# tags in lexical order, pages of n followed through Link give every tag
# once, n=0 is an empty list, last past the end an empty one, a bad n is
# 400 PAGINATION_NUMBER_INVALID; real skopeo list-tags (which follows Link)
# lists every tag through pages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
for t in skopeo curl; do
    command -v $t >/dev/null || skip_test "$t missing (scripts/bootstrap.sh installs it)"
done
cd "$T"
FIX=$(fixture)

airlock add stories:1.0 "$FIX" >/dev/null
for t in b a 2.0 1.1 Z 10; do airlock tag stories:1.0 "$t" >/dev/null; done
WANT='1.0 1.1 10 2.0 Z a b'
PULL=$(airlock apikey create mirror --scopes pull --json | json_get 'd["token"]')
serve_start --port 0 --registry
HP=${BASE#http://}
C=(-s -u "x:$PULL")

tags_of() { python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["tags"]))'; }

all=$(curl "${C[@]}" "$BASE/v2/stories/tags/list" | tags_of)
[ "$all" = "$WANT" ] || fail "tags/list: '$all', want '$WANT' (lexical order)"
hdr=$(curl "${C[@]}" -D - -o /dev/null "$BASE/v2/stories/tags/list" | tr -d '\r')
echo "$hdr" | qgrep -i '^link:' && fail "a Link header on the last page: $hdr"
ok "tags/list without n: every tag in lexical order, no Link"

# Pages of 3 through Link.
url="/v2/stories/tags/list?n=3"
got="" pages=0
while [ -n "$url" ]; do
    pages=$((pages + 1))
    [ $pages -le 10 ] || fail "Link pages do not end"
    curl "${C[@]}" -D page.h -o page.json "$BASE$url"
    head -1 page.h | qgrep ' 200' || fail "page $url: $(cat page.h)"
    n=$(tags_of <page.json | wc -w)
    [ "$n" -le 3 ] || fail "page $url has $n tags (n=3)"
    got="$got $(tags_of <page.json)"
    url=$(tr -d '\r' <page.h | sed -n 's/^[Ll]ink: <\([^>]*\)>; rel="next"$/\1/p')
done
[ "${got# }" = "$WANT" ] || fail "pages of 3 give '${got# }'"
[ $pages = 3 ] || fail "$pages pages for 7 tags by 3"
ok "pages of n=3 followed through Link: every tag once, in order ($pages pages)"

page=$(curl "${C[@]}" "$BASE/v2/stories/tags/list?n=2&last=10" | tags_of)
[ "$page" = "2.0 Z" ] || fail "n=2&last=10: '$page'"
page=$(curl "${C[@]}" "$BASE/v2/stories/tags/list?last=b" | tags_of)
[ -z "$page" ] || fail "last past the end: '$page'"
page=$(curl "${C[@]}" "$BASE/v2/stories/tags/list?n=0" | tags_of)
[ -z "$page" ] || fail "n=0: '$page'"
for bad in abc -1 1x ''; do
    out=$(curl "${C[@]}" -w ' %{http_code}' "$BASE/v2/stories/tags/list?n=$bad")
    echo "$out" | qgrep 'PAGINATION_NUMBER_INVALID.* 400$' || fail "n=$bad: $out"
done
ok "n and last: a page after last, past the end empty, n=0 empty, a bad n 400 PAGINATION_NUMBER_INVALID"

# skopeo list-tags follows Link: a mirror whose page without n is 2 tags
# (AIRLOCK_REGISTRY_TAGS_PAGE) makes it read 4 pages.
serve_stop
AIRLOCK_REGISTRY_TAGS_PAGE=2 serve_start --port 0 --registry
HP=${BASE#http://}
hdr=$(curl "${C[@]}" -D - -o /dev/null "$BASE/v2/stories/tags/list" | tr -d '\r')
echo "$hdr" | qgrep -i '^link: </v2/stories/tags/list?n=2&last=1.1>; rel="next"$' || fail "page of 2: $hdr"
out=$(skopeo list-tags --tls-verify=false --creds "x:$PULL" "docker://$HP/stories") || fail "skopeo list-tags: $out"
got=$(echo "$out" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["Tags"]))')
[ "$got" = "$WANT" ] || fail "skopeo list-tags through pages of 2: '$got'"
ok "skopeo list-tags follows the mirror's Link pages (2 tags each): every tag, in order"
