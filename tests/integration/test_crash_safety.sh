# SIGKILL at random moments while `airlock add` imports a 1 GiB file, 20
# times. Afterwards fsck is clean and each version is fully present or absent.
# The kills are spread over the length of one add (one in each twentieth, at
# a random point of it), and at least two must land while the blob is being
# written (a partial file in the store's tmp/): a run whose kills all came
# before or after the write proves nothing and fails. Where the file system
# clones files (FICLONE), add writes nothing: there the kills must land while
# the clone is being hashed (a file in tmp/ of any size).
. "$(dirname "$0")/lib.sh"
ROUNDS=${AL_CRASH_ROUNDS:-20}
BIG="$T/big.gguf"
# A valid GGUF header is not needed for a non-.gguf name: use .bin (weights).
# Its first byte is no pickle opcode, so add's scan calls it "not a pickle"
# (warn), not a malformed one (dangerous, refused).
BIG="$T/big.bin"
{ printf '\0'; head -c $((1024 * 1024 * 1024 - 1)) /dev/urandom; } >"$BIG" 2>/dev/null || fail "cannot make 1 GiB file"
airlock init >/dev/null
# Time one uncut add to spread the kills over the whole run.
start=$(date +%s%N)
airlock add calib "$BIG" >/dev/null
dur_ms=$(( ($(date +%s%N) - start) / 1000000 ))
airlock rm calib >/dev/null; airlock gc >/dev/null
echo "one add of 1 GiB takes ${dur_ms} ms"
present=0; absent=0; midwrite=0
reflink=0
cp --reflink=always "$BIG" "$T/clone" 2>/dev/null && reflink=1
rm -f "$T/clone"
slice=$(( (dur_ms + 200) / ROUNDS + 1 ))
for i in $(seq 1 "$ROUNDS"); do
    # Change the content so every round writes a new blob.
    printf '%08d' "$i" | dd of="$BIG" bs=1 seek=1 conv=notrunc status=none
    ls "$AIRLOCK_HOME/tmp" >"$T/tmp.before" 2>/dev/null || : >"$T/tmp.before"
    delay_ms=$(( (i - 1) * slice + RANDOM % slice ))
    "$AIRLOCK_BIN" add "crash$i" "$BIG" >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # A new partial file in tmp/ (not yet swept: it is seconds old) is a kill
    # that landed mid-write.
    for f in $(ls "$AIRLOCK_HOME/tmp" 2>/dev/null | grep -vxF -f "$T/tmp.before" || true); do
        sz=$(stat -c %s "$AIRLOCK_HOME/tmp/$f" 2>/dev/null || echo 0)
        if [ "$reflink" = 1 ] || { [ "$sz" -gt 0 ] && [ "$sz" -lt 1073741824 ]; }; then
            midwrite=$((midwrite + 1)); break
        fi
    done
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
echo "after $ROUNDS kills: $present fully present, $absent absent ($midwrite killed mid-write), fsck clean every time"
need=$((ROUNDS < 2 ? ROUNDS : 2))
[ "$midwrite" -ge "$need" ] ||
    fail "only $midwrite of $ROUNDS kills landed mid-write (need $need): the kills missed the write"
airlock log --verify >/dev/null || fail "event log damaged"
ok "crash safety"
