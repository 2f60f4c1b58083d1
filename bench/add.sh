#!/usr/bin/env bash
# bench/add.sh: `airlock add` of a large file side by side with the manual
# steps an operator would take (`sha256sum FILE > sums && cp FILE STORE/`),
# and airlock's hashing rate beside `openssl speed -evp sha256`.
#
#   bench/add.sh [BUILD_DIR] [SIZE_MIB]     (defaults: build, 2048)
#
# The file is written once and read once before timing, so every contender
# starts with it in the page cache. Each contender runs 3 times; the median
# is reported. Prints a table and writes bench/results/add.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
size_mib=${2:-2048}
bin="$here/$build/airlock"
[ -x "$bin" ] || { echo "build first: make build" >&2; exit 2; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/al-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
export AIRLOCK_NO_PROGRESS=1

file="$work/model.bin"
echo "writing a ${size_mib} MiB test file..."
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$file"
cat "$file" >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

manual() {
    rm -rf "$work/manual"; mkdir -p "$work/manual"
    local t0; t0=$(now)
    sha256sum "$file" >"$work/manual/sums" && cp "$file" "$work/manual/"
    echo "$(now) - $t0" | bc
}
airlock_add() {
    rm -rf "$work/home"
    local t0; t0=$(now)
    AIRLOCK_HOME="$work/home" "$bin" add bench "$file" >/dev/null
    echo "$(now) - $t0" | bc
}
hash_only() {
    # airlock's hashing path alone: al_sha256 over the cached file, through
    # the same code `airlock fsck` uses to re-hash a blob. add writes the blob
    # past the page cache (O_DIRECT), so it is read into the cache first:
    # this measures hashing, not the disk.
    rm -rf "$work/home"
    AIRLOCK_HOME="$work/home" "$bin" add bench "$file" >/dev/null
    cat "$work"/home/blobs/sha256/* >/dev/null
    local t0; t0=$(now)
    AIRLOCK_HOME="$work/home" "$bin" fsck >/dev/null
    echo "$(now) - $t0" | bc
}

m_manual=$(for _ in 1 2 3; do manual; done | median)
m_add=$(for _ in 1 2 3; do airlock_add; sync; done | median)
m_hash=$(for _ in 1 2 3; do hash_only; done | median)
rm -rf "$work/manual" "$work/home"

openssl_mbs=$(openssl speed -evp sha256 -bytes 1048576 -seconds 3 2>/dev/null |
    awk '/^sha256/ {v=$NF; sub(/k$/, "", v); printf "%.0f", v * 1000 / 1e6}')
mb=$(echo "$size_mib * 1.048576" | bc -l)
add_mbs=$(echo "$mb / $m_add" | bc -l)
hash_mbs=$(echo "$mb / $m_hash" | bc -l)
ratio=$(echo "$m_add / $m_manual" | bc -l)
hash_ratio=$(echo "$hash_mbs / $openssl_mbs" | bc -l)

printf '\n%-44s %10s %12s\n' "contender (${size_mib} MiB, median of 3)" "seconds" "MB/s"
printf '%-44s %10.2f %12.0f\n' "sha256sum FILE > sums && cp FILE STORE/" "$m_manual" "$(echo "$mb / $m_manual" | bc -l)"
printf '%-44s %10.2f %12.0f\n' "airlock add (hash while copying, fsync)" "$m_add" "$add_mbs"
printf '%-44s %10.2f %12.0f\n' "airlock fsck (re-hash the blob)" "$m_hash" "$hash_mbs"
printf '%-44s %10s %12s\n' "openssl speed -evp sha256 -bytes 1048576" "-" "$openssl_mbs"
printf '\nairlock add / manual steps = %.2fx (goal: at most 0.40x)\n' "$ratio"
printf 'airlock hashing / openssl speed = %.0f%% (goal: at least 80%%)\n' "$(echo "$hash_ratio * 100" | bc -l)"

cat >"$here/bench/results/add.json" <<JSON
{"size_mib": $size_mib, "manual_s": $m_manual, "airlock_add_s": $m_add, "airlock_rehash_s": $m_hash,
 "openssl_sha256_mbs": $openssl_mbs, "airlock_add_mbs": $(printf '%.1f' "$add_mbs"),
 "airlock_hash_mbs": $(printf '%.1f' "$hash_mbs"), "add_over_manual": $(printf '%.3f' "$ratio"),
 "hash_over_openssl": $(printf '%.3f' "$hash_ratio")}
JSON
