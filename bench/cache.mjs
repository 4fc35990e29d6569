// Model load times through the npm package's model cache: the first load (download from a
// local server into the engine and the cache at once), the second (from the cache, in Chromium
// after a page reload), and the same bytes loaded from memory (an ArrayBuffer already in the
// page, or in Node, transferred to the worker) and, in Node, from a file path. Every load includes the engine's parse
// and weight repacking, which all paths share. Prints a table, writes
// bench/results/<date>-<cpu kind>-cache.json.
//
//   node bench/cache.mjs [--model qwen35-0.8b] [--repeats 3] [--threads 2] [--engines node,opfs,cache-api]
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { machine, resultPath } from './host.mjs';
import { ensureModels, modelPath, root } from './models.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const model = opt('--model', 'qwen35-0.8b');
const repeats = Number(opt('--repeats', 3));
const threads = Number(opt('--threads', 2));
const engines = opt('--engines', 'node,opfs,cache-api').split(',');
ensureModels([model]);
const file = modelPath(model);
const size = fs.statSync(file).size;

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
  if (url.pathname === '/') { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }); res.end('<!doctype html><title>cache bench</title>'); return; }
  const f = url.pathname === '/model.gguf' ? file : path.join(root, url.pathname);
  if (f !== file && !f.startsWith(path.join(root, 'bindings/js') + path.sep)) { res.writeHead(404, headers); res.end(); return; }
  res.writeHead(200, { ...headers, 'Content-Type': types[path.extname(f)] || 'application/octet-stream', 'Content-Length': fs.statSync(f).size });
  fs.createReadStream(f).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const samples = {};  // `${engine}|${what}` -> [ms]
const add = (engine, what, ms) => (samples[`${engine}|${what}`] ??= []).push(ms);

async function node() {
  const { createEngine, clearCache } = await import('../bindings/js/index.js');
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-cache-bench-'));
  const e = await createEngine({ threads });
  const o = { contextSize: 1024, cacheDir };
  const time = async (src, opts) => { const t0 = performance.now(); const info = await e.load(src, opts); return [performance.now() - t0, info]; };
  try {
    const bytes = fs.readFileSync(file);
    for (let r = 0; r < repeats; r++) {
      add('node', 'memory', (await time(new Uint8Array(bytes), { contextSize: 1024 }))[0]);  // a fresh copy, transferred
      add('node', 'path', (await time(file, { contextSize: 1024 }))[0]);
      const [first, a] = await time(`${base}/model.gguf`, { ...o, cache: 'reload' });
      if (a.source.cache !== 'stored') throw new Error(`first load: ${a.source.cache}`);
      add('node', 'first', first);
      const [second, b] = await time(`${base}/model.gguf`, o);
      if (b.source.cache !== 'hit') throw new Error(`second load: ${b.source.cache}`);
      add('node', 'second', second);
    }
  } finally {
    await e.dispose();
    await clearCache({ cacheDir });
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

// A persistent profile on disk, as a user's browser has (a fresh context would be off the
// record: its storage lives in memory).
let browser = null;
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-chromium-profile-'));
async function chromiumStore(store) {
  browser ??= await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const tab = await browser.newPage();
  await tab.goto(base + '/');
  // One load in a fresh engine; what: 'memory' (bytes fetched beforehand), 'first' (download into the cache), 'second'.
  const load = (what) => tab.evaluate(async ({ what, store, threads }) => {
    const { createEngine } = await import('/bindings/js/index.js');
    const e = await createEngine({ threads });
    try {
      const bytes = what === 'memory' ? new Uint8Array(await (await fetch('/model.gguf')).arrayBuffer()) : null;
      const t0 = performance.now();
      const info = await e.load(bytes ?? '/model.gguf', { contextSize: 1024, cacheStore: store, cache: what === 'first' ? 'reload' : true });
      return { ms: performance.now() - t0, cache: info.source.cache };
    } finally { await e.dispose(); }
  }, { what, store, threads });
  try {
    for (let r = 0; r < repeats; r++) {
      add(store, 'memory', (await load('memory')).ms);
      const a = await load('first');
      if (a.cache !== 'stored') throw new Error(`first load: ${a.cache}`);
      add(store, 'first', a.ms);
      await tab.reload();
      const b = await load('second');
      if (b.cache !== 'hit') throw new Error(`second load: ${b.cache}`);
      add(store, 'second', b.ms);
    }
    await tab.evaluate(async (store) => (await import('/bindings/js/index.js')).clearCache({ cacheStore: store }), store);
  } finally { await tab.close(); }
}

try {
  for (const engine of engines) {
    if (engine === 'node') await node();
    else await chromiumStore(engine);
    console.error(`bench: ${engine} done`);
  }
} finally {
  if (browser) await browser.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

const rows = Object.entries(samples).map(([k, v]) => { const [engine, what] = k.split('|'); return { engine, what, ms: stat(v) }; });
const result = { date: new Date().toISOString(), machine: machine(), model, model_bytes: size, threads, repeats, loads: rows };
const out = opt('--out', resultPath(result.date, 'cache'));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');

const get = (engine, what) => rows.find((r) => r.engine === engine && r.what === what)?.ms;
const fmt = (s) => (s ? `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})` : '-');
console.log(`\nModel loads, ${model} (${(size / 2 ** 20).toFixed(0)} MB), ${result.machine.cpu} [${result.machine.kind}], ${threads} threads, ${repeats} repeats: ms, median (min-max)\n`);
console.log('| engine / store | from memory | from a path | first load (download + store) | second load (cache) | second / memory |');
console.log('|---|---|---|---|---|---|');
for (const engine of engines) {
  const m = get(engine, 'memory'), s = get(engine, 'second');
  console.log(`| ${engine === 'node' ? 'Node, directory' : `Chromium, ${engine}`} | ${fmt(m)} | ${fmt(get(engine, 'path'))} | ${fmt(get(engine, 'first'))} | ${fmt(s)} | ${m && s ? (s.median / m.median).toFixed(2) + 'x' : '-'} |`);
}
console.log(`Results: ${path.relative(root, out)}`);
