// app.js: the offline web chat of `airlock serve` (src/webui, embedded in the
// binary). It talks to the server it came from, and to nothing else (the
// Content-Security-Policy allows no other host): /v1/models and /v1/rag for
// the pickers,
// /api/show to learn whether a model has a chat template, /v1/chat/completions
// and /v1/completions streamed as server-sent events, and chat completions
// with the "airlock" retrieval extension, whose first event carries the
// citations. Text from the server is only ever set as textContent, never
// parsed as HTML. The API key lives in sessionStorage: this tab, until it
// closes.
'use strict';

const KEY_ITEM = 'airlock.apiKey';
const $ = (id) => document.getElementById(id);

const state = {
  history: [],       // the chat so far: {role, content}
  controller: null,  // the AbortController of the answer being streamed
};

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || '';
}

function headers(json) {
  const h = {};
  if (json) h['Content-Type'] = 'application/json';
  const k = apiKey();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

function setStatus(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!isError);
}

// The message of an error reply: OpenAI's {"error": {"message"}} or
// Ollama's {"error": "..."}, else the status.
async function errorText(res) {
  try {
    const j = await res.json();
    if (j && j.error) return typeof j.error === 'string' ? j.error : j.error.message || JSON.stringify(j.error);
  } catch (e) { /* not JSON */ }
  return 'HTTP ' + res.status;
}

function mode() {
  const checked = document.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : 'chat';
}

function setMode(m) {
  const input = document.querySelector(`input[name="mode"][value="${m}"]`);
  if (input) input.checked = true;
  modeChanged();
}

function modeChanged() {
  $('rag-settings').hidden = mode() !== 'rag';
}

// ---- the key ----

function showKeyState() {
  const has = apiKey() !== '';
  $('key').value = '';
  $('key').placeholder = has ? 'a key is set for this tab' : 'paste an API key (airlock apikey create)';
  $('key-forget').disabled = !has;
}

async function saveKey(ev) {
  ev.preventDefault();
  const k = $('key').value.trim();
  if (k) sessionStorage.setItem(KEY_ITEM, k);
  showKeyState();
  await loadModels();
}

async function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
  showKeyState();
  await loadModels();
}

// ---- models ----

async function loadModels() {
  const sel = $('model');
  const keep = sel.value;
  let res;
  try {
    res = await fetch('/v1/models', { headers: headers(false) });
  } catch (e) {
    setStatus('Cannot reach the server: ' + e.message, true);
    return;
  }
  if (res.status === 401) {
    sel.replaceChildren();
    setStatus('This server needs an API key: enter one under Settings.', true);
    $('key').focus();
    return;
  }
  if (!res.ok) {
    setStatus('Models: ' + (await errorText(res)), true);
    return;
  }
  const j = await res.json();
  const ids = (j.data || []).map((m) => m.id);
  sel.replaceChildren(...ids.map((id) => new Option(id, id)));
  if (ids.includes(keep)) sel.value = keep;
  if (ids.length === 0) {
    setStatus('No model is available to this key.', true);
    return;
  }
  setStatus(ids.length === 1 ? 'Ready: 1 model.' : `Ready: ${ids.length} models.`);
  await Promise.all([modelChanged(), loadCollections()]);
}

// The collections this key may query (GET /v1/rag), for the retrieval mode.
async function loadCollections() {
  const sel = $('collection');
  const note = $('collection-note');
  const keep = sel.value;
  let names = [];
  try {
    const res = await fetch('/v1/rag', { headers: headers(false) });
    if (!res.ok) {
      sel.replaceChildren();
      note.textContent = 'Collections: ' + (await errorText(res));
      return;
    }
    names = ((await res.json()).data || []).map((c) => c.id);
  } catch (e) {
    note.textContent = 'Collections: ' + e.message;
    return;
  }
  sel.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(keep)) sel.value = keep;
  note.textContent = names.length ? '' : 'This key may query no collection (airlock rag create; a rag:NAME scope).';
}

// A model without a chat template (a base model such as the TinyStories
// fixture) continues text: that mode is picked for it, as `airlock run` does.
async function modelChanged() {
  const model = $('model').value;
  const note = $('model-note');
  note.textContent = '';
  if (!model) return;
  try {
    const res = await fetch('/api/show', { method: 'POST', headers: headers(true), body: JSON.stringify({ model }) });
    if (!res.ok) return;
    const j = await res.json();
    if (!j.template) {
      note.textContent = `${model} has no chat template: "Continue text" sends your text as written.`;
      if (mode() === 'chat') setMode('text');
    }
  } catch (e) { /* the note is a hint only */ }
}

// ---- the conversation ----

function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = 'msg ' + role;
  const who = document.createElement('p');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : $('model').value || 'assistant';
  const body = document.createElement('div');
  body.className = 'text';
  body.textContent = text;
  li.append(who, body);
  $('log').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

function showCitations(li, citations) {
  if (!Array.isArray(citations) || citations.length === 0) return;
  const box = document.createElement('section');
  box.className = 'citations';
  const h = document.createElement('h3');
  h.textContent = 'Sources';
  const ol = document.createElement('ol');
  for (const c of citations) {
    const item = document.createElement('li');
    const det = document.createElement('details');
    const sum = document.createElement('summary');
    let where = `[${c.index}] ${c.doc || '?'}`;
    if (c.page) where += `, page ${c.page}`;
    if (c.heading) where += ` — ${c.heading}`;
    if (typeof c.score === 'number') where += ` (score ${c.score.toFixed(3)})`;
    sum.textContent = where;
    const passage = document.createElement('blockquote');
    passage.textContent = c.text || '';
    det.append(sum, passage);
    item.append(det);
    ol.append(item);
  }
  box.append(h, ol);
  li.append(box);
}

function setBusy(busy) {
  $('send').disabled = busy;
  $('stop').disabled = !busy;
  $('log').setAttribute('aria-busy', busy ? 'true' : 'false');
}

// The sampling fields as request fields; null (and the field marked) when
// one is out of its range.
function sampling() {
  const out = {};
  for (const [id, field] of [['temperature', 'temperature'], ['max-tokens', 'max_tokens'], ['seed', 'seed']]) {
    const input = $(id);
    if (!input.checkValidity()) {
      input.reportValidity();
      return null;
    }
    if (input.value !== '') out[field] = Number(input.value);
  }
  return out;
}

// Reads a server-sent event stream, calling onData with each event's parsed
// JSON until [DONE]. An {"error"} event ends it with that error.
async function readEvents(res, onData) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r/g, '');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data === '') continue;
      if (data === '[DONE]') return;
      const j = JSON.parse(data);
      if (j.error) throw new Error(typeof j.error === 'string' ? j.error : j.error.message);
      onData(j);
    }
  }
}

async function send(ev) {
  ev.preventDefault();
  if (state.controller) return;
  const text = $('prompt').value;
  if (text.trim() === '') return;
  const model = $('model').value;
  if (!model) {
    setStatus('Pick a model first (enter an API key if the list is empty).', true);
    return;
  }
  const params = sampling();
  if (!params) return;
  const m = mode();
  let url;
  let body;
  if (m === 'text') {
    url = '/v1/completions';
    body = { model, prompt: text, stream: true, ...params };
  } else {
    url = '/v1/chat/completions';
    body = { model, messages: [...state.history, { role: 'user', content: text }], stream: true, ...params };
    if (m === 'rag') {
      const collection = $('collection').value;
      const k = $('k');
      if (!collection) {
        setStatus('Pick the collection to ask.', true);
        $('collection').focus();
        return;
      }
      if (!k.checkValidity()) {
        k.reportValidity();
        return;
      }
      body.airlock = { collection, k: Number(k.value) };
    }
  }

  addMessage('user', text);
  const li = addMessage('assistant', '');
  li.classList.add('streaming');
  const out = li.querySelector('.text');
  $('prompt').value = '';
  state.controller = new AbortController();
  setBusy(true);
  setStatus('Answering…');
  let answer = '';
  let finish = null;
  let outcome = 'done';
  try {
    const res = await fetch(url, {
      method: 'POST', headers: headers(true), body: JSON.stringify(body), signal: state.controller.signal,
    });
    if (!res.ok) throw new Error(await errorText(res));
    await readEvents(res, (j) => {
      const c = j.choices && j.choices[0];
      if (!c) return;
      let piece = '';
      if (m === 'text') {
        piece = c.text || '';
      } else if (c.delta) {
        if (c.delta.citations) showCitations(li, c.delta.citations);
        piece = c.delta.content || '';
      }
      if (piece) {
        answer += piece;
        out.textContent = answer;
      }
      if (c.finish_reason) finish = c.finish_reason;
    });
  } catch (e) {
    if (e.name === 'AbortError') {
      outcome = 'stopped';
    } else {
      outcome = 'error';
      const err = document.createElement('p');
      err.className = 'error';
      err.textContent = 'Error: ' + e.message;
      li.append(err);
    }
  }
  state.controller = null;
  li.classList.remove('streaming');
  li.dataset.outcome = outcome;
  setBusy(false);
  if (m !== 'text' && outcome !== 'error') {
    state.history.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
  }
  if (outcome === 'stopped') setStatus('Stopped.');
  else if (outcome === 'error') setStatus('The request failed: see the conversation.', true);
  else setStatus(finish === 'length' ? 'Done (the max tokens were reached).' : 'Done.');
  $('prompt').focus();
}

function stop() {
  if (state.controller) state.controller.abort();
}

function clearConversation() {
  stop();
  state.history = [];
  $('log').replaceChildren();
  setStatus('New conversation.');
  $('prompt').focus();
}

function init() {
  $('key-form').addEventListener('submit', saveKey);
  $('key-forget').addEventListener('click', forgetKey);
  $('refresh').addEventListener('click', loadModels);
  $('model').addEventListener('change', modelChanged);
  for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener('change', modeChanged);
  $('ask').addEventListener('submit', send);
  $('stop').addEventListener('click', stop);
  $('clear').addEventListener('click', clearConversation);
  $('prompt').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('ask').requestSubmit();
    }
  });
  showKeyState();
  modeChanged();
  setBusy(false);
  loadModels();
}

document.addEventListener('DOMContentLoaded', init);
