#!/usr/bin/env bash
# airlock bench in this process: the JSON report holds machine, runtime,
# settings, summaries and every raw sample; the HTML report renders in
# headless Chromium with its three charts drawn (marks with a non-zero size);
# a missed target exits 1 naming the target and the measured value;
# --compare passes a report against itself and flags a slowed-down copy.
source "$(dirname "$0")/lib.sh"
F=$(fixture)

grid=(--concurrency 1,2 --prompt-lengths 16,48 --gen-tokens 12 --requests 3 -t 1)
airlock bench "$F" "${grid[@]}" --json "$T/a.json" --html "$T/a.html" >"$T/out.txt" 2>"$T/err.txt" \
    || fail "bench: $(cat "$T/out.txt" "$T/err.txt")"
grep -q "c=2   len=48" "$T/err.txt" || fail "no progress line per cell: $(cat "$T/err.txt")"
if [ "$(nproc)" != 1 ]; then
    qgrep "1 threads on $(nproc) cores: decoding is usually fastest with threads = cores" "$T/err.txt" ||
        fail "no threads-vs-cores hint at -t 1: $(cat "$T/err.txt")"
fi
grep -q "^decode .* tokens/s per stream" "$T/out.txt" || fail "no summary: $(cat "$T/out.txt")"
python3 - "$T/a.json" <<'PY' || fail "report content"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "airlock-bench/1" and r["kind"] == "engine"
m = r["machine"]
assert m["cpu_model"] and m["n_cpus"] >= 1 and m["threads"] == 1 and m["llama_commit"] and m["system_info"]
assert r["model"]["digest"].startswith("sha256:270cba1b")
# where the model ran: the CPU build's one device, all 5 layers on it
assert r["model"]["runs_on"] == "CPU: all 5 layers" and r["model"]["gpu_layers"] == 0, r["model"]
assert m["gpu_layers"] == 0 and [d["type"] for d in m["devices"]] == ["cpu"], m["devices"]
assert len(r["cells"]) == 4, len(r["cells"])
for c in r["cells"]:
    assert c["n_ok"] == 3 and c["n_errors"] == 0, c
    s = c["summary"]
    for k in ("pp_tps", "decode_tps", "aggregate_tps"):
        assert s[k] > 0, (k, s)
    for k in ("ttft_ms", "itl_ms", "latency_ms"):
        assert s[k]["p50"] <= s[k]["p95"] <= s[k]["p99"], (k, s[k])
    assert len(c["samples"]) == 3
    for x in c["samples"]:
        assert x["n_gen"] == 12 and abs(x["n_prompt"] - c["prompt_length"]) <= 3, x
        # Every prompt token computed: a prompt of N is a batch of N, as llama-bench's ppN.
        assert x["n_cached"] == 0, x
        assert x["ttft_ms"] > 0 and x["latency_ms"] >= x["ttft_ms"] and len(x["itl_ms"]) >= 8, x
assert r["health"]["rss_peak_mb"] > 1
assert r["overall"]["decode_tps"] > 0
PY
ok "JSON report: machine, runtime, 4 cells, raw samples"

if command -v chromium >/dev/null 2>&1; then
    # file:// from a temporary directory; no network, no sandbox (CI containers run as root)
    timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,2000 \
        --screenshot="$T/a.png" "file://$T/a.html" >/dev/null 2>&1 || fail "chromium screenshot"
    [ "$(stat -c %s "$T/a.png")" -gt 20000 ] || fail "screenshot too small: $(stat -c %s "$T/a.png") bytes"
    timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$T/a.html" 2>/dev/null >"$T/dom.html" \
        || fail "chromium --dump-dom"
    python3 - "$T/dom.html" <<'PY' || fail "charts not rendered: $(grep -o 'data-rendered="[^"]*"' "$T/dom.html")"
import re, sys
dom = open(sys.argv[1]).read()
for chart in ("chart-latency", "chart-tps", "chart-ttft"):
    m = re.search(r'<svg[^>]*id="%s"[^>]*data-rendered="(\d+) marks (\d+)x(\d+)"' % chart, dom)
    assert m, chart + " missing or not rendered"
    n, w, h = map(int, m.groups())
    assert n > 0 and w > 0 and h > 0, (chart, n, w, h)
    print("%s: %d marks, %dx%d" % (chart, n, w, h))
assert "<script src" not in dom and "@font-face" not in dom and "http://" not in dom.replace('xmlns="http://www.w3.org/2000/svg"', "")
PY
    ok "HTML renders in headless Chromium with its charts drawn"
else
    skip_part "chromium is not installed (scripts/bootstrap.sh installs it): HTML not rendered"
fi

# the HTML renders from a saved report too
# The page reads as a person wants it (issue 16): llama.cpp's guesses are not
# in the description, axis labels have no exponent form, the charts take the
# page's width, and the summary says what it pools.
! grep -q '(guessed)\|?B' "$T/a.html" || fail "the description keeps llama.cpp's guesses: $(grep -o 'description</th><td>[^<]*' "$T/a.html")"
! grep -qE '>-?[0-9.]+e[+-][0-9]+<' "$T/a.html" || fail "an axis label in exponent form: $(grep -oE '>-?[0-9.]+e[+-][0-9]+<' "$T/a.html" | head -3)"
grep -q 'svg.chart{width:100%' "$T/a.html" && ! grep -q '<svg class="chart"[^>]* width="' "$T/a.html" ||
    fail "the charts have a fixed width"
grep -q '<h2>Summary</h2>' "$T/a.html" && qgrep 'all prompt lengths together' "$T/out.txt" ||
    fail "the summary does not say what it pools"
ok "HTML: description from the GGUF, readable ticks, page-wide charts, the summary explained"
airlock bench --from "$T/a.json" --html "$T/b.html" 2>/dev/null
qgrep '<th>runs on</th><td>CPU: all 5 layers</td>' "$T/a.html" || fail "the HTML report does not say where the model ran"
cmp -s "$T/a.html" "$T/b.html" || fail "--from renders a different page"

# targets
mkdir "$T/s" && cat >"$T/s/suite.json" <<'JSON'
{"format": "airlock-suite/1", "name": "t",
 "bench": {"concurrency": [1], "prompt_lengths": [16], "gen_tokens": 8, "requests": 2},
 "targets": {"min_decode_tps": 100000000, "max_rss_mb": 100000}}
JSON
expect_status 1 airlock bench "$F" --suite "$T/s" -t 1
echo "$OUT" | grep -Eq "result: FAILED: 1 target missed: min_decode_tps 1e\+08 \(measured [0-9.]+\)" \
    || fail "missed target not named: $OUT"
echo "$OUT" | qgrep "target ok    max_rss_mb 100000: measured" || fail "met target not shown: $OUT"
ok "a missed target exits 1 naming target and value"

# compare: itself is no regression; a copy with every time doubled is
expect_status 0 airlock bench --compare "$T/a.json" "$T/a.json"
python3 - "$T/a.json" "$T/slow.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["cells"]:
    for s in c["samples"]:
        for k in ("ttft_ms", "prompt_ms", "gen_ms", "latency_ms"):
            s[k] *= 2
        s["itl_ms"] = [g * 2 for g in s["itl_ms"]]
json.dump(r, open(sys.argv[2], "w"))
PY
expect_status 1 airlock bench --compare "$T/a.json" "$T/slow.json"
echo "$OUT" | qgrep "decode_tps .* -50.0% .*REGRESSION" || fail "doubled times not flagged: $OUT"
expect_status 0 airlock bench --compare "$T/slow.json" "$T/a.json"
ok "--compare flags regressions, not improvements"
