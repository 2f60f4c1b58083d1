// serve_load.mjs: a load generator for OpenAI-compatible servers (airlock
// serve, llama-server). C clients each send streaming /v1/completions
// requests back to back, for D seconds or R requests per client; every
// response is checked (each event JSON, [DONE] last, tokens counted) and the
// summary printed as one JSON line:
//   {requests, failures, tokens, wall_s, agg_tps, ttft_p50_ms, ttft_p95_ms,
//    decode_tps_p50, errors: [...first few...]}
// usage: node serve_load.mjs --url http://127.0.0.1:8741 [--model M] [--clients 8]
//        [--duration 60 | --requests 3] [--max-tokens 128] [--prompt TEXT] [--ignore-eos]
//        [--ttft-out FILE]   (appends every request's time to first token, ms, a line each)
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith("--")) a.push([x.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : true]);
  return a;
}, []));
const url = args.url, model = args.model ?? "default", clients = +(args.clients ?? 8);
const duration = args.duration ? +args.duration : 0, perClient = args.requests ? +args.requests : 0;
const maxTokens = +(args["max-tokens"] ?? 128), prompt = args.prompt ?? "Once upon a time";

const results = [], errors = [];
const t0 = performance.now();
const deadline = duration ? t0 + duration * 1000 : Infinity;

async function one() {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true,
                           ignore_eos: !!args["ignore-eos"], stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = "", first = 0, last = 0, pieces = 0, usage = null, done = false;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ")) { if (ev.trim() && !ev.startsWith(":")) throw new Error(`bad event: ${ev}`); continue; }
      const data = ev.slice(6);
      if (data === "[DONE]") { done = true; continue; }
      if (done) throw new Error("event after [DONE]");
      const d = JSON.parse(data);
      if (d.error) throw new Error(`error event: ${JSON.stringify(d.error)}`);
      if (d.usage) usage = d.usage;
      const text = d.choices?.[0]?.text ?? d.content;
      if (text) { const now = performance.now(); if (!pieces) first = now; last = now; pieces++; }
    }
  }
  if (!done) throw new Error("no [DONE]");
  const tokens = usage?.completion_tokens ?? pieces;
  if (tokens <= 0) throw new Error("no tokens");
  return { ttft: first - start, tokens, decode_tps: tokens > 1 && last > first ? (tokens - 1) / ((last - first) / 1000) : 0 };
}

async function client() {
  for (let n = 0; perClient ? n < perClient : performance.now() < deadline; n++) {
    try { results.push(await one()); }
    catch (e) { errors.push(String(e.message ?? e)); }
  }
}

await Promise.all(Array.from({ length: clients }, client));
if (args["ttft-out"]) {
  const { appendFileSync } = await import("node:fs");
  appendFileSync(args["ttft-out"], results.map(r => r.ttft.toFixed(3) + "\n").join(""));
}
const wall = (performance.now() - t0) / 1000;
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : 0; };
const tokens = results.reduce((s, r) => s + r.tokens, 0);
console.log(JSON.stringify({
  requests: results.length + errors.length, failures: errors.length, tokens, wall_s: +wall.toFixed(2),
  agg_tps: +(tokens / wall).toFixed(1),
  ttft_p50_ms: +q(results.map(r => r.ttft), 0.5).toFixed(1), ttft_p95_ms: +q(results.map(r => r.ttft), 0.95).toFixed(1),
  decode_tps_p50: +q(results.map(r => r.decode_tps), 0.5).toFixed(1), errors: errors.slice(0, 5),
}));
