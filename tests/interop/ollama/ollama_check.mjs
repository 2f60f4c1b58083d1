// ollama_check.mjs: the official ollama npm client against airlock serve,
// unchanged: chat (streaming and not), generate (streaming and not, options
// mapped to sampling), embed and the legacy embeddings, list, ps, show,
// version, and an error surfacing as the client's ResponseError.
// usage: node ollama_check.mjs BASE_URL MODEL [API_KEY]
import { Ollama } from "ollama";

const [base, model, key] = process.argv.slice(2);
const ollama = new Ollama({ host: base, headers: key ? { Authorization: `Bearer ${key}` } : undefined });
const GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";
const check = (cond, what) => { if (!cond) { console.error(`FAIL: ${what}`); process.exit(1); } console.log(`ok - ollama: ${what}`); };
const greedy = { temperature: 0, num_predict: 40 };

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a story." }];
const chat = await ollama.chat({ model, messages, options: { temperature: 0, num_predict: 20 } });
check(chat.done === true && chat.message.role === "assistant" && typeof chat.message.content === "string"
      && chat.message.content.length > 0 && chat.eval_count > 0 && chat.prompt_eval_count > 0
      && chat.total_duration > 0 && ["stop", "length"].includes(chat.done_reason)
      && !Number.isNaN(Date.parse(chat.created_at)), "chat (not streamed)");

const cs = await ollama.chat({ model, messages, options: { temperature: 0, num_predict: 20 }, stream: true });
let text = "", parts = 0, last = null;
for await (const part of cs) { parts++; text += part.message.content; last = part; }
check(parts > 3, `chat stream (${parts} lines)`);
check(text === chat.message.content, "chat stream text equals the non-streamed text (greedy)");
check(last.done === true && last.eval_count === chat.eval_count && last.done_reason === chat.done_reason,
      "chat stream ends with done, counts and done_reason");

const gen = await ollama.generate({ model, prompt: "Once upon a time", options: greedy });
check(gen.response === GOLDEN && gen.done && gen.eval_count > 0, "generate golden output");
const raw = await ollama.generate({ model, prompt: "Once upon a time", raw: true, options: greedy });
check(raw.response === GOLDEN, "generate raw golden output");
const gs = await ollama.generate({ model, prompt: "Once upon a time", options: greedy, stream: true });
let gtext = "", gdone = false;
for await (const part of gs) { gtext += part.response; gdone = part.done; }
check(gtext === GOLDEN && gdone, "generate stream golden output");
const stopped = await ollama.generate({ model, prompt: "Once upon a time", options: { ...greedy, stop: [" girl"] } });
check(stopped.response === ", there was a little" && stopped.done_reason === "stop", "options.stop ends the text");
const short = await ollama.generate({ model, prompt: "Once upon a time", options: { temperature: 0, num_predict: 3 } });
check(short.eval_count === 3 && short.done_reason === "length", "options.num_predict caps the tokens");

const emb = await ollama.embed({ model, input: ["a cat", "a dog"] });
check(emb.embeddings.length === 2 && emb.embeddings[0].length === 64
      && Math.abs(emb.embeddings[0].reduce((s, x) => s + x * x, 0) - 1) < 1e-3
      && emb.prompt_eval_count > 0, "embed (two texts, normalized)");
const one = await ollama.embed({ model, input: "a cat" });
check(Math.abs(one.embeddings[0][5] - emb.embeddings[0][5]) < 1e-6, "embed of one string equals the batch's");
const legacy = await ollama.embeddings({ model, prompt: "a cat" });
check(legacy.embedding.length === 64 && Math.abs(legacy.embedding[5] - emb.embeddings[0][5]) < 1e-6,
      "embeddings (legacy route)");

const list = await ollama.list();
const bare = model.split(":")[0];
const listed = list.models.find((m) => m.name === bare);
check(listed && listed.details.format === "gguf" && listed.details.family === "llama" && listed.size > 0
      && /^[0-9a-f]{64}$/.test(listed.digest) && !Number.isNaN(Date.parse(listed.modified_at)),
      `list (${list.models.map((m) => m.name).join(",")})`);

const ps = await ollama.ps();
const running = ps.models.find((m) => m.name === bare);
check(running && running.size > 0 && !Number.isNaN(Date.parse(running.expires_at)) && running.context_length > 0,
      `ps (${ps.models.map((m) => m.name).join(",")})`);

const show = await ollama.show({ model });
check(show.model_info["general.architecture"] === "llama" && show.details.format === "gguf", "show");
const ver = await ollama.version();
check(typeof ver.version === "string" && ver.version.length > 0, `version ${ver.version}`);

try {
  await ollama.chat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  check(false, "unknown model must fail");
} catch (e) {
  check(e.name === "ResponseError" && e.status_code === 404 && typeof e.error === "string"
        && e.error.includes("no-such-model"), `unknown model: ${e.name} ${e.status_code} ${e.error}`);
}
try {
  await ollama.generate({ model, prompt: "x", options: { num_predict: 10 ** 9 } });
  check(false, "num_predict over the cap must fail");
} catch (e) {
  check(e.name === "ResponseError" && e.status_code === 400 && e.error.includes("num_predict"),
        `num_predict over the cap: ${e.status_code} ${e.error}`);
}
