// Decode speed with and without a structured-output constraint, on Qwen3.5-0.8B's shape (248k
// vocabulary: 152k real tokens and the padding a real file has), Node, the package's default
// sampling. Each constrained run is paired with an unconstrained one of the same length in the
// same repeat (interleaved: the machine is shared and noisy), and the table reports the ratio.
// Constraints: a JSON Schema whose replies are mostly structure (an array of small objects) and
// one whose replies are mostly strings (the mask is walked once per string and then kept), each
// with top-k (only the best candidates are checked) and with the whole distribution sampled (no
// top-k: a mask every token).
// Writes bench/results/<date>-<cpu kind>-structured.json.
//
//   node bench/structured.mjs [--model qwen35-0.8b] [--threads 2] [--repeats 3] [--tokens 64]
import fs from 'node:fs';
import { ensureModels, modelPath } from './models.mjs';
import { machine, resultPath } from './host.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const threads = Number(opt('--threads', 2));
const repeats = Number(opt('--repeats', 3));
const nTokens = Number(opt('--tokens', 64));
const model = opt('--model', 'qwen35-0.8b');
ensureModels([model]);

// At least 100 items (ids, booleans, enums): every reply runs to maxTokens.
const STRUCTURE = { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, ok: { type: 'boolean' },
  tag: { enum: ['a', 'b', 'c'] } }, required: ['id', 'ok', 'tag'] }, minItems: 100 };
const STRINGS = { type: 'array', items: { type: 'string' }, minItems: 100 };
const CASES = [
  { name: 'schema, mostly structure', options: { responseFormat: { type: 'json_schema', schema: STRUCTURE } } },
  { name: 'schema, mostly strings', options: { responseFormat: { type: 'json_schema', schema: STRINGS } } },
  { name: 'schema, mostly structure, no top-k', options: { responseFormat: { type: 'json_schema', schema: STRUCTURE }, topK: 0, topP: 1, minP: 0 } },
  { name: 'schema, mostly strings, no top-k', options: { responseFormat: { type: 'json_schema', schema: STRINGS }, topK: 0, topP: 1, minP: 0 } },
];

const { createEngine } = await import('../bindings/js/index.js');
const e = await createEngine({ threads });
await e.load(fs.readFileSync(modelPath(model)), { contextSize: 1024 });
const prompt = 'Reply in JSON:';
const gen = (o) => e.complete(prompt, { maxTokens: nTokens, seed: 7, speculative: false, ...o }).result;
await gen({ maxTokens: 8 });  // warm-up
await gen({ maxTokens: 8, ...CASES[0].options });  // the vocabulary index is made on first use

const runs = CASES.map(() => ({ constrained: [], plain: [], ratio: [], tokens: [], stop: [] }));
for (let r = 0; r < repeats; r++) {
  for (const [i, c] of CASES.entries()) {
    const a = await gen(c.options);
    // the same number of tokens, unconstrained, with the same sampling settings
    const { responseFormat, ...sampling } = c.options;
    const b = await gen({ ...sampling, maxTokens: a.tokens.length });
    const ca = a.timings.generateTokensPerSecond, cb = b.timings.generateTokensPerSecond;
    runs[i].constrained.push(ca);
    runs[i].plain.push(cb);
    runs[i].ratio.push(ca / cb);
    runs[i].tokens.push(a.tokens.length);
    runs[i].stop.push(a.stopReason);
    console.error(`bench: ${c.name}, repeat ${r + 1}: ${ca.toFixed(2)} vs ${cb.toFixed(2)} tok/s (${a.tokens.length} tokens, ${a.stopReason}) ${JSON.stringify(a.text.slice(0, 60))}`);
  }
}
await e.dispose();

const result = {
  date: new Date().toISOString(),
  machine: machine(),
  model, threads, repeats, tokens: nTokens, runtime: 'node', sampling: 'package defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) unless the case says',
  structured: CASES.map((c, i) => ({
    case: c.name, options: c.options,
    constrained_tok_s: stat(runs[i].constrained), plain_tok_s: stat(runs[i].plain), ratio: stat(runs[i].ratio),
    tokens: runs[i].tokens, stop: runs[i].stop,
  })),
};
const out = opt('--out', resultPath(result.date, 'structured'));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');

const f = (s, d = 2) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
console.log(`\nStructured output, ${model}, ${result.machine.cpu} [${result.machine.cpu_flags.join(' ')}], Node, ${threads} threads, ${repeats} repeats, up to ${nTokens} tokens (median (min-max))\n`);
console.log('| constraint | constrained tok/s | unconstrained tok/s | ratio |');
console.log('|---|---|---|---|');
for (const s of result.structured) console.log(`| ${s.case} | ${f(s.constrained_tok_s)} | ${f(s.plain_tok_s)} | ${f(s.ratio)} |`);
console.log(`\nwrote ${out}`);
