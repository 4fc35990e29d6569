// Tool calls and the OpenAI-shaped API (bindings/js/tools.js, bindings/js/openai.js): calls
// rendered by each family's real template (Qwen 2.5, Qwen 3, Qwen 3.5, Llama 3.1-3.3) parse back
// to the same calls; chat() with tools constrained to a call (toolChoice 'required' or a named
// function) always yields a well-formed one, in each format; engine.chat.completions.create's
// response objects and stream chunks checked field by field (the chunks' text is the response's
// text for the same seed); logprobs, logit_bias and frequency_penalty; option errors name the
// OpenAI parameter. A random-weight model with the Qwen vocabulary, the relaxed build.
//
//   node tests/js/openai_test.mjs [--rill build/native/rill] [--build relaxed]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { createEngine, renderChat } from '../../bindings/js/index.js';
import { parseToolCalls, toolCallFormat } from '../../bindings/js/tools.js';
import { run } from './run.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const build = opt('--build', 'relaxed');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-openai-'));
const templates = path.join(root, '.cache/llama.cpp/models/templates');
const ajv = new Ajv2020({ strict: false });

let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; return ok; };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
async function rejects(promise, re, type, what) {
  try { await promise; check(false, `${what}: no error`); } catch (e) { check(re.test(e.message) && e instanceof type, `${what}: ${e.constructor.name}: ${e.message}`); }
}

const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, days: { type: 'integer' } }, required: ['city'] } } };
const SEARCH = { type: 'function', function: { name: 'search', description: 'Search the web',
  parameters: { type: 'object', properties: { query: { type: 'string', maxLength: 30 }, safe: { type: 'boolean' } }, required: ['query', 'safe'] } } };
const TOOLS = [WEATHER, SEARCH];

// 1. Calls rendered by the real templates parse back.
const FAMILIES = {
  'Qwen-Qwen2.5-7B-Instruct': 'hermes', 'Qwen-Qwen3-0.6B': 'hermes', 'Qwen3.5-4B': 'qwen-xml',
  'meta-llama-Llama-3.1-8B-Instruct': 'llama3', 'meta-llama-Llama-3.2-3B-Instruct': 'llama3', 'meta-llama-Llama-3.3-70B-Instruct': 'llama3',
};
const template = (name) => fs.readFileSync(path.join(templates, `${name}.jinja`), 'utf8');
for (const [name, format] of Object.entries(FAMILIES)) {
  const t = template(name);
  check(toolCallFormat(t) === format, `${name}: tool-call format ${toolCallFormat(t)}`);
  const single = format === 'llama3';  // Llama's templates take one call per message
  const calls = [{ name: 'get_weather', arguments: { city: 'São Paulo', days: 2 } },
    ...(single ? [] : [{ name: 'search', arguments: { query: 'rain "tomorrow"', safe: true } }])];
  const messages = [{ role: 'user', content: 'weather?' },
    { role: 'assistant', content: single ? '' : 'Let me check.', tool_calls: calls.map((c) => ({ type: 'function', function: c })) }];
  const text = renderChat(t, { messages, tools: TOOLS, add_generation_prompt: false, bos_token: '', eos_token: '' });
  const header = format === 'llama3' ? '<|start_header_id|>assistant<|end_header_id|>\n\n' : '<|im_start|>assistant\n';
  const reply = text.slice(text.lastIndexOf(header) + header.length).replace(/(<\|im_end\|>|<\|eot_id\|>)\s*$/, '');
  const parsed = parseToolCalls(reply, format, TOOLS);
  const got = parsed.toolCalls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) }));
  check(same(got, calls) && parsed.toolCalls.every((c) => c.type === 'function' && /^call_/.test(c.id)),
    `${name}: the rendered calls parse back (${JSON.stringify(got)})`);
  const content = parsed.content.replace(/^<think>\s*<\/think>\s*/, '');
  check(content === (single ? '' : 'Let me check.'), `${name}: the text beside the calls is the content (${JSON.stringify(parsed.content)})`);
}
check(parseToolCalls('<tool_call>\n{"name": oops}\n</tool_call>', 'hermes', TOOLS).toolCalls.length === 0, 'a call that is not JSON stays content');
check(parseToolCalls('{"not": "a call"}', 'llama3', TOOLS).content === '{"not": "a call"}', 'Llama: JSON without a name is content');

// 2. The engine: tools, the facade, logprobs, logit_bias.
const model = path.join(work, 'qwen35.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'),
  '--out', model, '--seed', '22', '--type', 'q8_0']);
const engine = await createEngine({ threads: 2, build });
try {
  // The vocabulary file's template is a plain ChatML one without tools: Qwen 2.5's takes them.
  await engine.load(model, { contextSize: 2048, chatTemplate: template('Qwen-Qwen2.5-7B-Instruct') });
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

  // Constrained calls in every format: always a well-formed call of a given tool.
  for (const [name, format] of Object.entries(FAMILIES).slice(0, 4)) {
    for (const [seed, choice] of [[1, 'required'], [2, 'required'], [3, { type: 'function', function: { name: 'search' } }]]) {
      const r = await engine.chat(messages, { template: template(name), tools: TOOLS, toolChoice: choice, seed, maxTokens: 300 }).result;
      const c = r.toolCalls && r.toolCalls[0];
      let args = null;
      try { args = JSON.parse(c.function.arguments); } catch { /* checked below */ }
      const tool = c && TOOLS.find((t) => t.function.name === c.function.name);
      // Qwen 3.5's XML carries values as text: a value the tool declares non-string is read as JSON.
      const fits = tool && args && ajv.validate(tool.function.parameters, args);
      check(r.toolCalls.length === 1 && fits && (typeof choice !== 'object' || c.function.name === 'search'),
        `${name} (${format}), toolChoice ${JSON.stringify(choice)}, seed ${seed}: ${c ? `${c.function.name}(${c.function.arguments})` : 'no call'} ${JSON.stringify(r.text.slice(0, 200))}`);
    }
  }
  // toolChoice 'none': the tools are not offered; 'auto': whatever the model says, parsed.
  const none = await engine.chat(messages, { tools: TOOLS, toolChoice: 'none', seed: 1, maxTokens: 8 }).result;
  check(none.toolCalls === undefined && !none.prompt.includes('get_weather'), "toolChoice 'none' offers no tools");
  const auto = await engine.chat(messages, { tools: TOOLS, seed: 1, maxTokens: 8 }).result;
  check(Array.isArray(auto.toolCalls) && auto.prompt.includes('get_weather'), `toolChoice 'auto' offers the tools and reads the reply (${auto.toolCalls.length} calls)`);

  // The facade: a response object field by field.
  const params = { model: 'ignored', messages, max_tokens: 24, temperature: 0.9, top_p: 0.9, seed: 11, stop: ['\n\n\n'] };
  const res = await engine.chat.completions.create(params);
  const direct = await engine.chat(messages, { maxTokens: 24, temperature: 0.9, topP: 0.9, seed: 11, stop: ['\n\n\n'] }).result;
  const ch = res.choices[0];
  check(/^chatcmpl-[0-9a-f]{24}$/.test(res.id) && res.object === 'chat.completion' && Number.isInteger(res.created)
    && Math.abs(res.created - Date.now() / 1000) < 60 && res.model === engine.info.name, `response: id ${res.id}, object, created, model ${res.model} (the file's general.name)`);
  check(res.choices.length === 1 && ch.index === 0 && ch.message.role === 'assistant' && ch.message.content === direct.text
    && ch.logprobs === null && ['stop', 'length'].includes(ch.finish_reason) && ch.message.refusal === null,
    `response: one choice, the message is chat()'s text, finish_reason ${ch.finish_reason}`);
  check(res.usage.prompt_tokens === direct.promptTokens && res.usage.completion_tokens === direct.generatedTokens
    && res.usage.total_tokens === direct.promptTokens + direct.generatedTokens, `response: usage ${JSON.stringify(res.usage)}`);
  check((ch.finish_reason === 'length') === (direct.stopReason === 'length'), 'finish_reason follows stopReason');

  // Streaming: the same text in chunks; role first, finish_reason last, then usage when asked.
  const stream = await engine.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  const body = chunks.filter((c) => c.choices.length);
  const textOf = body.map((c) => c.choices[0].delta.content || '').join('');
  check(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && /^chatcmpl-/.test(c.id) && Number.isInteger(c.created)),
    `stream: ${chunks.length} chunks of one id, object 'chat.completion.chunk'`);
  check(body[0].choices[0].delta.role === 'assistant' && body.slice(0, -1).every((c) => c.choices[0].finish_reason === null)
    && body.at(-1).choices[0].finish_reason === ch.finish_reason && same(body.at(-1).choices[0].delta, {}),
    'stream: the role first, finish_reason only in the last chunk');
  check(textOf === ch.message.content, `stream: the deltas join to the response's text (${JSON.stringify(textOf.slice(0, 40))})`);
  const u = chunks.at(-1);
  check(u.choices.length === 0 && same(u.usage, res.usage), `stream: a last chunk with usage ${JSON.stringify(u.usage)}`);

  // Tools through the facade, streamed and not.
  const tparams = { messages, tools: TOOLS, tool_choice: 'required', seed: 5, max_tokens: 300 };
  const tres = await engine.chat.completions.create(tparams);
  const tc = tres.choices[0].message.tool_calls;
  check(tres.choices[0].finish_reason === 'tool_calls' && tc && tc.length === 1 && tc[0].type === 'function' && /^call_/.test(tc[0].id)
    && typeof tc[0].function.arguments === 'string', `facade tool call: ${tc && `${tc[0].function.name}(${tc[0].function.arguments})`}`);
  const tstream = await engine.chat.completions.create({ ...tparams, stream: true });
  const tchunks = [];
  for await (const c of tstream) tchunks.push(c);
  const deltaCalls = tchunks.flatMap((c) => c.choices[0].delta.tool_calls || []);
  const streamedText = tchunks.map((c) => c.choices[0].delta.content || '').join('');
  check(deltaCalls.length === 1 && deltaCalls[0].index === 0 && deltaCalls[0].function.name === tc[0].function.name
    && deltaCalls[0].function.arguments === tc[0].function.arguments && !streamedText.includes('<tool_call>')
    && tchunks.at(-1).choices[0].finish_reason === 'tool_calls', 'stream: the call as one tool_calls delta, not as content');

  // response_format through the facade.
  const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, celsius: { type: 'number' } }, required: ['city', 'celsius'] };
  const jres = await engine.chat.completions.create({ messages, seed: 3, max_tokens: 200, response_format: { type: 'json_schema', json_schema: { name: 'w', schema } } });
  let parsedJson = null;
  try { parsedJson = JSON.parse(jres.choices[0].message.content); } catch { /* checked below */ }
  check(parsedJson && ajv.validate(schema, parsedJson), `response_format json_schema: ${jres.choices[0].message.content}`);

  // logprobs: greedy picks the top alternative; every logprob is a log-probability.
  const lres = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3 });
  const lp = lres.choices[0].logprobs && lres.choices[0].logprobs.content;
  check(lp && lp.length === lres.usage.completion_tokens && lp.every((t) => t.logprob <= 0 && t.top_logprobs.length === 3
    && t.top_logprobs[0].logprob === t.logprob && t.top_logprobs[0].token === t.token
    && t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob && t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob
    && Array.isArray(t.bytes)), `logprobs: ${lp && lp.length} tokens, greedy = the best alternative (${lp && lp[0].logprob.toFixed(3)})`);
  const own = await engine.complete('x', { temperature: 0, maxTokens: 4, logprobs: true, topLogprobs: 2 }).result;
  check(own.logprobs.length === own.tokens.length && own.logprobs.every((t, i) => t.token === own.tokens[i] && t.top.length === 2 && t.top[0].token === t.token),
    "Rill's logprobs/topLogprobs: one record per token");
  // logit_bias: +100 makes a token the greedy choice, -100 keeps the greedy one out.
  const first = (await engine.complete('x', { temperature: 0, maxTokens: 1 }).result).tokens[0];
  const forced = await engine.complete('x', { temperature: 0, maxTokens: 3, logitBias: { 1234: 100 } }).result;
  const banned = await engine.complete('x', { temperature: 0, maxTokens: 3, logitBias: { [first]: -Infinity } }).result;
  const fbias = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], temperature: 0, max_tokens: 2, logit_bias: { 4321: 100 } });
  check(forced.tokens.every((t) => t === 1234) && !banned.tokens.includes(first) && fbias.usage.completion_tokens === 2,
    `logitBias: +100 forces token 1234 (${forced.tokens}), -Infinity bans ${first} (${banned.tokens}); logit_bias in the facade`);
  const freq = await engine.complete('x', { temperature: 0, maxTokens: 12, logitBias: { 77: 30 }, frequencyPenalty: 8 }).result;
  const count77 = freq.tokens.filter((t) => t === 77).length;
  check(count77 >= 1 && count77 < 12, `frequencyPenalty pulls a favoured token back after ${count77} uses`);

  // Errors name the OpenAI parameter.
  const base = { messages };
  await rejects(engine.chat.completions.create({ ...base, foo: 1 }), /unknown parameter 'foo'/, TypeError, 'an unknown parameter');
  await rejects(engine.chat.completions.create({ ...base, n: 2 }), /^n must be 1/, RangeError, 'n: 2');
  await rejects(engine.chat.completions.create({ ...base, temperature: 3 }), /^temperature must be a number in \[0, 2\]/, RangeError, 'temperature: 3');
  await rejects(engine.chat.completions.create({ ...base, temperature: NaN }), /^temperature/, RangeError, 'temperature: NaN');
  await rejects(engine.chat.completions.create({ ...base, max_tokens: -1 }), /^max_tokens must be an integer >= 0/, RangeError, 'max_tokens: -1');
  await rejects(engine.chat.completions.create({ ...base, top_p: 5 }), /^top_p must be/, RangeError, 'top_p: 5');
  await rejects(engine.chat.completions.create({ ...base, stop: 42 }), /^stop must be a string/, TypeError, 'stop: 42');
  await rejects(engine.chat.completions.create({ ...base, top_k: 'abc' }), /^top_k must be a number/, TypeError, "top_k: 'abc'");
  await rejects(engine.chat.completions.create({ ...base, response_format: { type: 'xml' } }), /response_format.type must be/, TypeError, 'response_format.type xml');
  await rejects(engine.chat.completions.create({ ...base, top_logprobs: 3 }), /top_logprobs needs logprobs/, TypeError, 'top_logprobs alone');
  await rejects(engine.chat.completions.create({ ...base, logit_bias: { abc: 1 } }), /^logit_bias keys must be token ids/, TypeError, 'logit_bias key abc');
  await rejects(engine.chat.completions.create({ ...base, tool_choice: 'required' }), /^toolChoice .* needs tools|tool_choice/, TypeError, 'tool_choice without tools');
  await rejects(engine.chat.completions.create({ messages: [] }), /messages must be a non-empty array/, TypeError, 'no messages');
  await rejects(engine.complete('x', { logitBias: { 5: NaN } }).result, /logitBias\[5\] must be a number/, RangeError, 'logitBias NaN');
  await rejects(engine.complete('x', { logitBias: { 99999999: 1 } }).result, /logitBias names token 99999999, outside the vocabulary/, Error, 'logitBias outside the vocabulary');
  await rejects(engine.chat(messages, { tools: [{ type: 'function', function: {} }] }).result, /tools\[0\] needs function.name/, TypeError, 'a tool without a name');
  await rejects(engine.chat(messages, { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'nope' } } }).result, /not among the tools/, TypeError, 'toolChoice of an unknown tool');
  const after = await engine.chat.completions.create({ messages, max_tokens: 3, seed: 1 });
  check(after.choices[0].message.content.length >= 0 && after.usage.completion_tokens <= 3, 'the engine works after the refusals');
} finally {
  await engine.dispose();
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
