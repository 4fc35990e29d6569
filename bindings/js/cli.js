#!/usr/bin/env node
// rill-llm on the command line: a streamed chat or a one-shot reply from a GGUF file or URL,
// through the npm package (the same engine as in the browser), with the model cache.
//
//   npx rill-llm chat MODEL [options]          a conversation; Ctrl-C stops a reply, again to quit
//   npx rill-llm run MODEL PROMPT [options]    one reply to PROMPT (--raw: complete the text as is)
//   npx rill-llm cache [list | rm URL | clear] the model cache
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { createEngine, checkOptions, listCached, deleteCached, clearCache, cacheLocation } from './index.js';

const USAGE = `usage:
  rill-llm chat MODEL [options]           chat with MODEL (a .gguf path or an http(s) URL)
  rill-llm run MODEL PROMPT [options]     one reply to PROMPT, then exit
  rill-llm cache [list | rm URL | clear]  the downloaded models

options:
  -t, --threads N         worker threads (default: the machine's cores)
  -c, --ctx-size N        context size in tokens (default: the model's, at most 4096)
  -n, --n-predict N       tokens per reply at most (default 512)
      --temp T            temperature (default 0.7; 0: greedy)
      --top-k N, --top-p P, --min-p P, --repeat-penalty R, -s/--seed N
      --system TEXT       a system message
      --think             let Qwen 3.x models think first (off by default)
      --raw               run: complete PROMPT as plain text, without the chat template
      --no-spec           no speculative decoding with the model's MTP layer
      --no-cache          neither read nor write the model cache; --reload: download again
      --cache-dir DIR     the cache folder (default $RILL_CACHE_DIR or ~/.cache/rill-llm)
      --build B           relaxed | simd (default: relaxed where the JS engine supports it)
  -h, --help`;

class UsageError extends Error {}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        threads: { type: 'string', short: 't' }, 'ctx-size': { type: 'string', short: 'c' }, 'n-predict': { type: 'string', short: 'n' },
        temp: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
        'repeat-penalty': { type: 'string' }, seed: { type: 'string', short: 's' }, system: { type: 'string' },
        think: { type: 'boolean' }, raw: { type: 'boolean' }, 'no-spec': { type: 'boolean' }, 'no-cache': { type: 'boolean' },
        reload: { type: 'boolean' }, 'cache-dir': { type: 'string' }, build: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(e.message);
  }
  const v = parsed.values;
  const num = (name, { integer = false } = {}) => {
    if (v[name] == null) return undefined;
    const x = Number(v[name]);
    if (v[name].trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw new UsageError(`--${name} takes ${integer ? 'an integer' : 'a number'}, got '${v[name]}'`);
    return x;
  };
  return {
    command: parsed.positionals[0], rest: parsed.positionals.slice(1), help: !!v.help,
    threads: num('threads', { integer: true }), contextSize: num('ctx-size', { integer: true }) ?? 0,
    build: v.build ?? 'auto', cacheDir: v['cache-dir'],
    cache: v['no-cache'] ? false : v.reload ? 'reload' : true,
    raw: !!v.raw, system: v.system, think: !!v.think,
    generation: {
      maxTokens: num('n-predict', { integer: true }) ?? 512, temperature: num('temp') ?? 0.7,
      topK: num('top-k', { integer: true }), topP: num('top-p'), minP: num('min-p'), repeatPenalty: num('repeat-penalty'),
      seed: num('seed', { integer: true }), speculative: !v['no-spec'],
    },
  };
}

const MB = (n) => (n / 2 ** 20).toFixed(0);

// Load progress on stderr: a bar on a terminal, a line per phase otherwise.
function progressReporter() {
  const tty = process.stderr.isTTY;
  const names = { download: 'downloading', cache: 'reading the cache', load: 'loading' };
  let phase = null, t0 = 0, lastDraw = 0;
  const report = ({ phase: p, loaded, total }) => {
    const now = performance.now();
    if (p !== phase) {
      if (phase && tty) process.stderr.write('\n');
      phase = p;
      t0 = now;
      if (!tty) process.stderr.write(`${names[p] || p} ${total ? `${MB(total)} MB` : ''}\n`);
    }
    if (!tty || (now - lastDraw < 100 && loaded !== total)) return;
    lastDraw = now;
    const rate = loaded / 2 ** 20 / Math.max(1e-3, (now - t0) / 1000);
    const width = 30;
    const done = total ? Math.round(width * loaded / total) : 0;
    const bar = total ? `[${'='.repeat(done)}${' '.repeat(width - done)}] ${(100 * loaded / total).toFixed(0).padStart(3)}%` : '';
    process.stderr.write(`\r${names[p] || p} ${bar} ${MB(loaded)}${total ? `/${MB(total)}` : ''} MB, ${rate.toFixed(0)} MB/s   `);
  };
  report.end = () => { if (phase && tty) process.stderr.write('\n'); };
  return report;
}

function stats(r) {
  const t = r.timings;
  const spec = t.speculative && t.draftTokens ? `, ${t.acceptedDraftTokens}/${t.draftTokens} drafts accepted` : '';
  const reused = r.reusedTokens ? ` (${r.reusedTokens} reused)` : '';
  return `[${r.generatedTokens} tokens, ${t.generateTokensPerSecond.toFixed(1)} tok/s; prompt ${r.promptTokens} tokens${reused} in ${(t.promptMs / 1000).toFixed(2)} s${spec}${r.stopReason === 'abort' ? '; stopped' : ''}]`;
}

async function main() {
  const o = parse(process.argv.slice(2));
  if (o.help || !o.command) { console.log(USAGE); return 0; }
  const cacheOptions = o.cacheDir ? { cacheDir: o.cacheDir } : {};
  if (o.command === 'cache') {
    const [what = 'list', url] = o.rest;
    if (what === 'list') {
      const where = await cacheLocation(cacheOptions);
      const entries = await listCached(cacheOptions);
      console.log(`${entries.length} model(s) in ${where.where}`);
      for (const e of entries) console.log(`${MB(e.size).padStart(6)} MB  ${e.storedAt.slice(0, 10)}  ${e.url}`);
      return 0;
    }
    if (what === 'rm' && url) { const had = await deleteCached(url, cacheOptions); console.log(had ? `removed ${url}` : `not cached: ${url}`); return had ? 0 : 1; }
    if (what === 'clear') { console.log(`removed ${await clearCache(cacheOptions)} model(s)`); return 0; }
    throw new UsageError(`rill-llm cache takes list, rm URL or clear, not '${o.rest.join(' ')}'`);
  }
  if (o.command !== 'chat' && o.command !== 'run') throw new UsageError(`unknown command '${o.command}'`);
  const [model, ...promptWords] = o.rest;
  if (!model) throw new UsageError(`rill-llm ${o.command} needs a MODEL (a .gguf path or URL)`);
  if (o.command === 'run' && promptWords.length === 0) throw new UsageError('rill-llm run needs a PROMPT');
  if (o.command === 'chat' && promptWords.length) throw new UsageError(`rill-llm chat takes no prompt (got '${promptWords.join(' ')}'): type it at the prompt`);
  if (!/^(https?|file):/i.test(model) && !fs.existsSync(model)) throw new UsageError(`no such model file: ${model}`);
  const options = { ...o.generation, templateVariables: { enable_thinking: o.think } };
  checkOptions(options);

  // Ctrl-C: stops the load or the reply in progress; with nothing in progress (or twice), quits.
  let current = null;  // the AbortController of what runs now
  let lastInterrupt = 0;
  let quit = null;
  const interrupt = () => {
    const now = Date.now();
    if (current && !current.signal.aborted && now - lastInterrupt > 1500) { lastInterrupt = now; current.abort(); return; }
    if (quit) quit();
    else process.exit(130);
  };
  process.on('SIGINT', interrupt);

  const engine = await createEngine({ threads: o.threads, build: o.build });
  try {
    const report = progressReporter();
    current = new AbortController();
    let info;
    try {
      info = await engine.load(model, { contextSize: o.contextSize, onProgress: report, signal: current.signal, cache: o.cache, ...cacheOptions });
    } finally {
      report.end();
    }
    current = null;
    const where = info.source.cache === 'hit' ? ', from the cache' : info.source.cache === 'stored' ? ', now cached' : '';
    process.stderr.write(`${info.architecture}, ${info.nLayer} layers, ${MB(info.fileBytes)} MB${info.mtp ? ', MTP layer' : ''}; context ${info.nCtx}; `
      + `${engine.runtime.kernels}, ${engine.runtime.threads} threads; loaded in ${(info.loadMs / 1000).toFixed(1)} s${where}\n`);
    const messages = o.system ? [{ role: 'system', content: o.system }] : [];

    const reply = async (completion) => {
      for await (const piece of completion) process.stdout.write(piece);
      const r = await completion.result;
      process.stdout.write('\n');
      process.stderr.write(`${stats(r)}\n`);
      return r;
    };

    if (o.command === 'run') {
      const prompt = promptWords.join(' ');
      current = new AbortController();
      const r = await reply(o.raw ? engine.complete(prompt, { ...options, signal: current.signal })
        : engine.chat([...messages, { role: 'user', content: prompt }], { ...options, signal: current.signal }));
      return r.stopReason === 'abort' ? 130 : 0;
    }

    const tty = process.stdin.isTTY;
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: !!tty });
    rl.on('SIGINT', interrupt);
    const lines = rl[Symbol.asyncIterator]();
    let closed = false;
    quit = () => { closed = true; rl.close(); };
    if (tty) process.stderr.write('Type a message; Ctrl-C stops a reply, Ctrl-C at the prompt (or Ctrl-D) quits.\n');
    while (!closed) {
      if (tty) rl.setPrompt('> '), rl.prompt();
      const { value: line, done } = await lines.next();
      if (done) break;
      if (!line.trim()) continue;
      messages.push({ role: 'user', content: line });
      current = new AbortController();
      const r = await reply(engine.chat(messages, { ...options, signal: current.signal }));
      current = null;
      messages.push({ role: 'assistant', content: r.text });
    }
    return 0;
  } catch (e) {
    if (e.name === 'AbortError') { process.stderr.write('stopped\n'); return 130; }
    throw e;
  } finally {
    await engine.dispose();
  }
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`rill-llm: ${e.message}\n${e instanceof UsageError ? 'run rill-llm --help for the options\n' : ''}`);
  process.exit(e instanceof UsageError || e instanceof TypeError || e instanceof RangeError ? 2 : 1);
});
