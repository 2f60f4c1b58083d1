#!/usr/bin/env bash
# bench/rag.sh: retrieval side by side, in one run.
#
#  1. Embedding throughput: the chunks of a man-page corpus (chunked by
#     'airlock rag add') embedded by airlock (airlock-ragbench embed: the
#     engine's al_engine_embed, 32 texts a call as 'rag add' does) and by
#     llama.cpp's own llama-embedding, same model, same threads, the same
#     batch (n_ctx = n_batch = n_ubatch = the model's context; llama-embedding in its
#     default unified-KV mode, which packs up to 64 sequences a batch, airlock 8),
#     whole processes timed, interleaved, best of ROUNDS.
#  2. Query latency p50/p95/p99 over a collection of N (100k) synthetic chunks
#     (clustered 384-d unit vectors, Zipf words), query embedding excluded.
#  3. HNSW recall@10 against the exact index on the same vectors.
#
# usage: bench/rag.sh [BUILD]   env: MODEL (GGUF; default the stories260K
# fixture), POOLING (mean: set it to the model's own for an embedding model),
# THREADS (2), ROUNDS (3), N (100000), DIM (384), DOCS (60), CHUNK_TOKENS (200)
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/$build/airlock"; rb="$here/$build/airlock-ragbench"
prefix=$(sed -n 's/^AIRLOCK_LLAMA_PREFIX:PATH=//p' "$here/$build/CMakeCache.txt")
llemb="$prefix/build/bin/llama-embedding"
model=${MODEL:-$here/tests/fixtures/stories260K.gguf}
threads=${THREADS:-2}; rounds=${ROUNDS:-3}; n=${N:-100000}; dim=${DIM:-384}; ndocs=${DOCS:-60}
work=$(mktemp -d "${TMPDIR:-/tmp}/al-bench-rag.XXXXXX"); trap 'rm -rf "$work"' EXIT
export AIRLOCK_HOME="$work/home" AIRLOCK_NO_PROGRESS=1
now() { date +%s.%N; }

echo "== corpus: $ndocs manual pages, chunked by airlock"
mkdir -p "$work/corpus"
ls /usr/share/man/man1/*.1.gz | sed -n "1,${ndocs}p" | while read -r p; do
    MANWIDTH=80 man -P cat -l "$p" 2>/dev/null | col -bx >"$work/corpus/$(basename "$p" .1.gz).txt" || true
done
"$bin" init >/dev/null; "$bin" add emb "$model" >/dev/null
"$bin" rag create c --embed emb --chunk-tokens "${CHUNK_TOKENS:-200}" >/dev/null
"$bin" rag add c "$work/corpus" --threads "$threads" | tail -1
sqlite3 "$AIRLOCK_HOME/rag/c/chunks.db" \
  "SELECT replace(replace(CASE heading WHEN '' THEN text ELSE heading || char(10) || char(10) || text END, char(13), ' '), char(10), ' ') FROM chunks ORDER BY id" >"$work/chunks.txt"
nchunks=$(wc -l <"$work/chunks.txt")
digest=sha256:$(sha256sum "$model" | cut -d' ' -f1)
nctx=$("$rb" embed "$model" "$digest" "$work/chunks.txt" -t "$threads" -r 1 | sed -n 's/.*n_ctx \([0-9]*\).*/\1/p')
pool=${POOLING:-mean} # airlock's engine mean-pools a model that declares no pooling
echo "== embedding $nchunks chunks: threads $threads, n_ctx = n_batch = n_ubatch = $nctx, $rounds rounds"
best_a=0; best_l=0
for r in $(seq 1 "$rounds"); do
    t0=$(now); "$rb" embed "$model" "$digest" "$work/chunks.txt" -t "$threads" -r 1 >/dev/null; t1=$(now)
    "$llemb" -m "$model" -f "$work/chunks.txt" -t "$threads" -c "$nctx" -b "$nctx" -ub "$nctx" \
        --pooling "$pool" --embd-output-format array >/dev/null 2>"$work/llemb.log"; t2=$(now)
    a=$(python3 -c "print('%.1f' % ($nchunks / ($t1 - $t0)))"); l=$(python3 -c "print('%.1f' % ($nchunks / ($t2 - $t1)))")
    echo "  round $r: airlock $a chunks/s   llama-embedding $l chunks/s   (whole processes)"
    best_a=$(python3 -c "print(max($best_a, $a))"); best_l=$(python3 -c "print(max($best_l, $l))")
done
echo "embedding: airlock $best_a chunks/s, llama-embedding $best_l chunks/s: ratio $(python3 -c "print('%.2f' % ($best_a / $best_l))") (goal >= 0.9)"

echo "== query latency and HNSW recall: $n chunks of $dim dimensions"
"$rb" query "$work/qhome" "$n" "$dim" -q 300
