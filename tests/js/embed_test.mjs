// Embeddings against llama.cpp's (an embedding context of the oracle pinned to ggml's haswell
// variant, tests/oracle/llama_embed.cpp: the same arithmetic on every host): synthetic embedding
// models of each pooling llama.cpp defines (last token: a qwen3 file like Qwen3-Embedding; mean:
// llama; CLS: qwen2), in F32 and Q8_0, several texts each, which Rill packs into one batch:
// cosine >= 0.9999 and the largest difference within the format's tolerance; the packed texts
// equal to each text embedded alone; normalisation, the facade's embeddings.create, and the
// errors. The relaxed build, Node.
//
//   node tests/js/embed_test.mjs [--rill build/native/rill] [--build relaxed]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../bindings/js/index.js';
import { run } from './run.mjs';
import { runEmbedOracle } from '../oracle/llama_oracle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const build = opt('--build', 'relaxed');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-embed-'));
const vocab = (n) => path.join(root, `.cache/llama.cpp/models/ggml-vocab-${n}.gguf`);

let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; return ok; };
async function rejects(promise, re, type, what) {
  try { await promise; check(false, `${what}: no error`); } catch (e) { check(re.test(e.message) && e instanceof type, `${what}: ${e.constructor.name}: ${e.message}`); }
}

// Tolerances relative to the vector's largest component. The oracle runs the arithmetic Rill's
// kernels mirror (Q8_0 activations quantised by the same rule), so only float sum orders differ
// (mean pooling, F32 token tiles): measured 0 to 4e-7.
const MODELS = [
  { name: 'qwen3, last-token pooling, F32', arch: 'qwen3', vocab: 'qwen2', pooling: 3, type: 'f32', tol: 1e-5 },
  { name: 'qwen3, last-token pooling, Q8_0', arch: 'qwen3', vocab: 'qwen2', pooling: 3, type: 'q8_0', tol: 1e-5 },
  { name: 'llama, mean pooling, Q8_0', arch: 'llama', vocab: 'llama-spm', pooling: 1, type: 'q8_0', tol: 1e-5 },
  { name: 'qwen2, CLS pooling, F32', arch: 'qwen2', vocab: 'qwen2', pooling: 2, type: 'f32', tol: 1e-5 },
];
const TEXTS = ['The river begins in the mountains.', 'a', 'Embeddings: 埋め込み, вложения, 123 456.', 'word '.repeat(60).trim()];

const cosine = (a, b) => {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
};

const engine = await createEngine({ threads: 2, build });
try {
  for (const m of MODELS) {
    const file = path.join(work, `${m.arch}-${m.type}.gguf`);
    run(rill, ['synth', '--arch', m.arch, '--vocab', vocab(m.vocab), '--out', file, '--seed', '31', '--type', m.type,
      '--set', `pooling_type=${m.pooling}`]);
    const oracle = runEmbedOracle(file, TEXTS, work);
    await engine.load(file, { contextSize: 512 });
    const mine = await engine.embed(TEXTS, { normalize: false });
    let worstCos = 1, worstDiff = 0;
    for (const [i, text] of TEXTS.entries()) {
      const ref = oracle.vectors[i];
      const v = mine[i];
      const scale = Math.max(...ref.map(Math.abs));
      let diff = 0;
      for (let j = 0; j < ref.length; j++) diff = Math.max(diff, Math.abs(v[j] - ref[j]));
      worstCos = Math.min(worstCos, cosine(v, ref));
      worstDiff = Math.max(worstDiff, diff / scale);
      check(v.length === ref.length && v instanceof Float32Array, `${m.name}: text ${i} has ${v.length} dimensions`);
    }
    check(worstCos >= 0.9999 && worstDiff <= m.tol,
      `${m.name}: ${TEXTS.length} texts, worst cosine ${worstCos.toFixed(7)}, worst max |d| / max |v| ${worstDiff.toExponential(2)} (tolerance ${m.tol})`);
    check(oracle.tokens.every((n, i) => n > 0) && oracle.tokens.length === TEXTS.length, `${m.name}: the oracle embedded ${oracle.tokens.length} texts (${oracle.tokens} tokens)`);
    // Packed into one batch, each text gives what it gives alone: bit for bit in Q8_0, up to the
    // float sum orders of the token tiles in F32.
    let worstPack = 0;
    for (const [i, text] of TEXTS.entries()) {
      const alone = (await engine.embed(text, { normalize: false }))[0];
      const scale = Math.max(...alone.map(Math.abs));
      for (let j = 0; j < alone.length; j++) worstPack = Math.max(worstPack, Math.abs(alone[j] - mine[i][j]) / scale);
    }
    check(m.type === 'q8_0' ? worstPack === 0 : worstPack <= 1e-5, `${m.name}: packed as alone, max |d| / max |v| ${worstPack.toExponential(2)}`);
    // Normalised: unit length, the same direction.
    const unit = await engine.embed(TEXTS[0]);
    const len = Math.hypot(...unit[0]);
    check(Math.abs(len - 1) < 1e-5 && cosine(unit[0], mine[0]) > 0.999999, `${m.name}: normalised by default (|v| = ${len.toFixed(6)})`);
  }

  // The facade, on the last model (CLS pooling).
  const res = await engine.embeddings.create({ model: 'x', input: ['one', 'two three'] });
  const direct = await engine.embed(['one', 'two three']);
  check(res.object === 'list' && res.data.length === 2 && res.data.every((d, i) => d.object === 'embedding' && d.index === i
    && d.embedding.length === engine.info.nEmbd && d.embedding.every((x, j) => Math.abs(x - direct[i][j]) < 1e-6)),
  `embeddings.create: a list of ${res.data.length} embeddings equal to embed()'s`);
  check(res.usage.prompt_tokens > 0 && res.usage.total_tokens === res.usage.prompt_tokens && res.model === engine.info.name,
    `embeddings.create: usage ${JSON.stringify(res.usage)}, model ${res.model}`);
  const b64 = await engine.embeddings.create({ input: 'one', encoding_format: 'base64', dimensions: 16 });
  const raw = new Float32Array(Uint8Array.from(atob(b64.data[0].embedding), (c) => c.charCodeAt(0)).buffer);
  check(raw.length === 16 && Math.abs(Math.hypot(...raw) - 1) < 1e-5 && cosine(raw, direct[0].slice(0, 16)) > 0.99999,
    'embeddings.create: base64, and dimensions keeps the first components normalised again');

  const one = await engine.embed('one');
  await rejects(engine.embed([]), /non-empty array of strings/, TypeError, 'embed([])');
  await rejects(engine.embed([1]), /non-empty array of strings/, TypeError, 'embed([1])');
  await rejects(engine.embed('x', { pooling: 'max' }), /pooling must be 'mean', 'cls' or 'last'/, TypeError, "pooling 'max'");
  await rejects(engine.embed('x', { normalize: 'yes' }), /normalize must be true or false/, TypeError, "normalize 'yes'");
  await rejects(engine.embed('word '.repeat(600)), /longer than the context of 512 tokens/, Error, 'a text longer than the context');
  await rejects(engine.embeddings.create({ input: 'x', dimensions: 100000 }), /dimensions must be an integer from 1 to/, RangeError, 'dimensions too large');
  await rejects(engine.embeddings.create({ input: 'x', foo: 1 }), /unknown parameter 'foo'/, TypeError, 'an unknown parameter');
  const again = await engine.embed('one');
  check(again[0].every((x, j) => x === one[0][j]), 'the engine works after the refusals (the same vector)');
  const gen = await engine.complete('Hello', { maxTokens: 3, temperature: 0 }).result;
  check(gen.tokens.length > 0, 'generation works after embeddings');
} finally {
  await engine.dispose();
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
