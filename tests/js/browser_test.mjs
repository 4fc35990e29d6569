// The npm package in headless Chromium: a page served cross-origin isolated (COOP/COEP) from
// 127.0.0.1 loads rill-llm, which runs the engine in a Web Worker with wasm threads. It streams
// a greedy completion from a synthetic model and must produce the native CLI's tokens; an
// AbortSignal must stop a second completion between tokens; misuse must reject with a message.
//
//   node tests/js/browser_test.mjs [--rill build/native/rill] [--build relaxed|simd|auto]
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { run } from './run.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const builds = opt('--build', 'auto,simd').split(',');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-browser-'));
const N = 24;
const PROMPT = 'Once upon a time, in a village by the river,';


// The Qwen 3.5 real layout, small.
const model = path.join(work, 'model.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'), '--out', model,
  '--seed', '11', '--tied', '--type', 'q4_0', '--tensor-type', 'token_embd=q6_K', '--tensor-type', 'ssm_out=q5_K']);
const cli = JSON.parse(run(rill, ['generate', '-m', model, '-p', PROMPT, '-n', String(N), '--temp', '0', '--json', '-c', '512']));
const expected = cli.tokens.filter((t, i) => !(i === cli.tokens.length - 1 && cli.tokens.length < N));  // minus a final end token
// With Qwen 3.5's MTP block: speculative decoding in the browser gives plain greedy's tokens.
const mtpModel = path.join(work, 'mtp.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'), '--out', mtpModel,
  '--seed', '12', '--tied', '--type', 'q8_0', '--mtp']);
const cliMtp = JSON.parse(run(rill, ['generate', '-m', mtpModel, '-p', PROMPT, '-n', String(N), '--temp', '0', '--json', '-c', '512', '--no-spec']));
const expectedMtp = cliMtp.tokens.filter((t, i) => !(i === cliMtp.tokens.length - 1 && cliMtp.tokens.length < N));

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.gguf': 'application/octet-stream' };
const page = `<!doctype html><meta charset="utf-8"><title>rill browser test</title><body>rill</body>`;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
  if (url.pathname === '/' ) { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }); res.end(page); return; }
  const file = url.pathname === '/model.gguf' ? model : url.pathname === '/mtp.gguf' ? mtpModel : path.join(root, decodeURIComponent(url.pathname));
  if (!file.startsWith(root) && file !== model && file !== mtpModel) { res.writeHead(403); res.end(); return; }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) { res.writeHead(404, headers); res.end('not found'); return; }
    res.writeHead(200, { ...headers, 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Content-Length': st.size });
    fs.createReadStream(file).pipe(res);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };
try {
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.log('page error:', e.message));
  await tab.goto(base + '/');
  check(await tab.evaluate(() => crossOriginIsolated), 'page is cross-origin isolated');
  for (const build of builds) {
    const r = await tab.evaluate(async ({ build, N, PROMPT }) => {
      const { createEngine } = await import('/bindings/js/index.js');
      const out = {};
      const engine = await createEngine({ threads: 2, build });
      out.runtime = engine.runtime;
      try { await engine.complete('x').result; } catch (e) { out.beforeLoad = e.message; }
      // The probe runs on the engine's threads (a second pool would wait forever for a worker).
      const probe = (threads) => Promise.race([engine.probeBandwidth({ mb: 16, threads, repeats: 1 }),
        new Promise((r) => setTimeout(() => r('hung'), 30000))]);
      out.probe = [await probe(1), await probe(2)];
      const progress = [];
      out.info = await engine.load('/model.gguf', { contextSize: 512, onProgress: (p) => progress.push(p) });
      out.progressLast = progress.at(-1);
      out.progressCount = progress.length;
      const c = engine.complete(PROMPT, { maxTokens: N, temperature: 0 });
      out.pieces = [];
      for await (const p of c) out.pieces.push(p);
      out.result = await c.result;
      // Abort after the third piece: generation stops between tokens.
      const ac = new AbortController();
      const c2 = engine.complete(PROMPT, { maxTokens: 200, temperature: 0, signal: ac.signal });
      let n = 0;
      for await (const p of c2) { if (++n === 3) ac.abort(); }
      out.aborted = await c2.result;
      out.probe.push(await probe(2));
      out.mtpInfo = await engine.load('/mtp.gguf', { contextSize: 512 });
      out.spec = [];
      for (const o of [{ draftTokens: 1 }, { draftTokens: 3 }, {}])
        out.spec.push((await engine.complete(PROMPT, { maxTokens: N, temperature: 0, ...o }).result));
      try { await engine.complete('word '.repeat(600), { maxTokens: 4 }).result; } catch (e) { out.tooLong = e.message; }
      try { await engine.load(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])); } catch (e) { out.badFile = e.message; }
      await engine.dispose();
      try { await engine.tokenize('x'); } catch (e) { out.afterDispose = e.message; }
      return out;
    }, { build, N, PROMPT });
    const tag = `[chromium, ${build}: ${r.runtime.kernels}, madd ${r.runtime.maddFused ? 'fused' : 'unfused'}]`;
    check(r.runtime.build === (build === 'auto' ? 'relaxed' : build), `${tag} runs the ${build === 'auto' ? 'relaxed-SIMD build, chosen by validation' : 'requested build'}`);
    check(/no model is loaded/.test(r.beforeLoad || ''), `${tag} completion before load rejects: ${r.beforeLoad}`);
    check(r.probe.every((g) => typeof g === 'number' && g > 0),
      `${tag} bandwidth probe with 1 and 2 threads, before and after load: ${r.probe.map((g) => typeof g === 'number' ? g.toFixed(1) + ' GB/s' : g).join(', ')}`);
    check(r.progressLast && r.progressLast.loaded === r.progressLast.total && r.progressLast.total === fs.statSync(model).size,
      `${tag} load progress reaches ${r.progressLast && r.progressLast.loaded} of ${fs.statSync(model).size} bytes in ${r.progressCount} reports`);
    const same = JSON.stringify(r.result.tokens) === JSON.stringify(expected);
    check(same, `${tag} greedy tokens equal the native CLI's (${r.result.tokens.length} tokens)` +
      (same ? '' : `\n   browser ${r.result.tokens}\n   cli     ${expected}`));
    check(r.pieces.join('') === r.result.text && r.pieces.length > 1, `${tag} streamed ${r.pieces.length} pieces that join to the result text`);
    check(r.aborted.stopReason === 'abort' && r.aborted.generatedTokens >= 3 && r.aborted.generatedTokens < 10,
      `${tag} AbortSignal stops generation (${r.aborted.generatedTokens} tokens, reason ${r.aborted.stopReason})`);
    check(r.mtpInfo.mtp && r.spec.every((x) => JSON.stringify(x.tokens) === JSON.stringify(expectedMtp)) && r.spec[0].timings.draftTokens > 0,
      `${tag} speculative decoding with the MTP head (k = 1, 3, adaptive) gives plain greedy's tokens (${r.spec.map((x) => x.timings.draftTokens).join(', ')} drafts)`);
    check(/does not fit/.test(r.tooLong || ''), `${tag} prompt longer than the context rejects: ${r.tooLong}`);
    check(/GGUF|magic|too small|truncated/i.test(r.badFile || ''), `${tag} malformed file rejects: ${r.badFile}`);
    check(/disposed/.test(r.afterDispose || ''), `${tag} call after dispose rejects: ${r.afterDispose}`);
    console.log(`     ${tag} decode ${r.result.timings.generateTokensPerSecond.toFixed(1)} tok/s, prompt ${r.result.timings.promptTokensPerSecond.toFixed(1)} tok/s (tiny synthetic model)`);
  }
} finally {
  await browser.close();
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`browser: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
