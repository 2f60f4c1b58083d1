// openai_responses.mjs: the official openai SDK's responses.create against
// airlock serve, unchanged: text (streaming and not, instructions and message
// items), and function calls (required, streaming and not, a
// function_call_output sent back) on the tool-capable model.
// usage: node openai_responses.mjs BASE_URL TEXT_MODEL TOOL_MODEL
import OpenAI from "openai";

const [base, textModel, toolModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const check = (cond, what) => { if (!cond) { console.error(`FAIL: ${what}`); process.exit(1); } console.log(`ok - sdk: ${what}`); };

// Text.
const r = await client.responses.create({ model: textModel, input: "Tell me a story.", max_output_tokens: 20, temperature: 0 });
check(r.object === "response" && typeof r.output_text === "string" && r.output_text.length > 0
      && r.output[0].type === "message" && r.usage.output_tokens > 0, `responses.create: text (${JSON.stringify(r.output_text)})`);
check(r.status === "incomplete" && r.incomplete_details.reason === "max_output_tokens", "responses.create: cut at max_output_tokens");

const stream = await client.responses.create({ model: textModel, input: "Tell me a story.", max_output_tokens: 20, temperature: 0, stream: true });
let text = "", final = null;
const types = new Set();
for await (const ev of stream) {
  types.add(ev.type);
  if (ev.type === "response.output_text.delta") text += ev.delta;
  if (ev.type === "response.completed" || ev.type === "response.incomplete") final = ev.response;
}
check(types.has("response.created") && types.has("response.output_item.added") && types.has("response.output_text.done"),
      `responses stream: events ${[...types].join(",")}`);
check(text === r.output_text && final && final.output[0].content[0].text === text,
      "responses stream: the deltas make the non-streamed text (greedy)");

const items = await client.responses.create({
  model: textModel, instructions: "Be brief.", max_output_tokens: 8, temperature: 0,
  input: [{ role: "user", content: [{ type: "input_text", text: "Hello" }] }],
});
check(typeof items.output_text === "string", "responses.create: instructions and input items");

// Function calls.
const tools = [{
  type: "function", name: "get_weather", description: "The weather forecast of a city",
  parameters: {
    type: "object", additionalProperties: false, required: ["city", "days"],
    properties: { city: { type: "string", enum: ["Paris", "London"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  },
}];
const valid = (args) => {
  let a; try { a = JSON.parse(args); } catch { return false; }
  return Object.keys(a).sort().join(",") === "city,days" && ["Paris", "London"].includes(a.city)
    && Number.isInteger(a.days) && a.days >= 1 && a.days <= 7;
};
const input = [{ role: "user", content: "What is the weather in Paris for 3 days?" }];
const fc = await client.responses.create({ model: toolModel, input, tools, tool_choice: "required", max_output_tokens: 80, temperature: 0 });
const call = fc.output.find((o) => o.type === "function_call");
check(call && call.name === "get_weather" && call.call_id && valid(call.arguments), `responses function_call: schema-valid (${call?.arguments})`);

const fs = await client.responses.create({ model: toolModel, input, tools, tool_choice: "required", max_output_tokens: 80, temperature: 0, stream: true });
let args = null;
for await (const ev of fs) if (ev.type === "response.function_call_arguments.done") args = ev.arguments;
check(args === call.arguments, "responses stream: function_call_arguments.done equals the non-streamed call");

const back = await client.responses.create({
  model: toolModel, tools, tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 80, temperature: 0,
  input: [...input, { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
          { type: "function_call_output", call_id: call.call_id, output: "sunny" }],
});
check(back.usage.input_tokens > fc.usage.input_tokens && back.output.some((o) => o.type === "function_call" && valid(o.arguments)),
      "responses: a function_call_output sent back, a named function called again");

try {
  await client.responses.create({ model: textModel, input: "x", previous_response_id: "resp_1" });
  check(false, "previous_response_id must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "previous_response_id", `previous_response_id: ${e.constructor.name}`);
}
