#!/usr/bin/env bash
# Bounded load: 8 concurrent streaming clients for AL_LOAD_SECONDS (default
# 60) against a server started from a config file; zero failures, every
# response well formed, and resident memory after the run within 10% (or
# 16 MiB) of what it was after warm-up. bench/serve.sh runs longer ones.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v node >/dev/null || skip_test "node missing"
FIX=$(fixture)
secs=${AL_LOAD_SECONDS:-60}
airlock add stories:1.0 "$FIX" >/dev/null
# 8 sequences share the KV cache: 8192 cells are 1024 for each, so no
# request is stopped for room (engine.md).
cat >"$T/serve.json" <<'JSON'
{"listen": {"host": "127.0.0.1", "port": 0}, "models": ["stories"],
 "defaults": {"parallel": 8, "ctx": 8192, "threads": 2}, "keep_alive_s": -1,
 "limits": {"max_tokens": 512, "concurrent": 32}}
JSON
serve_start --config "$T/serve.json"
load="$AL_SRC/bench/serve_load.mjs"
node "$load" --url "$BASE" --model stories --clients 8 --duration 8 --max-tokens 64 >"$T/warm.json" \
    || fail "warm-up: $(cat "$T/warm.json")"
rss0=$(metric airlock_resident_memory_bytes)
node "$load" --url "$BASE" --model stories --clients 8 --duration "$secs" --max-tokens 128 >"$T/run.json" \
    || fail "load run: $(cat "$T/run.json")"
rss1=$(metric airlock_resident_memory_bytes)
cat "$T/run.json"
python3 - "$T/run.json" "$rss0" "$rss1" <<'PY' || fail "load result"
import json, sys
r = json.load(open(sys.argv[1])); rss0, rss1 = int(sys.argv[2]), int(sys.argv[3])
print(f"requests {r['requests']}, failures {r['failures']}, {r['agg_tps']} tokens/s, "
      f"TTFT p50 {r['ttft_p50_ms']} ms p95 {r['ttft_p95_ms']} ms, RSS {rss0>>20} -> {rss1>>20} MiB")
assert r["failures"] == 0, r["errors"]
assert r["requests"] >= 8, r
assert rss1 - rss0 <= max(rss0 // 10, 16 << 20), f"RSS grew from {rss0} to {rss1}"
PY
[ "$(metric airlock_active_sequences)" = 0 ] || fail "sequences still busy after the run"
ok "8 concurrent streaming clients for $secs s: no failures, no RSS growth beyond warm-up"
