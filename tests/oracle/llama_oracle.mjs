// llama.cpp as the golden's oracle, the same arithmetic on every x86-64 host.
//
// node-llama-cpp loads the best ggml CPU library the host supports (libggml-cpu-haswell.so on
// AVX2 machines, -zen4, -skylakex, -sapphirerapids, ... with AVX-512), and those differ in vector
// width, sum orders and exp polynomial: logits move in the last bits, and 32 greedy steps over a
// 300-token prompt amplify that far past any useful tolerance. scripts/setup.sh makes a private copy
// of the package whose binary folder holds only the haswell library (AVX2 + FMA + F16C, which every
// host the project supports runs); Rill's reference kernels mirror that variant bit for bit.
//
// loadOracle() returns the Llama instance and the ggml CPU variant actually mapped into this
// process (read from /proc/self/maps), and refuses to run with any other.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PINNED_VARIANT = 'haswell';
const pinnedDir = path.join(root, '.cache/llama-oracle/node_modules');
const pinned = path.join(pinnedDir, 'node-llama-cpp/dist/index.js');

// The ggml CPU libraries mapped into this process, e.g. ['haswell'].
export function loadedCpuVariants() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  return [...new Set([...maps.matchAll(/(\S*)libggml-cpu-([a-z0-9_]+)\.so/g)].map((m) => m[2] + (m[1].startsWith(pinnedDir) ? '' : ' (unpinned)')))];
}

// The host's CPU as the golden reports it: model name and whether AVX-512 / VNNI are there.
export function hostCpu() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (info.match(/^model name\s*:\s*(.*)$/m) ?? [, 'unknown'])[1];
  const flags = new Set(((info.match(/^flags\s*:\s*(.*)$/m) ?? [, ''])[1]).split(/\s+/));
  const kind = flags.has('avx512f') ? 'AVX-512' + (flags.has('avx512_vnni') ? ' VNNI' : '') : flags.has('avx2') ? 'AVX2 (no AVX-512)' : 'no AVX2';
  return { model, kind, avx2: flags.has('avx2') && flags.has('fma') };
}

export async function loadOracle() {
  if (!fs.existsSync(pinned)) throw new Error(`pinned oracle missing: ${pinned} (run scripts/setup.sh)`);
  if (!hostCpu().avx2) throw new Error('the golden needs an x86-64 CPU with AVX2 and FMA (ggml\'s haswell variant)');
  const { getLlama } = await import(pathToFileURL(pinned).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const variants = loadedCpuVariants();
  if (variants.length !== 1 || variants[0] !== PINNED_VARIANT)
    throw new Error(`the oracle loaded ggml CPU variant(s) [${variants}] instead of only ${PINNED_VARIANT}`);
  return { llama, variant: variants[0] };
}
