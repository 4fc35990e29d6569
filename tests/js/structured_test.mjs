// Structured output through the npm package: with a random-weight model (an adversarial
// sampler: its next-token distribution knows nothing of JSON) every reply constrained by a JSON
// Schema of the corpus (tests/js/schemas.json) parses and validates against it with ajv, at
// several temperatures and seeds, in both wasm builds; json_object replies are objects; GBNF
// grammars (llama.cpp's and small ones) are followed; the native CLI's --json-schema agrees;
// and bad grammars, unsupported schema keywords and wrong options are refused by name, after
// which the engine keeps working.
//
//   node tests/js/structured_test.mjs [--rill build/native/rill] [--build relaxed,simd]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { createEngine } from '../../bindings/js/index.js';
import { run } from './run.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const builds = opt('--build', 'relaxed,simd').split(',');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-structured-'));
const corpus = JSON.parse(fs.readFileSync(path.join(root, 'tests/js/schemas.json'), 'utf8'));
const grammars = path.join(root, '.cache/llama.cpp/grammars');

let failures = 0;
const check = (ok, what) => { if (!ok) { console.log(`FAIL ${what}`); failures++; } return ok; };
const pass = (what) => console.log(`ok   ${what}`);
async function rejects(promise, re, what, type) {
  try {
    await promise;
    check(false, `${what}: no error`);
  } catch (e) {
    if (check(re.test(e.message) && (!type || e instanceof type), `${what}: ${e.constructor.name}: ${e.message}`)) pass(`${what}: ${e.message}`);
  }
}

// A random-weight Qwen 3.5 with the Qwen vocabulary (152k tokens, byte-level BPE: tokens that
// hold quotes, braces and split UTF-8 characters). Its output matrix is its own: with the
// embeddings tied, a random model's residual stream makes it repeat its last token.
const model = path.join(work, 'qwen35.gguf');
run(rill, ['synth', '--arch', 'qwen35', '--vocab', path.join(root, '.cache/llama.cpp/models/ggml-vocab-qwen35.gguf'),
  '--out', model, '--seed', '21', '--type', 'q8_0']);

// Sampling settings: the package's defaults, top-k at a higher temperature, and the whole
// distribution (no top-k, top-p or min-p) at a high temperature. Inside a string nearly every
// token is allowed and a few hundred of 150k close it: under the whole distribution an
// unbounded string runs on for hundreds of tokens, so schemas with unbounded strings (and any
// JSON) run with top-k, where a random model draws a closing token every dozen or so.
const SETTINGS = [
  { temperature: 0.8, seed: 1 },
  { temperature: 1.2, topK: 40, seed: 2 },
  { temperature: 2.0, topK: 0, topP: 1, minP: 0, seed: 3 },
];
const UNBOUNDED = SETTINGS.slice(0, 2);

// Completes a prefix of a JSON text into a whole one (closing the string, literal, number and
// containers left open), or returns null when the text is no prefix of JSON: the check for a
// reply that maxTokens cut inside an unbounded string.
function closeJson(text) {
  const stack = [];  // '{' or '['
  let inString = false, escape = 0, isKey = false, needColon = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escape > 0) { escape = escape === 1 && c === 'u' ? 4 : escape - 1; continue; }
      if (c === '\\') escape = 1;
      else if (c === '"') { inString = false; needColon = isKey; }
      continue;
    }
    if (c === '"') {
      const before = text.slice(0, i).trimEnd();
      isKey = stack[stack.length - 1] === '{' && /[{,]$/.test(before);
      inString = true;
    } else if (c === '{' || c === '[') stack.push(c);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ':') needColon = false;
  }
  let out = text;
  if (inString) out = out.replace(/\\(u[0-9a-fA-F]{0,3})?$/, '') + '"';
  else {
    const word = /(tru?e?|fa?l?s?e?|nu?l?l?)$/.exec(out);
    if (word && !/[a-z]/.test(out[out.length - word[0].length - 1] || '')) out += { t: 'true', f: 'false', n: 'null' }[word[0][0]].slice(word[0].length);
    if (/[-+.eE]$/.test(out)) out += '0';
  }
  const trimmed = out.trimEnd();
  if ((inString && isKey) || (!inString && needColon)) out += ':null';
  else if (trimmed.endsWith(',')) out = trimmed.slice(0, -1);
  else if (trimmed.endsWith(':')) out += 'null';
  for (let k = stack.length - 1; k >= 0; k--) out += stack[k] === '{' ? '}' : ']';
  try { JSON.parse(out); return out; } catch { return null; }
}
const ajv = new Ajv2020({ strict: false, allErrors: true });
const ajv7 = new (await import('ajv')).default({ strict: false, allErrors: true });
const validator = (schema) => (schema.$schema && schema.$schema.includes('draft-07') ? ajv7 : ajv).compile(schema);

try {
  for (const build of builds) {
    const engine = await createEngine({ threads: 2, build });
    const tag = `[${build}]`;
    await engine.load(model, { contextSize: 1024 });
    const entries = build === builds[0] ? corpus : corpus.slice(10, 20);  // the other build: a part, for time
    let runs = 0, byGrammar = 0, cut = 0;
    const t0 = Date.now();
    for (const { name, schema, unboundedStrings } of entries) {
      const validate = validator(schema);
      for (const s of unboundedStrings ? UNBOUNDED : SETTINGS) {
        const r = await engine.complete('Answer in JSON:', { ...s, maxTokens: 600, responseFormat: { type: 'json_schema', schema } }).result;
        runs++;
        byGrammar += r.stopReason === 'grammar';
        const what = `${tag} ${name} (temperature ${s.temperature}, seed ${s.seed}): ${JSON.stringify(r.text).slice(0, 160)}`;
        if (r.stopReason === 'length' && unboundedStrings) {
          check(closeJson(r.text) !== null, `${what}: cut by maxTokens, and not a prefix of JSON`);
          cut++;
          continue;
        }
        if (!check(r.stopReason === 'grammar' || r.stopReason === 'eos', `${what}: ended by ${r.stopReason}`)) continue;
        let value;
        try { value = JSON.parse(r.text); } catch (e) { check(false, `${what}: not JSON: ${e.message}`); continue; }
        check(validate(value), `${what}: does not fit the schema: ${ajv.errorsText(validate.errors)}`);
      }
    }
    pass(`${tag} ${entries.length} schemas, ${runs - cut} replies parse and validate (${byGrammar} ended by the grammar; ${cut} with unbounded strings cut by maxTokens, and prefixes of JSON), ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // OpenAI's spelling of the same option, and a schema given as a string.
    {
      const schema = corpus.find((c) => c.name === 'person').schema;
      const a = await engine.complete('x', { seed: 4, maxTokens: 300, responseFormat: { type: 'json_schema', json_schema: { name: 'p', schema } } }).result;
      const b = await engine.complete('x', { seed: 4, maxTokens: 300, responseFormat: { type: 'json_schema', schema: JSON.stringify(schema) } }).result;
      if (check(a.text === b.text && validator(schema)(JSON.parse(a.text)), `${tag} json_schema.schema and a schema string: ${a.text} / ${b.text}`))
        pass(`${tag} OpenAI's json_schema.schema and a schema string give the same reply`);
    }
    // Any JSON object.
    for (const seed of [5, 6, 7]) {
      const r = await engine.complete('x', { ...UNBOUNDED[0], seed, maxTokens: 600, responseFormat: { type: 'json_object' } }).result;
      let v = null;
      try { v = JSON.parse(r.stopReason === 'length' ? closeJson(r.text) : r.text); } catch { /* checked below */ }
      if (check(v !== null && typeof v === 'object' && !Array.isArray(v), `${tag} json_object (seed ${seed}): ${JSON.stringify(r.text)} (${r.stopReason})`))
        pass(`${tag} json_object (seed ${seed}) is an object${r.stopReason === 'length' ? ' (cut by maxTokens: its prefix)' : ''}`);
    }
    // GBNF: llama.cpp's grammars and small ones.
    {
      const g = fs.readFileSync(path.join(grammars, 'json.gbnf'), 'utf8');
      const r = await engine.complete('x', { ...UNBOUNDED[0], seed: 8, maxTokens: 600, grammar: g }).result;
      let ok = true;
      try { JSON.parse(r.stopReason === 'length' ? closeJson(r.text) : r.text); } catch { ok = false; }
      if (check(ok, `${tag} json.gbnf: ${JSON.stringify(r.text)} (${r.stopReason})`))
        pass(`${tag} json.gbnf gives JSON${r.stopReason === 'length' ? ' (cut by maxTokens: a prefix)' : ''}`);
      // The prefix check itself refuses what is no prefix of JSON.
      check(closeJson('{"a": tx') === null && closeJson('{"a" 1') === null && closeJson('[1,,') === null && closeJson('{"a": [1, "b\\u00') !== null,
        'closeJson tells prefixes of JSON from other text');
      const list = await engine.complete('x', { seed: 9, topK: 20, maxTokens: 40, grammar: fs.readFileSync(path.join(grammars, 'list.gbnf'), 'utf8') }).result;
      if (check(/^(- [^\r\n:]+\n)*(- [^\r\n:]*)?$/.test(list.text) && list.text.startsWith('- '), `${tag} list.gbnf: ${JSON.stringify(list.text)}`))
        pass(`${tag} list.gbnf is followed (${list.tokens.length} tokens)`);
      const yn = await engine.complete('x', { temperature: 0, grammar: 'root ::= ("yes" | "no") "."' }).result;
      if (check(['yes.', 'no.'].includes(yn.text) && yn.stopReason === 'grammar', `${tag} yes/no: ${JSON.stringify(yn.text)} ${yn.stopReason}`))
        pass(`${tag} a finished grammar ends the reply: ${JSON.stringify(yn.text)}, stopReason 'grammar'`);
      const plain = await engine.complete('x', { temperature: 0, maxTokens: 5 }).result;
      check(plain.stopReason !== 'grammar', `${tag} the constraint does not outlive its reply`);
      const chat = await engine.chat([{ role: 'user', content: 'colour?' }], { seed: 10, maxTokens: 50, responseFormat: { type: 'json_schema', schema: { enum: ['red', 'green'] } } }).result;
      if (check(['"red"', '"green"'].includes(chat.text.trim()), `${tag} chat with responseFormat: ${JSON.stringify(chat.text)}`))
        pass(`${tag} chat() takes responseFormat: ${chat.text.trim()}`);
    }
    // Refusals: named, and the engine goes on.
    await rejects(engine.complete('x', { grammar: 'root ::= "a" (' }).result, /grammar: expected '\)' at line 1/, `${tag} a GBNF syntax error`);
    await rejects(engine.complete('x', { grammar: 'root ::= nope' }).result, /rule 'nope' is used but not defined/, `${tag} an undefined rule`);
    await rejects(engine.complete('x', { responseFormat: { type: 'json_schema', schema: { type: 'string', pattern: '^a+$' } } }).result,
      /keyword 'pattern' at # is not supported/, `${tag} an unsupported schema keyword`);
    await rejects(engine.complete('x', { responseFormat: { type: 'json_schema', schema: { $ref: '#/$defs/none' } } }).result,
      /names a definition the schema does not have/, `${tag} a dangling $ref`);
    await rejects(engine.complete('x', { responseFormat: { type: 'xml' } }).result, /responseFormat.type must be 'text', 'json_object' or 'json_schema'/,
      `${tag} an unknown responseFormat.type`, TypeError);
    await rejects(engine.complete('x', { responseFormat: { type: 'json_schema' } }).result, /needs schema/, `${tag} json_schema without a schema`, TypeError);
    await rejects(engine.complete('x', { responseFormat: { type: 'json_schema', schema: '{oops' } }).result, /not JSON/, `${tag} a schema string that is not JSON`, TypeError);
    await rejects(engine.complete('x', { grammar: 42 }).result, /grammar must be a string/, `${tag} a grammar that is not a string`, TypeError);
    await rejects(engine.complete('x', { grammar: 'root ::= "a"', responseFormat: { type: 'json_object' } }).result, /give one of them/,
      `${tag} grammar and responseFormat together`, TypeError);
    const after = await engine.complete('Answer in JSON:', { seed: 1, maxTokens: 100, responseFormat: { type: 'json_schema', schema: { type: 'boolean' } } }).result;
    if (check(['true', 'false'].includes(after.text.trim()), `${tag} works after the refusals: ${after.text}`)) pass(`${tag} the engine works after the refusals`);
    await engine.dispose();
  }

  // The native CLI: the same converter and matcher.
  const schemaFile = path.join(work, 'schema.json');
  const nested = corpus.find((c) => c.name === 'nested objects').schema;
  fs.writeFileSync(schemaFile, JSON.stringify(nested));
  for (const seed of ['1', '2']) {
    const out = JSON.parse(run(rill, ['generate', '-m', model, '-p', 'x', '-n', '400', '--seed', seed, '--json-schema', schemaFile, '--json']));
    let v = null;
    try { v = JSON.parse(out.text); } catch { /* checked below */ }
    if (check(v !== null && validator(nested)(v), `[cli] --json-schema (seed ${seed}): ${out.text}`)) pass(`[cli] --json-schema (seed ${seed}) validates`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
