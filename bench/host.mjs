// The machine a benchmark ran on, recorded beside its figures: the CPU and the features that
// decide the kernels' speed and llama.cpp's CPU variant. V8 makes the relaxed-SIMD integer dot
// one instruction (vpdpbusd) only with AVX-VNNI, the VEX form: a CPU with AVX512_VNNI alone (AMD
// Zen 4) gets pmaddubsw + pmaddwd + add, as an AVX2 one does, while native llama.cpp uses its
// VNNI. Result files are named by date and CPU kind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from './models.mjs';

export function cpuFlags() {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    const have = new Set(line.split(':')[1]?.trim().split(/\s+/));
    return ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx_vnni', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'amx_int8'].filter((f) => have.has(f));
  } catch { return null; }
}

// 'avx512-vnni', 'avx2' (x86 without AVX-512), or the architecture.
export function cpuKind() {
  const f = cpuFlags() ?? [];
  if (f.includes('avx512_vnni')) return 'avx512-vnni';
  if (f.includes('avx512f')) return 'avx512';
  if (f.includes('avx2')) return 'avx2';
  return os.arch();
}

// How V8 lowers i32x4.relaxed_dot_i8x16_i7x16_add_s on this CPU (x86).
export const wasmRelaxedDot = () => (os.arch() !== 'x64' ? null : (cpuFlags() ?? []).includes('avx_vnni') ? 'vpdpbusd' : 'pmaddubsw+pmaddwd+add');

export const machine = () => ({ host: os.hostname(), kind: cpuKind(), cpu: os.cpus()[0]?.model, cpu_flags: cpuFlags(), wasm_relaxed_dot: wasmRelaxedDot(), cores: os.availableParallelism(),
  memory_bytes: os.totalmem(), platform: `${os.platform()} ${os.release()}` });

// bench/results/<date>-<cpu kind>[-name].json
export function resultPath(date, name) {
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  return path.join(root, 'bench/results', `${date.slice(0, 10)}-${cpuKind()}${name ? `-${name}` : ''}.json`);
}
