# check.sh: preparing an operation, running it under one fault, and judging
# what it left behind (sourced by sweep.sh).

# The state a user can see, without times and random ids: the models, the
# event log's kinds and subjects, the referenced blobs, the audit records'
# count, and whatever the operation adds (op_NAME_state).
store_state() {
    # The JSON is printed one member a line: drop the times, keep the rest.
    # (grep finding nothing is no error here: the comparison judges.)
    airlock ls --json | grep -v '"created":\|"changed":' || true
    # One line per event. A refused ingest records its refusal: a legitimate
    # addition to the state before, so "ingest-refused" events are left out.
    airlock log --json | awk -F'": ' '/^    "(digest|id|kind|model)":/ {e = e " " $2}
        /^    "model":/ {print "event" e; e = ""}' | grep -v '"ingest-refused"' || true
    # Referenced blobs: every blob minus those gc would remove.
    { airlock gc --dry-run 2>&1 | grep -o 'would remove sha256:[0-9a-f]*' || true; } | cut -d' ' -f3 | sort >"$T/orphans"
    (cd "$H/blobs/sha256" && ls) | sed 's/^/sha256:/' | sort | comm -23 - "$T/orphans" | sed 's/^/blob /'
    if [ -d "$H/audit" ]; then echo "audit $(airlock audit verify 2>&1 | grep -o '[0-9]* records' | head -1)"; fi
    local fn="op_${OP//-/_}_state"
    if declare -F "$fn" >/dev/null; then (cd "$IN" && "$fn"); fi
}

# Every blob's content hashes to its name (fsck checks only referenced ones).
blobs_intact() {
    local f bad=0
    for f in "$H"/blobs/sha256/*; do
        [ -e "$f" ] || continue
        [ "$(sha256sum <"$f" | cut -c1-64)" = "$(basename "$f")" ] || { echo "blob $(basename "$f") damaged"; bad=1; }
    done
    return $bad
}

# op_prepare OP: the starting store, its state, the state after a clean run,
# and the number of counted calls of a clean run.
op_prepare() {
    OP=$1
    BASE="$T/base-$OP"
    IN="$T/in-$OP"
    mkdir -p "$IN"
    H="$BASE"
    export AIRLOCK_HOME="$H"
    (cd "$IN" && "op_${OP//-/_}_setup") || fail "$OP: setup failed"
    store_state >"$T/$OP.before"
    fresh_home "$T/work"
    rm -f "$T/report"
    (cd "$IN" && "op_${OP//-/_}_run" env LD_PRELOAD="$AL_FAULTSHIM" FAULT_PREFIX="$H" FAULT_REPORT="$T/report" \
        FAULT_TRACE=1) >"$T/out" 2>&1 || fail "$OP: fails without faults: $(cat "$T/out")"
    CALLS=$(awk '$1 == "count" {n = $2} END {print n + 0}' "$T/report")
    # The first call of each kind (operation and file, random names folded):
    # the quick sweep's points.
    grep -v '^count' "$T/report" | sed -E 's/[.][A-Za-z0-9]{6}$|[.]tmp[.][0-9]+$/.*/; s/[0-9a-f]{64}/*/' |
        awk '!(($2 " " $3) in seen) {seen[$2 " " $3] = 1; print $1}' >"$T/$OP.kinds"
    [ "$CALLS" -gt 0 ] || fail "$OP: the shim counted no calls (is faultshim.so preloaded?)"
    store_state >"$T/$OP.after"
    cmp -s "$T/$OP.before" "$T/$OP.after" && fail "$OP: a clean run changed nothing visible"
    # Space a clean run takes on the tmpfs (for the ENOSPC levels).
    NEED_KIB=64
    if [ "$ENOSPC_FROM" = tmpfs ]; then
        fresh_home "$MNT/home"
        local u0 u1
        u0=$(df --output=used -k "$MNT" | tail -1)
        (cd "$IN" && "op_${OP//-/_}_run" env) >"$T/out" 2>&1 || fail "$OP: fails on the tmpfs without faults: $(cat "$T/out")"
        u1=$(df --output=used -k "$MNT" | tail -1)
        NEED_KIB=$((u1 - u0 + 64))
    fi
    echo "$OP: $CALLS calls under the store, $NEED_KIB KiB"
}

# fresh_home DIR: a copy of the operation's starting store at DIR, in $H.
fresh_home() {
    rm -rf "$1"
    mkdir -p "$(dirname "$1")"
    cp -a "$BASE" "$1"
    H="$1"
    export AIRLOCK_HOME="$H"
}

# points LAST [KINDS] [ROUND]: the points to try among 1..LAST (capped at
# CAP). The full sweep tries all. The quick one tries SAMPLE of them: from
# KINDS (the first call of each kind, one a line), starting at a place that
# moves with ROUND so that each fault hits other kinds; else spread evenly.
points() {
    local last=$1 kinds=${2:-} round=${3:-0}
    [ "$last" -gt "$CAP" ] && last=$CAP
    if [ "$MODE" = full ] || [ "$SAMPLE" -ge "$last" ]; then seq 1 "$last"; return; fi
    if [ -n "$kinds" ]; then
        awk -v cap="$last" -v n="$SAMPLE" -v r="$round" '$1 <= cap {p[k++] = $1}
            END {for (i = 0; i < n && i < k; i++) print p[(r + int(i * k / n)) % k]}' "$kinds" | sort -n
        return
    fi
    awk -v last="$last" -v n="$SAMPLE" 'BEGIN {
        for (i = 0; i < n; i++) { p = 1 + int(i * (last - 1) / (n - 1) + 0.5); if (!(p in s)) { s[p] = 1; print p } } }'
}

# sweep_one OP FAULT ROUND: sets R_POINTS, R_REFUSED, R_DONE_ERR, R_CORRUPT, R_UNVERIF, R_UNCLEAR, R_KNOWN.
sweep_one() {
    local op=$1 fault=$2 round=$3 p
    R_POINTS=0 R_REFUSED=0 R_DONE_ERR=0 R_CORRUPT=0 R_UNVERIF=0 R_UNCLEAR=0 R_KNOWN=0
    if [ "$fault" = enospc ] && [ "$ENOSPC_FROM" = tmpfs ]; then
        # Free space in 4 KiB steps from none to what a clean run needs.
        local steps=$(( (NEED_KIB + 3) / 4 + 1 )) levels
        if [ "$MODE" = full ]; then levels=$(points "$steps"); else
            levels=$(awk -v s="$steps" -v n="$SAMPLE" 'BEGIN {for (i = 1; i <= n; i++) print 1 + int(i * s / (n + 1))}')
        fi
        for p in $levels; do
            [ "$(date +%s)" -lt "$DEADLINE" ] || { echo "time is up"; break; }
            run_point "$op" "$fault" $(( (p - 1) * 4 ))
        done
        return
    fi
    # The shim: the Nth counted call, from the first to one past the last
    # (which must succeed).
    for p in $(points $((CALLS + 1)) "$T/$OP.kinds" "$round"); do
        [ "$(date +%s)" -lt "$DEADLINE" ] || { echo "time is up"; break; }
        run_point "$op" "$fault" "$p"
    done
}

problem() { echo "  $OP $FAULT@$POINT: $*" >>"$T/problems"; }

# run_point OP FAULT POINT: one run under one fault, then the checks.
run_point() {
    OP=$1 FAULT=$2 POINT=$3
    local rc=0 fired=1 killed=0
    rm -f "$T/report"
    if [ "$FAULT" = enospc ] && [ "$ENOSPC_FROM" = tmpfs ]; then
        fresh_home "$MNT/home"
        local avail
        avail=$(df --output=avail -k "$MNT" | tail -1)
        [ "$avail" -gt "$POINT" ] && fallocate -l $(( (avail - POINT) * 1024 )) "$MNT/filler"
        (cd "$IN" && "op_${OP//-/_}_run" env) >"$T/out" 2>"$T/err" || rc=$?
        rm -f "$MNT/filler"
        [ "$rc" = 0 ] && fired=0
    else
        fresh_home "$T/work"
        (cd "$IN" && "op_${OP//-/_}_run" env LD_PRELOAD="$AL_FAULTSHIM" FAULT_PREFIX="$H" FAULT_N="$POINT" \
            FAULT_MODE="$FAULT" FAULT_REPORT="$T/report") >"$T/out" 2>"$T/err" || rc=$?
        grep -q "^$POINT " "$T/report" 2>/dev/null || fired=0
        [ "$FAULT" = kill ] && [ "$rc" = 137 ] && killed=1
    fi
    R_POINTS=$((R_POINTS + 1))
    local what="" bad_store=0 bad_log=0 unclear=0
    if [ "$FAULT" = enospc ] && [ "$ENOSPC_FROM" = tmpfs ]; then
        what="${POINT} KiB free"
    elif [ "$fired" = 1 ]; then
        what=$(awk -v n="$POINT" '$1 == n {print $2, $3}' "$T/report")
    fi
    # 1. the store: fsck, blobs, and the state before or after, nothing between
    if ! airlock fsck >"$T/fsck" 2>&1; then
        bad_store=1; problem "fsck not clean after a fault at ${what:-?}: $(tail -3 "$T/fsck" | tr '\n' ' ')"
    fi
    if ! blobs_intact >"$T/blobs"; then bad_store=1; problem "$(cat "$T/blobs")"; fi
    store_state >"$T/state" 2>&1
    local done=-1
    cmp -s "$T/state" "$T/$OP.before" && done=0
    cmp -s "$T/state" "$T/$OP.after" && done=1
    if [ "$done" = -1 ] && [[ " $KNOWN_PARTIAL " == *" $OP:$FAULT "* ]]; then
        R_KNOWN=$((R_KNOWN + 1))
        echo "  $OP $FAULT@$POINT: known: partial after a fault at ${what:-?}" >>"$T/known"
    elif [ "$done" = -1 ]; then
        bad_store=1
        problem "partial: neither before nor after (fault at ${what:-?}, exit $rc): $(diff "$T/$OP.before" "$T/state" | head -6 | tr '\n' ' ')"
    fi
    # 2. the logs
    if ! airlock log --verify >"$T/v" 2>&1; then bad_log=1; problem "log --verify: $(tail -2 "$T/v" | tr '\n' ' ')"; fi
    if ! airlock audit verify >"$T/v" 2>&1; then bad_log=1; problem "audit verify: $(tail -2 "$T/v" | tr '\n' ' ')"; fi
    # 3. the command's own report
    if [ "$killed" = 1 ]; then
        :
    elif [ "$rc" = 0 ]; then
        if [ "$done" = 0 ]; then bad_store=1; problem "exit 0 but the change is absent (fault at ${what:-?})"; fi
    else
        local msg
        msg=$(grep -m1 '^airlock: error:' "$T/err" || grep -v -m1 'warning' "$T/err" || true)
        case "$rc" in
        1 | 7) ;;
        *) unclear=1; problem "exit $rc (not 1 or 7) after a fault at ${what:-?}: $(head -c 300 "$T/err")" ;;
        esac
        if [ "$unclear" = 0 ] && ! clear_message "$msg"; then
            unclear=1; problem "unclear message after a fault at ${what:-?}: $(head -c 300 "$T/err")"
        fi
        [ "$done" = 1 ] && R_DONE_ERR=$((R_DONE_ERR + 1))
        [ "$done" = 0 ] && [ "$unclear" = 0 ] && R_REFUSED=$((R_REFUSED + 1))
        echo "$OP $FAULT $rc ${what:-?}: $msg" >>"$T/messages"
    fi
    R_CORRUPT=$((R_CORRUPT + bad_store))
    R_UNVERIF=$((R_UNVERIF + bad_log))
    R_UNCLEAR=$((R_UNCLEAR + unclear))
    if [ "$bad_store$bad_log$unclear" != 000 ] && [ -n "${AL_FAULT_KEEP:-}" ]; then
        cp -a "$H" "$T/../al-fault-$OP-$FAULT-$POINT" 2>/dev/null || true
    fi
    return 0
}

# A clear refusal names its subject in quotes and says why (the system's
# words or SQLite's).
clear_message() {
    local m=$1
    [[ "$m" == *"'"* ]] || return 1
    [[ "$m" =~ (Input/output\ error|No\ space\ left|disk\ I/O\ error|disk\ is\ full|unable\ to\ open|opened\ for\ writing) ]]
}
