#!/usr/bin/env bash
# bench/run.sh: every side-by-side benchmark of bench/, one after the other
# (`make bench`). Each writes its own table and bench/results/<name>.json;
# this prints which ran, how long each took and which failed, and exits 1
# when any failed. They are long (tens of minutes in all on a 2-core
# machine) and never part of `make test`.
#
#   bench/run.sh [BUILD_DIR]                  (default: build)
#   BENCHES="serve rag" bench/run.sh          only these (names below)
#
# Names: serve (airlock serve vs llama-server), engine (airlock bench vs
# llama-bench), ingest (ingest vs tar + sha256sum + gpg), add (add vs
# sha256sum + cp), rag (embeddings vs llama-embedding, query latency, recall),
# scan (GGUF value check vs llama.cpp's --check-tensors), pickle (pickle
# scanning vs Python's pickletools). Each script's
# header says what it measures and which environment variables it takes.
set -uo pipefail

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$build/airlock" ] || { echo "bench: '$build/airlock' is missing: run 'make build' first" >&2; exit 2; }

declare -A script=(
    [serve]=serve.sh [engine]=bench-vs-llama-bench.sh [ingest]=ingest.sh
    [add]=add.sh [rag]=rag.sh [scan]=scan_gguf.sh [pickle]=scan_pickle.sh
)
order=(serve engine ingest add rag scan pickle)
read -r -a wanted <<<"${BENCHES:-${order[*]}}"
for b in "${wanted[@]}"; do
    [ -n "${script[$b]:-}" ] || { echo "bench: unknown benchmark '$b' (known: ${order[*]})" >&2; exit 2; }
done

summary=() failed=0
for b in "${wanted[@]}"; do
    echo "== bench $b: bench/${script[$b]}"
    start=$(date +%s)
    "$here/${script[$b]}" "$build"
    rc=$?
    secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then
        summary+=("$(printf '%-8s ok      %5d s' "$b" "$secs")")
    else
        summary+=("$(printf '%-8s FAILED  %5d s  (exit %d)' "$b" "$secs" "$rc")")
        failed=1
    fi
done
echo "== bench summary (results in bench/results/)"
printf '%s\n' "${summary[@]}"
exit $failed
