// The chat page (web/index.html) served by web/serve.mjs, in headless Chromium at a phone's and a
// desktop's viewport: it loads a model from ?model=URL with a progress bar into the cache, shows
// the model's info, streams a reply with its tok/s, lists the cached model; after a reload it
// loads from the cache; Delete empties the list; nothing overflows the phone's width. Writes
// screenshots to build/screenshots/.
//
//   node tests/js/web_test.mjs [--rill build/native/rill]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-web-'));
const shots = path.join(root, 'build/screenshots');
fs.mkdirSync(shots, { recursive: true });
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };

const r = spawnSync(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'),
  '--out', path.join(work, 'tiny.gguf'), '--seed', '5', '--tied', '--type', 'q8_0', '--mtp']);
if (r.status !== 0) throw new Error(`rill synth failed: ${r.stderr}`);
const port = 20000 + Math.floor(Math.random() * 20000);
const server = spawn(process.execPath, [path.join(root, 'web/serve.mjs'), String(port), '--models', work], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((res) => server.stdout.once('data', res));
const page = `http://127.0.0.1:${port}/web/?model=/bench/models/tiny.gguf&maxTokens=24`;

const browser = await chromium.launch({ executablePath: process.env.RILL_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  for (const [kind, viewport] of [['phone', { width: 390, height: 844 }], ['desktop', { width: 1280, height: 900 }]]) {
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(page);
    await tab.waitForSelector('body[data-ready=true]', { timeout: 120000 });
    const first = await tab.evaluate(() => ({
      info: document.getElementById('info').textContent, progress: document.getElementById('progress').value,
      progressText: document.getElementById('progressText').textContent, cached: [...document.querySelectorAll('#cached li')].map((li) => li.textContent),
    }));
    check(/qwen35, 4 layers/.test(first.info) && /MTP layer/.test(first.info) && /now cached/.test(first.info), `[${kind}] the model's info is shown: ${first.info.slice(0, 90)}...`);
    check(first.progress === 1 && /Downloading: \d+ of \d+ MB/.test(first.progressText), `[${kind}] the progress bar reached the end: ${first.progressText}`);
    check(first.cached.length === 1 && first.cached[0].includes('/bench/models/tiny.gguf'), `[${kind}] the cached models list it: ${first.cached}`);
    await tab.fill('#prompt', 'Hello there!');
    await tab.press('#prompt', 'Enter');
    await tab.waitForSelector('.msg.assistant .stats', { timeout: 60000 });
    const stats = await tab.textContent('.msg.assistant .stats');
    check(/\d+ tokens, [\d.]+ tok\/s/.test(stats), `[${kind}] a reply streams, with its speed: ${stats}`);
    const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `[${kind}] nothing is wider than the viewport (${viewport.width} px; overflow ${overflow} px)`);
    await tab.screenshot({ path: path.join(shots, `web-${kind}.png`), fullPage: true });
    await tab.reload();
    await tab.waitForSelector('body[data-ready=true]', { timeout: 120000 });
    const again = await tab.evaluate(() => ({ info: document.getElementById('info').textContent, progressText: document.getElementById('progressText').textContent }));
    check(/from the cache/.test(again.info) && /Reading the cache/.test(again.progressText), `[${kind}] after a reload it loads from the cache: ${again.progressText}`);
    await tab.click('#cached li button');
    const gone = await tab.waitForFunction(() => document.querySelectorAll('#cached li').length === 0, null, { timeout: 10000 }).then(() => true, () => false);
    check(gone, `[${kind}] Delete removes the cached model`);
    check(errors.length === 0, `[${kind}] no page errors${errors.length ? `: ${errors}` : ''}`);
    await context.close();
  }
} finally {
  await browser.close();
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`web: ${failures ? `${failures} failed` : 'all passed'} (screenshots in ${path.relative(root, shots)}/)`);
process.exit(failures ? 1 : 0);
