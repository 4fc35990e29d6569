// llama.cpp as the golden's oracle, the same arithmetic on every x86-64 host.
//
// node-llama-cpp's prebuilt llama.cpp loads the best ggml CPU library the host supports
// (libggml-cpu-haswell.so on AVX2 machines, -zen4, -skylakex, -sapphirerapids, ... with AVX-512),
// and those differ in vector width, sum orders and exp polynomial: logits move in the last bits,
// and 32 greedy steps after a 300-token prompt amplify that far past any useful tolerance.
// scripts/setup.sh copies the prebuilt libraries with only the haswell CPU variant (AVX2 + FMA +
// F16C, which every host the project supports runs) into .cache/llama-oracle/bins and builds
// llama_logits.cpp against them; Rill's reference kernels mirror that variant bit for bit.
//
// runOracle() runs it on one thread (its logits do not depend on the thread count, checked on
// both modes; two threads made single-token decoding 17x slower on a 2-core VM, a wake-up per
// tiny op) and refuses a result computed by any other variant. Its logits are
// bit-identical to what node-llama-cpp's JS API returns for the same context (checked when the
// driver was written), without the sorted Map per row that made that API the golden's bottleneck.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PINNED_VARIANT = 'haswell';
const dir = path.join(root, '.cache/llama-oracle');
const driver = path.join(dir, 'llama_logits');

// The host's CPU as the golden reports it: model name and whether AVX-512 / VNNI are there.
export function hostCpu() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (info.match(/^model name\s*:\s*(.*)$/m) ?? [, 'unknown'])[1];
  const flags = new Set(((info.match(/^flags\s*:\s*(.*)$/m) ?? [, ''])[1]).split(/\s+/));
  const kind = flags.has('avx512f') ? 'AVX-512' + (flags.has('avx512_vnni') ? ' VNNI' : '') : flags.has('avx2') ? 'AVX2 (no AVX-512)' : 'no AVX2';
  return { model, kind, avx2: flags.has('avx2') && flags.has('fma') };
}

// Greedy-generates `steps` tokens after `prompt` (fed as one batch, or one token at a time when
// `single`) and returns { tokens, rows, chosen, n }: the prompt's tokens, every step's logits,
// the tokens chosen, the vocabulary size.
// With mtp, also `mtpRows`: the draft logits of llama.cpp's MTP graph at every evaluated position.
export function runOracle(modelPath, prompt, steps, single, work, mtp = false) {
  if (!fs.existsSync(driver)) throw new Error(`oracle missing: ${driver} (run scripts/setup.sh)`);
  if (!hostCpu().avx2) throw new Error('the golden needs an x86-64 CPU with AVX2 and FMA (ggml\'s haswell variant)');
  const out = path.join(work, 'oracle.bin');
  const argv = [path.join(dir, 'bins'), modelPath, prompt, String(steps), out, single ? '1' : '0', '1', ...(mtp ? [out + '.mtp'] : [])];
  const r = spawnSync(driver, argv, { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`llama_logits failed on ${modelPath}:\n${r.stderr}`);
  const { meta, rows } = readLogits(out, steps);
  if (meta.cpu_variants.join() !== PINNED_VARIANT)
    throw new Error(`the oracle ran ggml CPU variant(s) [${meta.cpu_variants}] instead of only ${PINNED_VARIANT}`);
  const res = { tokens: meta.prompt_tokens, rows, chosen: meta.tokens, n: meta.n_vocab, variant: meta.cpu_variants[0] };
  if (mtp) res.mtpRows = readRows(out + '.mtp', meta.n_vocab);
  return res;
}

// llama.cpp's embedding of each text (pooled as the file says, not normalised), from the same
// pinned variant (llama_embed.cpp): { vectors, tokens, variant }.
export function runEmbedOracle(modelPath, texts, work) {
  const embed = path.join(dir, 'llama_embed');
  if (!fs.existsSync(embed)) throw new Error(`oracle missing: ${embed} (run scripts/setup.sh)`);
  if (!hostCpu().avx2) throw new Error('the oracle needs an x86-64 CPU with AVX2 and FMA (ggml\'s haswell variant)');
  const out = path.join(work, 'oracle-embed.bin');
  const r = spawnSync(embed, [path.join(dir, 'bins'), modelPath, out, '1', ...texts], { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`llama_embed failed on ${modelPath}:\n${r.stderr}`);
  const meta = JSON.parse(fs.readFileSync(out + '.json', 'utf8'));
  if (meta.cpu_variants.join() !== PINNED_VARIANT)
    throw new Error(`the oracle ran ggml CPU variant(s) [${meta.cpu_variants}] instead of only ${PINNED_VARIANT}`);
  return { vectors: readRows(out, meta.n_embd), tokens: meta.tokens, variant: meta.cpu_variants[0] };
}

// A file of float32 rows of n values.
export function readRows(file, n) {
  const buf = fs.readFileSync(file);
  return Array.from({ length: buf.length / (4 * n) }, (_, s) => new Float32Array(buf.buffer, buf.byteOffset + s * n * 4, n));
}

// The files `rill logits` and llama_logits write: FILE (steps rows of n_vocab float32) and FILE.json.
export function readLogits(file, steps) {
  const meta = JSON.parse(fs.readFileSync(file + '.json', 'utf8'));
  const buf = fs.readFileSync(file);
  const n = meta.n_vocab;
  const rows = Array.from({ length: steps }, (_, s) => new Float32Array(buf.buffer, buf.byteOffset + s * n * 4, n));
  return { meta, rows };
}
