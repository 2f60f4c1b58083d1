# SIGKILL at random moments while `airlock add` imports a 1 GiB file, 20
# times. Afterwards fsck is clean and each version is fully present or absent.
. "$(dirname "$0")/lib.sh"
ROUNDS=${AL_CRASH_ROUNDS:-20}
BIG="$T/big.gguf"
# A valid GGUF header is not needed for a non-.gguf name: use .bin (weights).
BIG="$T/big.bin"
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$BIG" 2>/dev/null || fail "cannot make 1 GiB file"
airlock init >/dev/null
# Time one uncut add to spread the kills over the whole run.
start=$(date +%s%N)
airlock add calib "$BIG" >/dev/null
dur_ms=$(( ($(date +%s%N) - start) / 1000000 ))
airlock rm calib >/dev/null; airlock gc >/dev/null
echo "one add of 1 GiB takes ${dur_ms} ms"
present=0; absent=0
for i in $(seq 1 "$ROUNDS"); do
    # Change the content so every round writes a new blob.
    printf '%08d' "$i" | dd of="$BIG" bs=1 seek=0 conv=notrunc status=none
    delay_ms=$(( (RANDOM * 7919 + i * 104729) % (dur_ms + 200) ))
    "$AIRLOCK_BIN" add "crash$i" "$BIG" >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    airlock fsck >"$T/fsck.out" 2>&1 || fail "round $i (kill after ${delay_ms} ms): fsck not clean: $(cat "$T/fsck.out")"
    if airlock show "crash$i" --json >"$T/show.json" 2>/dev/null; then
        size=$(json_get 'd["files"][0]["size"]' <"$T/show.json")
        [ "$size" = 1073741824 ] || fail "round $i: partial version ($size bytes)"
        p=$(airlock path "crash$i")
        [ "$(stat -c %s "$p")" = 1073741824 ] || fail "round $i: blob size"
        present=$((present + 1))
        airlock rm "crash$i" >/dev/null
    else
        absent=$((absent + 1))
    fi
    airlock gc >/dev/null
done
echo "after $ROUNDS kills: $present fully present, $absent absent, fsck clean every time"
airlock log --verify >/dev/null || fail "event log damaged"
ok "crash safety"
