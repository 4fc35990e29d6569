// Speculative decoding with Qwen 3.5's MTP head, measured at controlled acceptance rates: random
// weights make the head's drafts almost always wrong, so the mechanism is measured with drafts
// replayed from a previous greedy run of the same model, a fraction 1 - p of them replaced by wrong
// tokens (p = 1.0, 0.8, 0.6, 0.0), for k = 1..3 drafts per step and the adaptive default; then with
// the real MTP head (its draft cost). Greedy, 2 threads, Node and Chromium, engines and models
// interleaved over the repeats. Prints tables, writes bench/results/<date>-<cpu kind>-speculative.json
// ("speculative": one entry per engine, model, draft_tokens and acceptance, as the issue asks).
//
//   node bench/speculative.mjs [--models qwen35-0.8b-mtp,qwen35-0.8b-q4_k_m-mtp] [--engines rill-node,rill-chromium]
//                              [--threads 2] [--repeats 2] [--tokens 96]
import fs from 'node:fs';
import path from 'node:path';
import { closeBrowser, withPageEngine } from './browser.mjs';
import { ensureModels, modelPath, root } from './models.mjs';
import { machine, resultPath } from './host.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const threads = Number(opt('--threads', 2));
const repeats = Number(opt('--repeats', 2));
const nTokens = Number(opt('--tokens', 96));
const modelNames = opt('--models', 'qwen35-0.8b-mtp,qwen35-0.8b-q4_k_m-mtp').split(',');
const engines = opt('--engines', 'rill-node,rill-chromium').split(',');
const ACCEPTANCES = [1.0, 0.8, 0.6, 0.0];
const KS = [1, 2, 3];
ensureModels(modelNames);

// One engine's measurements on a loaded model (runs in Node or, as source text, in the page).
async function measure(e, { nTokens, acceptances, ks }) {
  const prompt = Array.from({ length: 16 }, (_, i) => 1000 + ((i * 7919) % 5000));
  const gen = (o) => e._generate({ tokens: prompt }, { maxTokens: nTokens, temperature: 0, ...o }).result;
  const row = (r, extra) => ({ ...extra, tok_s: r.timings.generateTokensPerSecond, tokens: r.tokens.length, steps: r.timings.steps,
    drafted: r.timings.draftTokens, accepted: r.timings.acceptedDraftTokens, draft_ms: r.timings.draftMs,
    verify_ms_per_step: r.timings.verifyMs / r.timings.steps });
  await gen({ speculative: false, maxTokens: 8 });  // warm-up
  const base = await gen({ speculative: false });
  const truth = [...prompt, ...base.tokens];
  const same = (r) => r.tokens.length === base.tokens.length && r.tokens.every((t, i) => t === base.tokens[i]);
  const out = { baseline: row(base, {}), runs: [] };
  for (const acceptance of acceptances) {
    await e._replayDrafts(truth, acceptance);
    for (const k of [...ks, 0]) {  // 0: the adaptive default (how many drafts each step, by measured acceptance and cost)
      const r = await gen(k ? { draftTokens: k } : {});
      out.runs.push(row(r, { k: k || 'auto', acceptance, identical: same(r) }));
    }
  }
  await e._replayDrafts(null);
  for (const k of [...ks, 0]) {  // 0: the adaptive default
    const r = await gen(k ? { draftTokens: k } : {});
    out.runs.push(row(r, { k: k || 'auto', acceptance: 'mtp', identical: same(r) }));
  }
  return out;
}

async function rillNode(model) {
  const { createEngine } = await import('../bindings/js/index.js');
  const e = await createEngine({ threads });
  await e.load(fs.readFileSync(modelPath(model)), { contextSize: 1024 });
  try { return { build: e.runtime.kernels, ...(await measure(e, { nTokens, acceptances: ACCEPTANCES, ks: KS })) }; } finally { await e.dispose(); }
}

async function rillChromium(model) {
  const { build, result } = await withPageEngine({ url: `/bench/models/${model}.gguf`, threads, contextSize: 1024, fn: measure,
    o: { nTokens, acceptances: ACCEPTANCES, ks: KS } });
  return { build, ...result };
}
const RUNNERS = { 'rill-node': rillNode, 'rill-chromium': rillChromium };

const samples = {};  // `${engine}|${model}|${k}|${acceptance}` -> [{ tok_s, baseline, ... }]
const builds = {};
for (let rep = 0; rep < repeats; rep++) {
  for (const model of modelNames) {
    for (const engine of rep % 2 ? [...engines].reverse() : engines) {
      const t0 = Date.now();
      let r;
      try { r = await RUNNERS[engine](model); } catch (err) { console.error(`bench: ${engine} on ${model}: ${err.message}`); continue; }
      builds[`${engine}|${model}`] = r.build;
      for (const run of r.runs) (samples[`${engine}|${model}|${run.k}|${run.acceptance}`] ??= []).push({ ...run, baseline: r.baseline });
      console.error(`bench: repeat ${rep + 1}/${repeats} ${engine} ${model}: baseline ${r.baseline.tok_s.toFixed(2)} tok/s (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
}
await closeBrowser();

const speculative = [];
for (const [key, v] of Object.entries(samples)) {
  const [engine, model, k, acc] = key.split('|');
  speculative.push({
    engine, model, draft_tokens: k === 'auto' ? 'auto' : Number(k), acceptance: acc === 'mtp' ? 'mtp' : Number(acc),
    decode_tok_s: stat(v.map((x) => x.tok_s)), baseline_decode_tok_s: stat(v.map((x) => x.baseline.tok_s)),
    speedup: stat(v.map((x) => x.tok_s / x.baseline.tok_s)),
    // a verify batch of k + 1 tokens against one plain token's eval, same run
    verify_cost_vs_one_token: stat(v.map((x) => x.verify_ms_per_step / x.baseline.verify_ms_per_step)),
    draft_ms_per_draft: stat(v.map((x) => (x.drafted ? x.draft_ms / x.drafted : 0))),
    accepted_fraction: stat(v.map((x) => (x.drafted ? x.accepted / x.drafted : 0))),
    identical_to_plain_greedy: v.every((x) => x.identical),
    repeats: v.length,
  });
}
const result = {
  date: new Date().toISOString(),
  machine: machine(),
  threads, repeats, generated_tokens: nTokens, builds, speculative,
};
const out = opt('--out', resultPath(result.date, 'speculative'));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');

const f = (s, d = 2) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
console.log(`\nSpeculative decoding, ${result.machine.cpu} [${result.machine.cpu_flags.join(' ')}], ${threads} threads, ${repeats} repeats, ${nTokens} tokens, greedy (median (min-max))\n`);
console.log('| model | engine | drafts k | acceptance | decode tok/s | without speculation | speedup | verify batch / one token | draft ms | accepted | output identical |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const s of speculative)
  console.log(`| ${s.model} | ${s.engine} | ${s.draft_tokens} | ${s.acceptance} | ${f(s.decode_tok_s)} | ${f(s.baseline_decode_tok_s)} | ${f(s.speedup)}x | ` +
              `${f(s.verify_cost_vs_one_token)} | ${s.draft_ms_per_draft.median.toFixed(1)} | ${(100 * s.accepted_fraction.median).toFixed(0)}% | ${s.identical_to_plain_greedy ? 'yes' : 'NO'} |`);
console.log(`Results: ${path.relative(root, out)}`);
