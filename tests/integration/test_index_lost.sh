# A lost index (airlock.db emptied or deleted) is damage, never a fresh empty
# store: ls, gc, serve, apikey and add refuse and say to run fsck --repair;
# fsck names it (exit 5); no blob changes. fsck --repair rebuilds the index
# from index.json and the manifests, records an index-rebuilt event, and the
# server then requires an API key although none exists. Also: gc refuses
# while a manifest row is damaged, and leaves the blob it points to.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
F=$(fixture)
command -v sqlite3 >/dev/null || fail "sqlite3 CLI missing (scripts/bootstrap.sh installs it)"
command -v curl >/dev/null || fail "curl missing (scripts/bootstrap.sh installs it)"

fresh() {
    rm -rf "$AIRLOCK_HOME"
    airlock add stories:1.0 "$F" >/dev/null
    cp "$F" "$T/v2.gguf"; printf 'x' >>"$T/v2.gguf"
    airlock add stories:2.0 "$T/v2.gguf" >/dev/null
    airlock tag stories:1.0 stable >/dev/null
    airlock apikey create ops --scopes chat >/dev/null
}
# The store's content: every blob and index.json, by digest.
snapshot() { (cd "$AIRLOCK_HOME" && find blobs index.json -type f | sort | xargs sha256sum); }
LOST="the index was lost, not new.*run 'airlock fsck --repair' to rebuild it"

for how in emptied deleted; do
    fresh
    snapshot >"$T/before"
    if [ $how = emptied ]; then : >"$AIRLOCK_HOME/airlock.db"; else rm -f "$AIRLOCK_HOME/airlock.db"; fi
    for cmd in ls gc "gc --dry-run" "log --verify" "apikey ls" "show stories" "init" "add other $F"; do
        # shellcheck disable=SC2086
        expect_status 5 airlock $cmd
        echo "$OUT" | qgrep "$LOST" || fail "$how: '$cmd' does not say the index is lost: $OUT"
    done
    expect_status 5 timeout 60 "$AIRLOCK_BIN" serve --port 0 stories
    echo "$OUT" | qgrep "$LOST" || fail "$how: serve does not refuse with the message: $OUT"
    expect_status 5 airlock fsck
    echo "$OUT" | qgrep "DAMAGED .*airlock.db' is $( [ $how = emptied ] && echo empty || echo missing).*$LOST" ||
        fail "$how: fsck does not name the lost index: $OUT"
    snapshot | diff "$T/before" - >/dev/null || fail "$how: a refused command changed the store"
    [ ! -s "$AIRLOCK_HOME/airlock.db" ] || fail "$how: something made a new index"
    ok "$how airlock.db: ls, gc, serve, apikey, add, init refuse; fsck exits 5 naming it; blobs untouched"

    expect_status 5 airlock fsck --repair
    echo "$OUT" | qgrep "repaired .*index rebuilt .*1 model, 2 versions, 3 tags, 1 active pointer" ||
        fail "$how: repair output: $OUT"
    snapshot | diff "$T/before" - >/dev/null || fail "$how: the rebuild changed blobs or index.json"
    [ "$(airlock ls --json | json_get 'len(d)')" = 2 ] || fail "$how: ls after rebuild"
    [ "$(airlock show stories --json | json_get '",".join(d["tags"])')" = 2.0 ] || fail "$how: active version not restored"
    [ "$(airlock show stories:stable --json | json_get '",".join(d["tags"])')" = 1.0,stable ] || fail "$how: tags not restored"
    airlock fsck >"$T/fsck.out" || fail "$how: fsck after rebuild not clean: $(cat "$T/fsck.out")"
    airlock log --verify | qgrep 'chain verified' || fail "$how: log --verify after rebuild"
    airlock log --json | json_get '[e["kind"] for e in d]' | qgrep -x "\['index-rebuilt'\]" || fail "$how: log: $(airlock log)"
    airlock log --json | json_get 'd[0]["detail"]["lost"]' | qgrep 'api keys' || fail "$how: event does not say keys are lost"
    [ "$(airlock apikey ls --json | json_get 'len(d)')" = 0 ] || fail "$how: keys after rebuild"
    airlock apikey ls | qgrep 'keys are lost; the server requires a key' || fail "$how: apikey ls: $(airlock apikey ls)"
    if [ $how = emptied ]; then
        ls "$AIRLOCK_HOME"/quarantine/airlock.db.* >/dev/null || fail "the emptied index was not kept in quarantine/"
    fi
    ok "$how airlock.db: fsck --repair rebuilds versions, tags, active; fsck clean; log verified; keys gone"
done

# After a rebuild the server is not open: no key exists, and none is accepted.
serve_start --port 0 stories
get /v1/models; expect_code 401
post /v1/completions '{"prompt":"Once upon a time","max_tokens":2}'; expect_code 401
KEY=$(airlock apikey create ops2 --scopes chat --json | json_get 'd["token"]')
out=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $KEY" "$BASE/v1/models")
[ "${out##*$'\n'}" = 200 ] || fail "a new key is not accepted after the rebuild: $out"
serve_stop
ok "after a rebuild serve requires a key (401 without, 200 with a new one)"

# A damaged manifest row: gc refuses and removes nothing.
fresh
m=$(airlock show stories:1.0 --json | json_get 'd["manifest"]')
sqlite3 "$AIRLOCK_HOME/airlock.db" "UPDATE versions SET manifest='sha256:$(printf '%064d' 0)' WHERE manifest='$m'"
snapshot >"$T/before"
expect_status 5 airlock gc
echo "$OUT" | qgrep "DAMAGED .*manifest unreadable" || fail "gc does not name the damage: $OUT"
echo "$OUT" | qgrep "gc refused: the store is damaged" || fail "gc refusal message: $OUT"
[ -f "$AIRLOCK_HOME/blobs/sha256/${m#sha256:}" ] || fail "gc deleted the manifest of a damaged row"
snapshot | diff "$T/before" - >/dev/null || fail "gc changed the store"
ok "gc refuses while a manifest row is damaged; the blob stays"
