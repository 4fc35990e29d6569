// The measuring stick: Rill (Node 24 and headless Chromium), wllama (Chromium, CPU) and native
// llama.cpp (node-llama-cpp) on the same synthetic models, thread count and prompts, with the
// engines interleaved over several repeats. Prints a markdown table with the Rill/wllama and
// Rill/native ratios and writes bench/results/<date>-<host>.json.
//
//   node bench/run.mjs [--models qwen35-0.8b,llama-1b,...] [--threads 2] [--repeats 3]   (models: see MODELS)
//                      [--engines rill-node,rill-chromium,wllama-chromium,llama-native]
//   (rill-node-simd: the strict SIMD128 build in Node, what browsers without relaxed SIMD run)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { closeBrowser, page } from './browser.mjs';
import { ensureModels, modelPath, root } from './models.mjs';
import { machine, resultPath } from './host.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const threads = Number(opt('--threads', 2));
const repeats = Number(opt('--repeats', 3));
const modelNames = opt('--models', 'qwen35-0.8b,llama-1b').split(',');
const engines = opt('--engines', 'rill-node,rill-chromium,wllama-chromium,llama-native').split(',');
const node = process.execPath;

ensureModels(modelNames);

async function uaMemory() {
  // Page + workers, as Chromium accounts them (needs cross-origin isolation).
  try { return (await performance.measureUserAgentSpecificMemory()).bytes; } catch (e) { return null; }
}

async function rillChromium(model) {
  const p = await page();
  try {
    return await p.evaluate(async ({ url, threads, uaMemorySrc }) => {
      const uaMemory = eval(uaMemorySrc);
      const { createEngine } = await import('/bindings/js/index.js');
      const e = await createEngine({ threads });
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      let t = performance.now();
      const info = await e.load(bytes, { contextSize: 1024 });
      const out = { load_s: (performance.now() - t) / 1000, build: e.runtime.kernels };
      const prompt = (n, b) => Array.from({ length: n }, (_, i) => b + ((i * 7919) % 5000));
      await e.evaluate(prompt(8, 3000));
      const times = [];
      for (let i = 0; i < 128; i++) { t = performance.now(); await e.evaluate([4000 + i]); times.push(performance.now() - t); }
      const sum = (a) => a.reduce((x, y) => x + y, 0);
      out.decode = { cold_tok_s: 128 / (sum(times) / 1000), steady_tok_s: 96 / (sum(times.slice(32)) / 1000) };
      for (const n of [128, 512]) {
        await e.reset();
        t = performance.now();
        await e.evaluate(prompt(n, 1000));
        out[`prefill${n}_tok_s`] = n / ((performance.now() - t) / 1000);
      }
      out.wasm_memory_bytes = await e.memoryBytes();
      out.peak_mem_bytes = await uaMemory();
      out.model_bytes = info.fileBytes;
      await e.dispose();
      return out;
    }, { url: `/bench/models/${model}.gguf`, threads, uaMemorySrc: `(${uaMemory.toString()})` });
  } finally { await p.close(); }
}

async function wllamaChromium(model) {
  const p = await page();
  try {
    return await p.evaluate(async ({ url, threads, uaMemorySrc }) => {
      const uaMemory = eval(uaMemorySrc);
      const { Wllama } = await import('/node_modules/@wllama/wllama/esm/index.js');
      const w = new Wllama({ default: '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm' }, { suppressNativeLog: true });
      const blob = await (await fetch(url)).blob();
      let t = performance.now();
      await w.loadModel([blob], { n_ctx: 1024, n_batch: 512, n_threads: threads, n_gpu_layers: 0 });
      const out = { load_s: (performance.now() - t) / 1000, build: `wllama ${w.isMultithread() ? 'multi' : 'single'}-thread, ${w.getNumThreads()} threads` };
      // decode: 128 tokens, EOS ignored, per-token arrival times
      const times = [];
      let last = performance.now();
      const stream = await w.createCompletion({ prompt: 'Once upon a time', max_tokens: 128, temperature: 0, ignore_eos: true, stream: true, cache_prompt: false });
      let first = true;
      for await (const _ of stream) {
        const now = performance.now();
        if (!first) times.push(now - last);  // the first chunk carries the prompt
        first = false;
        last = now;
      }
      const sum = (a) => a.reduce((x, y) => x + y, 0);
      out.decode = { cold_tok_s: times.length / (sum(times) / 1000), steady_tok_s: (times.length - 31) / (sum(times.slice(31)) / 1000), n: times.length };
      for (const n of [128, 512]) {
        const r = await w.createCompletion({ prompt: ' the'.repeat(n - 1), max_tokens: 1, temperature: 0, cache_prompt: false });
        out[`prefill${n}_tok_s`] = r.timings ? r.timings.prompt_per_second : null;
        out[`prefill${n}_n`] = r.timings ? r.timings.prompt_n : null;
      }
      out.peak_mem_bytes = await uaMemory();
      await w.exit();
      return out;
    }, { url: `/bench/models/${model}.gguf`, threads, uaMemorySrc: `(${uaMemory.toString()})` });
  } finally { await p.close(); }
}

function nodeEngine(name, model) {
  const r = spawnSync(node, [path.join(root, 'bench/engine_node.mjs'), name, modelPath(model), String(threads)], { maxBuffer: 1 << 24 });
  const line = r.stdout.toString().trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) throw new Error(`${name} failed: ${r.stderr.toString().slice(-2000)}`);
  return JSON.parse(line);
}

const RUNNERS = {
  'rill-node': (m) => nodeEngine('rill-node', m),
  'rill-node-simd': (m) => nodeEngine('rill-node-simd', m),
  'llama-native': (m) => nodeEngine('llama-native', m),
  'rill-chromium': rillChromium,
  'wllama-chromium': wllamaChromium,
};

// ---- run: engines interleaved within each repeat --------------------------------------------
const FIGURES = ['load_s', 'prefill128_tok_s', 'prefill512_tok_s', 'decode_tok_s', 'decode_cold_tok_s', 'peak_mem_bytes'];
const samples = {};  // `${engine}|${model}` -> { figure: [values] }
const extra = {};
const profiles = {};  // rill-node: where decode time goes
for (let rep = 0; rep < repeats; rep++) {
  for (const model of modelNames) {
    const order = rep % 2 ? [...engines].reverse() : engines;
    for (const engine of order) {
      const t0 = Date.now();
      let r;
      try { r = await RUNNERS[engine](model); } catch (e) { console.error(`bench: ${engine} on ${model}: ${e.message}`); continue; }
      r.decode_tok_s = r.decode.steady_tok_s;
      r.decode_cold_tok_s = r.decode.cold_tok_s;
      const key = `${engine}|${model}`;
      samples[key] ??= {};
      for (const f of FIGURES) if (r[f] != null) (samples[key][f] ??= []).push(r[f]);
      if (r.profile) (profiles[key] ??= []).push(r.profile);
      extra[key] = { build: r.build, model_bytes: r.model_bytes, wasm_memory_bytes: r.wasm_memory_bytes, state_bytes: r.state_bytes };
      console.error(`bench: repeat ${rep + 1}/${repeats} ${engine} ${model}: decode ${r.decode_tok_s.toFixed(2)} tok/s, ` +
        `prefill512 ${r.prefill512_tok_s?.toFixed(1)} tok/s, load ${r.load_s.toFixed(2)} s (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
}

// bandwidth probe (Rill's wasm build, Node 24 and Chromium), 1 and N threads
const bandwidth = {};
{
  const { createEngine } = await import('../bindings/js/index.js');
  const e = await createEngine({ threads });
  bandwidth.node = {};
  for (const t of [1, threads]) bandwidth.node[t] = await e.probeBandwidth({ threads: t });
  await e.dispose();
  if (engines.some((x) => x.endsWith('chromium'))) {
    const p = await page();
    bandwidth.chromium = await p.evaluate(async (threads) => {
      const { createEngine } = await import('/bindings/js/index.js');
      const e = await createEngine({ threads });
      const r = {};
      for (const t of [1, threads]) r[t] = await e.probeBandwidth({ threads: t });
      await e.dispose();
      return r;
    }, threads);
    await p.close();
  }
}
await closeBrowser();

const runs = [];
for (const [key, figs] of Object.entries(samples)) {
  const [engine, model] = key.split('|');
  const run = { engine, model, threads, ...extra[key] };
  for (const [f, v] of Object.entries(figs)) run[f] = stat(v);
  run.repeats = figs.load_s.length;
  if (profiles[key]) {  // per decode token, the last repeat's
    const p = profiles[key].at(-1);
    run.decode_profile_ms_per_token = Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'tokens').map(([k, v]) => [k, v / p.tokens]));
  }
  // decode as a fraction of the bandwidth roofline: bytes of weights read per token x tok/s / probe
  const bw = engine === 'rill-chromium' || engine === 'wllama-chromium' ? bandwidth.chromium?.[threads] : bandwidth.node[threads];
  const bytes = fs.statSync(modelPath(model)).size;
  if (bw && run.decode_tok_s) run.roofline_fraction = bytes * run.decode_tok_s.median / (bw * 1e9);
  runs.push(run);
}

const pkg = (p) => { try { return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', p, 'package.json'), 'utf8')).version; } catch { return null; } };
const chromeVersion = spawnSync(process.env.RILL_CHROMIUM || '/usr/bin/chromium', ['--version']).stdout?.toString().trim();
const wasmBytes = {};
for (const f of fs.readdirSync(path.join(root, 'bindings/js/wasm'))) wasmBytes[f] = fs.statSync(path.join(root, 'bindings/js/wasm', f)).size;
const result = {
  date: new Date().toISOString(),
  machine: machine(),
  versions: { node: process.version, chromium: chromeVersion, 'node-llama-cpp': pkg('node-llama-cpp'), '@wllama/wllama': pkg('@wllama/wllama'), 'playwright-core': pkg('playwright-core'),
    rill: spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).stdout.toString().trim() },
  threads, repeats, decode_tokens: 128, decode_warmup_discarded: 32,
  bandwidth_gb_s: bandwidth,
  package_bytes: wasmBytes,
  runs,
};
const out = opt('--out', resultPath(result.date));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');

// ---- table ----------------------------------------------------------------------------------
const fmt = (s, d = 1) => (s ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})` : 'n/a');
const mb = (s) => (s ? `${(s.median / 2 ** 20).toFixed(0)} MB` : 'n/a');
console.log(`\nRill benchmark, ${result.machine.cpu} [${result.machine.cpu_flags.join(" ")}; wasm relaxed dot: ${result.machine.wasm_relaxed_dot}], ${threads} threads, ${repeats} repeats (median (min-max)); ${result.date}\n`);
console.log('| model | engine | load s | prefill 128 tok/s | prefill 512 tok/s | decode tok/s (steady) | decode tok/s (cold) | peak memory | % of bandwidth roofline |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of runs)
  console.log(`| ${r.model} | ${r.engine} | ${fmt(r.load_s, 2)} | ${fmt(r.prefill128_tok_s)} | ${fmt(r.prefill512_tok_s)} | ${fmt(r.decode_tok_s, 2)} | ${fmt(r.decode_cold_tok_s, 2)} | ${mb(r.peak_mem_bytes)} | ${r.roofline_fraction ? (100 * r.roofline_fraction).toFixed(0) + '%' : 'n/a'} |`);
console.log('\nRatios (medians):');
for (const model of modelNames) {
  const get = (e) => runs.find((r) => r.engine === e && r.model === model);
  for (const rillE of ['rill-node', 'rill-node-simd', 'rill-chromium']) {
    const r = get(rillE);
    if (!r) continue;
    for (const [peer, label] of [['wllama-chromium', 'wllama'], ['llama-native', 'native']]) {
      const q = get(peer);
      if (!q) continue;
      const ratio = (f) => (r[f] && q[f] ? (r[f].median / q[f].median).toFixed(2) : 'n/a');
      console.log(`  ${model}: ${rillE}/${label}: decode ${ratio('decode_tok_s')}x, prefill128 ${ratio('prefill128_tok_s')}x, prefill512 ${ratio('prefill512_tok_s')}x, load ${ratio('load_s')}x (lower is faster)`);
    }
  }
}
for (const r of runs) {
  if (!r.decode_profile_ms_per_token) continue;
  const p = r.decode_profile_ms_per_token;
  const total = p.total;
  const parts = Object.entries(p).filter(([k]) => k !== 'total').sort((a, b) => b[1] - a[1]);
  const other = total - parts.reduce((s, [, v]) => s + v, 0);
  console.log(`\nDecode cost per token, ${r.model}, ${r.engine} (${total.toFixed(1)} ms):`);
  for (const [k, v] of [...parts, ['norms, rope, embedding, sampling, thread sync, other', other]])
    console.log(`  ${k.padEnd(52)} ${v.toFixed(2).padStart(7)} ms  ${(100 * v / total).toFixed(0).padStart(3)}%`);
}
console.log(`\nBandwidth probe (GB/s): Node ${JSON.stringify(bandwidth.node)}, Chromium ${JSON.stringify(bandwidth.chromium ?? null)}`);
console.log(`Package bytes: ${Object.entries(wasmBytes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`Results: ${path.relative(root, out)}`);
