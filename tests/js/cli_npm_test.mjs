// The npm package's command line (bindings/js/cli.js, `npx rill-llm`): a one-shot reply equal to
// the native CLI's greedy text, a piped chat that reuses its past, the model cache through a
// URL (stored, then read; cache list/rm), Ctrl-C (SIGINT) stopping a reply (run exits 130; chat
// goes on with the next message), and usage errors with exit status 2.
//
//   node tests/js/cli_npm_test.mjs [--rill build/native/rill]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const cli = path.join(root, 'bindings/js/cli.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-npm-cli-'));
const env = { ...process.env, RILL_CACHE_DIR: path.join(work, 'cache') };
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };

const model = path.join(work, 'model.gguf');
spawnSync(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'), '--out', model,
  '--seed', '5', '--tied', '--type', 'q8_0']);
const PROMPT = 'The history of the river begins';
const native = JSON.parse(spawnSync(rill, ['generate', '-m', model, '-p', PROMPT, '-n', '16', '--temp', '0', '--json', '-c', '512']).stdout);

// Runs the CLI to its end; stdin: text piped in; onOutput(child, text so far) may signal it.
function cliRun(argv, { stdin = '', onOutput } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...argv], { env });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; if (onOutput) onOutput(child, out); });
    child.stderr.on('data', (d) => { err += d; });
    child.stdin.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err }); });
  });
}

const server = http.createServer((req, res) => {
  if (req.url !== '/model.gguf') { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'Content-Length': fs.statSync(model).size });
  fs.createReadStream(model).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/model.gguf`;
try {
  let r = await cliRun(['run', model, PROMPT, '--raw', '-n', '16', '--temp', '0', '-c', '512', '-t', '2']);
  check(r.code === 0 && r.out === native.text + '\n', `run --raw gives the native CLI's greedy text (${JSON.stringify(r.out.slice(0, 40))}...)`);
  check(/qwen35, \d+ layers/.test(r.err) && /\[16 tokens, [\d.]+ tok\/s; prompt \d+ tokens/.test(r.err), `run reports the model and the speed on stderr: ${r.err.trim().split('\n').at(-1)}`);

  r = await cliRun(['chat', model, '-n', '6', '--temp', '0', '--system', 'Be brief.'], { stdin: 'Hello!\nAnd again?\n' });
  const stats = r.err.split('\n').filter((l) => l.startsWith('['));
  check(r.code === 0 && stats.length === 2 && /reused/.test(stats[1]) && r.out.split('\n').filter(Boolean).length >= 1,
    `chat answers each piped line, the second reusing the first turn: ${stats.join(' ')}`);

  r = await cliRun(['run', url, 'Hi', '-n', '4', '--temp', '0']);
  check(r.code === 0 && /downloading/.test(r.err) && /now cached/.test(r.err), 'a URL is downloaded, with progress, and cached');
  r = await cliRun(['run', url, 'Hi', '-n', '4', '--temp', '0']);
  check(r.code === 0 && /reading the cache/.test(r.err) && /from the cache/.test(r.err), 'the second run reads it from the cache');
  r = await cliRun(['cache', 'list']);
  check(r.code === 0 && r.out.includes(url) && r.out.includes(path.join(work, 'cache')), `cache list: ${r.out.trim().split('\n').join(' | ')}`);
  r = await cliRun(['cache', 'rm', url]);
  check(r.code === 0 && (await cliRun(['cache', 'list'])).out.startsWith('0 model'), 'cache rm removes it');

  // Ctrl-C
  r = await cliRun(['run', model, PROMPT, '--raw', '-n', '100000', '--temp', '0'], { onOutput: (c, out) => { if (out.length > 20 && !c.sent) { c.sent = true; c.kill('SIGINT'); } } });
  check(r.code === 130 && /stopped\]/.test(r.err), `SIGINT stops run's reply and exits 130 (${r.err.trim().split('\n').at(-1)})`);
  r = await cliRun(['chat', model, '-n', '200', '--temp', '0'], {
    stdin: 'Tell me everything.\nShort one?\n',
    onOutput: (c, out) => { if (out.length > 20 && !c.sent) { c.sent = true; c.kill('SIGINT'); } },
  });
  const chatStats = r.err.split('\n').filter((l) => l.startsWith('['));
  check(r.code === 0 && chatStats.length === 2 && /stopped\]/.test(chatStats[0]), `SIGINT stops chat's reply, and the chat goes on: ${chatStats.map((l) => l.slice(0, 30)).join(' | ')}`);

  for (const [argv, re, what] of [
    [['run', model], /needs a PROMPT/, 'run without a prompt'],
    [['run', path.join(work, 'missing.gguf'), 'x'], /no such model file/, 'a missing model'],
    [['run', model, 'x', '--temp', 'warm'], /--temp takes a number/, 'a flag that is not a number'],
    [['run', model, 'x', '--temp=-1'], /^rill-llm: temperature must be/, 'a negative temperature (before loading)'],
    [['run', model, 'x', '--bogus'], /Unknown option/, 'an unknown flag'],
    [['fly', model], /unknown command/, 'an unknown command'],
  ]) {
    r = await cliRun(argv);
    check(r.code === 2 && re.test(r.err), `${what}: exit ${r.code}, ${r.err.trim().split('\n')[0]}`);
  }
  r = await cliRun(['--help']);
  check(r.code === 0 && /usage:/.test(r.out), '--help');
} finally {
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`npm cli: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
