// OpenAI's chat-completions shape over Rill's chat(): engine.chat.completions.create(params)
// returns OpenAI's response object, or with stream: true an async iterable of chunks, so code
// written for web-llm or the OpenAI SDK runs unchanged. Options are checked as OpenAI names them
// (a TypeError or RangeError naming the option); unknown ones are refused, not ignored.

// OpenAI's parameters and Rill's option for each (null: taken as is, checked here).
const RENAMED = {
  max_tokens: 'maxTokens', max_completion_tokens: 'maxTokens', temperature: 'temperature', top_p: 'topP', seed: 'seed',
  stop: 'stop', presence_penalty: 'presencePenalty', frequency_penalty: 'frequencyPenalty', logit_bias: 'logitBias',
  tools: 'tools', tool_choice: 'toolChoice',
  // extensions web-llm and llama.cpp's server take
  top_k: 'topK', min_p: 'minP', repetition_penalty: 'repeatPenalty',
};
const OWN = new Set(['messages', 'stream', 'stream_options', 'response_format', 'logprobs', 'top_logprobs', 'n', 'model']);
// Taken and without effect here: they describe the caller or a server's bookkeeping.
const IGNORED = new Set(['user', 'store', 'metadata', 'parallel_tool_calls', 'service_tier', 'enable_thinking']);

function check(p) {
  if (p == null || typeof p !== 'object') throw new TypeError('chat.completions.create takes an object of parameters');
  for (const k of Object.keys(p))
    if (!(k in RENAMED) && !OWN.has(k) && !IGNORED.has(k)) throw new TypeError(`chat.completions.create: unknown parameter '${k}'`);
  if (!Array.isArray(p.messages) || p.messages.length === 0) throw new TypeError('messages must be a non-empty array of { role, content }');
  if (p.stream != null && typeof p.stream !== 'boolean') throw new TypeError(`stream must be true or false, got ${typeof p.stream}`);
  if (p.n != null && p.n !== 1) throw new RangeError(`n must be 1 (one choice per request), got ${p.n}`);
  if (p.temperature != null && (typeof p.temperature !== 'number' || !(p.temperature >= 0 && p.temperature <= 2)))
    throw new (typeof p.temperature === 'number' ? RangeError : TypeError)(`temperature must be a number in [0, 2], got ${p.temperature}`);
  if (p.logprobs != null && typeof p.logprobs !== 'boolean') throw new TypeError(`logprobs must be true or false, got ${typeof p.logprobs}`);
  if (p.top_logprobs != null) {
    if (!Number.isInteger(p.top_logprobs) || p.top_logprobs < 0 || p.top_logprobs > 20)
      throw new RangeError(`top_logprobs must be an integer from 0 to 20, got ${p.top_logprobs}`);
    if (!p.logprobs) throw new TypeError('top_logprobs needs logprobs: true');
  }
  const rf = p.response_format;
  if (rf != null && (typeof rf !== 'object' || !['text', 'json_object', 'json_schema'].includes(rf.type)))
    throw new TypeError(`response_format.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(rf && rf.type)}`);
  if (p.stream_options != null && (typeof p.stream_options !== 'object' || !p.stream)) throw new TypeError('stream_options needs stream: true');
}

// Rill's chat() options for the parameters (their values checked again there, under Rill's names,
// so a message names the OpenAI parameter it came from).
function toOptions(p) {
  const o = {};
  for (const [k, v] of Object.entries(p)) if (k in RENAMED && v != null) o[RENAMED[k]] = v;
  if (p.response_format) o.responseFormat = p.response_format;
  if (p.logprobs) o.logprobs = true;
  if (p.logprobs && p.top_logprobs != null) o.topLogprobs = p.top_logprobs;
  if (p.enable_thinking != null) o.templateVariables = { enable_thinking: p.enable_thinking };
  return o;
}

function withOpenAINames(err) {
  for (const [openai, rill] of Object.entries(RENAMED))
    if (err.message.startsWith(`${rill} `)) { err.message = `${openai}${err.message.slice(rill.length)}`; break; }
  if (err.message.startsWith('responseFormat')) err.message = `response_format${err.message.slice('responseFormat'.length)}`;
  return err;
}

function randomId(prefix) {
  const r = new Uint8Array(12);
  globalThis.crypto.getRandomValues(r);
  return prefix + Array.from(r, (b) => b.toString(16).padStart(2, '0')).join('');
}

const finishReason = (r) => (r.toolCalls && r.toolCalls.length ? 'tool_calls'
  : r.stopReason === 'length' || r.stopReason === 'context' ? 'length' : r.stopReason === 'abort' ? 'abort' : 'stop');

const bytes = (s) => Array.from(new TextEncoder().encode(s));
function logprobsOf(r) {
  if (!r.logprobs) return null;
  return {
    content: r.logprobs.map((t) => ({
      token: t.piece, logprob: t.logprob, bytes: bytes(t.piece),
      top_logprobs: t.top.map((a) => ({ token: a.piece, logprob: a.logprob, bytes: bytes(a.piece) })),
    })),
    refusal: null,
  };
}

const usage = (r) => ({ prompt_tokens: r.promptTokens, completion_tokens: r.generatedTokens, total_tokens: r.promptTokens + r.generatedTokens });

async function create(engine, p, { signal } = {}) {
  check(p);
  const options = toOptions(p);
  if (signal) options.signal = signal;
  const id = randomId('chatcmpl-');
  const created = Math.floor(Date.now() / 1000);
  const model = (engine.info && engine.info.name) || p.model || 'rill';
  try { checkOptions(options); } catch (e) { throw withOpenAINames(e); }
  const reply = engine.chat(p.messages, options);
  if (!p.stream) {
    let r;
    try { r = await reply.result; } catch (e) { throw withOpenAINames(e); }
    const tools = r.toolCalls !== undefined;
    return {
      id, object: 'chat.completion', created, model, system_fingerprint: null,
      choices: [{
        index: 0,
        message: {
          role: 'assistant',
          content: tools ? (r.content || null) : r.text,
          ...(tools && r.toolCalls.length ? { tool_calls: r.toolCalls } : {}),
          refusal: null,
        },
        logprobs: logprobsOf(r),
        finish_reason: finishReason(r),
      }],
      usage: usage(r),
    };
  }
  const chunk = (delta, finish, extra = {}) => ({
    id, object: 'chat.completion.chunk', created, model, system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra,
  });
  const holdsCalls = p.tools != null && p.tool_choice !== 'none';
  return {
    async *[Symbol.asyncIterator]() {
      yield chunk({ role: 'assistant', content: '' }, null);
      // With tools, the text of a call is not content: pieces are held back from where one may
      // begin ('<tool_call>', or a reply that opens as JSON) and the calls come as one delta.
      let held = '', text = '';
      for await (const piece of reply) {
        text += piece;
        if (!holdsCalls) { yield chunk({ content: piece }, null); continue; }
        held += piece;
        const open = held.indexOf('<tool_call>');
        const jsonStart = text.trimStart().startsWith('{') || text.trimStart().startsWith('<|python_tag|>');
        if (open >= 0 || jsonStart) continue;
        let keep = 0;
        for (let k = Math.min('<tool_call>'.length - 1, held.length); k > 0; --k) if ('<tool_call>'.startsWith(held.slice(-k))) { keep = k; break; }
        if (held.length - keep > 0) yield chunk({ content: held.slice(0, held.length - keep) }, null);
        held = held.slice(held.length - keep);
      }
      const r = await reply.result;
      if (holdsCalls) {
        const streamed = text.length - held.length;
        const rest = (r.content || '').slice(Math.max(0, streamed));
        if (r.toolCalls.length === 0 && held) yield chunk({ content: held }, null);
        else if (rest.trim() && r.toolCalls.length === 0) yield chunk({ content: rest }, null);
        if (r.toolCalls.length) yield chunk({ tool_calls: r.toolCalls.map((c, index) => ({ index, ...c })) }, null);
      }
      const last = chunk({}, finishReason(r));
      if (r.logprobs) last.choices[0].logprobs = logprobsOf(r);
      yield last;
      if (p.stream_options && p.stream_options.include_usage) yield { ...chunk({}, null), choices: [], usage: usage(r) };
    },
  };
}

// checkOptions: index.js's check of chat() options (TypeError/RangeError before anything runs).
let checkOptions = () => {};
export function createCompletions(engine, check) {
  if (check) checkOptions = check;
  return { create: (params, options) => create(engine, params, options) };
}

// OpenAI's embeddings: engine.embeddings.create({ input, encoding_format, dimensions }).
// dimensions keeps the first n components, normalised again (Matryoshka-trained models, such as
// Qwen3-Embedding, are made for that).
async function createEmbedding(engine, p) {
  if (p == null || typeof p !== 'object') throw new TypeError('embeddings.create takes an object of parameters');
  for (const k of Object.keys(p))
    if (!['input', 'model', 'encoding_format', 'dimensions', 'user'].includes(k)) throw new TypeError(`embeddings.create: unknown parameter '${k}'`);
  const input = typeof p.input === 'string' ? [p.input] : p.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((t) => typeof t === 'string'))
    throw new TypeError('input must be a string or a non-empty array of strings');
  if (p.encoding_format != null && !['float', 'base64'].includes(p.encoding_format))
    throw new TypeError(`encoding_format must be 'float' or 'base64', got ${JSON.stringify(p.encoding_format)}`);
  const n = engine.info ? engine.info.nEmbd : 0;
  if (p.dimensions != null && (!Number.isInteger(p.dimensions) || p.dimensions < 1 || (n && p.dimensions > n)))
    throw new RangeError(`dimensions must be an integer from 1 to ${n || 'the model\'s embedding size'}, got ${p.dimensions}`);
  const { vectors, tokens } = await engine._embed(input, { normalize: true });
  const data = vectors.map((v, index) => {
    let e = v;
    if (p.dimensions != null) {
      e = v.slice(0, p.dimensions);
      const norm = Math.hypot(...e) || 1;
      for (let i = 0; i < e.length; i++) e[i] /= norm;
    }
    const embedding = p.encoding_format === 'base64'
      ? btoa(String.fromCharCode(...new Uint8Array(e.buffer, e.byteOffset, e.byteLength))) : Array.from(e);
    return { object: 'embedding', index, embedding };
  });
  const used = tokens.reduce((a, b) => a + b, 0);
  return { object: 'list', data, model: (engine.info && engine.info.name) || p.model || 'rill', usage: { prompt_tokens: used, total_tokens: used } };
}

export function createEmbeddings(engine) {
  return { create: (params) => createEmbedding(engine, params) };
}
