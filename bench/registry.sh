#!/usr/bin/env bash
# bench/registry.sh: push and pull of a version holding a SIZE_MIB (default
# 2048) MiB weight file through Debian's docker-registry on loopback, side by
# side with skopeo copy of the same artifact in one run:
#   airlock push --sign      vs  skopeo copy oci:DIR docker://... (the other way)
#   airlock pull             vs  skopeo copy docker://... oci:DIR
#   skopeo copy from `airlock serve --registry --registry-sign` (the mirror)
#                            vs  skopeo copy from docker-registry; and
#   airlock pull from the mirror
# skopeo verifies no signature; airlock pull proves the signatures, every
# digest, scans and decides the license. Reports seconds, MB/s and max RSS.
# Not part of make test.
#
# usage: bench/registry.sh [BUILD_DIR]     (SIZE_MIB=256 for a quick run)
# Needs about 6x SIZE_MIB of free disk under TMPDIR.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/$build/airlock"
size=${SIZE_MIB:-2048}
for t in docker-registry skopeo; do command -v $t >/dev/null || { echo "$t missing" >&2; exit 1; }; done
work=$(mktemp -d "${TMPDIR:-/tmp}/al-bench.XXXXXX")
REG_PID=
SERVE_PID=
cleanup() {
    local p
    [ -z "$SERVE_PID" ] || { kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || :; }
    for p in $REG_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || :; done
    rm -rf "$work"
}
trap cleanup EXIT
export AIRLOCK_NO_PROGRESS=1
cd "$work"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
mbps() { python3 -c "print(f'{$size * 1.048576 / ($2 - $1):.0f}')"; }
rss() { awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' time.txt; }

# Two registries: skopeo's push goes to the second, where no blob is yet (in
# one registry, skopeo would mount the blobs airlock pushed).
start_registry() { # NAME: sets REG, appends to REG_PID
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/registry-$1" "$port" >"config-$1.yml"
    docker-registry serve "config-$1.yml" >"registry-$1.log" 2>&1 &
    REG_PID="$REG_PID $!"
    REG="127.0.0.1:$port"
    for _ in $(seq 1 200); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.05; done
}
start_registry two
REG2=$REG
start_registry one

echo "== preparing a $size MiB weight file"
head -c "$((size << 20))" /dev/urandom >weights.raw
export AIRLOCK_HOME="$work/a"
"$bin" init >/dev/null
"$bin" add bench:1 weights.raw >/dev/null
rm weights.raw
"$bin" key gen -o k --no-password >/dev/null

echo "== push"
t0=$(now)
/usr/bin/time -v -o time.txt "$bin" push bench:1 "$REG/airlock/bench:1" --plain-http --sign k.key >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  max RSS %s KiB\n' "airlock push --sign:" "$(secs "$t0" "$t1")" "$(mbps "$t0" "$t1")" "$(rss)"
push_t=$(secs "$t0" "$t1")
skopeo copy -q --src-tls-verify=false "docker://$REG/airlock/bench:1" oci:layout:b >/dev/null
t0=$(now)
skopeo copy -q --dest-tls-verify=false oci:layout:b "docker://$REG2/skopeo/bench:1" >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s\n' "skopeo copy oci: docker://:" "$(secs "$t0" "$t1")" "$(mbps "$t0" "$t1")"
skopeo_push=$(secs "$t0" "$t1")
rm -rf layout

t0=$(now)
AIRLOCK_HOME="$work/a" "$bin" export bench:1 -o export.tar --sign k.key >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  (the packing inside push --sign)\n' "airlock export (for comparison):" "$(secs "$t0" "$t1")" \
    "$(mbps "$t0" "$t1")"
rm -f export.tar

echo "== pull"
export AIRLOCK_HOME="$work/b"
"$bin" init >/dev/null
"$bin" trust add k --minisign k.pub >/dev/null
t0=$(now)
/usr/bin/time -v -o time.txt "$bin" pull "$REG/airlock/bench:1" --plain-http >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  max RSS %s KiB\n' "airlock pull (signatures, digests, scan):" "$(secs "$t0" "$t1")" \
    "$(mbps "$t0" "$t1")" "$(rss)"
pull_t=$(secs "$t0" "$t1")
t0=$(now)
/usr/bin/time -v -o time.txt skopeo copy -q --src-tls-verify=false "docker://$REG/airlock/bench:1" oci:out:b >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  max RSS %s KiB\n' "skopeo copy docker:// oci:" "$(secs "$t0" "$t1")" "$(mbps "$t0" "$t1")" \
    "$(rss)"
skopeo_pull=$(secs "$t0" "$t1")
echo "== ratios (airlock/skopeo; target <= 1): push $(python3 -c "print(f'{$push_t / $skopeo_push:.2f}')")" \
    " pull $(python3 -c "print(f'{$pull_t / $skopeo_pull:.2f}')")"

echo "== mirror: airlock serve --registry --registry-sign (store a)"
rm -rf out
AIRLOCK_HOME="$work/a" "$bin" serve --port 0 --registry --registry-sign k.key >serve.log 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 300); do grep -qs "airlock: ready" serve.log && break; sleep 0.1; done
MIRROR=$(grep -o 'http://[^ ]*' serve.log | head -1)
MIRROR=${MIRROR#http://}
t0=$(now)
curl -sf "http://$MIRROR/v2/bench/manifests/1" >/dev/null # the first request packs and signs the version
t1=$(now)
printf '%-40s %s s  (once per version, then kept)\n' "mirror: first manifest (pack, sign):" "$(secs "$t0" "$t1")"
t0=$(now)
/usr/bin/time -v -o time.txt skopeo copy -q --src-tls-verify=false "docker://$MIRROR/bench:1" oci:out:b >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  max RSS %s KiB\n' "skopeo copy from the mirror:" "$(secs "$t0" "$t1")" \
    "$(mbps "$t0" "$t1")" "$(rss)"
mirror_t=$(secs "$t0" "$t1")
export AIRLOCK_HOME="$work/c"
"$bin" init >/dev/null
"$bin" trust add k --minisign k.pub >/dev/null
t0=$(now)
/usr/bin/time -v -o time.txt "$bin" pull "$MIRROR/bench:1" --plain-http >/dev/null
t1=$(now)
printf '%-40s %s s  %s MB/s  max RSS %s KiB\n' "airlock pull from the mirror:" "$(secs "$t0" "$t1")" \
    "$(mbps "$t0" "$t1")" "$(rss)"
echo "== ratio skopeo copy from the mirror / from docker-registry (target <= 1):" \
    "$(python3 -c "print(f'{$mirror_t / $skopeo_pull:.2f}')")"
