// Embedding throughput on Qwen3-Embedding-0.6B's shape (Q8_0, last-token pooling): a set of
// texts of mixed lengths, embedded by Rill in Node as one call (the texts packed into batches of
// up to 512 tokens, src/embedding.cpp) and one text per call, and by native llama.cpp through
// node-llama-cpp's embedding context (getEmbeddingFor: one text per call, as its users embed),
// interleaved in each repeat (the machine is shared and noisy). Reports texts/s, tokens/s and
// the ratios against native in the same repeat.
// Writes bench/results/<date>-<cpu kind>-embed.json.
//
//   node bench/embed.mjs [--model qwen3-embedding-0.6b-q8_0] [--threads 2] [--repeats 3] [--texts 64]
import fs from 'node:fs';
import { getLlama } from 'node-llama-cpp';
import { ensureModels, modelPath } from './models.mjs';
import { machine, resultPath } from './host.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const threads = Number(opt('--threads', 2));
const repeats = Number(opt('--repeats', 3));
const nTexts = Number(opt('--texts', 64));
const model = opt('--model', 'qwen3-embedding-0.6b-q8_0');
ensureModels([model]);

// Sentences of 6 to 40 words, as a retrieval index's passages and queries are.
const WORDS = 'river mountain valley stone water light forest city bridge road winter summer market harbour song letter'.split(' ');
let seed = 12345;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
const TEXTS = Array.from({ length: nTexts }, () => Array.from({ length: 6 + rand(35) }, () => WORDS[rand(WORDS.length)]).join(' ') + '.');

const { createEngine } = await import('../bindings/js/index.js');
const e = await createEngine({ threads });
await e.load(fs.readFileSync(modelPath(model)), { contextSize: 1024 });
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const native = await llama.loadModel({ modelPath: modelPath(model) });
const nctx = await native.createEmbeddingContext({ contextSize: 1024, threads });
const tokens = (await e.embeddings.create({ input: TEXTS })).usage.prompt_tokens;

const timed = async (f) => { const t0 = performance.now(); await f(); return (performance.now() - t0) / 1000; };
const cases = {
  'Rill, Node, one call (packed)': () => e.embed(TEXTS),
  'Rill, Node, one text per call': async () => { for (const t of TEXTS) await e.embed(t); },
  'llama.cpp native, one text per call': async () => { for (const t of TEXTS) await nctx.getEmbeddingFor(t); },
};
for (const f of Object.values(cases)) await f();  // warm-up
const secs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
const vsNative = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < repeats; r++) {
  const s = {};
  for (const [k, f] of Object.entries(cases)) { s[k] = await timed(f); secs[k].push(s[k]); }
  for (const k of Object.keys(cases)) vsNative[k].push(s['llama.cpp native, one text per call'] / s[k]);
  console.error(`bench: repeat ${r + 1}: ${Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}`);
}
await e.dispose();
await nctx.dispose();
await native.dispose();

const result = {
  date: new Date().toISOString(), machine: machine(), model, threads, repeats, texts: nTexts, tokens,
  llama_cpp: 'node-llama-cpp 3.22.1 prebuilt, the host\'s best ggml CPU variant, its default embedding context',
  embed: Object.keys(cases).map((k) => ({
    engine: k, seconds: stat(secs[k]), texts_per_s: stat(secs[k].map((x) => nTexts / x)),
    tokens_per_s: stat(secs[k].map((x) => tokens / x)), vs_native: stat(vsNative[k]),
  })),
};
const out = opt('--out', resultPath(result.date, 'embed'));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
const f = (s, d = 1) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
console.log(`\nEmbeddings, ${model}, ${nTexts} texts (${tokens} tokens), ${result.machine.cpu} [${result.machine.cpu_flags.join(' ')}], ${threads} threads, ${repeats} repeats (median (min-max))\n`);
console.log('| engine | texts/s | tokens/s | vs native |');
console.log('|---|---|---|---|');
for (const x of result.embed) console.log(`| ${x.engine} | ${f(x.texts_per_s)} | ${f(x.tokens_per_s, 0)} | ${f(x.vs_native, 2)} |`);
console.log(`\nwrote ${out}`);
