// openai_check.mjs: the official openai SDK against airlock serve, unchanged:
// chat (streaming and not), completions (streaming and not), embeddings,
// models.list and models.retrieve, an error surfacing as the SDK's APIError,
// n > 1 choices and the routes without /v1.
// usage: node openai_check.mjs BASE_URL MODEL
import OpenAI from "openai";

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";
const check = (cond, what) => { if (!cond) { console.error(`FAIL: ${what}`); process.exit(1); } console.log(`ok - sdk: ${what}`); };

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a story." }];
const chat = await client.chat.completions.create({
  model, messages,
  max_tokens: 20, temperature: 0,
});
check(chat.object === "chat.completion" && typeof chat.choices[0].message.content === "string"
      && chat.choices[0].message.role === "assistant" && chat.usage.completion_tokens > 0, "chat.completions.create");

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 20, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let text = "", chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length) { text += chunk.choices[0].delta.content ?? ""; finish = chunk.choices[0].finish_reason ?? finish; }
  if (chunk.usage) usage = chunk.usage;
}
check(chunks > 3, `chat stream (${chunks} chunks)`);
check(text === chat.choices[0].message.content, "chat stream text equals the non-streamed text (greedy)");
check(finish !== null && usage && usage.completion_tokens > 0, "chat stream finish_reason and usage");

const cmpl = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 40, temperature: 0 });
check(cmpl.choices[0].text === GOLDEN, "completions.create golden output");

const cs = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 40, temperature: 0, stream: true });
let ctext = "";
for await (const c of cs) ctext += c.choices[0]?.text ?? "";
check(ctext === GOLDEN, "completions stream golden output");

const emb = await client.embeddings.create({ model, input: ["a cat", "a dog"] });
check(emb.data.length === 2 && emb.data[0].embedding.length === 64
      && Math.abs(emb.data[0].embedding.reduce((s, x) => s + x * x, 0) - 1) < 1e-3, "embeddings.create (base64 by default)");
const embf = await client.embeddings.create({ model, input: "a cat", encoding_format: "float" });
check(Math.abs(embf.data[0].embedding[5] - emb.data[0].embedding[5]) < 1e-6, "embeddings float equals base64");

const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
check(ids.includes(model.split(":")[0]), `models.list (${ids.join(",")})`);
const one = await client.models.retrieve(model);
check(one.id === model, "models.retrieve");

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  check(false, "unknown model must fail");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found", `unknown model: ${e.constructor.name} ${e.status}`);
}
try {
  await client.completions.create({ model, prompt: "x", max_tokens: 10 ** 9 });
  check(false, "max_tokens over the cap must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "max_tokens", "BadRequestError with param");
}

// n > 1 (issue 17): the SDK reads every choice, streamed by index too.
const many = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, n: 3 });
check(many.choices.length === 3 && many.choices.every((c, i) => c.index === i
      && c.message.content === many.choices[0].message.content), "chat n=3 (greedy: three equal choices)");
const ms = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, n: 2, stream: true });
const byIndex = ["", ""];
for await (const chunk of ms) for (const c of chunk.choices) byIndex[c.index] += c.delta.content ?? "";
check(byIndex[0] === many.choices[0].message.content && byIndex[1] === byIndex[0], "chat stream n=2 by index");
try {
  await client.completions.create({ model, prompt: "x", max_tokens: 2, n: 9 });
  check(false, "n over the cap must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "n", "n=9: BadRequestError with param n");
}
// The routes without /v1 (llama-server's), as a client configured with the bare base URL calls them.
const bare = new OpenAI({ baseURL: base, apiKey: "unused", maxRetries: 0 });
const bcmpl = await bare.completions.create({ model, prompt: "Once upon a time", max_tokens: 40, temperature: 0 });
check(bcmpl.choices[0].text === GOLDEN, "completions through /completions (no /v1)");
const bids = [];
for await (const m of bare.models.list()) bids.push(m.id);
check(bids.join() === ids.join(), "models.list through /models (no /v1)");
