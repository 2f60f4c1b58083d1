# Damage is found: a flipped byte, a truncated blob, a deleted blob, an
# edited event row, a deleted event row. fsck names each and exits non-zero.
. "$(dirname "$0")/lib.sh"
F=$(fixture)
command -v sqlite3 >/dev/null || fail "sqlite3 CLI missing (scripts/bootstrap.sh installs it)"

fresh() {
    rm -rf "$AIRLOCK_HOME"
    airlock add stories:1.0 "$F" >/dev/null
    airlock tag stories:1.0 stable >/dev/null
    airlock fsck >/dev/null || fail "fresh store not clean"
    BLOB=$(airlock path stories)
    DIGEST="sha256:$(basename "$BLOB")"
}

fresh
chmod u+w "$BLOB"
printf '\xff' | dd of="$BLOB" bs=1 seek=100000 conv=notrunc status=none
expect_status 5 airlock fsck
echo "$OUT" | qgrep "DAMAGED.*$DIGEST.*damaged.*used by stories" || fail "flipped byte not named: $OUT"
ok "flipped byte"

# --repair quarantines it and records the repair
expect_status 5 airlock fsck --repair
ls "$AIRLOCK_HOME"/quarantine/* >/dev/null || fail "nothing quarantined"
airlock log | qgrep fsck-repair || fail "repair not recorded"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "missing" || fail "after repair the blob should be missing: $OUT"
ok "fsck --repair quarantines and records"

fresh
chmod u+w "$BLOB"
truncate -s 1000 "$BLOB"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "$DIGEST is damaged" || fail "truncation not named: $OUT"
ok "truncated blob"

fresh
rm -f "$BLOB"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "$DIGEST is missing" || fail "deletion not named: $OUT"
ok "deleted blob"

fresh
sqlite3 "$AIRLOCK_HOME/airlock.db" "DROP TRIGGER events_no_update; UPDATE events SET actor='mallory' WHERE id=1;"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "event 1 (add) was edited" || fail "edited row not named: $OUT"
expect_status 5 airlock log --verify
ok "edited event row"

fresh
sqlite3 "$AIRLOCK_HOME/airlock.db" "DROP TRIGGER events_no_delete; DELETE FROM events WHERE id=1;"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "event 1 is missing" || fail "deleted first row not named: $OUT"
ok "deleted event row (first)"

fresh
last=$(sqlite3 "$AIRLOCK_HOME/airlock.db" "SELECT max(id) FROM events")
sqlite3 "$AIRLOCK_HOME/airlock.db" "DROP TRIGGER events_no_delete; DELETE FROM events WHERE id=$last;"
expect_status 5 airlock fsck
echo "$OUT" | qgrep "missing at the end" || fail "deleted last row not named: $OUT"
ok "deleted event row (last)"

fresh
sqlite3 "$AIRLOCK_HOME/airlock.db" "INSERT INTO events(time,kind,prev,hash) VALUES('x','forged','0','0');"
expect_status 5 airlock fsck
ok "forged event row"

fresh
# the SQL layer refuses edits outright
sqlite3 "$AIRLOCK_HOME/airlock.db" "UPDATE events SET actor='x'" 2>/dev/null && fail "update allowed"
ok "event log is append-only in SQL"
