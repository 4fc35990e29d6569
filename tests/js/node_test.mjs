// The npm package (bindings/js) in Node 24, in both wasm builds: every way of loading a
// model, streaming completions equal to the native CLI's tokens, chat through the model's
// template, stop strings, AbortSignal, and clear errors for bad input and misuse (the
// malformed-GGUF corpus, an unknown architecture, a prompt longer than the context, a model
// too big for wasm32 memory, calls before load and after unload/dispose), after each of
// which the engine keeps working; and speculative decoding with an MTP layer: the same greedy
// tokens (as the CLI's) with any draft count and with drafts right or wrong, stopping inside an
// accepted run, its option errors and timings.
//
//   node tests/js/node_test.mjs [--rill build/native/rill] [--build relaxed,simd]
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createEngine, renderChat } from '../../bindings/js/index.js';
import { run } from './run.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const builds = opt('--build', 'relaxed,simd').split(',');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-node-'));
const vocab = path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf');
const PROMPT = 'The history of the river begins';
const N = 20;

let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };
async function rejects(promise, re, what) {
  try { await promise; check(false, `${what}: no error`); } catch (e) { check(re.test(e.message), `${what}: ${e.message}`); }
}

const model = path.join(work, 'model.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', vocab, '--out', model, '--seed', '5', '--tied', '--type', 'q8_0']);
const cli = JSON.parse(run(rill, ['generate', '-m', model, '-p', PROMPT, '-n', String(N), '--temp', '0', '--json', '-c', '256']));
const expected = cli.tokens.length < N ? cli.tokens.slice(0, -1) : cli.tokens;
// The same shape with Qwen 3.5's MTP block: the CLI's plain greedy tokens are the reference.
const mtpModel = path.join(work, 'mtp.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', vocab, '--out', mtpModel, '--seed', '6', '--tied', '--type', 'q8_0', '--mtp']);
// Llama (attention only) for the prefix-reuse conversation.
const llamaModel = path.join(work, 'llama.gguf');
run(rill, ['synth', '--arch', 'llama', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-llama-spm.gguf'), '--out', llamaModel,
  '--seed', '7', '--type', 'q8_0']);
const N_MTP = 40;
const cliMtp = JSON.parse(run(rill, ['generate', '-m', mtpModel, '-p', PROMPT, '-n', String(N_MTP), '--temp', '0', '--json', '-c', '256', '--no-spec']));
const expectedMtp = cliMtp.tokens.length < N_MTP ? cliMtp.tokens.slice(0, -1) : cliMtp.tokens;

// An architecture Rill does not run: the same file with general.architecture renamed.
const unknownArch = path.join(work, 'unknown.gguf');
{
  const b = fs.readFileSync(model);
  const k = b.indexOf('general.architecture');
  const v = b.indexOf('qwen35', k);
  b.write('mamba9', v);
  fs.writeFileSync(unknownArch, b);
}
// Bigger than wasm32 can address (sparse: costs no disk).
const huge = path.join(work, 'huge.gguf');
fs.closeSync(fs.openSync(huge, 'w'));
fs.truncateSync(huge, 5 * 2 ** 30);

const server = http.createServer((req, res) => {
  if (req.url === '/model.gguf') {
    res.writeHead(200, { 'Content-Length': fs.statSync(model).size });
    fs.createReadStream(model).pipe(res);
  } else { res.writeHead(404); res.end(); }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;

try {
  for (const build of builds) {
    const engine = await createEngine({ threads: 2, build });
    const tag = `[node, ${engine.runtime.kernels}]`;
    check(engine.runtime.build === build, `${tag} runs the requested build`);
    await rejects(engine.tokenize('x'), /no model is loaded/, `${tag} tokenize before load`);

    // every source kind, same model
    let last;
    const info = await engine.load(model, { contextSize: 256, onProgress: (p) => { last = p; } });
    check(info.architecture === 'qwen35' && info.nCtx === 256 && last.loaded === last.total, `${tag} load from a path (${info.loadMs.toFixed(0)} ms, progress ${last.loaded}/${last.total})`);
    const greedy = async () => {
      const c = engine.complete(PROMPT, { maxTokens: N, temperature: 0 });
      const pieces = [];
      for await (const p of c) pieces.push(p);
      const r = await c.result;
      return { r, pieces };
    };
    let { r, pieces } = await greedy();
    check(JSON.stringify(r.tokens) === JSON.stringify(expected), `${tag} greedy tokens equal the native CLI's` +
      (JSON.stringify(r.tokens) === JSON.stringify(expected) ? '' : `\n   node ${r.tokens}\n   cli  ${expected}`));
    check(pieces.join('') === r.text && r.text === cli.text.slice(0, r.text.length), `${tag} streamed pieces join to the CLI's text`);
    check(r.promptTokens === cli.prompt_tokens.length && r.timings.generateTokensPerSecond > 0, `${tag} result carries counts and timings`);
    for (const [kind, src] of [['bytes', new Uint8Array(fs.readFileSync(model))], ['file URL', pathToFileURL(model)], ['http URL', `${url}/model.gguf`],
      ['Blob', new Blob([fs.readFileSync(model)])]]) {
      await engine.load(src, { contextSize: 256, cache: false });  // the model cache has its own test
      ({ r } = await greedy());
      check(JSON.stringify(r.tokens) === JSON.stringify(expected), `${tag} load from ${kind} gives the same tokens`);
    }

    // stop strings, seeds, abort
    const full = r.text;
    const stopAt = full.slice(5, 9);
    const s = await engine.complete(PROMPT, { maxTokens: N, temperature: 0, stop: [stopAt] }).result;
    check(s.stopReason === 'stop' && s.text === full.slice(0, full.indexOf(stopAt)), `${tag} a stop string ends the text before it (${JSON.stringify(stopAt)})`);
    const a1 = await engine.complete(PROMPT, { maxTokens: 12, temperature: 1, seed: 42 }).result;
    const a2 = await engine.complete(PROMPT, { maxTokens: 12, temperature: 1, seed: 42 }).result;
    check(JSON.stringify(a1.tokens) === JSON.stringify(a2.tokens), `${tag} a seed reproduces a sampled completion`);
    const ac = new AbortController();
    ac.abort();
    const ab = await engine.complete(PROMPT, { maxTokens: 50, signal: ac.signal }).result;
    check(ab.stopReason === 'abort' && ab.generatedTokens === 0, `${tag} an aborted signal stops before the first token`);
    const c3 = engine.complete(PROMPT, { maxTokens: 200, temperature: 0 });
    let n = 0;
    for await (const _ of c3) if (++n === 2) break;  // leaving the loop stops generation
    const r3 = await c3.result;
    check(r3.stopReason === 'abort' && r3.generatedTokens < 10, `${tag} breaking out of for-await stops generation (${r3.generatedTokens} tokens)`);

    // tokenizer and chat
    const ids = await engine.tokenize('Hello, world! 你好');
    check(await engine.detokenize(ids) === 'Hello, world! 你好', `${tag} tokenize/detokenize round trip`);
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }];
    const rendered = engine.renderChat(messages, { templateVariables: { enable_thinking: false } });
    check(rendered.text === renderChat(info.chatTemplate, { messages, add_generation_prompt: true, bos_token: info.bosText || '', eos_token: info.eosText || '', enable_thinking: false }) &&
      rendered.text.includes('<|im_start|>user\nHi!<|im_end|>'), `${tag} chat renders the GGUF's template`);
    const chat = engine.chat(messages, { maxTokens: 8, temperature: 0, templateVariables: { enable_thinking: false } });
    let chatText = '';
    for await (const p of chat) chatText += p;
    const cr = await chat.result;
    check(cr.text === chatText && cr.promptTokens > 10 && cr.prompt === rendered.text, `${tag} chat streams (${cr.promptTokens} prompt tokens)`);
    const logits = await engine.logits();
    check(logits instanceof Float32Array && logits.length === info.nVocab, `${tag} logits of the last token (${logits.length})`);
    // A prompt fed one token at a time without logits but for the last: the same logits as with them.
    {
      const pids = await engine.tokenize('The quick brown fox');
      const feed = async (logitsEach) => {
        await engine.reset();
        for (let i = 0; i < pids.length; i++) await engine.evaluate([pids[i]], { logits: logitsEach || i + 1 === pids.length });
        return engine.logits();
      };
      const every = await feed(true), last = await feed(false);
      check(every.every((v, i) => Object.is(v, last[i])), `${tag} evaluate(ids, { logits: false }) leaves the following logits unchanged`);
      await engine.reset();
      await engine.evaluate(pids, { logits: false });
      await rejects(engine.logits(), /no logits/, `${tag} logits() after an evaluation without them`);
      await rejects(engine.evaluate(pids, { logits: 'no' }), /logits must be true or false/, `${tag} evaluate's logits option is checked`);
      await engine.reset();
    }

    // speculative decoding (a file with an MTP layer)
    {
      const mi = await engine.load(mtpModel, { contextSize: 256 });
      check(mi.mtp === true && mi.speculative === true && info.mtp === false, `${tag} info says whether the file has an MTP layer`);
      const same = (t) => JSON.stringify(t) === JSON.stringify(expectedMtp);
      const spec = async (o) => engine.complete(PROMPT, { maxTokens: N_MTP, temperature: 0, ...o }).result;
      const off = await spec({ speculative: false });
      check(same(off.tokens) && off.timings.speculative === false && off.timings.draftTokens === 0, `${tag} speculative: false gives the CLI's greedy tokens, no drafts`);
      for (const k of [1, 2, 3]) {
        const r = await spec({ draftTokens: k });
        check(same(r.tokens) && r.timings.speculative && r.timings.draftTokens >= k * (N_MTP - 2) / 2, `${tag} MTP drafts, k = ${k}: same tokens ` +
          `(${r.timings.draftTokens} drafted, ${r.timings.acceptedDraftTokens} accepted)`);
      }
      const promptIds = await engine.tokenize(PROMPT);
      const truth = [...promptIds, ...expectedMtp];
      for (const acceptance of [1, 0.5, 0]) {
        await engine._replayDrafts(truth, acceptance);
        const r = await spec({ draftTokens: 3 });
        const rate = r.timings.acceptedDraftTokens / r.timings.draftTokens;
        check(same(r.tokens) && Math.abs(rate - acceptance) < 0.3, `${tag} drafts right ${acceptance * 100}% of the time: same tokens, ${(100 * rate).toFixed(0)}% accepted`);
      }
      // Stopping inside an accepted run, then continuing the context: what plain decoding gives.
      await engine._replayDrafts(truth, 1);
      const part = await spec({ draftTokens: 3, maxTokens: 5 });
      const rest = await engine.complete(' and', { maxTokens: 10, temperature: 0, keepContext: true, draftTokens: 3 }).result;
      await engine._replayDrafts(null);
      const partOff = await spec({ speculative: false, maxTokens: 5 });
      const restOff = await engine.complete(' and', { maxTokens: 10, temperature: 0, keepContext: true, speculative: false }).result;
      check(JSON.stringify(part.tokens) === JSON.stringify(partOff.tokens) && JSON.stringify(rest.tokens) === JSON.stringify(restOff.tokens),
        `${tag} stopping inside an accepted run and continuing gives plain decoding's tokens`);
      const sampled = await spec({ temperature: 0.9, seed: 3, draftTokens: 2 });
      check(sampled.tokens.length > 0 && sampled.timings.draftTokens > 0, `${tag} sampling with speculation runs (${sampled.tokens.length} tokens)`);
      await rejects(engine.complete(PROMPT, { draftTokens: 4 }).result, /draftTokens must be an integer from 1 to 3/, `${tag} draftTokens out of range`);
      await rejects(engine.complete(PROMPT, { speculative: 'yes' }).result, /speculative must be true or false/, `${tag} speculative not a boolean`);
      check(same((await spec({})).tokens), `${tag} the engine works after those errors (adaptive drafts)`);
      await engine.load(model, { contextSize: 256 });
    }

    // prefix reuse: a 6-turn chat evaluates only what is new, with the replies of fresh evaluation
    for (const [name, file] of [['qwen35', mtpModel], ['llama', llamaModel]]) {
      await engine.load(file, { contextSize: 2048 });
      const conversation = async (reusePrefix) => {
        const messages = [{ role: 'system', content: 'You answer in one sentence.' }];
        const out = [];
        for (let turn = 0; turn < 6; ++turn) {
          messages.push({ role: 'user', content: `Question ${turn}: what do rivers ${['carry', 'cut', 'feed', 'drain', 'join', 'flood'][turn]}?` });
          const r = await engine.chat(messages, { maxTokens: 12, temperature: 0, reusePrefix, templateVariables: { enable_thinking: false } }).result;
          out.push(r);
          messages.push({ role: 'assistant', content: r.text });
        }
        return out;
      };
      const fresh = await conversation(false);
      const reused = await conversation(true);
      const same = reused.every((r, i) => JSON.stringify(r.tokens) === JSON.stringify(fresh[i].tokens));
      const kept = reused.map((r) => `${r.reusedTokens}/${r.promptTokens}`).join(' ');
      check(same && reused.slice(1).every((r) => r.reusedTokens > r.promptTokens / 2) && fresh.every((r) => r.reusedTokens === 0),
        `${tag} ${name}: a 6-turn chat with prefix reuse gives fresh evaluation's replies, re-reading little (kept ${kept})`);
      const info2 = await engine.contextInfo();
      check(name === 'llama' || info2.checkpoints > 0, `${tag} ${name}: ${info2.checkpoints} checkpoints, ${(info2.checkpointBytes / 1024).toFixed(0)} KB`);
    }
    // state snapshots: a system prompt evaluated once, saved, loaded into another engine
    {
      await engine.load(mtpModel, { contextSize: 2048 });
      const sys = [{ role: 'system', content: 'You are a terse assistant. '.repeat(8) }];
      await engine.chat(sys, { maxTokens: 1, temperature: 0, addGenerationPrompt: false }).result;
      const state = await engine.saveState();
      const ask = [...sys, { role: 'user', content: 'Name a river.' }];
      const want = await engine.chat(ask, { maxTokens: 10, temperature: 0, reusePrefix: false }).result;
      const other = await createEngine({ threads: 2, build });
      await other.load(mtpModel, { contextSize: 2048 });
      const n = await other.loadState(state);
      const got = await other.chat(ask, { maxTokens: 10, temperature: 0 }).result;
      check(n > 50 && JSON.stringify(got.tokens) === JSON.stringify(want.tokens) && got.reusedTokens >= n - 2,
        `${tag} saveState/loadState: ${state.length} bytes, ${n} tokens; the next chat starts from it (${got.reusedTokens} reused) with the same reply`);
      const bad = state.slice();
      bad[bad.length >> 1] ^= 1;
      await rejects(other.loadState(bad), /corrupt/, `${tag} a corrupt state`);
      await other.load(llamaModel, { contextSize: 2048 });
      await rejects(other.loadState(state), /another model/, `${tag} a state of another model`);
      await rejects(other.loadState('nope'), /must be a Uint8Array/, `${tag} a state that is not bytes`);
      const again = await other.chat(ask, { maxTokens: 4, temperature: 0 }).result;
      check(again.tokens.length > 0, `${tag} the engine works after refused states`);
      await other.dispose();
    }
    await engine.load(model, { contextSize: 256 });

    // bad options: a TypeError or RangeError naming the option and its range, before anything runs
    for (const [o, type, re] of [[{ temperature: NaN }, RangeError, /temperature must be a finite number >= 0/], [{ temperature: -1 }, RangeError, /temperature/],
      [{ topP: 5 }, RangeError, /topP must be a finite number in \(0, 1\]/], [{ topP: 0 }, RangeError, /topP/], [{ minP: -1 }, RangeError, /minP must be a finite number in \[0, 1\]/],
      [{ maxTokens: -1 }, RangeError, /maxTokens must be an integer >= 0/], [{ maxTokens: 2.5 }, RangeError, /maxTokens/], [{ topK: 'abc' }, TypeError, /topK must be a number/],
      [{ stop: 42 }, TypeError, /stop must be a string or an array of strings/], [{ stop: ['a', 3] }, TypeError, /stop/], [{ seed: -3 }, RangeError, /seed/],
      [{ repeatPenalty: 0 }, RangeError, /repeatPenalty must be a finite number > 0/], [{ keepContext: 'yes' }, TypeError, /keepContext must be true or false/],
      [{ signal: {} }, TypeError, /signal must be an AbortSignal/], [{ presencePenalty: Infinity }, RangeError, /presencePenalty/]]) {
      let err = null;
      try { await engine.complete(PROMPT, o).result; } catch (e) { err = e; }
      check(err instanceof type && re.test(err.message), `${tag} ${JSON.stringify(o, (k, v) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v))} rejects: ${err && err.name}: ${err && err.message}`);
    }
    await rejects(engine.chat('hi', {}).result, /messages must be an array/, `${tag} chat with a string`);
    let loadErr = null;
    try { await engine.load(model, { contextSize: -5 }); } catch (e) { loadErr = e; }
    check(loadErr instanceof RangeError && /contextSize/.test(loadErr.message), `${tag} contextSize -5 rejects: ${loadErr && loadErr.message}`);
    await rejects(engine.load(model, { contextSize: 2 ** 26 }), /needs \d+ MB for its caches/, `${tag} a context whose caches do not fit wasm32 memory`);
    await engine.load(model, { contextSize: 256 });

    // bad input: a clear error, and the engine still works afterwards
    await rejects(engine.complete('word '.repeat(300), { maxTokens: 4 }).result, /does not fit/, `${tag} prompt longer than the context`);
    await rejects(engine.load(unknownArch), /architecture 'mamba9'/, `${tag} unknown architecture`);
    await rejects(engine.load(huge), /wasm32/, `${tag} model too big for wasm32`);
    await rejects(engine.load(path.join(work, 'missing.gguf')), /no such file/, `${tag} missing file`);
    const corpus = path.join(root, 'tests/data/malformed');
    let corpusOk = 0, corpusN = 0;
    for (const line of fs.readFileSync(path.join(corpus, 'EXPECTED.tsv'), 'utf8').trim().split('\n')) {
      const [file, msg] = line.split('\t');
      corpusN++;
      try { await engine.load(path.join(corpus, file)); console.log(`   ${file}: loaded!`); } catch (e) {
        if (e.message.includes(msg)) corpusOk++; else console.log(`   ${file}: "${e.message}" lacks "${msg}"`);
      }
    }
    check(corpusOk === corpusN, `${tag} malformed GGUF corpus: ${corpusOk}/${corpusN} rejected with their messages`);
    await engine.load(model, { contextSize: 256 });
    ({ r } = await greedy());
    check(JSON.stringify(r.tokens) === JSON.stringify(expected), `${tag} the engine works after all those errors`);
    await engine.unload();
    await rejects(engine.complete('x').result, /no model is loaded/, `${tag} completion after unload`);
    await engine.dispose();
    await rejects(engine.tokenize('x'), /disposed/, `${tag} call after dispose`);
  }
} finally {
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`node package: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
