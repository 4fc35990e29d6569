// Where models come from, through the npm package: the model cache in Node (a directory) and in
// headless Chromium (OPFS and the Cache API), and split models, against a local server that
// counts requests. Cache: a second load (in Chromium, after the page is reloaded) makes no
// request and gives the same tokens; a load works offline; an interrupted, aborted or wrongly
// hashed download, or a tab closed mid-download, leaves no entry and the next load downloads
// again; a damaged entry is replaced; 'reload' and cache: false; a full quota rejects naming the
// quota and the model size; a model too big for wasm32 is refused before its bytes come; list,
// delete and clear. Split models (llama.cpp's gguf-split layout, made by `rill split`): any
// part's path or URL loads every part (cached one by one), a list of Blobs or bytes loads them,
// and a missing, misplaced or lone part is refused by name.
//
//   node tests/js/load_test.mjs [--rill build/native/rill] [--build relaxed] [--no-browser]
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './run.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const build = opt('--build', 'relaxed');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-cache-'));
// Every cache the test touches is under work/: the default folder too.
process.env.RILL_CACHE_DIR = path.join(work, 'default-cache');
const { createEngine, listCached, deleteCached, clearCache, cacheLocation } = await import('../../bindings/js/index.js');

const PROMPT = 'The history of the river begins';
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };
async function rejects(promise, re, what) {
  try { await promise; check(false, `${what}: no error`); return null; } catch (e) { check(re.test(`${e.name}: ${e.message}`), `${what}: ${e.name}: ${e.message}`); return e; }
}

const model = path.join(work, 'model.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'), '--out', model,
  '--seed', '5', '--tied', '--type', 'q8_0']);
const bytes = fs.readFileSync(model);
const sha = crypto.createHash('sha256').update(bytes).digest('hex');
const b64 = crypto.createHash('sha256').update(bytes).digest('base64');

// The same model split in 3 parts.
const splitDir = path.join(work, 'split');
fs.mkdirSync(splitDir);
run(rill, ['split', '--parts', '3', model, path.join(splitDir, 'model')]);
const partPath = (k) => path.join(splitDir, `model-0000${k}-of-00003.gguf`);
const partBytes = [1, 2, 3].map((k) => fs.readFileSync(partPath(k)));

// The server: counts requests per URL; /drop.gguf breaks off half way while `dropping`.
const counts = {};
const sent = {};
let dropping = true;
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
function handler(req, res) {
  const u = new URL(req.url, 'http://x');
  const name = u.pathname;
  if (name === '/') { res.writeHead(200, { ...isolation, 'Content-Type': 'text/html' }); res.end('<!doctype html><title>cache test</title>'); return; }
  if (name === '/count') { res.writeHead(200, { ...isolation, 'Content-Type': 'application/json' }); res.end(JSON.stringify(counts)); return; }
  if (name.startsWith('/bindings/js/')) {
    const file = path.join(root, name);
    if (!fs.existsSync(file)) { res.writeHead(404, isolation); res.end(); return; }
    res.writeHead(200, { ...isolation, 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
    return;
  }
  counts[req.url] = (counts[req.url] || 0) + 1;
  sent[req.url] = 0;
  const head = { ...isolation, 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' };
  const send = (b) => { sent[req.url] += b.length; return res.write(b); };
  if (name === '/model.gguf' || name === '/hashed.gguf' || name === '/badhash.gguf') {
    res.writeHead(200, { ...head, 'Content-Length': bytes.length, ETag: '"v1"',
      ...(name === '/hashed.gguf' ? { 'Repr-Digest': `sha-256=:${b64}:` } : {}),
      ...(name === '/badhash.gguf' ? { 'Repr-Digest': `sha-256=:${Buffer.alloc(32, 7).toString('base64')}:` } : {}) });
    res.end(bytes);
  } else if (name.startsWith('/split/') || name.startsWith('/split-missing/')) {  // split-missing lacks its last part
    const file = path.join(splitDir, path.basename(name));
    if (!fs.existsSync(file) || (name.startsWith('/split-missing/') && file.endsWith('00003-of-00003.gguf'))) { res.writeHead(404, head); res.end(); return; }
    res.writeHead(200, { ...head, 'Content-Length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  } else if (name === '/drop.gguf') {
    res.writeHead(200, { ...head, 'Content-Length': bytes.length });
    if (!dropping) { res.end(bytes); return; }
    send(bytes.subarray(0, bytes.length >> 1));
    setTimeout(() => res.destroy(), 50);
  } else if (name === '/slow.gguf') {  // 64 KB every 20 ms
    res.writeHead(200, { ...head, 'Content-Length': bytes.length });
    if (u.search.includes('fast')) { res.end(bytes); return; }
    let pos = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (pos >= bytes.length) { res.end(); return; }
      send(bytes.subarray(pos, pos + 65536));
      pos += 65536;
      setTimeout(tick, 20);
    };
    tick();
  } else if (name === '/nolength.gguf') {
    res.writeHead(200, head);  // chunked
    res.end(bytes);
  } else if (name === '/huge.gguf') {  // announces 5 GB, then trickles
    res.writeHead(200, { ...head, 'Content-Length': 5 * 2 ** 30 });
    const chunk = Buffer.alloc(1 << 20);
    const tick = () => { if (!res.destroyed && sent[req.url] < 256 << 20) { send(chunk); setTimeout(tick, 5); } };
    tick();
  } else {
    res.writeHead(404, head);
    res.end();
  }
}
const server = http.createServer(handler);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const cacheDir = path.join(work, 'cache');
const greedy = async (engine) => (await engine.complete(PROMPT, { maxTokens: 12, temperature: 0 }).result).tokens.join(',');
try {
  // ---- Node: a directory -------------------------------------------------------------------
  const engine = await createEngine({ threads: 2, build });
  const o = { contextSize: 256, cacheDir };
  const tag = '[node, directory]';
  const reference = (await engine.load(model, { contextSize: 256 }), await greedy(engine));
  let phases = [];
  const onProgress = (p) => phases.push(p.phase);
  let info = await engine.load(`${base}/model.gguf`, { ...o, onProgress });
  check(info.source.cache === 'stored' && info.source.store === 'directory' && counts['/model.gguf'] === 1 && phases.every((p) => p === 'download'),
    `${tag} a first load downloads and stores (${JSON.stringify(info.source)}, phases ${[...new Set(phases)]})`);
  check(fs.readdirSync(cacheDir).sort().join(' ').match(/^[0-9a-f]{32}\.gguf [0-9a-f]{32}\.json$/), `${tag} the folder holds the file and its record: ${fs.readdirSync(cacheDir)}`);
  phases = [];
  info = await engine.load(`${base}/model.gguf`, { ...o, onProgress });
  check(info.source.cache === 'hit' && counts['/model.gguf'] === 1 && phases.length > 0 && phases.every((p) => p === 'cache'),
    `${tag} a second load reads the cache with no request (phases ${[...new Set(phases)]}, ${info.loadMs.toFixed(0)} ms)`);
  check(await greedy(engine) === reference, `${tag} the cached model gives the same greedy tokens as the file`);
  let list = await listCached({ cacheDir });
  check(list.length === 1 && list[0].url === `${base}/model.gguf` && list[0].size === bytes.length && list[0].etag === '"v1"',
    `${tag} listCached: ${JSON.stringify(list.map(({ url, size, etag }) => ({ url, size, etag })))}`);

  // offline: a server that is gone
  const other = http.createServer(handler);
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const otherUrl = `http://127.0.0.1:${other.address().port}/model.gguf?offline`;
  await engine.load(otherUrl, o);
  await new Promise((r) => other.close(r));
  info = await engine.load(otherUrl, o);
  check(info.source.cache === 'hit', `${tag} a cached URL loads with its server gone (offline)`);

  info = await engine.load(`${base}/model.gguf`, { ...o, cache: 'reload' });
  check(info.source.cache === 'stored' && counts['/model.gguf'] === 2, `${tag} cache: 'reload' downloads again and replaces the entry`);
  info = await engine.load(`${base}/model.gguf`, { ...o, cache: false });
  check(info.source.cache === 'off' && counts['/model.gguf'] === 3 && (await listCached({ cacheDir })).length === 2, `${tag} cache: false neither reads nor writes the cache`);

  // a download that breaks off, then works
  await rejects(engine.load(`${base}/drop.gguf`, o), /received|terminated|closed|socket|reset|fetch failed/i, `${tag} a download that breaks off rejects`);
  list = await listCached({ cacheDir });
  check(!list.some((e) => e.url.endsWith('/drop.gguf')) && !fs.readdirSync(cacheDir).some((f) => f.endsWith('.part')),
    `${tag} ... and leaves no entry and no partial file (${fs.readdirSync(cacheDir).length} files)`);
  dropping = false;
  info = await engine.load(`${base}/drop.gguf`, o);
  check(info.source.cache === 'stored' && counts['/drop.gguf'] === 2 && await greedy(engine) === reference, `${tag} the next load downloads again, whole`);

  // an aborted download
  const ac = new AbortController();
  await rejects(engine.load(`${base}/slow.gguf`, { ...o, signal: ac.signal, onProgress: (p) => { if (p.loaded > 100000) ac.abort(); } }),
    /AbortError/, `${tag} an AbortSignal stops a download`);
  check(!(await listCached({ cacheDir })).some((e) => e.url.endsWith('/slow.gguf')) && sent['/slow.gguf'] < bytes.length,
    `${tag} ... after ${sent['/slow.gguf']} of ${bytes.length} bytes, and stores nothing`);
  info = await engine.load(`${base}/model.gguf`, o);
  check(info.source.cache === 'hit' && await greedy(engine) === reference, `${tag} the engine loads and runs after the aborted load`);

  // content hashes
  info = await engine.load(`${base}/hashed.gguf`, o);
  list = await listCached({ cacheDir });
  check(info.source.cache === 'stored' && list.find((e) => e.url.endsWith('/hashed.gguf')).sha256 === sha, `${tag} a SHA-256 the server states (Repr-Digest) is checked and recorded`);
  await rejects(engine.load(`${base}/badhash.gguf`, o), /SHA-256/, `${tag} a download whose SHA-256 differs from the stated one`);
  check(!(await listCached({ cacheDir })).some((e) => e.url.endsWith('/badhash.gguf')), `${tag} ... is not stored`);
  await rejects(engine.load(`${base}/model.gguf`, { ...o, cache: 'reload', sha256: '0'.repeat(64) }), /SHA-256/, `${tag} sha256 option that does not match`);
  check(!(await listCached({ cacheDir })).some((e) => e.url === `${base}/model.gguf`), `${tag} ... and the replaced entry is gone, not half-written`);
  info = await engine.load(`${base}/model.gguf`, { ...o, sha256: sha });
  check(info.source.cache === 'stored', `${tag} sha256 option that matches`);

  // a damaged entry: the next load notices, removes it and downloads again
  const key = fs.readdirSync(cacheDir).find((f) => f.endsWith('.json') && JSON.parse(fs.readFileSync(path.join(cacheDir, f))).url === `${base}/model.gguf`);
  fs.truncateSync(path.join(cacheDir, key.replace('.json', '.gguf')), 1000);
  const before = counts['/model.gguf'];
  info = await engine.load(`${base}/model.gguf`, o);
  check(info.source.cache === 'stored' && counts['/model.gguf'] === before + 1 && await greedy(engine) === reference, `${tag} a truncated entry is downloaded again`);

  info = await engine.load(`${base}/nolength.gguf`, o);
  check(/not stored/.test(info.source.cache) && await greedy(engine) === reference, `${tag} a response without a length loads, uncached: ${info.source.cache}`);
  const notAFolder = path.join(work, 'not-a-folder');
  fs.writeFileSync(notAFolder, 'x');
  info = await engine.load(`${base}/model.gguf`, { ...o, cacheDir: path.join(notAFolder, 'cache') });
  check(/^not stored \(.*ENOTDIR/.test(info.source.cache) && await greedy(engine) === reference,
    `${tag} a cache that cannot be written leaves the model loading, uncached: ${info.source.cache}`);
  await rejects(engine.load(`${base}/huge.gguf`, o), /wasm32/, `${tag} a 5 GB model`);
  await new Promise((r) => setTimeout(r, 100));
  check(sent['/huge.gguf'] < 64 << 20, `${tag} ... is refused before its bytes come (${(sent['/huge.gguf'] / 2 ** 20).toFixed(0)} MB sent)`);
  await rejects(engine.load(`${base}/model.gguf`, { ...o, cache: 'yes' }), /TypeError: cache must be/, `${tag} a bad cache option`);
  await rejects(engine.load(`${base}/model.gguf`, { ...o, cacheStore: 'opfs' }), /for browsers/, `${tag} a browser store in Node`);
  await rejects(engine.load(`${base}/model.gguf`, { ...o, sha256: 'abc' }), /sha256 must be/, `${tag} a malformed sha256`);

  // split models
  const stag = '[node, split]';
  info = await engine.load(partPath(1), { contextSize: 256 });
  check(info.source.kind === 'parts' && info.source.parts.length === 3 && info.fileBytes === partBytes.reduce((n, b) => n + b.length, 0)
    && await greedy(engine) === reference, `${stag} the first part's path loads all 3 parts, same tokens as the whole file`);
  await engine.load(partPath(3), { contextSize: 256 });
  check(await greedy(engine) === reference, `${stag} so does the last part's path`);
  info = await engine.load(`${base}/split/model-00001-of-00003.gguf`, o);
  check(info.source.cache === 'stored' && (await listCached({ cacheDir })).filter((e) => e.url.includes('/split/')).length === 3
    && await greedy(engine) === reference, `${stag} the first part's URL downloads all 3, each cached`);
  const splitRequests = Object.keys(counts).filter((u) => u.startsWith('/split/')).map((u) => counts[u]).join();
  info = await engine.load(`${base}/split/model-00001-of-00003.gguf`, o);
  check(info.source.cache === 'hit' && Object.keys(counts).filter((u) => u.startsWith('/split/')).map((u) => counts[u]).join() === splitRequests,
    `${stag} ... and loads them again from the cache with no request`);
  await engine.load(partBytes.map((b) => new Blob([b])), { contextSize: 256 });
  check(await greedy(engine) === reference, `${stag} a list of Blobs (Files) loads`);
  await rejects(engine.load([partBytes[0], partBytes[2], partBytes[1]], { contextSize: 256, copy: true }), /part 2 of 3 says it is part 3/, `${stag} parts out of order`);
  await rejects(engine.load(partBytes[1], { contextSize: 256, copy: true }), /part 2 of a model split in 3 parts/, `${stag} one part alone`);
  await rejects(engine.load([partBytes[0], partBytes[1]], { contextSize: 256, copy: true }), /3 part\(s\), 2 were given/, `${stag} a part missing from a list`);
  await rejects(engine.load(`${base}/split-missing/model-00001-of-00003.gguf`, o), /HTTP 404/, `${stag} a part missing on the server`);
  check(!(await listCached({ cacheDir })).some((e) => e.url.includes('/split-missing/')), `${stag} ... fails before any part is downloaded or cached`);
  await engine.load(partPath(1), { contextSize: 256 });
  check(await greedy(engine) === reference, `${stag} the engine loads again after the refusals`);

  // the default folder, delete, clear
  await engine.load(`${base}/model.gguf`, { contextSize: 256 });
  const where = await cacheLocation();
  check(where.where === process.env.RILL_CACHE_DIR && (await listCached()).length === 1, `${tag} the default folder is $RILL_CACHE_DIR: ${where.where}`);
  const n = (await listCached({ cacheDir })).length;
  check(await deleteCached(`${base}/model.gguf`, { cacheDir }) === true && await deleteCached(`${base}/model.gguf`, { cacheDir }) === false
    && (await listCached({ cacheDir })).length === n - 1, `${tag} deleteCached removes one entry (true, then false)`);
  check(await clearCache({ cacheDir }) === n - 1 && (await listCached({ cacheDir })).length === 0 && fs.readdirSync(cacheDir).length === 0,
    `${tag} clearCache removes the rest (${n - 1})`);
  await engine.dispose();

  // ---- Chromium: OPFS and the Cache API ----------------------------------------------------
  dropping = true;
  if (!args.includes('--no-browser')) {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const tab = await browser.newPage();
      tab.on('pageerror', (e) => console.log('page error:', e.message));
      const cdp = await tab.context().newCDPSession(tab);
      await tab.goto(base + '/');
      const inPage = (fn, arg) => tab.evaluate(async ({ src, arg }) => {
        const rill = await import('/bindings/js/index.js');
        const count = async (u) => (await (await fetch('/count')).json())[u] || 0;
        // Loads u from the cache store and runs a greedy completion: where the bytes came from, the
        // progress phases, the tokens, the server's request count for u, the load's milliseconds.
        const loadAndRun = async (rill, count, e, u, store, PROMPT) => {
          const phases = new Set();
          const t0 = performance.now();
          const info = await e.load(u, { contextSize: 256, cacheStore: store, onProgress: (p) => phases.add(p.phase) });
          const ms = performance.now() - t0;
          const tokens = (await e.complete(PROMPT, { maxTokens: 12, temperature: 0 }).result).tokens.join(',');
          return { source: info.source, phases: [...phases], tokens, requests: await count(u), ms };
        };
        // eslint-disable-next-line no-new-func
        return new Function('rill', 'count', 'loadAndRun', 'arg', `return (${src})(rill, count, arg);`)(rill, count, loadAndRun, arg);
      }, { src: fn.toString(), arg });
      for (const store of ['opfs', 'cache-api']) {
        const tag = `[chromium, ${store}]`;
        const u = `/model.gguf?${store}`;
        const first = await inPage(async (rill, count, { store, u, PROMPT }) => {
          const e = await rill.createEngine({ threads: 2 });
          const out = await loadAndRun(rill, count, e, u, store, PROMPT);
          await e.dispose();
          return out;
        }, { store, u, PROMPT });
        check(first.source.cache === 'stored' && first.source.store === store && first.requests === 1 && first.tokens === reference,
          `${tag} a first load downloads and stores (${first.phases}), same tokens as the file`);
        await tab.reload();
        const second = await inPage(async (rill, count, { store, u, PROMPT }) => {
          const e = await rill.createEngine({ threads: 2 });
          const out = await loadAndRun(rill, count, e, u, store, PROMPT);
          try { await e.load('/drop.gguf?' + store, { contextSize: 256, cacheStore: store }); out.drop = 'loaded'; } catch (x) { out.drop = x.message; }
          out.list = (await rill.listCached({ cacheStore: store })).map((x) => x.url);
          out.deleted = [await rill.deleteCached(u, { cacheStore: store }), await rill.deleteCached(u, { cacheStore: store })];
          out.after = (await rill.listCached({ cacheStore: store })).length;
          await e.dispose();
          return out;
        }, { store, u, PROMPT });
        check(second.source.cache === 'hit' && second.requests === 1 && second.phases.join() === 'cache' && second.tokens === reference,
          `${tag} after a page reload the model loads from the cache with no request (${second.ms.toFixed(0)} ms vs ${first.ms.toFixed(0)} downloading)`);
        check(!/loaded/.test(second.drop) && second.list.length === 1 && second.list[0] === base + u,
          `${tag} a download that breaks off rejects (${second.drop}) and leaves no entry: ${second.list}`);
        check(second.deleted.join() === 'true,false' && second.after === 0, `${tag} deleteCached removes the entry`);
      }
      // a split model from its first part's URL, and from Files
      const sp = await inPage(async (rill, count, { PROMPT }) => {
        const e = await rill.createEngine({ threads: 2 });
        const run = async () => (await e.complete(PROMPT, { maxTokens: 12, temperature: 0 }).result).tokens.join(',');
        const info = await e.load('/split/model-00001-of-00003.gguf', { contextSize: 256 });
        const out = { parts: info.source.parts.length, cache: info.source.cache, url: await run() };
        const files = [];
        for (let k = 1; k <= 3; k++) files.push(new File([await (await fetch(`/split/model-0000${k}-of-00003.gguf`)).blob()], `model-0000${k}-of-00003.gguf`));
        await e.load(files, { contextSize: 256 });
        out.files = await run();
        await rill.clearCache();
        await e.dispose();
        return out;
      }, { PROMPT });
      check(sp.parts === 3 && sp.cache === 'stored' && sp.url === reference && sp.files === reference,
        `[chromium, split] the first part's URL (3 parts, ${sp.cache}) and a list of 3 Files load, same tokens as the whole file`);
      // a tab closed in the middle of a download: no entry; the next load downloads again
      for (const store of ['opfs', 'cache-api']) {
        const u = `/slow.gguf?close-${store}`;
        const doomed = await browser.newPage();
        await doomed.goto(base + '/');
        doomed.evaluate(async ({ u, store }) => {
          const rill = await import('/bindings/js/index.js');
          const e = await rill.createEngine({ threads: 1 });
          await e.load(u, { contextSize: 256, cacheStore: store });
        }, { u, store }).catch(() => {});
        while (!(sent[u] > 1 << 20)) await new Promise((r) => setTimeout(r, 20));
        await doomed.close();
        const r = await inPage(async (rill, count, { u, store }) => {
          const listed = (await rill.listCached({ cacheStore: store })).map((x) => x.url);
          const e = await rill.createEngine({ threads: 2 });
          const info = await e.load(u + '-fast', { contextSize: 256, cacheStore: store });
          await e.dispose();
          return { listed, cache: info.source.cache };
        }, { u, store });
        check(r.listed.length === 0 && r.cache === 'stored', `[chromium, ${store}] a tab closed mid-download (${(sent[u] / 2 ** 20).toFixed(1)} MB in) leaves no entry (${r.listed.length}), and the store takes the next download`);
        await inPage(async (rill, count, { store }) => rill.clearCache({ cacheStore: store }), { store });
      }
      // a full quota: the origin's quota set to 1 MB
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: base, quotaSize: 2 ** 20 });
      // (Chromium enforces the override on writes; navigator.storage.estimate() may still report the default.)
      for (const store of ['opfs', 'cache-api']) {
        const r = await inPage(async (rill, count, { store }) => {
          const e = await rill.createEngine({ threads: 2 });
          const out = {};
          try { await e.load('/model.gguf?quota-' + store, { contextSize: 256, cacheStore: store }); out.error = 'loaded'; } catch (x) { out.error = `${x.name}: ${x.message}`; }
          out.list = (await rill.listCached({ cacheStore: store })).length;
          await e.dispose();
          return out;
        }, { store });
        const size = `${(bytes.length / 2 ** 20).toFixed(0)} MB`;
        check(/QuotaExceededError/.test(r.error) && r.error.includes(`(${size})`) && /storage quota/.test(r.error) && r.list === 0,
          `[chromium, ${store}] a full quota rejects naming the quota and the model size, stores nothing: ${r.error}`);
      }
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: base });
      const cleared = await inPage(async (rill) => [await rill.clearCache({ cacheStore: 'opfs' }), await rill.clearCache({ cacheStore: 'cache-api' })]);
      check(Array.isArray(cleared), `[chromium] clearCache on both stores: ${cleared}`);
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`load: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
