// rill-llm: GGUF language models in WebAssembly, in a worker, with a JavaScript-shaped API.
//
//   const engine = await createEngine({ threads: 4 });
//   await engine.load('https://example.com/model.gguf', { onProgress: p => console.log(p.loaded / p.total) });
//   for await (const piece of engine.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 64 })) ...
//
// The engine runs in a Web Worker (browsers) or a worker thread (Node), never on the calling
// thread. Its wasm threads need SharedArrayBuffer: in browsers the page must be cross-origin
// isolated (COOP: same-origin and COEP: require-corp headers).
import { renderChat, builtinTemplate } from './chat.js';
import { normalizeTools, parseToolCalls, toolCallFormat, toolCallGrammar, toolCallSchema } from './tools.js';
import { createCompletions, createEmbeddings } from './openai.js';

export { renderChat, builtinTemplate, parseToolCalls, toolCallFormat };

const isNode = typeof process === 'object' && process.versions != null && process.versions.node != null
  && typeof window === 'undefined';

function defaultThreads() {
  if (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) return navigator.hardwareConcurrency;
  return 1;
}

async function nodeThreads() {
  const os = await import('node:os');
  return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
}

function checkSharedMemory() {
  if (typeof SharedArrayBuffer === 'undefined' || (typeof crossOriginIsolated !== 'undefined' && !crossOriginIsolated)) {
    throw new Error('rill-llm needs SharedArrayBuffer (WebAssembly threads): serve the page cross-origin isolated, '
      + 'with the headers "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" '
      + '(or "credentialless"), over https or http://localhost');
  }
}

// An async iterable of text pieces whose `result` promise gives the final record.
// Options are checked before anything runs: a wrong type is a TypeError, a value out of range
// a RangeError, each naming the option and what it takes. Absent (null/undefined): the default.
function checkNumber(name, v, { integer = false, min = -Infinity, max = Infinity, above = false, range }) {
  if (v == null) return;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number (${range}), got ${typeof v}`);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max || (above && v === min))
    throw new RangeError(`${name} must be ${integer ? 'an integer' : 'a finite number'} ${range}, got ${v}`);
}

function checkBoolean(name, v) {
  if (v != null && typeof v !== 'boolean') throw new TypeError(`${name} must be true or false, got ${typeof v}`);
}

function checkGenerationOptions(o) {
  if (o == null || typeof o !== 'object') throw new TypeError(`options must be an object, got ${o === null ? 'null' : typeof o}`);
  checkNumber('maxTokens', o.maxTokens, { integer: true, min: 0, range: '>= 0' });
  checkNumber('temperature', o.temperature, { min: 0, range: '>= 0 (0: greedy)' });
  checkNumber('topK', o.topK, { integer: true, min: 0, range: '>= 0 (0: off)' });
  checkNumber('topP', o.topP, { min: 0, above: true, max: 1, range: 'in (0, 1] (1: off)' });
  checkNumber('minP', o.minP, { min: 0, max: 1, range: 'in [0, 1] (0: off)' });
  checkNumber('repeatPenalty', o.repeatPenalty, { min: 0, above: true, range: '> 0 (1: off)' });
  checkNumber('presencePenalty', o.presencePenalty, { range: '(0: off)' });
  checkNumber('frequencyPenalty', o.frequencyPenalty, { range: '(0: off)' });
  checkNumber('topLogprobs', o.topLogprobs, { integer: true, min: 0, max: 20, range: 'from 0 to 20' });
  checkBoolean('logprobs', o.logprobs);
  if (o.topLogprobs != null && !o.logprobs) throw new TypeError('topLogprobs needs logprobs: true');
  if (o.logitBias != null) {
    const entries = o.logitBias instanceof Map ? [...o.logitBias] : typeof o.logitBias === 'object' && !Array.isArray(o.logitBias) ? Object.entries(o.logitBias) : null;
    if (!entries) throw new TypeError('logitBias must be an object (or Map) of token id -> bias');
    for (const [id, bias] of entries) {
      if (!/^\d+$/.test(String(id))) throw new TypeError(`logitBias keys must be token ids (non-negative integers), got ${JSON.stringify(id)}`);
      if (typeof bias !== 'number' || Number.isNaN(bias) || bias === Infinity)
        throw new RangeError(`logitBias[${id}] must be a number (-Infinity: never), got ${bias}`);
    }
  }
  checkNumber('seed', o.seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, range: 'from 0 to 2^53 - 1' });
  checkNumber('draftTokens', o.draftTokens, { integer: true, min: 1, max: 3, range: 'from 1 to 3' });
  for (const b of ['keepContext', 'reusePrefix', 'speculative', 'addGenerationPrompt']) checkBoolean(b, o[b]);
  if (o.stop != null && typeof o.stop !== 'string' && !(Array.isArray(o.stop) && o.stop.every((x) => typeof x === 'string')))
    throw new TypeError(`stop must be a string or an array of strings, got ${Array.isArray(o.stop) ? 'an array holding a non-string' : typeof o.stop}`);
  if (o.signal != null && !(typeof o.signal === 'object' && 'aborted' in o.signal && typeof o.signal.addEventListener === 'function'))
    throw new TypeError('signal must be an AbortSignal');
  if (o.template != null && typeof o.template !== 'string') throw new TypeError(`template must be a string, got ${typeof o.template}`);
  if (o.grammar != null && typeof o.grammar !== 'string') throw new TypeError(`grammar must be a string (GBNF text), got ${typeof o.grammar}`);
  checkResponseFormat(o.responseFormat);
  if (o.grammar != null && o.responseFormat != null && o.responseFormat.type !== 'text')
    throw new TypeError('grammar and responseFormat both constrain the reply: give one of them');
  if (o.templateVariables != null && (typeof o.templateVariables !== 'object' || Array.isArray(o.templateVariables)))
    throw new TypeError('templateVariables must be an object');
  if (o.tools != null) normalizeTools(o.tools);
  const tc = o.toolChoice;
  if (tc != null && !['auto', 'none', 'required'].includes(tc) && !(tc && typeof tc === 'object' && tc.function && typeof tc.function.name === 'string'))
    throw new TypeError(`toolChoice must be 'auto', 'none', 'required' or { type: 'function', function: { name } }, got ${JSON.stringify(tc)}`);
  if (tc != null && tc !== 'auto' && tc !== 'none' && o.tools == null) throw new TypeError(`toolChoice ${JSON.stringify(tc)} needs tools`);
  if (tc && typeof tc === 'object' && !o.tools.some((t) => (t.function || t).name === tc.function.name))
    throw new TypeError(`toolChoice names ${JSON.stringify(tc.function.name)}, which is not among the tools`);
  if (tc != null && tc !== 'auto' && tc !== 'none' && (o.grammar != null || (o.responseFormat != null && o.responseFormat.type !== 'text')))
    throw new TypeError('toolChoice forces a tool call, which grammar or responseFormat would contradict: give one of them');
}

// { type: 'text' | 'json_object' | 'json_schema', schema } (Rill, web-llm) or OpenAI's
// { type: 'json_schema', json_schema: { schema } }. The schema itself is checked by the engine.
function checkResponseFormat(rf) {
  if (rf == null) return;
  if (typeof rf !== 'object' || Array.isArray(rf)) throw new TypeError(`responseFormat must be an object, got ${Array.isArray(rf) ? 'an array' : typeof rf}`);
  if (!['text', 'json_object', 'json_schema'].includes(rf.type))
    throw new TypeError(`responseFormat.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(rf.type)}`);
  if (rf.type !== 'json_schema') return;
  const schema = rf.schema !== undefined ? rf.schema : rf.json_schema && rf.json_schema.schema;
  if (typeof schema === 'string') {
    try { JSON.parse(schema); } catch (err) { throw new TypeError(`responseFormat.schema is not JSON: ${err.message}`); }
  } else if (schema === null || (typeof schema !== 'object' && typeof schema !== 'boolean')) {
    throw new TypeError("responseFormat { type: 'json_schema' } needs schema (or json_schema.schema): a JSON Schema object");
  }
}

// One model source as the worker takes it; bytes to transfer (not copy) are added to transfer.
async function toSource(source, copy, transfer) {
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { kind: 'blob', blob: source };
  if (source instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && source instanceof SharedArrayBuffer)) {
    if (!copy && source instanceof ArrayBuffer) transfer.push(source);
    return { kind: 'bytes', buffer: source };
  }
  if (ArrayBuffer.isView(source)) {
    const whole = source.byteOffset === 0 && source.byteLength === source.buffer.byteLength;
    if (!copy && whole && source.buffer instanceof ArrayBuffer) transfer.push(source.buffer);
    return { kind: 'bytes', buffer: source.buffer, byteOffset: source.byteOffset, byteLength: source.byteLength };
  }
  if (source instanceof URL || typeof source === 'string') {
    const s = String(source);
    if (/^(https?|blob|data):/i.test(s)) return { kind: 'url', url: s };
    if (/^file:/i.test(s) && isNode) return { kind: 'path', path: (await import('node:url')).fileURLToPath(s) };
    if (isNode) return { kind: 'path', path: s };
    return { kind: 'url', url: new URL(s, globalThis.location ? globalThis.location.href : undefined).href };
  }
  throw new TypeError('engine.load: source must be a URL, a file path (Node), a File/Blob, bytes, or a list of those (the parts of a split model)');
}

// { cacheStore, cacheDir } of load() and the cache functions, checked.
function checkCacheOptions(o) {
  if (o.cache != null && o.cache !== true && o.cache !== false && o.cache !== 'reload')
    throw new TypeError(`cache must be true, false or 'reload', got ${JSON.stringify(o.cache)}`);
  if (o.cacheStore != null && !['auto', 'opfs', 'cache-api', 'directory'].includes(o.cacheStore))
    throw new TypeError(`cacheStore must be 'auto', 'opfs', 'cache-api' (browsers) or 'directory' (Node), got ${JSON.stringify(o.cacheStore)}`);
  if (o.cacheDir != null && typeof o.cacheDir !== 'string') throw new TypeError(`cacheDir must be a folder path, got ${typeof o.cacheDir}`);
  return { cacheStore: o.cacheStore || 'auto', cacheDir: o.cacheDir || null };
}

// Throws the TypeError or RangeError complete()/chat() would for these options (checks them
// before anything is loaded).
export function checkOptions(options) { checkGenerationOptions(options); }

class Completion {
  constructor(start) {
    this._pieces = [];
    this._waiters = [];
    this._ended = false;
    this._error = null;
    this.result = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.result.catch(() => {});  // observed through iteration too
    start(this);
  }

  _push(piece) {
    const w = this._waiters.shift();
    if (w) w.resolve({ value: piece, done: false });
    else this._pieces.push(piece);
  }

  _finish(error, result) {
    this._ended = true;
    this._error = error;
    if (error) this._reject(error);
    else this._resolve(result);
    for (const w of this._waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this._pieces.length) return Promise.resolve({ value: this._pieces.shift(), done: false });
        if (this._ended) return this._error ? Promise.reject(this._error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
      },
      return: async () => {  // a `break` out of for-await stops generation
        if (!this._ended && this._stop) this._stop();
        return { value: undefined, done: true };
      },
    };
  }

  // The whole text, once generation ends.
  async text() { return (await this.result).text; }
}

function asError(payload) {
  const e = new Error(payload.message);
  if (payload.name && payload.name !== 'Error') e.name = payload.name;
  return e;
}

class Engine {
  constructor(worker, isNodeWorker) {
    this._worker = worker;
    this._next = 1;
    this._pending = new Map();
    this._disposed = false;
    this.info = null;    // model info after load()
    this.runtime = null; // { build, kernels, maddFused, threads }
    // OpenAI's shape: engine.chat.completions.create({ messages, stream, ... }) (bindings/js/openai.js).
    this.chat = this.chat.bind(this);
    this.chat.completions = createCompletions(this, checkGenerationOptions);
    this.embeddings = createEmbeddings(this);
    const onMessage = (msg) => {
      const p = this._pending.get(msg.id);
      if (!p) return;
      if (msg.progress) { if (p.onProgress) p.onProgress(msg.progress); return; }
      if (msg.piece !== undefined) { if (p.onPiece) p.onPiece(msg.piece); return; }
      this._pending.delete(msg.id);
      if (msg.error) p.reject(asError(msg.error));
      else p.resolve(msg.result);
    };
    const onError = (err) => {
      const e = new Error(`rill worker failed: ${err && err.message ? err.message : err}`);
      for (const p of this._pending.values()) p.reject(e);
      this._pending.clear();
    };
    if (isNodeWorker) {
      worker.on('message', onMessage);
      worker.on('error', onError);
    } else {
      worker.onmessage = (ev) => onMessage(ev.data);
      worker.onerror = (ev) => { ev.preventDefault(); onError(ev.message || ev); };
    }
  }

  _request(op, fields = {}, hooks = {}, transfer = []) {
    if (this._disposed) return Promise.reject(new Error('the engine was disposed'));
    const id = this._next++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, ...hooks });
      this._worker.postMessage({ id, op, ...fields }, transfer);
    });
  }

  _needModel() {
    if (this._disposed) throw new Error('the engine was disposed');
    if (!this.info) throw new Error('no model is loaded: call engine.load(source) first');
  }

  // source: a URL (string or URL), a Node file path, a File/Blob, or bytes (ArrayBuffer / typed array);
  // or a list of those: the parts of a split model (llama.cpp's gguf-split), in order. The URL or
  // path of any part named <name>-0000k-of-0000n.gguf loads all n parts by itself.
  // Bytes that fill their whole ArrayBuffer are transferred to the worker, not copied (copying
  // half a gigabyte through postMessage costs seconds): the caller's buffer is detached. Pass
  // { copy: true } to keep it usable.
  // An http(s) URL goes through the model cache (cache: true, the default): a cached copy loads
  // with no network request; otherwise the download streams into the engine and the cache at
  // once. cache: 'reload' downloads again and replaces the entry, false neither reads nor
  // writes it. cacheStore: 'auto' (OPFS, else the Cache API) | 'opfs' | 'cache-api' in browsers;
  // cacheDir: the Node cache folder (default $RILL_CACHE_DIR or the user's cache folder).
  // sha256: the file's hash (hex), checked before the entry is kept (a hash the server states in
  // its headers is checked too). onProgress({ phase: 'download' | 'cache' | 'load', loaded,
  // total }); signal: an AbortSignal that stops the load (nothing is cached). chatTemplate: a
  // Jinja chat template to use instead of the file's.
  async load(source, options = {}) {
    if (options == null || typeof options !== 'object') throw new TypeError('load options must be an object');
    const { contextSize = 0, onProgress, copy = false, signal } = options;
    checkNumber('contextSize', contextSize, { integer: true, min: 0, max: 2 ** 26, range: 'from 0 (the model\'s default) to 67108864 tokens' });
    if (onProgress != null && typeof onProgress !== 'function') throw new TypeError(`onProgress must be a function, got ${typeof onProgress}`);
    const cacheOptions = checkCacheOptions(options);
    if (options.sha256 != null && !/^[0-9a-fA-F]{64}$/.test(String(options.sha256)))
      throw new TypeError('sha256 must be the 64 hex digits of the file\'s SHA-256');
    if (signal != null && !(typeof signal === 'object' && 'aborted' in signal && typeof signal.addEventListener === 'function'))
      throw new TypeError('signal must be an AbortSignal');
    if (options.chatTemplate != null && typeof options.chatTemplate !== 'string')
      throw new TypeError(`chatTemplate must be a string (a Jinja chat template), got ${typeof options.chatTemplate}`);
    const transfer = [];
    const src = Array.isArray(source)
      ? { kind: 'parts', parts: await Promise.all(source.map((s) => toSource(s, copy, transfer))) }
      : await toSource(source, copy, transfer);
    if (src.kind === 'parts' && src.parts.length === 0) throw new TypeError('engine.load: an empty list of parts');
    const abort = new Int32Array(new SharedArrayBuffer(4));
    const stop = () => Atomics.store(abort, 0, 1);
    if (signal) { if (signal.aborted) stop(); else signal.addEventListener('abort', stop, { once: true }); }
    this.info = null;
    try {
      this.info = await this._request('load', {
        source: src, contextSize, abort: abort.buffer, sha256: options.sha256 ? String(options.sha256).toLowerCase() : null,
        cache: options.cache == null ? true : options.cache, ...cacheOptions,
      }, { onProgress }, transfer);
    } finally {
      if (signal) signal.removeEventListener('abort', stop);
    }
    // A template to use instead of the file's (files without one, or with an older one).
    if (options.chatTemplate != null) this.info.chatTemplate = options.chatTemplate;
    return this.info;
  }

  // Text completion. options: maxTokens, temperature, topK, topP, minP, repeatPenalty,
  // presencePenalty, seed, stop (strings), signal (AbortSignal), keepContext (continue from the
  // current state instead of starting afresh; by default the prompt is a whole text, and what it
  // shares with the evaluated text, or with a checkpoint, is not evaluated again: reusePrefix:
  // false evaluates it all), speculative (default true: with a file that has an
  // MTP layer, draft tokens with it and verify them in one batch; the output is the same), and
  // draftTokens (1..3 drafts every step; default: as many as pay, by measured acceptance and cost).
  complete(prompt, options = {}) {
    return this._generate({ prompt: String(prompt) }, options);
  }

  // Chat completion with the model's chat template (or options.template, or a built-in one).
  // messages: [{ role, content }]; options as complete() plus templateVariables.
  chat(messages, options = {}) {
    return new Completion((c) => {
      (async () => {
        checkGenerationOptions(options);
        if (!Array.isArray(messages)) throw new TypeError('messages must be an array of { role, content }');
        this._needModel();
        // Tools go to the template (as templateVariables.tools would); the reply's calls are read
        // back in the template's format, and toolChoice 'required' (or one named function)
        // constrains the reply to a well-formed call.
        const choice = options.toolChoice || 'auto';
        const tools = options.tools != null && choice !== 'none' ? normalizeTools(options.tools) : null;
        let format = null;
        if (tools) {
          const template = options.template || this.info.chatTemplate || builtinTemplate(this.info);
          format = toolCallFormat(template);
          if (!format) throw new Error("the chat template takes no tools (it has no tool-call format Rill knows: Qwen's <tool_call>, Llama 3's JSON)");
          options = { ...options, templateVariables: { tools, ...(options.templateVariables || {}) } };
        }
        const { text, template } = this.renderChat(messages, options);
        if (tools && choice !== 'auto') {
          const forced = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.function.name) : tools;
          const schemaGbnf = format === 'qwen-xml' ? '' : await this._request('schemaToGbnf', { schema: JSON.stringify(toolCallSchema(format, forced)) });
          options = { ...options, grammar: toolCallGrammar(format, forced, schemaGbnf, { thinking: /<think>\s*$/.test(text) }) };
        }
        const startsWithBos = this.info.bosText && text.startsWith(this.info.bosText);
        const tokens = await this.tokenize(text, { addSpecial: !startsWithBos, parseSpecial: true });
        // A checkpoint where the messages end and the generation prompt begins: templates render
        // the next turn's history differently from what was generated (Qwen 3.x drop thinking
        // blocks, or the empty one the generation prompt added), and the text shares this much.
        const marks = [];
        if (options.addGenerationPrompt !== false) {
          const base = this.renderChat(messages, { ...options, addGenerationPrompt: false }).text;
          const ids = await this.tokenize(base, { addSpecial: !startsWithBos, parseSpecial: true });
          let n = 0;
          while (n < ids.length && n < tokens.length && ids[n] === tokens[n]) n++;
          if (n > 0 && n < tokens.length) marks.push(n);
        }
        const { tools: _tools, toolChoice: _choice, ...generation } = options;
        const inner = this._generate({ tokens, marks }, generation);
        c._stop = inner._stop;
        for await (const piece of inner) c._push(piece);
        const result = await inner.result;
        result.prompt = text;
        result.template = template;
        if (tools) Object.assign(result, parseToolCalls(result.text, format, tools));
        c._finish(null, result);
      })().catch((e) => c._finish(e));
    });
  }

  // Embeddings, as llama.cpp makes them: one Float32Array per text (a string or an array of
  // them), the output-normed final hidden states pooled as the file says (pooling_type), or as
  // pooling says ('mean', 'cls', 'last'), L2-normalised unless normalize is false. The context is
  // emptied (a chat's state is dropped).
  async embed(texts, options = {}) {
    return (await this._embed(texts, options)).vectors;
  }

  async _embed(texts, { normalize = true, pooling } = {}) {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string'))
      throw new TypeError('embed takes a string or a non-empty array of strings');
    checkBoolean('normalize', normalize);
    if (pooling != null && !['mean', 'cls', 'last'].includes(pooling))
      throw new TypeError(`pooling must be 'mean', 'cls' or 'last', got ${JSON.stringify(pooling)}`);
    this._needModel();
    return this._request('embed', { texts: list, normalize, pooling: pooling || '' });
  }

  // The prompt text a conversation renders to (no generation).
  renderChat(messages, options = {}) {
    this._needModel();
    const template = options.template || this.info.chatTemplate || builtinTemplate(this.info);
    const text = renderChat(template, {
      messages,
      add_generation_prompt: options.addGenerationPrompt !== false,
      bos_token: this.info.bosText || '',
      eos_token: this.info.eosText || '',
      ...(options.templateVariables || {}),
    });
    return { text, template };
  }

  _generate(input, options) {
    try { checkGenerationOptions(options); } catch (e) { return new Completion((c) => c._finish(e)); }
    const { signal, ...opts } = options;
    return new Completion((c) => {
      const abort = new Int32Array(new SharedArrayBuffer(4));
      const stop = () => Atomics.store(abort, 0, 1);
      c._stop = stop;
      if (signal) {
        if (signal.aborted) stop();
        else signal.addEventListener('abort', stop, { once: true });
      }
      try { this._needModel(); } catch (e) { c._finish(e); return; }
      if (opts.stop && !Array.isArray(opts.stop)) opts.stop = [opts.stop];
      this._request('generate', { ...input, options: opts, abort: abort.buffer }, { onPiece: (p) => c._push(p) })
        .then((r) => c._finish(null, r), (e) => c._finish(e))
        .finally(() => { if (signal) signal.removeEventListener('abort', stop); });
    });
  }

  async tokenize(text, { addSpecial = true, parseSpecial = true } = {}) {
    this._needModel();
    return this._request('tokenize', { text, addSpecial, parseSpecial });
  }

  async detokenize(ids, { special = false } = {}) {
    this._needModel();
    return this._request('detokenize', { ids: Array.from(ids), special });
  }

  // Evaluates token ids after the current context (no sampling); then logits() gives the last one's.
  // logits: false skips them (more tokens follow: a prompt fed in pieces saves the vocabulary-wide
  // head of each piece); logits() then rejects until an evaluation computes them.
  async evaluate(tokens, { logits = true } = {}) {
    checkBoolean('logits', logits);
    this._needModel();
    return this._request('evaluate', { tokens: Array.from(tokens), logits });
  }

  // A snapshot of the context: the evaluated tokens, attention caches, recurrent state, the
  // last logits, with a format version and the model's fingerprint (a Uint8Array; for
  // Qwen3.5-0.8B about 20 MB plus 24 KB per token). Evaluate a system prompt once, keep the bytes,
  // and loadState() them in a later session: the next chat() sharing that prefix starts from it.
  async saveState() { this._needModel(); return this._request('saveState', {}); }

  // Restores a saveState() snapshot; resolves to the number of tokens it holds. A state of another
  // model or format version, corrupt bytes or one longer than the context reject with a message
  // saying which, and the context stays as it was.
  async loadState(bytes) {
    this._needModel();
    if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
    if (!(bytes instanceof Uint8Array)) throw new TypeError('engine.loadState: bytes must be a Uint8Array or an ArrayBuffer (from saveState)');
    return this._request('loadState', { bytes: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  // Prefix reuse keeps checkpoints of the recurrent state (the end of each prompt and reply, the
  // last message boundary): at most `count` of them and `bytes` in all (default 8, 128 MB).
  async setCheckpointBudget({ count = 8, bytes = 128 * 2 ** 20 } = {}) {
    this._needModel();
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
    if (!(bytes >= 0)) throw new RangeError(`bytes must be a non-negative number, got ${bytes}`);
    return this._request('checkpoints', { count, bytes });
  }

  // The model's info as load() returned it, with the context's current figures: nPast (tokens
  // evaluated), checkpoints and checkpointBytes (kept for prefix reuse), stateBytes.
  async contextInfo() { this._needModel(); return this._request('info', {}); }

  // Benchmarks of speculative decoding: drafts taken from a known text (token ids from position 0,
  // e.g. a previous greedy run's prompt and output), each right with probability `acceptance`,
  // instead of the MTP head's; null goes back to the head. Not for applications.
  async _replayDrafts(tokens, acceptance = 1) {
    this._needModel();
    return this._request('replayDrafts', { tokens: tokens ? Array.from(tokens) : [], acceptance });
  }

  // Where evaluation time went since the last profile({ clear: true }): milliseconds per
  // category (matmul per weight format, lm_head, deltanet, attention, total) and tokens.
  async profile({ clear = false } = {}) { this._needModel(); return this._request('profile', { clear }); }

  // Bytes of wasm memory the engine holds (model, KV cache and state, runtime).
  async memoryBytes() { return this._request('memory'); }

  // A wasm memory-read bandwidth probe in this engine's build (GB/s): the roofline for decode.
  async probeBandwidth({ mb = 256, threads, repeats = 5 } = {}) {
    return this._request('probeBandwidth', { mb, threads: threads || this.runtime.threads, repeats });
  }

  // Logits of the last evaluated token (a Float32Array of nVocab values).
  async logits() { this._needModel(); return this._request('logits'); }
  async reset() { this._needModel(); await this._request('reset'); }
  async unload() { if (this.info) await this._request('unload'); this.info = null; }

  async dispose() {
    if (this._disposed) return;
    try { await this._request('dispose'); } catch (e) { /* the worker is going away anyway */ }
    this._disposed = true;
    this.info = null;
    await this._worker.terminate();
  }
}

async function spawnWorker() {
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    return new Worker(new URL('./wasm/node-worker.js', import.meta.url));
  }
  return new Worker(new URL('./wasm/browser-worker.js', import.meta.url));
}

// Starts an engine in a worker. options: threads (default: the machine's cores), build
// ('auto' | 'relaxed' | 'simd': relaxed SIMD when the JS engine validates and computes it right).
export async function createEngine({ threads, build = 'auto' } = {}) {
  checkSharedMemory();
  const worker = await spawnWorker();
  if (!threads) threads = isNode ? await nodeThreads() : defaultThreads();
  const engine = new Engine(worker, isNode);
  try {
    engine.runtime = await engine._request('init', { threads, build });
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  return engine;
}

// The model cache without an engine (a worker is started for the call, with no wasm).
// options: cacheStore, cacheDir as for engine.load().
async function cacheRequest(op, fields, options) {
  if (options == null || typeof options !== 'object') throw new TypeError('cache options must be an object');
  const cacheOptions = checkCacheOptions(options);
  const worker = await spawnWorker();
  const engine = new Engine(worker, isNode);
  try {
    return await engine._request(op, { ...fields, ...cacheOptions });
  } finally {
    await worker.terminate();
  }
}

// The cached models: [{ url, size, etag, lastModified, sha256, storedAt }].
export async function listCached(options = {}) { return (await cacheRequest('cacheList', {}, options)).entries; }

// Removes a URL's entry; resolves to whether there was one.
export async function deleteCached(url, options = {}) {
  if (!(url instanceof URL || typeof url === 'string')) throw new TypeError('deleteCached: url must be a string or a URL');
  let s = String(url);
  if (!isNode && !/^[a-z][a-z0-9+.-]*:/i.test(s)) s = new URL(s, globalThis.location.href).href;
  return cacheRequest('cacheDelete', { url: s }, options);
}

// Removes every entry; resolves to how many there were.
export async function clearCache(options = {}) { return cacheRequest('cacheClear', {}, options); }

// Where the cache lives: { store: 'directory' | 'opfs' | 'cache-api', where }.
export async function cacheLocation(options = {}) {
  const r = await cacheRequest('cacheList', {}, options);
  return { store: r.store, where: r.where };
}
