// Differential test: Rill's tokenizer against llama.cpp (node-llama-cpp) on generated
// strings, for every claimed vocabulary, with special-token parsing off and on.
// Checks: identical token ids, identical detokenisation of llama.cpp's ids, and
// detokenize(tokenize(s)) == s wherever llama.cpp itself round-trips s.
//
//   node tests/oracle/tokenizer_diff.mjs [--count N] [--seed S] [--inject-failure] [--vocab NAME ...]
// --inject-failure corrupts one of Rill's results, so that the run must fail (the test command's
// self-check that a failing comparison fails its step).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama } from 'node-llama-cpp';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const count = Number(opt('--count', 5000));
const seed = Number(opt('--seed', 1234));
const rill = opt('--rill', path.join(root, 'build/native/rill'));
const vocabDir = path.join(root, '.cache/llama.cpp/models');
const claimed = ['qwen35', 'qwen2', 'llama-bpe', 'gpt-2', 'llama-spm', 'phi-3', 'mpt', 'gemma-4', 'default'];
const injectFailure = args.includes('--inject-failure');
const selected = args.includes('--vocab') ? args.slice(args.indexOf('--vocab') + 1).filter((a) => !a.startsWith('--')) : claimed;

// ---- deterministic string generator ---------------------------------------------------
function rng(s) {  // mulberry32
  return () => {
    s |= 0; s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const R = rng(seed);
const pick = (a) => a[Math.floor(R() * a.length)];
const int = (lo, hi) => lo + Math.floor(R() * (hi - lo + 1));
const rep = (f, n) => Array.from({ length: n }, f).join('');

const words = ['hello', 'World', 'the', 'QUICK', 'brown', 'fox', 'jumps', 'über', 'naïve', 'café', 'Straße', 'Ægir',
  'привет', 'мир', 'Ελληνικά', 'שלום', 'مرحبا', 'नमस्ते', 'हिन्दी', 'สวัสดี', '안녕하세요', '你好', '世界', 'こんにちは',
  'カタカナ', 'ḁ̈ccent', 'e\u0301', 'a\u0308\u0301', 'ﬁne', 'Ⅻ', 'x²', '½', '٣٤٥', '१२३', 'ǅemal', 'İstanbul', 'ıi'];
const punct = ['.', ',', '!', '?', ';', ':', '...', '—', '–', '-', '(', ')', '[', ']', '{', '}', '"', "'", '`', '«', '»',
  '“', '”', '‘', '’', '¿', '¡', '、', '。', '，', '…', '@', '#', '$', '%', '^', '&', '*', '+', '=', '<', '>', '|', '~',
  '/', '\\', '_', '€', '£', '¥', '©', '®', '™', '°', '±', '×', '÷', '√', '∞', '≠', '≤', '→', '⇒', '∑', '∫'];
const spaces = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\t\t', '\u00a0', '\u3000', '\u2009', '\u200b',
  '\u2028', '\u0085', ' \t \n', '\v', '\f'];
const emoji = ['🦙', '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷', '❤️', '✨', '🤖', '🧠', '1️⃣', '🫠', '🐍', '🚀'];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x", "''", "'"];
const specials = ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<s>', '</s>', '<unk>', '<|eot_id|>', '<|begin_of_text|>',
  '<|end|>', '<|user|>', '<|assistant|>', '<|im_sta', '<|im_end|', '|im_end|>', '<|', '|>', '< s>', '<think>', '</think>',
  '<|vision_start|>', '<tool_call>', '<0x41>', '▁', '▁▁hello'];
const code = ['def f(x):\n    return x**2', 'for (int i = 0; i < n; ++i) {', '    }', 'const a = [1, 2, 3];',
  '#include <stdio.h>', 'SELECT * FROM t WHERE id=42;', '<div class="a">b</div>', '$ ls -la ~/', 'x != y && z',
  'a->b', '//comment', '/* block */', '0x1F', '1e-5', '3.14159', '1,000,000', '2026-11-22', 'v1.2.3', 'http://example.com/a?b=c'];

function randomCodepoint() {
  const r = R();
  let cp;
  if (r < 0.4) cp = int(0x20, 0x2ff);
  else if (r < 0.7) cp = int(0x300, 0xffff);
  else if (r < 0.9) cp = int(0x10000, 0x2ffff);
  else cp = int(0x0, 0x10ffff);
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;  // lone surrogates are not text
  return String.fromCodePoint(cp);
}

function fragment() {
  switch (int(0, 11)) {
    case 0: case 1: return pick(words);
    case 2: return pick(punct) + (R() < 0.3 ? pick(punct) : '');
    case 3: return pick(spaces);
    case 4: return rep(() => String(int(0, 9)), int(1, 12));
    case 5: return pick(emoji);
    case 6: return pick(contractions);
    case 7: return pick(specials);
    case 8: return pick(code);
    case 9: return rep(randomCodepoint, int(1, 4));
    case 10: return rep(() => ' ', int(2, 9)) + pick(words);
    default: return pick(words).toUpperCase() + pick(contractions);
  }
}

function generate(n) {
  const out = [];
  for (let i = 0; i < n; ++i) {
    let s = '';
    const k = int(1, 12);
    for (let j = 0; j < k; ++j) s += (R() < 0.5 ? ' ' : '') + fragment();
    out.push(s);
  }
  return out;
}

// ---- vocabulary files --------------------------------------------------------------------
// 'default' is gpt-2's vocabulary with tokenizer.ggml.pre rewritten, which exercises
// llama.cpp's fallback pre-tokenizer. Vocab files hold no tensors, so lengths may change.
function vocabPath(name, tmp) {
  if (name !== 'default') return path.join(vocabDir, `ggml-vocab-${name}.gguf`);
  const src = fs.readFileSync(path.join(vocabDir, 'ggml-vocab-gpt-2.gguf'));
  const key = Buffer.from('tokenizer.ggml.pre');
  const at = src.indexOf(key);
  const valueAt = at + key.length + 4;  // after the type tag
  const oldLen = Number(src.readBigUInt64LE(valueAt));
  const value = Buffer.from('default');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(value.length));
  const out = Buffer.concat([src.subarray(0, valueAt), len, value, src.subarray(valueAt + 8 + oldLen)]);
  const p = path.join(tmp, 'ggml-vocab-default.gguf');
  fs.writeFileSync(p, out);
  return p;
}

function runRill(cmd, file, lines, extra = []) {
  const r = spawnSync(rill, [cmd, '-m', file, '--lines', ...extra], { input: lines.join('\n') + '\n', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`rill ${cmd} failed: ${r.stderr}`);
  return r.stdout.toString().trimEnd().split('\n').map((l) => JSON.parse(l));
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- main -------------------------------------------------------------------------------
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rill-tokdiff-'));
const strings = generate(count);
let failures = 0;
const rows = [];
for (const name of selected) {
  const file = vocabPath(name, tmp);
  const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
  const row = { vocab: name, strings: strings.length, ids_ok: 0, ids_bad: 0, detok_ok: 0, detok_bad: 0, roundtrip_ok: 0, roundtrip_bad: 0, roundtrip_na: 0 };
  for (const special of [false, true]) {
    const ours = runRill('tokenize', file, strings.map((s) => JSON.stringify(s)), special ? [] : ['--no-special']);
    if (injectFailure && rows.length === 0 && !special) ours[0] = [...ours[0], 0];
    const theirs = strings.map((s) => Array.from(model.tokenize(s, special)));
    const ourText = runRill('detokenize', file, theirs.map((t) => JSON.stringify(t)), special ? ['--special'] : []);
    const ourRoundTrip = runRill('detokenize', file, ours.map((t) => JSON.stringify(t)), special ? ['--special'] : []);
    for (let i = 0; i < strings.length; ++i) {
      if (same(ours[i], theirs[i])) row.ids_ok++;
      else if (row.ids_bad++ < 5) console.log(`MISMATCH ids ${name} special=${special}: ${JSON.stringify(strings[i])}\n  llama.cpp ${theirs[i]}\n  rill      ${ours[i]}`);
      const theirText = model.detokenize(theirs[i], special);
      if (theirText === ourText[i]) row.detok_ok++;
      else if (row.detok_bad++ < 5) console.log(`MISMATCH detok ${name}: ${JSON.stringify(theirText)} vs ${JSON.stringify(ourText[i])}`);
      if (theirText !== strings[i]) row.roundtrip_na++;  // the vocabulary itself does not round-trip this string
      else if (ourRoundTrip[i] === strings[i]) row.roundtrip_ok++;
      else if (row.roundtrip_bad++ < 5) console.log(`MISMATCH roundtrip ${name}: ${JSON.stringify(strings[i])} -> ${JSON.stringify(ourRoundTrip[i])}`);
    }
  }
  await model.dispose();
  failures += row.ids_bad + row.detok_bad + row.roundtrip_bad;
  rows.push(row);
}
fs.rmSync(tmp, { recursive: true, force: true });

console.log('\n| vocab | strings | ids equal | detok equal | round-trip ok | not round-trippable by the vocab |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.vocab} | ${r.strings} x2 | ${r.ids_ok}/${r.ids_ok + r.ids_bad} | ${r.detok_ok}/${r.detok_ok + r.detok_bad} | ${r.roundtrip_ok}/${r.roundtrip_ok + r.roundtrip_bad} | ${r.roundtrip_na} |`);
}
const checks = rows.reduce((n, r) => n + r.ids_ok + r.ids_bad + r.detok_ok + r.detok_bad + r.roundtrip_ok + r.roundtrip_bad, 0);
console.log(`tokenizer-diff: ${checks - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
