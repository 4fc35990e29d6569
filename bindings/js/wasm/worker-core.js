// The worker side of rill-llm, shared by the browser Web Worker (loaded with importScripts)
// and the Node worker thread (loaded with require). It owns the wasm engine and answers the
// main thread's requests; generation runs here, one token at a time, checking a shared
// abort flag between tokens.
/* eslint-disable no-restricted-globals */
(function (root) {
  'use strict';

  // A 1-function module computing i32x4.relaxed_dot_i8x16_i7x16_add_s on constants: validates
  // only where relaxed SIMD exists, and its answer tells whether the engine computes it right.
  function relaxedProbeBytes() {
    const a = [-1, 2, 3, 4, -5, 6, 7, 8, 9, -10, 11, 12, 13, 14, 15, -16];
    const b = [100, 5, 6, 7, 1, 2, 3, 127, 4, 5, 6, 7, 8, 9, 10, 11];
    const c = [7, 0, 0, 0];
    const v128 = (bytes) => [0xfd, 0x0c, ...bytes.map((x) => x & 0xff)];
    const cBytes = [];
    for (const x of c) cBytes.push(x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, (x >> 24) & 0xff);
    const body = [0x00, ...v128(a), ...v128(b), ...v128(cBytes), 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0x00, 0x0b];
    const code = [0x01, body.length, ...body];
    return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
      0x03, 0x02, 0x01, 0x00,
      0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
      0x0a, code.length, ...code]);
  }

  // 'relaxed' when this engine validates relaxed SIMD and computes the probe exactly.
  function pickBuild(requested) {
    if (requested === 'simd' || requested === 'relaxed') return requested;
    try {
      const bytes = relaxedProbeBytes();
      if (!WebAssembly.validate(bytes)) return 'simd';
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
      return inst.exports.f() === 7 + (-100 + 10 + 18 + 28) ? 'relaxed' : 'simd';
    } catch (e) {
      return 'simd';
    }
  }

  function errorPayload(e) {
    return { message: e && e.message ? e.message : String(e), name: e && e.name ? e.name : 'Error' };
  }

  function now() { return (typeof performance !== 'undefined' ? performance : Date).now(); }

  // host: { post(msg), onMessage(fn), loadGlue(build) -> Promise<{factory, moduleArgs}>, openFile(path) -> {size, read(buf, pos)},
  //         cache: model-cache.js, directory(dir) -> its Node store (Node only) }
  function serve(host) {
    let module = null;   // the Emscripten module
    let engine = null;   // its Engine instance
    let threads = 1;
    let build = null;

    function requireEngine() {
      if (!engine) throw new Error('the engine was disposed');
      return engine;
    }

    async function init(msg) {
      threads = Math.max(1, msg.threads | 0 || 1);
      build = pickBuild(msg.build);
      const { factory, moduleArgs } = await host.loadGlue(build);
      // At least one pre-spawned worker: a pool of 0 never finishes starting (Emscripten 3.1.6).
      module = await factory(Object.assign({ rillPoolSize: Math.max(1, threads - 1) }, moduleArgs));
      engine = new module.Engine();
      engine.threads(threads);  // started now, not on the first load
      return { build, kernels: module.Engine.kernels(), maddFused: module.Engine.maddFused(), threads };
    }

    // Streams the model bytes straight into wasm memory: at most one chunk is held outside it.
    // URLs go through the model cache (model-cache.js) unless msg.cache is false: a cached
    // entry is read with no network request; a download is written to wasm memory and to the
    // cache in the same pass ('reload': download again and replace the entry). A split model
    // (msg.source of kind 'parts', or the URL or path of any part named <name>-0000k-of-0000n.gguf)
    // has each part in a buffer of its own: no single allocation or read spans the whole model.
    async function loadModel(msg) {
      const e = requireEngine();
      const abort = msg.abort ? new Int32Array(msg.abort) : null;
      const checkAbort = () => {
        if (abort && Atomics.load(abort, 0)) throw Object.assign(new Error('the load was aborted'), { name: 'AbortError' });
      };
      const t0 = now();
      e.freeModel();  // the old model's memory is reused for the new one
      const parts = splitParts(msg.source);
      if (parts.length > 1 && msg.sha256) throw new Error('sha256 names one file: a split model\'s parts are checked by the hashes their server states');
      const opened = [];
      const buffers = [];
      let handedOver = false;
      try {
        // Every part is opened (its cache entry found, or its response's headers read) before any
        // bytes are read: a model too large for wasm32 is refused before its download.
        for (const part of parts) opened.push(await openPart(part, msg));
        const total = opened.reduce((n, p) => n + p.size, 0);
        if (total > 4294967295) {
          throw new Error(`a model of ${total} bytes${parts.length > 1 ? ` in ${parts.length} parts` : ''} cannot be loaded into wasm32 memory (4 GB at most)`);
        }
        let base = 0;
        const origins = [];
        for (const p of opened) {
          const buf = { ptr: e.allocate(p.size, threads), size: p.size };
          buffers.push(buf);
          const view = () => e.heapView(buf.ptr, buf.size);
          const at = base;
          origins.push(await p.read(view, (loaded, phase) => {
            checkAbort();
            host.post({ id: msg.id, progress: { phase, loaded: at + loaded, total } });
          }));
          base += p.size;
        }
        const loadedAt = now();
        handedOver = true;  // owned by the engine from here on, even if parsing fails
        e.loadFromBuffers(buffers.map((b) => b.ptr), buffers.map((b) => b.size), msg.contextSize | 0, threads);
        const info = e.info();
        info.loadMs = now() - t0;
        info.readMs = loadedAt - t0;
        const caches = [...new Set(origins.map((o) => o.cache).filter(Boolean))];
        info.source = origins.length === 1 ? origins[0]
          : { kind: 'parts', parts: origins, cache: caches.length === 1 ? caches[0] : caches.length ? 'mixed' : undefined };
        return info;
      } finally {
        if (!handedOver) for (const b of buffers) e.release(b.ptr);
        for (const p of opened) if (p.cancel) p.cancel();
      }
    }

    // The single sources a load reads: the parts of a split model, else the source itself.
    function splitParts(src) {
      if (src.kind === 'parts') {
        if (!src.parts.length) throw new Error('a split model needs at least one part');
        return src.parts;  // single sources (index.js's toSource)
      }
      if (src.kind === 'url') {
        const u = new URL(src.url);
        const names = partNames(u.pathname);
        return names ? names.map((name) => { const v = new URL(u.href); v.pathname = name; return { kind: 'url', url: v.href }; }) : [src];
      }
      if (src.kind === 'path') {
        const names = partNames(src.path);
        return names ? names.map((name) => ({ kind: 'path', path: name })) : [src];
      }
      return [src];
    }

    // The names of all n parts when `name` ends like a part of a split model
    // (<prefix>-0000k-of-0000n.gguf, n > 1), else null.
    function partNames(name) {
      const re = /-(\d{5})-of-(\d{5})\.gguf$/;
      const m = re.exec(name);
      const n = m ? Number(m[2]) : 1;
      if (n <= 1 || Number(m[1]) < 1 || Number(m[1]) > n) return null;
      return Array.from({ length: n }, (_, k) => name.replace(re, `-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.gguf`));
    }

    // Opens one source: { size, read(view, report(loaded, phase)) -> origin, cancel? }.
    async function openPart(src, msg) {
      if (src.kind === 'path') {
        const f = host.openFile(src.path);
        let open = true;
        const close = () => { if (open) { open = false; f.close(); } };  // once: a descriptor number is reused
        return {
          size: f.size,
          async read(view, report) {
            try {
              for (let pos = 0; pos < f.size;) {
                const n = f.read(view().subarray(pos, Math.min(f.size, pos + host.cache.CHUNK)), pos);
                if (n <= 0) throw new Error(`${src.path}: file ended at byte ${pos} of ${f.size}`);
                pos += n;
                report(pos, 'load');
              }
            } finally {
              close();
            }
            return { kind: 'path', path: src.path };
          },
          cancel: close,
        };
      }
      if (src.kind === 'blob' || src.kind === 'bytes') {
        const size = src.kind === 'blob' ? src.blob.size : (src.byteLength == null ? src.buffer.byteLength - (src.byteOffset || 0) : src.byteLength);
        return {
          size,
          async read(view, report) {
            const step = host.cache.CHUNK;
            const bytes = src.kind === 'bytes' ? new Uint8Array(src.buffer, src.byteOffset || 0, size) : null;
            for (let pos = 0; pos < size; pos += step) {
              const end = Math.min(size, pos + step);
              view().set(bytes ? bytes.subarray(pos, end) : new Uint8Array(await src.blob.slice(pos, end).arrayBuffer()), pos);
              report(end, 'load');
            }
            return { kind: src.kind };
          },
        };
      }
      if (src.kind === 'url') return openUrl(src.url, msg);
      throw new Error(`unknown model source kind ${src.kind}`);
    }

    // The model cache's store for these options (opened once per kind and folder).
    const stores = new Map();
    async function store(options) {
      const id = `${options.cacheStore || 'auto'}|${options.cacheDir || ''}`;
      if (!stores.has(id)) stores.set(id, host.cache.openStore(options, host));
      try {
        return await stores.get(id);
      } catch (err) {
        stores.delete(id);
        throw err;
      }
    }

    async function openUrl(url, msg) {
      const mode = msg.cache == null ? true : msg.cache;
      const cacheable = mode !== false && /^https?:/i.test(url);
      const s = cacheable ? await store(msg) : null;
      const entry = s && mode !== 'reload' ? await s.lookup(url) : null;
      if (entry) {
        return {
          size: entry.record.size,
          cancel: () => { if (entry.close) entry.close(); },
          async read(view, report) {
            try {
              await entry.copyTo(view, (n) => report(n, 'cache'));
            } catch (err) {
              if (err && err.name === 'AbortError') throw err;
              await entry.drop();
              throw new Error(`the cached copy of ${url} was damaged (${err.message}): it has been removed; load again to download it`);
            }
            return { kind: 'url', url, cache: 'hit', store: s.name };
          },
        };
      }
      // Bytes kept in the model cache are not kept twice by the browser's HTTP cache.
      const res = await fetch(url, s && !host.directory ? { cache: 'no-store' } : {});
      if (!res.ok) throw new Error(`fetching ${url} failed: HTTP ${res.status} ${res.statusText}`);
      const reader = res.body.getReader();
      const cancel = () => { reader.cancel().catch(() => {}); };
      const expectedSha = msg.sha256 ? String(msg.sha256).toLowerCase() : host.cache.statedSha256(res.headers);
      const total = Number(res.headers.get('content-length')) || 0;
      const encoded = res.headers.get('content-encoding');
      if (!(total > 0 && (!encoded || encoded === 'identity'))) {  // no length known: gather now, copy later; not cached
        const hash = expectedSha ? host.cache.sha256() : null;
        const chunks = [];
        let pos = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          if (hash) hash.update(value);
          pos += value.byteLength;
        }
        checkSha(url, hash, expectedSha);
        return {
          size: pos,
          async read(view, report) {
            let off = 0;
            for (const c of chunks.splice(0)) { view().set(c, off); off += c.byteLength; report(off, 'download'); }
            return { kind: 'url', url, cache: s ? 'not stored (the server gave no length)' : 'off', store: s && s.name };
          },
        };
      }
      return {
        size: total,
        cancel,
        read: (view, report) => download(url, { res, reader, total, expectedSha, store: s, view, report }),
      };
    }

    // Streams a response of known length into wasm memory and, when there is a store, into the
    // cache; the entry is committed only when the bytes are whole and their hash (if stated) right.
    async function download(url, { res, reader, total, expectedSha, store: s, view, report }) {
      const hash = expectedSha ? host.cache.sha256() : null;
      let writer = null;
      let unstored = null;  // why the cache could not keep it (the load goes on without it)
      // A store that fails for any reason but its quota leaves the model loading, uncached.
      const storing = async (step) => {
        try {
          await step();
        } catch (err) {
          if (host.cache.isQuota(err)) throw err;
          unstored = err && err.message ? err.message : String(err);
          const w = writer;
          writer = null;
          if (w) await w.abort().catch(() => {});
        }
      };
      try {
        const record = s && host.cache.recordFor(url, res, total, expectedSha);
        if (s) await storing(async () => { writer = await s.create(url, record); });
        let pos = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (pos + value.byteLength > total) throw new Error(`${url}: the server sent more than the ${total} bytes it announced`);
          view().set(value, pos);
          if (hash) hash.update(value);
          if (writer) await storing(() => writer.write(value));
          pos += value.byteLength;
          report(pos, 'download');
        }
        if (pos !== total) throw new Error(`${url}: received ${pos} of ${total} bytes`);
        checkSha(url, hash, expectedSha);
        if (writer) await storing(() => writer.commit(record));
        writer = null;
        return { kind: 'url', url, cache: !s ? 'off' : unstored ? `not stored (${unstored})` : 'stored', store: s && s.name };
      } catch (err) {
        reader.cancel().catch(() => {});
        if (writer) await writer.abort();
        if (s && host.cache.isQuota(err) && !err.explained) throw await s.explainQuota(total);
        throw err;
      }
    }

    function checkSha(url, hash, expected) {
      if (!hash) return;
      const got = hash.hex();
      if (got !== expected) throw new Error(`${url}: the download's SHA-256 is ${got}, not the ${expected} that was stated for it`);
    }

    // The cache without an engine: list, delete, clear.
    const cacheOps = {
      cacheList: async (m) => { const s = await store(m); return { store: s.name, where: s.where, entries: await s.list() }; },
      cacheDelete: async (m) => (await store(m)).remove(m.url),
      cacheClear: async (m) => (await store(m)).clear(),
    };

    // Generation: prompt (text or token ids) then tokens until the end, maxTokens, a stop
    // string or the abort flag. Pieces are posted as they come; stop strings are held back
    // while they could still be forming.
    function generate(msg) {
      const e = requireEngine();
      const o = msg.options || {};
      const abort = msg.abort ? new Int32Array(msg.abort) : null;
      const stops = (o.stop || []).filter((s) => s.length > 0);
      const maxTokens = o.maxTokens == null ? 256 : o.maxTokens;
      e.setSampling({
        temperature: o.temperature == null ? 0.8 : o.temperature,
        topK: o.topK == null ? 40 : o.topK,
        topP: o.topP == null ? 0.95 : o.topP,
        minP: o.minP == null ? 0.05 : o.minP,
        repeatPenalty: o.repeatPenalty == null ? 1 : o.repeatPenalty,
        presencePenalty: o.presencePenalty == null ? 0 : o.presencePenalty,
        frequencyPenalty: o.frequencyPenalty == null ? 0 : o.frequencyPenalty,
        logprobs: o.logprobs ? (o.topLogprobs || 0) : -1,
        logitBias: o.logitBias == null ? [] : (o.logitBias instanceof Map ? [...o.logitBias] : Object.entries(o.logitBias)).map(([id, b]) => [Number(id), b]),
        seed: o.seed == null ? Math.floor(Math.random() * 2 ** 32) : o.seed,
      });
      e.setSpeculative({  // log-probabilities are recorded one sampled token at a time
        enabled: o.logprobs ? false : o.speculative == null ? true : !!o.speculative,
        draftTokens: o.draftTokens == null ? 0 : o.draftTokens,
        adaptive: o.draftTokens == null,
      });
      e.speculativeStats(true);
      // The constraint on the reply (checked in index.js): a GBNF grammar or a response format.
      const rf = o.responseFormat;
      if (o.grammar != null) e.setGrammar('gbnf', o.grammar);
      else if (rf && rf.type === 'json_schema') e.setGrammar('json_schema', JSON.stringify(schemaOf(rf)));
      else if (rf && rf.type === 'json_object') e.setGrammar('json_object', '');
      else e.setGrammar('', '');
      try {
        return generateConstrained(e, msg, o, abort, stops, maxTokens);
      } finally {
        e.setGrammar('', '');
      }
    }

    // OpenAI's { type: 'json_schema', json_schema: { schema } } or Rill's { type: 'json_schema', schema }.
    function schemaOf(rf) {
      return rf.schema !== undefined ? (typeof rf.schema === 'string' ? JSON.parse(rf.schema) : rf.schema) : rf.json_schema.schema;
    }

    function generateConstrained(e, msg, o, abort, stops, maxTokens) {
      const t0 = now();
      let promptTokens, reusedTokens = 0;
      if (o.keepContext) {  // after what the context holds
        promptTokens = msg.tokens ? e.decodeTokens(msg.tokens, true) : e.decodePrompt(msg.prompt);
      } else {  // a whole text: what it shares with the context (or a checkpoint) is not evaluated again
        const ids = msg.tokens ? Int32Array.from(msg.tokens) : e.tokenize(msg.prompt, true, true);
        if (o.reusePrefix === false) e.resetContext();
        else reusedTokens = e.reusePrefix(ids);
        const rest = ids.length - reusedTokens;
        const marks = (msg.marks || []).map((m) => m - reusedTokens).filter((m) => m > 0 && m < rest);
        if (rest > 0) {
          marks.push(rest);
          e.feedTokens(ids.subarray(reusedTokens), Int32Array.from(marks));
        } else if (ids.length === 0) {
          throw new Error('nothing to decode: the prompt is empty');
        }  // else: the very text evaluated last time, its logits at hand
        promptTokens = ids.length;
      }
      const t1 = now();
      const tokens = [];
      const logprobs = o.logprobs ? [] : null;
      let text = '';
      let held = '';
      let reason = 'length';
      const emit = (s) => { if (s) { text += s; host.post({ id: msg.id, piece: s }); } };
      while (tokens.length < maxTokens) {
        if (abort && Atomics.load(abort, 0)) { reason = 'abort'; break; }
        const r = e.generateStep();
        if (r.done) {
          held += r.piece;
          reason = r.reason;
          break;
        }
        tokens.push(r.token);
        if (logprobs) {
          const piece = (id) => e.detokenize([id], false);
          logprobs.push({ token: r.token, piece: piece(r.token), logprob: r.logprob,
            top: r.top.map((a) => ({ token: a.token, piece: piece(a.token), logprob: a.logprob })) });
        }
        held += r.piece;
        let cut = -1;
        for (const s of stops) {
          const i = held.indexOf(s);
          if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0) { held = held.slice(0, cut); reason = 'stop'; break; }
        // keep back the longest tail that is a prefix of a stop string
        let keep = 0;
        for (const s of stops)
          for (let k = Math.min(s.length - 1, held.length); k > keep; --k)
            if (held.endsWith(s.slice(0, k))) { keep = k; break; }
        emit(held.slice(0, held.length - keep));
        held = held.slice(held.length - keep);
      }
      emit(held);
      const t2 = now();
      e.checkpoint();  // the end of the reply: the next turn's text starts with it
      const spec = e.speculativeStats(true);
      return {
        text, tokens, stopReason: reason, ...(logprobs ? { logprobs } : {}),
        promptTokens, reusedTokens, generatedTokens: tokens.length,
        timings: {
          promptMs: t1 - t0, promptTokensPerSecond: (promptTokens - reusedTokens) / ((t1 - t0) / 1000),  // those evaluated
          generateMs: t2 - t1, generateTokensPerSecond: tokens.length / ((t2 - t1) / 1000),
          // Speculative decoding with the model's MTP head: drafts proposed and accepted.
          speculative: spec.enabled, draftTokens: spec.drafted, acceptedDraftTokens: spec.accepted,
          draftMs: spec.draftMs, verifyMs: spec.verifyMs, steps: spec.steps,
        },
      };
    }

    const handlers = {
      init,
      ...cacheOps,
      load: loadModel,
      tokenize: (m) => Array.from(requireEngine().tokenize(m.text, m.addSpecial !== false, m.parseSpecial !== false)),
      detokenize: (m) => requireEngine().detokenize(m.ids, !!m.special),
      generate,
      probeBandwidth: (m) => requireEngine().probeBandwidth(m.mb || 256, m.threads || threads, m.repeats || 5),
      memory: () => module.Engine.memoryBytes(),
      schemaToGbnf: (m) => module.Engine.schemaToGbnf(m.schema),
      // Texts tokenized as llama.cpp's embeddings do (BOS/EOS as the model asks, no special-token parsing).
      embed: (m) => {
        const e = requireEngine();
        const ids = m.texts.map((t) => e.tokenize(t, true, false));
        return { vectors: e.embed(ids, m.pooling, m.normalize), tokens: ids.map((t) => t.length) };
      },
      profile: (m) => requireEngine().profile(!!m.clear),
      evaluate: (m) => requireEngine().decodeTokens(m.tokens, m.logits !== false),
      reset: () => { requireEngine().resetContext(); return null; },
      replayDrafts: (m) => { requireEngine().setReplayDrafts(m.tokens, m.acceptance); return null; },
      saveState: () => requireEngine().saveState(),
      loadState: (m) => { requireEngine().loadState(new Uint8Array(m.bytes)); return requireEngine().info().nPast; },
      checkpoints: (m) => { requireEngine().setCheckpointBudget(m.count, m.bytes); return null; },
      logits: () => requireEngine().getLogits(),
      info: () => requireEngine().info(),
      unload: () => { requireEngine().freeModel(); return null; },
      dispose: () => { if (engine) { engine.freeModel(); engine.delete(); engine = null; } return null; },
    };

    let queue = Promise.resolve();
    host.onMessage((msg) => {
      // One request at a time, in order: the engine is not re-entrant.
      queue = queue.then(async () => {
        try {
          const h = handlers[msg.op];
          if (!h) throw new Error(`unknown request ${msg.op}`);
          const result = await h(msg);
          host.post({ id: msg.id, done: true, result });
        } catch (e) {
          host.post({ id: msg.id, done: true, error: errorPayload(e) });
        }
      });
    });
  }

  const api = { serve, pickBuild };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.rillWorkerCore = api;
})(typeof self !== 'undefined' ? self : this);
