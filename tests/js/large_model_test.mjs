// A model over 2 GB (Llama-3.2-1B's shape in F16, 2.5 GB) through the npm package: it loads in
// Node (from a path and from a URL) and in headless Chromium (from a URL), where no single
// ArrayBuffer, Blob read or allocation may exceed 2 GB, and gives the native CLI's greedy token.
// Heavy (writes 2.5 GB, about 4 minutes): run by RILL_HEAVY=1 scripts/test.sh.
//
//   node tests/js/large_model_test.mjs [--rill build/native/rill] [--model FILE (reuse one)]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createEngine } from '../../bindings/js/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-large-'));
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };
const PROMPT = 'Hello world';
const N = 2;

let model = opt('--model', null);
if (!model) {
  model = path.join(work, 'large.gguf');
  const r = spawnSync(rill, ['synth', '--arch', 'llama', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-llama-bpe.gguf'), '--tied',
    '--set', 'embedding_length=2048', '--set', 'block_count=16', '--set', 'feed_forward_length=8192', '--set', 'attention.head_count=32',
    '--set', 'attention.head_count_kv=8', '--set', 'context_length=4096', '--type', 'f16', '--seed', '1', '--out', model]);
  if (r.status !== 0) throw new Error(`rill synth failed: ${r.stderr}`);
}
const size = fs.statSync(model).size;
check(size > 2 ** 31, `the model is over 2 GB: ${(size / 2 ** 30).toFixed(2)} GB`);
const native = JSON.parse(spawnSync(rill, ['generate', '-m', model, '-p', PROMPT, '-n', String(N), '--temp', '0', '--json', '-c', '256'], { maxBuffer: 1 << 24 }).stdout);

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  if (u.pathname === '/') { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }); res.end('<!doctype html><title>large</title>'); return; }
  const file = u.pathname === '/large.gguf' ? model : path.join(root, u.pathname);
  if (file !== model && !file.startsWith(path.join(root, 'bindings/js') + path.sep)) { res.writeHead(404, headers); res.end(); return; }
  res.writeHead(200, { ...headers, 'Content-Type': file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream', 'Content-Length': fs.statSync(file).size });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;
const same = (tokens) => JSON.stringify(tokens) === JSON.stringify(native.tokens);
try {
  const engine = await createEngine({ threads: 2 });
  for (const [what, src] of [['a path', model], ['a URL', `${base}/large.gguf`]]) {
    const t0 = performance.now();
    const info = await engine.load(src, { contextSize: 256, cache: false });
    const r = await engine.complete(PROMPT, { maxTokens: N, temperature: 0 }).result;
    check(info.fileBytes === size && same(r.tokens), `[node] loads from ${what} in ${((performance.now() - t0) / 1000).toFixed(1)} s `
      + `(wasm memory ${(info.memoryBytes / 2 ** 30).toFixed(2)} GB) and gives the native CLI's tokens ${r.tokens} (${native.tokens})`);
  }
  await engine.dispose();

  const browser = await chromium.launch({ executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => console.log('page error:', e.message));
    await tab.goto(base + '/');
    const r = await tab.evaluate(async ({ PROMPT, N }) => {
      const { createEngine } = await import('/bindings/js/index.js');
      const e = await createEngine({ threads: 2 });
      const t0 = performance.now();
      const info = await e.load('/large.gguf', { contextSize: 256, cache: false });
      const ms = performance.now() - t0;
      const tokens = (await e.complete(PROMPT, { maxTokens: N, temperature: 0 }).result).tokens;
      await e.dispose();
      return { fileBytes: info.fileBytes, memoryBytes: info.memoryBytes, ms, tokens };
    }, { PROMPT, N });
    check(r.fileBytes === size && same(r.tokens), `[chromium] loads from a URL in ${(r.ms / 1000).toFixed(1)} s (wasm memory ${(r.memoryBytes / 2 ** 30).toFixed(2)} GB) and gives the same tokens ${r.tokens}`);
  } finally {
    await browser.close();
  }
} finally {
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`large model: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
