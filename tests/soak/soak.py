#!/usr/bin/env python3
"""soak.py: drives a running `airlock serve` with mixed load for a while and
samples its resources; called by soak.sh, which sets everything up.

Load (one thread each, loopback only, every loop bounded by the deadline):
  completions   POST /v1/completions, a few tokens
  chat-stream   streamed chat completions; about half are cut off by the
                client after a few events (a random disconnect)
  embeddings    POST /v1/embeddings, 1-16 short texts
  rag           POST /v1/rag/docs/query
  keys          a fresh API key is created, used (200), revoked, used (401)
  reload        SIGHUP to the server
Every status is checked against what that request must give; anything else
is an unexpected status, and the run fails.

SOAK_KINDS (comma-separated, default all of: completions, chat-stream,
embeddings, rag, keys, reload) runs only those loops, to find which kind of
request a growth comes from.

Sampling every SOAK_SAMPLE_S seconds: RSS (with its anonymous and file
parts) and threads (/proc/PID/status),
open descriptors (/proc/PID/fd). After a warm-up (the first fifth of the
run), the samples are split in thirds; the run fails when the last third
grew past the first by more than the tolerances:
  RSS:      median +10% and +16 MiB  (allocator and page-cache noise)
  fds:      maximum +8               (connections in flight at a sample)
  threads:  median +8                (one thread per open connection)
A leak of one descriptor or thread per request, or of a few KiB per request,
is far beyond these over thousands of requests. SOAK_RSS_GATE=0 (soak.sh sets
it for an ASan build) reports RSS without failing on it.

Usage: soak.py BASE PID SECONDS AIRLOCK_BIN TOKEN OUT_JSON
"""
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

BASE, PID, SECONDS, AIRLOCK, TOKEN, OUT = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
SAMPLE_S = float(os.environ.get("SOAK_SAMPLE_S", "2"))
u = urllib.parse.urlparse(BASE)
HOST, PORT = u.hostname, u.port
deadline = time.monotonic() + SECONDS
lock = threading.Lock()
counts = {}       # kind -> requests
unexpected = []   # (kind, status, body)
errors = []       # exceptions in the driver itself


def note(kind, status, want, body=b""):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        if status not in want:
            unexpected.append((kind, status, body[:300].decode("utf-8", "replace")))


def request(method, path, body=None, token=TOKEN, timeout=120):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def loop(kind, fn):
    def run():
        rnd = random.Random(hash(kind) & 0xFFFF)
        n = 0
        while time.monotonic() < deadline and n < 10_000_000:
            n += 1
            try:
                fn(rnd)
            except Exception as e:  # the driver's own failure: report, go on
                with lock:
                    errors.append("%s: %r" % (kind, e))
                    if len(errors) > 50:
                        return
                time.sleep(0.5)
    t = threading.Thread(target=run, name=kind, daemon=True)
    t.start()
    return t


def completions(rnd):
    s, b = request("POST", "/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                                "max_tokens": rnd.randint(1, 24), "temperature": 0.7})
    note("completions", s, {200}, b)


def chat_stream(rnd):
    body = json.dumps({"model": "stories", "messages": [{"role": "user", "content": "Tell me a story"}],
                       "max_tokens": 64, "stream": True})
    c = http.client.HTTPConnection(HOST, PORT, timeout=120)
    try:
        c.request("POST", "/v1/chat/completions", body,
                  {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        cut = rnd.random() < 0.5
        if r.status != 200 or not cut:
            data = r.read()
            ok = r.status != 200 or data.rstrip().endswith(b"data: [DONE]")
            note("chat-stream", r.status if ok else -1, {200}, data[-200:])
            return
        for _ in range(rnd.randint(1, 5)):  # a few events, then hang up
            if not r.readline():
                break
        note("chat-stream-cut", 200, {200})
    finally:
        c.close()


def embeddings(rnd):
    texts = ["the pump number %d needs oil" % rnd.randint(0, 999) for _ in range(rnd.randint(1, 16))]
    s, b = request("POST", "/v1/embeddings", {"model": "stories", "input": texts})
    if s == 200 and len(json.loads(b)["data"]) != len(texts):
        s = -2
    note("embeddings", s, {200}, b)


def rag(rnd):
    q = rnd.choice(["how often is the halon bottle inspected", "what fuel does the generator use",
                    "close the isolation valve"])
    s, b = request("POST", "/v1/rag/docs/query", {"query": q, "k": 3})
    note("rag", s, {200}, b)


def keys(rnd):
    name = "soak%d" % rnd.randint(0, 10**9)
    out = subprocess.run([AIRLOCK, "apikey", "create", name, "--scopes", "chat", "--json"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        note("key-create", -3, {0}, out.stderr.encode())
        return
    tok = json.loads(out.stdout)["token"]
    s, b = request("POST", "/tokenize", {"model": "stories", "content": "hello"}, token=tok)
    note("key-use", s, {200}, b)
    out = subprocess.run([AIRLOCK, "apikey", "revoke", name], capture_output=True, text=True, timeout=60)
    note("key-revoke", out.returncode, {0}, out.stderr.encode())
    s, b = request("POST", "/tokenize", {"model": "stories", "content": "hello"}, token=tok)
    note("key-revoked-use", s, {401}, b)
    time.sleep(1)


def reload(rnd):
    time.sleep(5)
    if time.monotonic() < deadline - 2:
        os.kill(PID, signal.SIGHUP)
        note("sighup", 0, {0})


def sample():
    st = {}
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    return {"t": round(SECONDS - (deadline - time.monotonic()), 1),
            "rss_kib": int(st["VmRSS"].split()[0]), "threads": int(st["Threads"]),
            "anon_kib": int(st["RssAnon"].split()[0]), "file_kib": int(st["RssFile"].split()[0]),
            "fds": len(os.listdir("/proc/%d/fd" % PID))}


def main():
    kinds = {"completions": completions, "chat-stream": chat_stream, "embeddings": embeddings,
             "rag": rag, "keys": keys, "reload": reload}
    want = [k for k in os.environ.get("SOAK_KINDS", ",".join(kinds)).split(",") if k]
    bad = [k for k in want if k not in kinds]
    if bad or not want:
        sys.exit("soak: unknown SOAK_KINDS %s; choose from %s" % (",".join(bad) or "''", ",".join(kinds)))
    threads = [loop(k, kinds[k]) for k in want]
    samples = []
    while time.monotonic() < deadline:
        samples.append(sample())
        time.sleep(min(SAMPLE_S, max(0.0, deadline - time.monotonic())))
    for t in threads:
        t.join(timeout=180)
    samples.append(sample())
    warm = [s for s in samples if s["t"] >= SECONDS / 5]
    third = max(1, len(warm) // 3)
    first, last = warm[:third], warm[-third:]
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    res = {
        "seconds": SECONDS, "requests": counts, "unexpected": unexpected[:20], "n_unexpected": len(unexpected),
        "driver_errors": errors[:20],
        "rss_kib": {"first_median": med(first, "rss_kib"), "last_median": med(last, "rss_kib"),
                    "max": max(s["rss_kib"] for s in samples)},
        "fds": {"first_max": max(s["fds"] for s in first), "last_max": max(s["fds"] for s in last)},
        "threads": {"first_median": med(first, "threads"), "last_median": med(last, "threads"),
                    "max": max(s["threads"] for s in samples)},
        "samples": samples,
    }
    fails = []
    rss_gated = os.environ.get("SOAK_RSS_GATE", "1") != "0"
    res["rss_kib"]["gated"] = rss_gated
    if rss_gated and res["rss_kib"]["last_median"] > res["rss_kib"]["first_median"] * 1.10 + 16 * 1024:
        fails.append("RSS grew: median %d KiB -> %d KiB" % (res["rss_kib"]["first_median"], res["rss_kib"]["last_median"]))
    if res["fds"]["last_max"] > res["fds"]["first_max"] + 8:
        fails.append("open descriptors grew: max %d -> %d" % (res["fds"]["first_max"], res["fds"]["last_max"]))
    if res["threads"]["last_median"] > res["threads"]["first_median"] + 8:
        fails.append("threads grew: median %s -> %s" % (res["threads"]["first_median"], res["threads"]["last_median"]))
    if unexpected:
        fails.append("%d unexpected statuses, first: %s" % (len(unexpected), unexpected[0]))
    if errors:
        fails.append("%d driver errors, first: %s" % (len(errors), errors[0]))
    if len(warm) < 6:
        fails.append("too few samples after warm-up (%d): run longer" % len(warm))
    res["failures"] = fails
    with open(OUT, "w") as f:
        json.dump(res, f, indent=1)
    print("soak: %.0f s, requests %s" % (SECONDS, json.dumps(counts, sort_keys=True)))
    print("soak: RSS median %d -> %d KiB (max %d); fds max %d -> %d; threads median %s -> %s (max %d)" % (
        res["rss_kib"]["first_median"], res["rss_kib"]["last_median"], res["rss_kib"]["max"],
        res["fds"]["first_max"], res["fds"]["last_max"], res["threads"]["first_median"],
        res["threads"]["last_median"], res["threads"]["max"]))
    if not rss_gated:
        print("soak: RSS reported, not gated (SOAK_RSS_GATE=0: an ASan build, whose quarantine holds freed "
              "memory; LeakSanitizer checks for leaks at the server's exit)")
    for f in fails:
        print("soak: FAIL: " + f)
    sys.exit(1 if fails else 0)


main()
