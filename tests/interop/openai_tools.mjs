// openai_tools.mjs: the official openai SDK's tool calling against airlock
// serve, unchanged: tool_choice required and a named function (streaming and
// not), auto (streaming and not), none, and a tool result sent back. The
// model has random weights and a real tool-capable template (Qwen2.5's):
// with a call required, the grammar llama.cpp's chat library derives from
// the schema is what makes the arguments valid, so they are checked against
// the schema here, strictly.
// usage: node openai_tools.mjs BASE_URL MODEL
import OpenAI from "openai";

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const check = (cond, what) => { if (!cond) { console.error(`FAIL: ${what}`); process.exit(1); } console.log(`ok - sdk: ${what}`); };

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather forecast of a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", enum: ["Paris", "London"] },
        days: { type: "integer", minimum: 1, maximum: 7 },
      },
      required: ["city", "days"],
      additionalProperties: false,
    },
  },
}, {
  type: "function",
  function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: {} } },
}];
const messages = [{ role: "user", content: "What is the weather in Paris for the next 3 days?" }];

// Arguments valid against get_weather's schema, exactly.
function validWeather(args) {
  let a;
  try { a = JSON.parse(args); } catch { return false; }
  const keys = Object.keys(a).sort().join(",");
  return keys === "city,days" && ["Paris", "London"].includes(a.city)
    && Number.isInteger(a.days) && a.days >= 1 && a.days <= 7;
}

// Accumulates a chat stream: content, and tool calls by index.
async function collect(stream) {
  let content = "", finish = null, chunks = 0;
  const calls = [];
  for await (const chunk of stream) {
    chunks++;
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? "";
    for (const tc of c.delta.tool_calls ?? []) {
      const call = calls[tc.index] ??= { id: "", type: "", name: "", arguments: "" };
      if (tc.id) call.id = tc.id;
      if (tc.type) call.type = tc.type;
      if (tc.function?.name) call.name += tc.function.name;
      if (tc.function?.arguments) call.arguments += tc.function.arguments;
    }
    finish = c.finish_reason ?? finish;
  }
  return { content, finish, calls, chunks };
}

// required, named function: one call, schema-valid arguments.
const named = await client.chat.completions.create({
  model, messages, tools, tool_choice: { type: "function", function: { name: "get_weather" } },
  max_tokens: 80, temperature: 0,
});
const nm = named.choices[0].message;
check(named.choices[0].finish_reason === "tool_calls", `named function: finish_reason ${named.choices[0].finish_reason}`);
check(nm.tool_calls?.length === 1 && nm.tool_calls[0].type === "function" && nm.tool_calls[0].function.name === "get_weather"
      && typeof nm.tool_calls[0].id === "string" && nm.tool_calls[0].id.length > 0, "named function: one get_weather call with an id");
check(validWeather(nm.tool_calls[0].function.arguments), `named function: arguments valid against the schema (${nm.tool_calls[0].function.arguments})`);

// required, streaming: the same call, streamed as delta.tool_calls.
const rs = await collect(await client.chat.completions.create({
  model, messages, tools: tools.slice(0, 1), tool_choice: "required", max_tokens: 80, temperature: 0, stream: true,
}));
check(rs.finish === "tool_calls" && rs.calls.length === 1 && rs.calls[0].name === "get_weather" && rs.calls[0].type === "function",
      `required stream: one call in ${rs.chunks} chunks, finish_reason tool_calls`);
check(validWeather(rs.calls[0].arguments), `required stream: arguments valid against the schema (${rs.calls[0].arguments})`);

// required, not streaming, with the same single tool: the streamed call is the whole one (greedy).
const req = await client.chat.completions.create({
  model, messages, tools: tools.slice(0, 1), tool_choice: "required", max_tokens: 80, temperature: 0,
});
const rc = req.choices[0].message.tool_calls;
check(req.choices[0].finish_reason === "tool_calls" && rc?.length === 1 && validWeather(rc[0].function.arguments),
      "required: one schema-valid call");
check(rc[0].function.arguments === rs.calls[0].arguments, "required: streamed arguments equal the non-streamed ones (greedy)");
check(req.choices[0].message.content === null, "required: content is null beside the call");

// auto: the model may answer or call; whatever it does comes back in OpenAI's shape.
const auto = await client.chat.completions.create({ model, messages, tools, max_tokens: 8, temperature: 0 });
const am = auto.choices[0];
check(["stop", "length", "tool_calls"].includes(am.finish_reason) && am.message.role === "assistant"
      && (typeof am.message.content === "string" || am.message.tool_calls?.length > 0), `auto: finish_reason ${am.finish_reason}`);
const as = await collect(await client.chat.completions.create({ model, messages, tools, max_tokens: 8, temperature: 0, stream: true }));
check(as.finish === am.finish_reason && as.content === (am.message.content ?? ""), "auto stream: same answer as not streamed (greedy)");

// none: tools described, never called.
const none = await client.chat.completions.create({ model, messages, tools, tool_choice: "none", max_tokens: 8, temperature: 0 });
check(!none.choices[0].message.tool_calls && typeof none.choices[0].message.content === "string", "tool_choice none: text, no call");

// A tool result sent back: the assistant's call and the tool's answer in the history.
const back = await client.chat.completions.create({
  model, tools, max_tokens: 8, temperature: 0,
  messages: [
    ...messages,
    { role: "assistant", content: null, tool_calls: [{ id: rc[0].id, type: "function", function: rc[0].function }] },
    { role: "tool", tool_call_id: rc[0].id, content: JSON.stringify({ forecast: "sunny", high_c: 24 }) },
  ],
});
check(back.choices[0].message.role === "assistant" && back.usage.prompt_tokens > req.usage.prompt_tokens,
      `tool result sent back: answered (${back.usage.prompt_tokens} prompt tokens)`);

// A required call on the result too: the template renders the history and the grammar still holds.
const again = await client.chat.completions.create({
  model, tools: tools.slice(0, 1), tool_choice: "required", max_tokens: 80, temperature: 0,
  messages: [
    ...messages,
    { role: "assistant", content: null, tool_calls: [{ id: rc[0].id, type: "function", function: rc[0].function }] },
    { role: "tool", tool_call_id: rc[0].id, content: "sunny" },
    { role: "user", content: "And in London?" },
  ],
});
check(validWeather(again.choices[0].message.tool_calls?.[0]?.function.arguments ?? ""), "required after a tool result: schema-valid call");

// Errors surface as the SDK's APIError.
try {
  await client.chat.completions.create({ model, messages, tools: [{ type: "function", function: { name: "bad name!" } }] });
  check(false, "a malformed tool must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "tools", `malformed tool: ${e.constructor.name} ${e.status}`);
}
