// Golden test: Rill's forward pass against llama.cpp (node-llama-cpp's prebuilt CPU build, driven
// by llama_logits.cpp; flash attention off, F32 KV cache) on synthetic models made by `rill synth`.
// For every configuration and prompt: identical prompt tokens, identical greedy tokens for
// N steps, and max |logit difference| over every step and the whole vocabulary within
// the tolerance (1e-3 for F32/F16 weights, 5e-3 for quantised ones).
//
// The same on every host: the oracle is pinned to ggml's haswell CPU variant (llama_oracle.mjs),
// which every x86-64 host with AVX2 runs, with or without AVX-512, and Rill's reference kernels
// mirror that variant's arithmetic (kernels/ops_ref.h), so rows are bit-identical (max |dlogit| 0)
// wherever llama.cpp is deterministic in its own kernels, on any such host.
//
// Two evaluation modes. "single": the prompt fed one token at a time to llama.cpp and to
// Rill (--batch 1), so every product takes llama.cpp's one-row kernels; this must always
// pass for every layout. "batched": the prompt as one batch on both sides. llama.cpp's batched
// kernels for repacked Q4_0/Q4_K matrices (its GEMM) round differently from its own one-row
// kernels, which Rill follows in both modes; where llama.cpp's two modes disagree by more than
// the tolerance, that disagreement is the noise floor, and Rill's batched row must keep greedy
// agreement and stay within twice it (Rill's batched path mixes llama.cpp's batched attention
// orders with its one-row matrix orders, so it can sit further from either than they sit
// from each other). The single-mode row of the same configuration is held to the tolerance.
//
// --engines also runs Rill through its npm package (bindings/js) under this Node, in the
// relaxed-SIMD and SIMD128 wasm builds. Every engine runs "batched" for every prompt and "single"
// for the short one (these rows are hashed: equal hashes show the engines agree bit for bit); the
// long prompt's "single" row, 300 one-token evaluations, runs in one engine: the relaxed build when
// it is among the engines (the native CLI runs the scalar reference kernels, ~6x slower), else the CLI.
//
//   node tests/oracle/golden.mjs [--steps N] [--only SUBSTRING] [--rill PATH] [--keep DIR] [--engines cli,relaxed,simd]
//                                [--inject-failure] [--mutants all|NAME,...]
// --mutants runs the `mutant` build of the CLI (build/mutant/rill, include/rill/mutation.h) once per
// deliberate error and once without any (the control): the run passes when the control passes and
// every mutant fails at least one row ("killed"). Default configuration: qwen35/q4_k_m, short prompt.
// --inject-failure moves one logit of Rill's first run by 1e-2, so that the run must fail (the test
// command's self-check that a failing golden row fails its step and the suite).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostCpu, PINNED_VARIANT, readLogits, readRows, runOracle } from './llama_oracle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const steps = Number(opt('--steps', 32));
const only = opt('--only', args.includes('--mutants') && !args.includes('--config') ? 'qwen35/q4_k_m' : '');
const MUTANTS = ['rope-angle', 'weight-row', 'decay-position', 'q4k-scale-nibble'];
const mutants = opt('--mutants', '') === 'all' ? MUTANTS : opt('--mutants', '').split(',').filter(Boolean);
const rill = opt('--rill', path.join(root, mutants.length ? 'build/mutant/rill' : 'build/native/rill'));
const vocabDir = path.join(root, '.cache/llama.cpp/models');
const keep = opt('--keep', '');
const engines = opt('--engines', 'cli').split(',');
const longSingleEngine = engines.includes('relaxed') ? 'relaxed' : 'cli';
let injectFailure = args.includes('--inject-failure');
const work = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'rill-golden-'));
fs.mkdirSync(work, { recursive: true });

// ---- configurations ----------------------------------------------------------------------
const LAYOUTS = {
  f32: { args: ['--type', 'f32'], tol: 1e-3 },
  f16: { args: ['--type', 'f16'], tol: 1e-3 },
  q8_0: { args: ['--type', 'q8_0'], tol: 5e-3 },
  q4_0: { args: ['--type', 'q4_0'], tol: 5e-3 },
  q4_1: { args: ['--type', 'q4_1'], tol: 5e-3 },
  q5_0: { args: ['--type', 'q5_0'], tol: 5e-3 },
  q5_1: { args: ['--type', 'q5_1'], tol: 5e-3 },
  bf16: { args: ['--type', 'bf16'], tol: 1e-3 },
  q2_k: { args: ['--type', 'q2_K'], tol: 5e-3 },
  q3_k: { args: ['--type', 'q3_K'], tol: 5e-3 },
  // Q4_0 as quantised with an importance matrix (most public Q4_0 files): the first eighth of ffn_down in Q4_1.
  q4_0_imatrix: { args: ['--layout', 'q4_0', '--imatrix', '--set', 'block_count=8'], tol: 5e-3 },
  // The public Qwen3.5-0.8B Q4_0 file: Q4_0 with token_embd in Q6_K and ssm_out in Q5_K.
  real: { args: ['--type', 'q4_0', '--tensor-type', 'token_embd=q6_K', '--tensor-type', 'ssm_out=q5_K'], tol: 5e-3 },
  // llama.cpp's per-tensor rules for the file types people download (rill synth --layout): Q4_K_M
  // (Q4_K, Q6_K head and, on the more-bits layers, attn_v/attn_qkv and ffn_down), Q4_K_S (Q5_K on
  // the first layers), IQ4_XS / IQ4_NL with 8 layers and one KV head (so that attn_v/attn_qkv take
  // Q5_K for n_head / n_head_kv >= 4 and the first ffn_down Q5_K, as in the public files).
  q4_k_m: { args: ['--layout', 'q4_k_m'], tol: 5e-3 },
  q4_k_s: { args: ['--layout', 'q4_k_s'], tol: 5e-3 },
  iq4_xs: { args: ['--layout', 'iq4_xs', '--set', 'attention.head_count_kv=1', '--set', 'block_count=8'], tol: 5e-3 },
  iq4_nl: { args: ['--layout', 'iq4_nl', '--set', 'attention.head_count_kv=1', '--set', 'block_count=8'], tol: 5e-3 },
};
const ARCHS = {
  qwen35: { vocab: 'qwen35', extra: ['--tied'] },
  llama: { vocab: 'llama-spm', extra: [] },
  qwen2: { vocab: 'qwen2', extra: ['--tied'] },
  qwen3: { vocab: 'qwen35', extra: ['--tied'] },
  // Phi-3.5's shape: fused attn_qkv and [gate | up]; LongRoPE factors with attn_factor 1.19, and
  // original_context_length 512 below the golden's context of 1024: the long factors.
  phi3: { vocab: 'phi-3', extra: [] },
  // SmolLM3: no rope on layers 3 and 7 of 8.
  smollm3: { vocab: 'llama-bpe', extra: ['--tied'] },
  // Gemma 3: 5 sliding-window layers (window 256, which the long prompt passes) and a global one.
  // Its own 262k SPM vocabulary is not among the test vocabularies: Llama 2's SPM one stands in.
  gemma3: { vocab: 'llama-spm', extra: ['--tied'] },
  // Gemma 4 (E2B-like): 7 layers, sliding (window 256) and global ones with their own head sizes and
  // KV head counts, the last 2 reading earlier layers' caches with wider FFNs, per-layer embeddings,
  // attn_v absent on the global layers (v = k), proportional rope, soft-capped logits. Its own vocabulary.
  gemma4: { vocab: 'gemma-4', extra: ['--tied'] },
  // LFM2: convolution, convolution, attention, x2. Its own 65k BPE vocabulary (pre-tokenizer 'lfm2',
  // llama.cpp's Llama 3 rules) is not among the test vocabularies: Llama 3's stands in.
  lfm2: { vocab: 'llama-bpe', extra: ['--tied'] },
};
// Default (the test command): every layout of the headline qwen35, two or three of each other
// architecture (llama: F32 and the Q4_K_M and IQ4_XS presets), which together cover every layout again.
// --all (or RILL_HEAVY=1) runs the full cross product.
const everything = args.includes('--all') || process.env.RILL_HEAVY === '1';
const DEFAULT_LAYOUTS = { qwen35: Object.keys(LAYOUTS), llama: ['f32', 'q4_k_m', 'iq4_xs'], qwen2: ['f16', 'real'], qwen3: ['q8_0', 'q4_0'],
                          phi3: ['q8_0', 'q4_k_m'], smollm3: ['f16', 'q4_k_m'],
                          gemma3: ['q8_0', 'q4_k_m'], gemma4: ['q8_0', 'q4_k_m'], lfm2: ['q8_0', 'q4_k_m'] };
const configs = [];
for (const [arch, a] of Object.entries(ARCHS)) {
  for (const [layout, l] of Object.entries(LAYOUTS)) {
    if (!everything && !DEFAULT_LAYOUTS[arch].includes(layout)) continue;
    configs.push({ name: `${arch}/${layout}`, arch, vocab: a.vocab, synth: [...a.extra, ...l.args], tol: l.tol });
  }
}
// Special cases the engine must get right.
configs.push({ name: 'llama3-bpe/f32 (BOS)', arch: 'llama', vocab: 'llama-bpe', synth: ['--type', 'f32', '--set', 'rope.freq_base=500000'], tol: 1e-3 });
configs.push({ name: 'qwen35/f32 untied, nv=nk', arch: 'qwen35', vocab: 'qwen35',
  synth: ['--type', 'f32', '--set', 'ssm.time_step_rank=2', '--set', 'ssm.inner_size=128', '--set', 'block_count=8'], tol: 1e-3 });
// Files with Qwen 3.5's multi-token-prediction block (as the current converter writes it), in each
// layout that carries one: the main model's logits are unchanged by its presence, and (mtp: true) the
// MTP head's draft logits at every evaluated position agree with llama.cpp's MTP graph (its draft
// context, fed the target's h_nextn rows as common/speculative.cpp does; `rill logits --mtp-out`).
// (The main logits are checked on the Q4_K_M file; the other layouts' rows are the head's only.)
for (const layout of ['q4_k_m', 'f32', 'q8_0', 'q4_0'])
  configs.push({ name: `qwen35/${layout} with an MTP block`, arch: 'qwen35', vocab: 'qwen35', synth: ['--tied', ...LAYOUTS[layout].args, '--mtp'],
                 tol: LAYOUTS[layout].tol, mtp: true, mtpOnly: layout !== 'q4_k_m' });
// Rows of 7 blocks (n_embd 224): IQ4_NL's unrepacked kernel finishes an odd block with one FMA
// (ssm_alpha/ssm_beta: 4 rows, so not repacked), and the head falls back from Q6_K to Q8_0.
// Phi-3 within its original context: the short LongRoPE factors.
configs.push({ name: 'phi3/q4_k_s, short LongRoPE factors', arch: 'phi3', vocab: 'phi-3',
  synth: ['--layout', 'q4_k_s', '--set', 'rope.scaling.original_context_length=4096'], tol: 5e-3 });
configs.push({ name: 'qwen35/iq4_nl, 7 blocks per row', arch: 'qwen35', vocab: 'qwen35',
  synth: ['--tied', '--layout', 'iq4_nl', '--set', 'embedding_length=224'], tol: 5e-3 });
// A model split in 3 files (llama.cpp's gguf-split layout, `rill split`): both engines load all
// parts from the first part's path.
configs.push({ name: 'qwen35/real split in 3 parts', arch: 'qwen35', vocab: 'qwen35', synth: ['--tied', ...LAYOUTS.real.args], split: 3, tol: 5e-3 });
configs.push({ name: 'qwen35/q8_0 prefill in batches of 7', arch: 'qwen35', vocab: 'qwen35', synth: ['--tied', '--type', 'q8_0'],
  rillArgs: ['--batch', '7'], tol: 5e-3 });
configs.push({ name: 'qwen35/q8_0 after a context reset', arch: 'qwen35', vocab: 'qwen35', synth: ['--tied', '--type', 'q8_0'],
  rillArgs: ['--reset-after-prompt', 'An unrelated first prompt that leaves state behind.'], tol: 5e-3 });
configs.push({ name: 'lfm2/q8_0 after a context reset (convolution states)', arch: 'lfm2', vocab: 'llama-bpe', synth: ['--tied', '--type', 'q8_0'],
  rillArgs: ['--reset-after-prompt', 'A first prompt whose convolution state must go.'], tol: 5e-3 });
configs.push({ name: 'qwen2/q8_0 after a context reset', arch: 'qwen2', vocab: 'qwen2', synth: ['--tied', '--type', 'q8_0'],
  rillArgs: ['--reset-after-prompt', 'Another first prompt.'], tol: 5e-3 });

// --config '{"name":..,"arch":..,"vocab":..,"synth":[..],"tol":..}' runs just that one (for investigations).
if (opt('--config', '')) configs.splice(0, configs.length, JSON.parse(opt('--config', '')));

const SHORT = 'The quick brown fox jumps over the lazy dog.';
const LONG = Array.from({ length: 12 }, (_, i) =>
  `Paragraph ${i + 1}: rivers carry ${i * 7 + 3} tonnes of silt past the old mill, and the miller counts them twice.`).join(' ');
const PROMPTS = opt('--prompts', '') ? JSON.parse(opt('--prompts', '')) : mutants.length ? [['short', SHORT]] : [['short', SHORT], ['long', LONG]];

// ---- helpers -------------------------------------------------------------------------------
function run(cmd, argv, env = process.env) {
  const r = spawnSync(cmd, argv, { maxBuffer: 1 << 30, env });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${argv.join(' ')} failed:\n${r.stderr}`);
  return r.stdout.toString();
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; ++i) if (row[i] > row[best]) best = i;
  return best;
}

function top2gap(row) {
  let a = -Infinity, b = -Infinity;
  for (const v of row) { if (v > a) { b = a; a = v; } else if (v > b) b = v; }
  return a - b;
}

const cpu = hostCpu();
const variant = PINNED_VARIANT;
console.log(`golden: host ${cpu.model}, ${cpu.kind}; oracle llama.cpp (node-llama-cpp 3.22.1's build) pinned to ggml CPU variant '${variant}' on every host`);

// single: micro-batches of one token, so llama.cpp runs every product through its one-row kernels.
const oracle = (modelPath, prompt, single, mtp) => runOracle(modelPath, prompt, steps, single, work, mtp);

// MTP draft logits against llama.cpp's, row by row: max |dlogit| and the same draft (argmax) on every
// row, or a tie where llama.cpp's own top-2 gap is within the tolerance.
function compareMtp(ref, rows, tol) {
  const r = { agree: 0, max_diff: 0, note: '', rows: ref.length };
  if (rows.length !== ref.length) return { ...r, ok: false, note: `${rows.length} rows, llama.cpp ${ref.length}` };
  let ties = 0;
  for (let p = 0; p < ref.length; ++p) {
    for (let i = 0; i < ref[p].length; ++i) r.max_diff = Math.max(r.max_diff, Math.abs(rows[p][i] - ref[p][i]));
    if (argmax(rows[p]) === argmax(ref[p])) r.agree++;
    else if (top2gap(ref[p]) <= tol) ties++;
    else r.note ||= `draft differs at position ${p}: llama.cpp ${argmax(ref[p])}, rill ${argmax(rows[p])}`;
  }
  r.ok = r.max_diff <= tol && r.agree + ties === ref.length;
  if (ties) r.note += ` (${ties} ties)`;
  return r;
}

// Compares rows/tokens against a reference run: prompt tokens, greedy agreement, max |dlogit|
// over the steps up to the first divergence (a divergence where the reference's own top-2
// gap is within the tolerance is a tie, not a failure).
function compare(ref, rows, tokens, promptTokens, tol) {
  const r = { agree: 0, max_diff: 0, note: '', gap: Infinity };
  r.prompt_ok = JSON.stringify(promptTokens) === JSON.stringify(ref.tokens);
  if (!r.prompt_ok) r.note = `prompt tokens differ: llama.cpp ${ref.tokens.slice(0, 8)}... rill ${promptTokens.slice(0, 8)}...`;
  for (let s = 0; s < steps && r.prompt_ok; ++s) {
    for (let i = 0; i < ref.n; ++i) r.max_diff = Math.max(r.max_diff, Math.abs(rows[s][i] - ref.rows[s][i]));
    if (tokens[s] !== ref.chosen[s]) {
      const gap = top2gap(ref.rows[s]);
      r.tie = gap <= tol;
      r.gap = gap;
      r.note = `diverged at step ${s}: llama.cpp ${ref.chosen[s]}, rill ${tokens[s]}; llama.cpp top-2 gap ${gap.toExponential(2)}` + (r.tie ? ' (a tie)' : '');
      break;
    }
    r.agree++;
  }
  r.ok = r.prompt_ok && r.max_diff <= tol && (r.agree === steps || r.tie);
  return r;
}

// Rill through the npm package: the same logits file contents as `rill logits`.
const jsEngines = {};
async function rillJs(build, modelPath, prompt, batch, resetPrompt) {
  if (!jsEngines[build]) {
    const { createEngine } = await import('../../bindings/js/index.js');
    jsEngines[build] = await createEngine({ threads: 2, build });
  }
  const e = jsEngines[build];
  await e.load(modelPath, { contextSize: 1024 });
  const feed = async (ids) => {  // logits only for the last piece, as llama.cpp's oracle and the CLI
    const step = batch > 0 ? batch : ids.length;
    for (let i = 0; i < ids.length; i += step) await e.evaluate(ids.slice(i, i + step), { logits: i + step >= ids.length });
  };
  if (resetPrompt) { await feed(await e.tokenize(resetPrompt)); await e.reset(); }
  const ids = await e.tokenize(prompt);
  await feed(ids);
  const rows = [], tokens = [];
  for (let s = 0; s < steps; ++s) {
    const row = await e.logits();
    rows.push(row);
    tokens.push(argmax(row));
    if (s + 1 < steps) await e.evaluate([tokens.at(-1)]);
  }
  await e.unload();
  return { rows, meta: { prompt_tokens: ids, tokens, n_vocab: rows[0].length } };
}

// ---- main ----------------------------------------------------------------------------------
const results = [];
let failures = 0;
// One hash per engine (and the oracle) over every logit it produced, in run order: a fixed run
// gives the same hash on every host where the arithmetic is promised to be the same (the pinned
// oracle, the scalar reference, SIMD128, relaxed SIMD where madd is fused), so a change between
// machines shows in the test output.
const hashes = {};
const seconds = {};  // where the golden's time goes, printed at the end
const timed = async (what, f) => { const t0 = performance.now(); try { return await f(); } finally { seconds[what] = (seconds[what] ?? 0) + (performance.now() - t0) / 1e3; } };
const hashRows = (key, rows) => {
  const h = (hashes[key] ??= { hash: crypto.createHash('sha256'), rows: 0 });
  for (const r of rows) h.hash.update(new Uint8Array(r.buffer, r.byteOffset, r.byteLength));
  h.rows += rows.length;
};
// Configurations that differ only in how Rill is driven (batches of 7, a reset) share a model,
// and llama.cpp's answers for it: those are computed once and kept until their last use.
const selected = configs.filter((c) => !only || c.name.includes(only));
const modelKey = (c) => JSON.stringify([c.arch, c.vocab, c.synth, c.split ?? 1]);  // a split model is run by the oracle from its parts
const usesLeft = new Map();
for (const c of selected) usesLeft.set(modelKey(c), (usesLeft.get(modelKey(c)) ?? 0) + 1);
const oracleMemo = new Map();
for (const c of selected) {
  const key = modelKey(c);
  usesLeft.set(key, usesLeft.get(key) - 1);
  let modelPath = path.join(work, c.name.replace(/[^a-z0-9]+/gi, '_') + '.gguf');
  await timed('synth', () => run(rill, ['synth', '--arch', c.arch, '--vocab', path.join(vocabDir, `ggml-vocab-${c.vocab}.gguf`), '--out', modelPath, '--seed', '7', ...c.synth]));
  if (c.split) {
    const prefix = modelPath.replace(/\.gguf$/, '');
    run(rill, ['split', '--parts', String(c.split), modelPath, prefix]);
    fs.rmSync(modelPath);
    modelPath = `${prefix}-00001-of-${String(c.split).padStart(5, '0')}.gguf`;
  }
  for (const [pname, prompt] of PROMPTS) {
    const memoKey = key + prompt;
    const [refBatched, refSingle] = oracleMemo.get(memoKey) ?? await timed(`llama.cpp ${pname}`, async () =>
      [await oracle(modelPath, prompt, false, c.mtp && !mutants.length), await oracle(modelPath, prompt, true, c.mtp && !mutants.length)]);
    if (usesLeft.get(key) > 0) oracleMemo.set(memoKey, [refBatched, refSingle]);
    else oracleMemo.delete(memoKey);
    const selfDiff = compare(refBatched, refSingle.rows, refSingle.chosen, refSingle.tokens, c.tol).max_diff;
    hashRows(`llama.cpp (${variant})`, [...refBatched.rows, ...refSingle.rows]);
    const runs = [];
    if (!c.mtpOnly) for (const mutant of ['', ...mutants])
      for (const engine of mutants.length ? ['cli'] : engines)
        for (const [mode, ref, batch] of [['single', refSingle, 1], ['batched', refBatched, 0]])
          if (mode === 'batched' || pname === 'short' || engine === longSingleEngine || mutants.length) runs.push({ mutant, engine, mode, ref, batch });
    for (const { mutant, engine, mode, ref, batch } of runs) {
      let rows, meta;
      if (engine === 'cli') {
        const out = path.join(work, 'logits.bin');
        await timed(`cli ${pname} ${mode}`, () => run(rill, ['logits', '-m', modelPath, '-p', prompt, '-n', String(steps), '--out', out, '-c', '1024', '-t', '2',
                                            ...(c.rillArgs ?? []), ...(batch ? ['--batch', String(batch)] : [])], { ...process.env, RILL_MUTATION: mutant }));
        ({ meta, rows } = readLogits(out, steps));
      } else {
        const ra = c.rillArgs ?? [];
        const b = ra.includes('--batch') ? Number(ra[ra.indexOf('--batch') + 1]) : batch;
        const reset = ra.includes('--reset-after-prompt') ? ra[ra.indexOf('--reset-after-prompt') + 1] : null;
        ({ rows, meta } = await timed(`${engine} ${pname} ${mode}`, () => rillJs(engine, modelPath, prompt, b, reset)));
      }
      // The runs every engine makes (batched, and single for the short prompt) are hashed, so
      // that equal hashes show the engines agreeing with each other bit for bit.
      if (!mutant && (mode === 'batched' || pname === 'short')) hashRows(engine, rows);
      if (injectFailure) { rows[0] = Float32Array.from(rows[0]); rows[0][0] += 1e-2; injectFailure = false; }
      const r = { config: c.name, mutant, engine, prompt: pname, mode, prompt_tokens: ref.tokens.length, tol: c.tol, steps, self_diff: selfDiff,
                  ...compare(ref, rows, meta.tokens, meta.prompt_tokens, c.tol) };
      if (meta.n_vocab !== ref.n) { r.ok = false; r.note += ` n_vocab ${meta.n_vocab} vs ${ref.n}`; }
      // llama.cpp disagreeing with itself by more than the tolerance (its batched GEMM and its
      // one-row kernels round differently): the batched row is held to that noise floor instead.
      const floor = 2 * selfDiff + c.tol;  // a divergence is a tie at this level only where llama.cpp's top-2 gap is below it
      if (!r.ok && mode === 'batched' && r.prompt_ok && selfDiff > c.tol && r.max_diff <= floor && (r.agree === steps || r.gap <= floor)) {
        r.ok = true;
        r.note += ` (noise floor: llama.cpp's own batched vs single-token logits differ by ${selfDiff.toExponential(2)})`;
      }
      if (!r.ok && !mutant) failures++;
      results.push(r);
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${c.name}${mutant ? ` (mutant ${mutant})` : ''} [${engine}, ${pname}, ${r.prompt_tokens} tokens, ${mode}]: greedy ${r.agree}/${steps}, ` +
                  `max |dlogit| ${r.max_diff.toExponential(2)} (tol ${c.tol}, llama.cpp self ${selfDiff.toExponential(2)}) ${r.note}`);
    }
    if (refBatched.mtpRows) {
      // The MTP head in both modes: pairs one at a time (to llama.cpp's one-at-a-time decodes: the
      // tolerance) and as one batch (to its batch: within its own batched-vs-single difference).
      const mtpSelf = compareMtp(refBatched.mtpRows, refSingle.mtpRows, c.tol).max_diff;
      for (const [mode, ref, batch] of [['single', refSingle, 1], ['batched', refBatched, 0]]) {
        const out = path.join(work, 'logits.bin');
        await timed(`cli MTP ${pname} ${mode}`, () => run(rill, ['logits', '-m', modelPath, '-p', prompt, '-n', String(steps), '--out', out, '-c', '1024', '-t', '2',
                                            '--batch', String(batch), '--mtp-out', out + '.mtp']));
        const rows = readRows(out + '.mtp', ref.n);
        if (mode === 'batched' || pname === 'short') hashRows('cli, MTP head', rows);
        const m = compareMtp(ref.mtpRows, rows, mode === 'batched' ? Math.max(c.tol, 2 * mtpSelf + c.tol) : c.tol);
        if (mode === 'batched' && mtpSelf > c.tol) m.note += ` (noise floor: llama.cpp's own batched vs one-at-a-time MTP logits differ by ${mtpSelf.toExponential(2)})`;
        const r = { config: c.name, mutant: '', engine: 'cli', prompt: pname, mode: `MTP drafts, ${mode}`, prompt_tokens: ref.tokens.length, tol: c.tol,
                    steps: m.rows, self_diff: mtpSelf, prompt_ok: true, ...m };
        if (!r.ok) failures++;
        results.push(r);
        console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${c.name} [cli, ${pname}, MTP draft logits at ${m.rows} positions, ${mode}]: same draft ${m.agree}/${m.rows}, ` +
                    `max |dlogit| ${m.max_diff.toExponential(2)} (tol ${c.tol}, llama.cpp self ${mtpSelf.toExponential(2)}) ${m.note}`);
      }
    }
  }
  if (!keep) fs.rmSync(modelPath, { force: true });
}
if (!keep) fs.rmSync(work, { recursive: true, force: true });
for (const e of Object.values(jsEngines)) await e.dispose();

console.log('\n| config | engine | prompt | mode | prompt tokens | greedy agreement | max abs dlogit | tolerance | llama.cpp batched vs single |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.config}${r.mutant ? ` (mutant ${r.mutant})` : ''} | ${r.engine} | ${r.prompt} | ${r.mode} | ${r.prompt_tokens}${r.prompt_ok ? '' : ' (differ)'} | ${r.agree}/${r.steps}${r.tie ? ' (tie)' : ''} | ${r.max_diff.toExponential(2)} | ${r.tol} | ${r.self_diff.toExponential(2)} |`);
const runtimes = Object.fromEntries(Object.entries(jsEngines).map(([k, e]) => [k, e.runtime]));
console.log('\n| logits of | rows | sha256 (first 16 hex digits) |\n|---|---|---|');
for (const [k, h] of Object.entries(hashes)) {
  const what = k === 'cli' ? 'cli (native, scalar reference)' : k === 'cli, MTP head' ? 'cli, MTP draft logits (native, scalar reference)' : runtimes[k] ? `${k} (wasm ${runtimes[k].kernels}, madd ${runtimes[k].maddFused ? 'fused' : 'NOT fused: host-specific'})` : k;
  console.log(`| ${what} | ${h.rows} | ${h.hash.digest('hex').slice(0, 16)} |`);
}
console.log(`time: ${Object.entries(seconds).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}`);
fs.mkdirSync(path.join(root, 'build'), { recursive: true });
if (mutants.length) {
  // A mutant is killed when at least one of its rows fails; the control (no mutant) must pass.
  console.log('\n| mutant | rows failing | largest max abs dlogit | greedy agreement (worst) | verdict |\n|---|---|---|---|---|');
  let survived = 0;
  for (const m of mutants) {
    const rs = results.filter((r) => r.mutant === m);
    const bad = rs.filter((r) => !r.ok);
    if (!bad.length) survived++;
    console.log(`| ${m} | ${bad.length}/${rs.length} | ${Math.max(...rs.map((r) => r.max_diff)).toExponential(2)} | ` +
                `${Math.min(...rs.map((r) => r.agree))}/${steps} | ${bad.length ? 'killed' : 'SURVIVED'} |`);
  }
  const control = results.filter((r) => !r.mutant);
  console.log(`control (the mutant build with no mutation): ${control.length - failures}/${control.length} rows pass`);
  fs.writeFileSync(path.join(root, 'build/golden-mutants.json'), JSON.stringify(results, null, 1));
  console.log(`mutants: ${mutants.length - survived} passed, ${survived + (failures ? 1 : 0)} failed`);
  process.exit(survived || failures ? 1 : 0);
}
fs.writeFileSync(path.join(root, 'build/golden-results.json'), JSON.stringify(results, null, 1));
console.log(`golden: ${results.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
