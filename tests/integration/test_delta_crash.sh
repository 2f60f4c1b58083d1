#!/usr/bin/env bash
# test_delta_crash.sh: SIGKILL at random moments while `airlock ingest`
# applies a delta bundle (issue 15), 20 times. Afterwards fsck is clean and
# the new version is fully present (byte-identical to the build host's) or
# absent. As in test_crash_safety.sh, the kills are spread over the length of
# one uncut ingest (one in each twentieth, at a random point of it), and at
# least two must land while a rebuilt file is being written (a partial file
# in tmp/): a run whose kills all missed the apply proves nothing and fails.
. "$(dirname "$0")/lib.sh"
ROUNDS=${AL_CRASH_ROUNDS:-20}
cd "$T"
"$AL_BUILD/airlock-ggufgen" --out v1.gguf --params 32M --seed 11 --name demo >/dev/null 2>&1 ||
    fail "cannot generate a model"
cp v1.gguf v2.gguf
python3 "$AL_SRC/tests/integration/gguf_edit.py" v2.gguf --fraction 0.25 >/dev/null
want=$(sha256sum <v2.gguf)
size=$(stat -c %s v2.gguf)

export AIRLOCK_HOME="$T/build"
airlock init >/dev/null
airlock key gen -o build --no-password >/dev/null
airlock add demo:1 v1.gguf >/dev/null 2>&1
airlock add demo:2 v2.gguf >/dev/null 2>&1
airlock pack demo:1 -o v1.tar --sign build.key --seq 1 >/dev/null 2>&1
airlock delta demo:1 demo:2 -o d.tar --sign build.key --seq 2 >/dev/null 2>&1
rm -f v1.gguf

export AIRLOCK_HOME="$T/gap"
airlock init >/dev/null
airlock trust add build --minisign build.pub >/dev/null
airlock ingest v1.tar >/dev/null
# One uncut ingest, to spread the kills over its length. Every later one needs
# --allow-downgrade: sequence 2 was seen.
start=$(date +%s%N)
airlock ingest d.tar >/dev/null
dur_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(sha256sum <"$(airlock path demo:2)")" = "$want" ] || fail "the uncut ingest is not byte-identical"
airlock rm demo:2 >/dev/null; airlock gc >/dev/null
echo "one ingest of the delta ($(stat -c %s d.tar) bytes, result $size bytes) takes ${dur_ms} ms"
present=0; absent=0; midwrite=0
slice=$(( (dur_ms + 200) / ROUNDS + 1 ))
for i in $(seq 1 "$ROUNDS"); do
    ls "$AIRLOCK_HOME/tmp" >"$T/tmp.before" 2>/dev/null || : >"$T/tmp.before"
    delay_ms=$(( (i - 1) * slice + RANDOM % slice ))
    "$AIRLOCK_BIN" ingest d.tar --allow-downgrade >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # A new partial file of the result's size or less in tmp/: killed mid-apply
    # (or mid-stream of the patch, which comes just before).
    for f in $(ls "$AIRLOCK_HOME/tmp" 2>/dev/null | grep -vxF -f "$T/tmp.before" || true); do
        sz=$(stat -c %s "$AIRLOCK_HOME/tmp/$f" 2>/dev/null || echo 0)
        if [ "$sz" -gt 0 ] && [ "$sz" -lt "$size" ]; then
            midwrite=$((midwrite + 1)); break
        fi
    done
    airlock fsck >"$T/fsck.out" 2>&1 || fail "round $i (kill after ${delay_ms} ms): fsck not clean: $(cat "$T/fsck.out")"
    if airlock show demo:2 >/dev/null 2>&1; then
        [ "$(sha256sum <"$(airlock path demo:2)")" = "$want" ] || fail "round $i: demo:2 present but not identical"
        present=$((present + 1))
        airlock rm demo:2 >/dev/null
    else
        absent=$((absent + 1))
    fi
    airlock gc >/dev/null
done
echo "after $ROUNDS kills: $present fully present, $absent absent ($midwrite killed mid-write), fsck clean every time"
need=$((ROUNDS < 2 ? ROUNDS : 2))
[ "$midwrite" -ge "$need" ] ||
    fail "only $midwrite of $ROUNDS kills landed mid-write (need $need): the kills missed the apply"
airlock ingest d.tar --allow-downgrade >/dev/null
[ "$(sha256sum <"$(airlock path demo:2)")" = "$want" ] || fail "the final ingest is not byte-identical"
airlock log --verify >/dev/null || fail "event log damaged"
ok "delta apply crash safety"
