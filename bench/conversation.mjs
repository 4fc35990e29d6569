// A scripted chat of 6 turns (~300 tokens of user text per turn, 48-token replies) through the
// npm package, with prefix reuse (the default) and without (reusePrefix: false): time to first
// token per turn and prompt tokens evaluated. Prints a table, writes
// bench/results/<date>-<cpu kind>-conversation.json.
//
//   node bench/conversation.mjs [--model qwen35-0.8b] [--engines rill-node,rill-chromium] [--threads 2] [--repeats 1]
import fs from 'node:fs';
import path from 'node:path';
import { closeBrowser, withPageEngine } from './browser.mjs';
import { ensureModels, modelPath, root } from './models.mjs';
import { machine, resultPath } from './host.mjs';
import { stat } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const threads = Number(opt('--threads', 2));
const repeats = Number(opt('--repeats', 1));
const model = opt('--model', 'qwen35-0.8b');
const engines = opt('--engines', 'rill-node,rill-chromium').split(',');
ensureModels([model]);

// The conversation, run on a loaded engine (in Node, or as source text in the page).
async function converse(e, { reusePrefix, turns, replyTokens }) {
  const paragraph = (t) => Array.from({ length: 12 }, (_, i) =>
    `Turn ${t}, note ${i + 1}: the river carries ${t * 13 + i * 7} tonnes of silt past the mill.`).join(' ');
  const messages = [{ role: 'system', content: 'You are a careful assistant who answers briefly.' }];
  const out = [];
  for (let t = 0; t < turns; ++t) {
    messages.push({ role: 'user', content: paragraph(t) });
    const t0 = performance.now();
    const c = e.chat(messages, { maxTokens: replyTokens, temperature: 0, reusePrefix, templateVariables: { enable_thinking: false } });
    let first = null;
    for await (const _ of c) if (first === null) first = performance.now() - t0;
    const r = await c.result;
    out.push({ turn: t + 1, ttft_ms: first ?? r.timings.promptMs, prompt_tokens: r.promptTokens, evaluated: r.promptTokens - r.reusedTokens,
      prompt_ms: r.timings.promptMs });
    messages.push({ role: 'assistant', content: r.text });
  }
  return out;
}
const O = { turns: 6, replyTokens: 48 };

async function rillNode(reusePrefix) {
  const { createEngine } = await import('../bindings/js/index.js');
  const e = await createEngine({ threads });
  await e.load(fs.readFileSync(modelPath(model)), { contextSize: 4096 });
  try { return await converse(e, { ...O, reusePrefix }); } finally { await e.dispose(); }
}

async function rillChromium(reusePrefix) {
  return (await withPageEngine({ url: `/bench/models/${model}.gguf`, threads, contextSize: 4096, fn: converse, o: { ...O, reusePrefix } })).result;
}
const RUNNERS = { 'rill-node': rillNode, 'rill-chromium': rillChromium };

const samples = {};  // `${engine}|${reuse}|${turn}` -> [{...}]
for (let rep = 0; rep < repeats; rep++)
  for (const engine of engines)
    for (const reuse of rep % 2 ? [false, true] : [true, false]) {
      const t0 = Date.now();
      const turns = await RUNNERS[engine](reuse);
      for (const t of turns) (samples[`${engine}|${reuse}|${t.turn}`] ??= []).push(t);
      console.error(`bench: ${engine} reuse=${reuse}: turn 6 first token after ${turns.at(-1).ttft_ms.toFixed(0)} ms (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
await closeBrowser();

const rows = Object.entries(samples).map(([k, v]) => {
  const [engine, reuse, turn] = k.split('|');
  return { engine, reuse: reuse === 'true', turn: Number(turn), ttft_ms: stat(v.map((x) => x.ttft_ms)), prompt_tokens: v[0].prompt_tokens,
    evaluated_tokens: v[0].evaluated };
});
const result = { date: new Date().toISOString(), machine: machine(),
  model, threads, repeats, reply_tokens: O.replyTokens, conversation: rows };
const out = opt('--out', resultPath(result.date, 'conversation'));
fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');

console.log(`\nConversation, ${model}, ${result.machine.cpu}, ${threads} threads, ${repeats} repeat(s): time to first token (ms) and prompt tokens evaluated / in the prompt\n`);
console.log('| engine | turn | with reuse | without | tokens evaluated with reuse | without |');
console.log('|---|---|---|---|---|---|');
for (const engine of engines)
  for (let t = 1; t <= O.turns; ++t) {
    const a = rows.find((r) => r.engine === engine && r.reuse && r.turn === t), b = rows.find((r) => r.engine === engine && !r.reuse && r.turn === t);
    if (a && b) console.log(`| ${engine} | ${t} | ${a.ttft_ms.median.toFixed(0)} | ${b.ttft_ms.median.toFixed(0)} | ${a.evaluated_tokens} / ${a.prompt_tokens} | ${b.evaluated_tokens} / ${b.prompt_tokens} |`);
  }
for (const engine of engines) {
  const get = (reuse, t) => rows.find((r) => r.engine === engine && r.reuse === reuse && r.turn === t)?.ttft_ms.median;
  if (get(true, 1)) console.log(`${engine}: turn 6 / turn 1 time to first token: ${(get(true, 6) / get(true, 1)).toFixed(2)}x with reuse, ${(get(false, 6) / get(false, 1)).toFixed(2)}x without`);
}
console.log(`Results: ${path.relative(root, out)}`);
