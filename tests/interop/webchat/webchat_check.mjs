// webchat_check.mjs: Debian's chromium, driven by puppeteer-core, uses the
// web chat of a running `airlock serve` as a person would: it opens the page,
// is told a key is needed, enters one, continues the golden prompt on the
// fixture (temperature 0, 40 tokens) and reads the golden text from the page;
// stops an answer with the Stop button; asks a document collection and finds
// its citations. Every request the page makes is intercepted and must go to
// the server's own loopback address; nothing may break the page's
// Content-Security-Policy. A screenshot is written, and checked for content
// (a blank or one-colour image fails).
//
//   node webchat_check.mjs BASE MODEL KEY SCREENSHOT.png COLLECTION
// Exit 0 when every check passed; prints "ok - ..." lines, "FAIL: ..." else.
import puppeteer from 'puppeteer-core';
import { writeFileSync } from 'node:fs';

const [baseArg, model, key, shot, collection] = process.argv.slice(2);
const base = (baseArg || '').replace(/\/+$/, '');
if (!collection) {
  console.error('usage: node webchat_check.mjs BASE MODEL KEY SCREENSHOT.png COLLECTION');
  process.exit(2);
}
const GOLDEN = ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';
const STEP_MS = 60000; // the most any one step may take (a loaded 2-core machine)
const origin = new URL(base);

function fail(msg) {
  throw new Error(msg);
}
const ok = (msg) => console.log('ok - ' + msg);

const requests = [];   // every URL the page asked for
const bodies = [];     // the JSON bodies of its generation requests, in order
const escaped = [];    // those that were not for the server's loopback address
const problems = [];   // page errors, CSP violations, failed loads

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // No background traffic of the browser's own (updates, sync, safe
  // browsing, field trials), no sandbox (tests may run as root in a
  // container), software rendering.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-default-apps', '--disable-extensions', '--disable-domain-reliability',
         '--disable-client-side-phishing-detection', '--metrics-recording-only',
         '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
         '--window-size=1200,900'],
  defaultViewport: { width: 1200, height: 900 },
  timeout: STEP_MS,
});
let status = 1;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.setRequestInterception(true);
  let hold = null; // a request to keep waiting (the Stop check): {match, seen}
  let held = null;  // that request, once seen
  page.on('request', (req) => {
    const url = req.url();
    requests.push(req.method() + ' ' + url);
    let u;
    try { u = new URL(url); } catch (e) { u = null; }
    if (!u || u.protocol !== 'http:' || u.hostname !== '127.0.0.1' || u.port !== origin.port) {
      escaped.push(url);
      req.abort('blockedbyclient').catch(() => {});
      return;
    }
    if (req.method() === 'POST' && /\/v1\/(chat\/)?completions$/.test(u.pathname))
      bodies.push(JSON.parse(req.postData() || 'null'));
    if (hold && hold.match(req)) {
      hold.seen(req);
      return;
    }
    req.continue().catch(() => {});
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push('console: ' + t);
  });
  page.on('requestfailed', (req) => {
    if (req === held) return; // the request that Stop abandoned
    const why = req.failure() ? req.failure().errorText : '?';
    problems.push(`request failed: ${req.url()} (${why})`);
  });

  // ---- the page, its headers, the key ----
  const res = await page.goto(base + '/', { waitUntil: 'load' });
  if (res.status() !== 200) fail(`GET / answered ${res.status()}`);
  const csp = res.headers()['content-security-policy'] || '';
  if (!csp.includes("default-src 'self'") || !csp.includes("script-src 'self'")) fail(`CSP: '${csp}'`);
  if (res.headers()['x-content-type-options'] !== 'nosniff') fail('no X-Content-Type-Options: nosniff');
  await page.waitForFunction(() => /API key/.test(document.getElementById('status').textContent));
  ok('the page loads without a key and says that the API needs one');

  await page.type('#key', key);
  await page.click('#key-save');
  await page.waitForFunction((m) => [...document.querySelectorAll('#model option')].some((o) => o.value === m), {}, model);
  const stored = await page.evaluate(() => [sessionStorage.getItem('airlock.apiKey'), localStorage.length,
    document.getElementById('key').value]);
  if (stored[0] !== key) fail('the key is not in sessionStorage');
  if (stored[1] !== 0) fail('the page wrote to localStorage');
  if (stored[2] !== '') fail('the key stays in the input field');
  ok('the key is entered once, kept in sessionStorage, and the model list loads with it');

  // ---- the golden text, streamed ----
  await page.select('#model', model);
  // The fixture has no chat template: the page switches to "Continue text".
  await page.waitForFunction(() => document.querySelector('input[name="mode"][value="text"]').checked);
  const setField = (sel, v) => page.$eval(sel, (el, val) => { el.value = val; }, v);
  await setField('#temperature', '0');
  await setField('#max-tokens', '40');
  await setField('#seed', '');
  await page.type('#prompt', 'Once upon a time');
  await page.click('#send');
  const answer = async (n) => {
    await page.waitForFunction((i) => {
      const msgs = document.querySelectorAll('#log li.msg.assistant');
      return msgs.length >= i && msgs[i - 1].dataset.outcome;
    }, {}, n);
    return page.evaluate((i) => {
      const li = document.querySelectorAll('#log li.msg.assistant')[i - 1];
      return { text: li.querySelector('.text').textContent, outcome: li.dataset.outcome,
               error: (li.querySelector('.error') || {}).textContent || '',
               citations: [...li.querySelectorAll('.citations summary')].map((s) => s.textContent) };
    }, n);
  };
  const a1 = await answer(1);
  if (a1.outcome !== 'done') fail(`golden: outcome ${a1.outcome} ${a1.error}`);
  if (a1.text !== GOLDEN) fail(`golden: the page shows '${a1.text}'`);
  const b1 = bodies[0];
  if (!b1 || b1.prompt !== 'Once upon a time' || b1.temperature !== 0 || b1.max_tokens !== 40 || !b1.stream ||
      'seed' in b1 || b1.model !== model)
    fail('golden: the request body was ' + JSON.stringify(b1));
  ok('the golden prompt, streamed, shows the golden text');

  // ---- Stop: the answer's request is held here until the button is clicked ----
  const heldSeen = new Promise((resolve) => {
    hold = { match: (r) => r.method() === 'POST' && r.url().endsWith('/v1/completions'),
             seen: (r) => { held = r; resolve(); } };
  });
  await page.type('#prompt', 'Once upon a time');
  await page.click('#send');
  await heldSeen;
  await page.waitForFunction(() => !document.getElementById('stop').disabled);
  await page.click('#stop');
  const a2 = await answer(2);
  hold = null;
  await held.continue().catch(() => {}); // the page gave it up already
  if (a2.outcome !== 'stopped') fail(`stop: outcome ${a2.outcome} ${a2.error}`);
  const after = await page.evaluate(() => [document.getElementById('send').disabled,
    document.getElementById('stop').disabled, document.getElementById('status').textContent]);
  if (after[0] || !after[1] || after[2] !== 'Stopped.') fail(`stop: buttons/status ${JSON.stringify(after)}`);
  ok('Stop aborts the answer in flight and the page is ready again');

  // ---- a document collection, with citations ----
  await page.click('input[name="mode"][value="rag"]');
  await page.waitForFunction(() => !document.getElementById('rag-settings').hidden);
  await page.waitForFunction((c) => [...document.querySelectorAll('#collection option')].some((o) => o.value === c),
    {}, collection);
  const offered = await page.$$eval('#collection option', (os) => os.map((o) => o.value));
  if (offered.join(',') !== collection) fail(`collections offered: ${offered.join(',')}`);
  await page.select('#collection', collection);
  await setField('#k', '2');
  await setField('#max-tokens', '8');
  await page.type('#prompt', 'how often is the halon bottle inspected');
  await page.click('#send');
  const a3 = await answer(3);
  if (a3.outcome !== 'done') fail(`rag: outcome ${a3.outcome} ${a3.error}`);
  if (a3.citations.length !== 2 || !a3.citations.some((c) => c.includes('halon.txt')))
    fail(`rag: citations ${JSON.stringify(a3.citations)}`);
  ok(`a collection answers with its citations (${a3.citations[0]})`);

  // ---- a chat turn, sent with Enter: the conversation so far goes with it ----
  await page.click('input[name="mode"][value="chat"]');
  await setField('#seed', '7');
  await page.type('#prompt', 'And then?');
  await page.keyboard.press('Enter');
  const a4 = await answer(4);
  if (a4.outcome !== 'done') fail(`chat: outcome ${a4.outcome} ${a4.error}`);
  const b4 = bodies[bodies.length - 1];
  const roles = (b4.messages || []).map((m) => m.role).join(',');
  if (roles !== 'user,assistant,user' || b4.messages[2].content !== 'And then?' || b4.seed !== 7 || b4.airlock)
    fail('chat: the request body was ' + JSON.stringify(b4));
  ok('Enter sends a chat turn with the conversation so far and the seed');

  // ---- the screenshot: written, and not blank ----
  const png = await page.screenshot({ type: 'png', fullPage: true });
  writeFileSync(shot, png);
  // Decoded in a second, blank page (no network: the bytes are handed over).
  const blank = await browser.newPage();
  const stats = await blank.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d');
    ctx.drawImage(bmp, 0, 0);
    const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
    const colours = new Map();
    for (let i = 0; i < d.length; i += 4) {
      const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      colours.set(k, (colours.get(k) || 0) + 1);
    }
    const top = Math.max(...colours.values());
    return { w: bmp.width, h: bmp.height, colours: colours.size, other: 1 - top / (d.length / 4) };
  }, Buffer.from(png).toString('base64'));
  await blank.close();
  if (stats.w < 600 || stats.h < 400) fail(`screenshot: ${stats.w}x${stats.h}`);
  if (stats.colours < 16 || stats.other < 0.01) fail(`screenshot looks blank: ${JSON.stringify(stats)}`);
  ok(`screenshot ${stats.w}x${stats.h}, ${stats.colours} colours, ${(stats.other * 100).toFixed(1)}% not background`);

  // ---- a new conversation empties the page ----
  await page.click('#clear');
  if (await page.$$eval('#log li', (l) => l.length) !== 0) fail('New conversation left messages');
  ok('New conversation empties the page');

  // ---- nothing left the machine, nothing broke the policy ----
  if (escaped.length) fail('requests not for the server: ' + escaped.join(', '));
  if (problems.length) fail(problems.join('; '));
  const paths = new Set(requests.map((r) => r.replace(base, '')));
  for (const p of ['GET /', 'GET /app.js', 'GET /app.css', 'GET /v1/models', 'GET /v1/rag', 'POST /v1/completions',
                   'POST /v1/chat/completions'])
    if (!paths.has(p)) fail(`the page never asked for ${p}: ${[...paths].join(', ')}`);
  ok(`${requests.length} requests, every one to ${origin.host}; no CSP violation or page error`);

  // ---- the policy holds: what an injected script would try is refused ----
  const before = requests.length;
  const tried = await page.evaluate(async () => {
    // The browser reports each refusal as an event: wait for all three.
    const reports = [];
    const all = new Promise((resolve) => document.addEventListener('securitypolicyviolation', (e) => {
      reports.push(e.effectiveDirective + ' ' + e.blockedURI);
      if (reports.length === 3) resolve();
    }));
    const out = {};
    try { await fetch('http://192.0.2.1/x', { mode: 'no-cors' }); out.fetch = 'sent'; } catch (e) { out.fetch = 'refused'; }
    const s = document.createElement('script');
    s.textContent = 'window.__inline = 1';
    document.head.append(s);
    out.inline = window.__inline === undefined ? 'refused' : 'ran';
    setTimeout('window.__timer = 1', 0); // a string timer: eval's kind of code
    await all;
    await new Promise((resolve) => setTimeout(resolve, 0)); // a timer queued after that one
    out.eval = window.__timer === undefined ? 'refused' : 'ran';
    out.reports = reports.sort();
    return out;
  });
  // (script-src or, in newer browsers, script-src-elem for the element)
  const want = [/^connect-src http:\/\/192\.0\.2\.1\/x$/, /^script-src\S* eval$/, /^script-src\S* inline$/];
  if (tried.fetch !== 'refused' || tried.inline !== 'refused' || tried.eval !== 'refused' ||
      !want.every((re) => tried.reports.some((r) => re.test(r))))
    fail('the CSP let through: ' + JSON.stringify(tried));
  if (requests.length !== before) fail('a refused fetch reached the network: ' + requests.slice(before).join(', '));
  ok(`the CSP refuses a fetch to another host, an inline script and a string timer (${tried.reports.join('; ')})`);
  status = 0;
} catch (e) {
  console.log('FAIL: ' + e.message);
  console.log('requests: ' + requests.join(', '));
  if (problems.length) console.log('problems: ' + problems.join('; '));
} finally {
  await browser.close();
}
process.exit(status);
