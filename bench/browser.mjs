// Headless Chromium for the benchmarks: a page served with cross-origin isolation (threads need
// SharedArrayBuffer) from the repository root, so that it can import the npm package and fetch
// bench/models/*.gguf.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { root } from './models.mjs';

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
  if (url.pathname === '/') { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }); res.end('<!doctype html><title>bench</title>'); return; }
  const file = path.join(root, decodeURIComponent(url.pathname));
  if (!file.startsWith(root + path.sep)) { res.writeHead(403); res.end(); return; }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) { res.writeHead(404, headers); res.end(); return; }
    res.writeHead(200, { ...headers, 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Content-Length': st.size });
    fs.createReadStream(file).pipe(res);
  });
});
let browser = null, base = '';

// A fresh page of the benchmark's origin (the browser starts on first use).
export async function page() {
  if (!browser) {
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${server.address().port}`;
    browser = await chromium.launch({
      executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--enable-experimental-web-platform-features'],
    });
  }
  const p = await browser.newPage();
  await p.goto(base + '/');
  return p;
}

export async function closeBrowser() {
  if (browser) { await browser.close(); server.close(); browser = null; }
}

export const chromiumVersion = () => browser?.version() ?? null;

// Runs fn(engine, o) in a fresh page on an engine that has loaded the GGUF at url (fn is passed
// as source text, so it must be self-contained); resolves to { build, result }.
export async function withPageEngine({ url, threads, contextSize, fn, o }) {
  const p = await page();
  try {
    return await p.evaluate(async ({ url, threads, contextSize, src, o }) => {
      const fn = eval(src);
      const { createEngine } = await import('/bindings/js/index.js');
      const e = await createEngine({ threads });
      await e.load(new Uint8Array(await (await fetch(url)).arrayBuffer()), { contextSize });
      try { return { build: e.runtime.kernels, result: await fn(e, o) }; } finally { await e.dispose(); }
    }, { url, threads, contextSize, src: `(${fn.toString()})`, o });
  } finally { await p.close(); }
}
