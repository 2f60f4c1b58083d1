# A verified store on a read-only file system can be read: ls, show, log,
# log --verify, fsck, path open the index read-only and say so once on
# stderr; commands that write refuse clearly.
#
# How the store is made read-only: a read-only bind mount where we may mount
# (root with CAP_SYS_ADMIN), else the files made unwritable (chmod) and the
# commands run as 'nobody' through setpriv (root ignores chmod). One of the two
# must work: the test fails, never skips, when neither does.
. "$(dirname "$0")/lib.sh"
F=$(fixture)

airlock add stories:1.0 "$F" >/dev/null
airlock tag stories:1.0 stable >/dev/null
P_RW=$(airlock path stories)
(cd "$AIRLOCK_HOME" && find . -type f | sort | xargs sha256sum) >"$T/before"

RO="$T/ro"
mkdir -p "$RO"
run=()
how=""
if mount --bind "$AIRLOCK_HOME" "$RO" 2>/dev/null; then
    if mount -o remount,bind,ro "$RO" 2>/dev/null; then
        how="read-only bind mount"
        trap 'umount "$RO" 2>/dev/null; rm -rf "$T"' EXIT
    else
        umount "$RO"
    fi
fi
if [ -z "$how" ]; then
    [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null ||
        fail "cannot make a read-only store: no bind mount, and not root with setpriv (util-linux)"
    rmdir "$RO"; RO="$AIRLOCK_HOME"
    chmod 755 "$T"; chmod -R a-w "$AIRLOCK_HOME"
    run=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    how="chmod a-w and setpriv --reuid=nobody"
fi
echo "store made read-only by: $how"
export AIRLOCK_HOME="$RO"
"${run[@]}" touch "$RO/probe" 2>/dev/null && fail "the read-only store can be written"

rd() { expect_status 0 "${run[@]}" "$AIRLOCK_BIN" "$@"; }
for cmd in ls "show stories:stable" log "log --verify" fsck "path stories" "ls --json"; do
    # shellcheck disable=SC2086
    rd $cmd
    [ "$(echo "$OUT" | grep -c "note: the store at '$RO' cannot be written here; it is opened read-only")" = 1 ] ||
        fail "'$cmd' does not say once that the store is read-only: $OUT"
done
rd ls; echo "$OUT" | qgrep 'stories' || fail "ls: $OUT"
rd fsck; echo "$OUT" | qgrep '0 problems' || fail "fsck: $OUT"
rd log --verify; echo "$OUT" | qgrep 'chain verified' || fail "log --verify: $OUT"
rd path stories; echo "$OUT" | qgrep "$(basename "$P_RW")" || fail "path: $OUT"
ok "ls, show, log, log --verify, fsck, path work on a read-only store and say so once"

for cmd in "add other $F" "gc" "fsck --repair" "tag stories:1.0 x"; do
    # shellcheck disable=SC2086
    expect_status 6 "${run[@]}" "$AIRLOCK_BIN" $cmd
    echo "$OUT" | qgrep "the store at '$RO' cannot be written" || fail "'$cmd' on a read-only store: $OUT"
done
ok "commands that write refuse on a read-only store"

[ -z "${run[*]}" ] || chmod -R u+w "$T/home"
(cd "$T/home" && find . -type f | sort | xargs sha256sum) | diff "$T/before" - || fail "the store changed"
ok "the store is byte-identical afterwards"
