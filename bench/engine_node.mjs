// One benchmark run of one Node-side engine in its own process (so that its peak memory is
// its own): prints a JSON line of figures. Called by bench/run.mjs.
//   node bench/engine_node.mjs ENGINE MODEL THREADS   (ENGINE: rill-node | rill-node-simd | llama-native)
// rill-node-simd runs the strict SIMD128 build, the one browsers without relaxed SIMD get.
import fs from 'node:fs';

const [engineName, modelPath, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const DECODE = 128, WARM = 32;
const promptTokens = (n, base) => Array.from({ length: n }, (_, i) => base + ((i * 7919) % 5000));

async function rill(build) {
  const { createEngine } = await import('../bindings/js/index.js');
  const e = await createEngine({ threads, build });
  const bytes = fs.readFileSync(modelPath);  // load from bytes in memory, as the target is stated
  let t = performance.now();
  const info = await e.load(bytes, { contextSize: 1024 });
  const load_s = (performance.now() - t) / 1000;
  const out = { load_s, build: e.runtime.kernels, model_bytes: info.fileBytes, state_bytes: info.stateBytes };
  const step = async (tok) => e.evaluate([tok]);
  out.decode = await decode(step, () => e.reset(), (ids) => e.evaluate(ids), () => e.profile({ clear: true }));
  out.profile = await e.profile({ clear: true });  // the 128 decode steps
  for (const n of [128, 512]) {
    await e.reset();
    t = performance.now();
    await e.evaluate(promptTokens(n, 1000));
    out[`prefill${n}_tok_s`] = n / ((performance.now() - t) / 1000);
  }
  out.wasm_memory_bytes = await e.memoryBytes();
  await e.dispose();
  return out;
}

async function native() {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  let t = performance.now();
  const model = await llama.loadModel({ modelPath });
  const ctx = await model.createContext({ contextSize: 1024, threads, batchSize: 512, flashAttention: false });
  const load_s = (performance.now() - t) / 1000;
  const out = { load_s, build: 'llama.cpp native (node-llama-cpp)' };
  let seq = ctx.getSequence();
  const reset = async () => { await seq.clearHistory(); };
  const evalTokens = async (ids) => seq.evaluateWithoutGeneratingNewTokens(ids);
  out.decode = await decode((tok) => evalTokens([tok]), reset, evalTokens);
  for (const n of [128, 512]) {
    await reset();
    t = performance.now();
    await evalTokens(promptTokens(n, 1000));
    out[`prefill${n}_tok_s`] = n / ((performance.now() - t) / 1000);
  }
  await ctx.dispose();
  await model.dispose();
  return out;
}

// 128 decode steps after an 8-token prompt: per-token times; cold = all 128, steady = after 32.
async function decode(step, reset, evalTokens, afterPrompt = async () => {}) {
  await reset();
  await evalTokens(promptTokens(8, 3000));
  await afterPrompt();
  const times = [];
  for (let i = 0; i < DECODE; i++) {
    const t = performance.now();
    await step(4000 + i);
    times.push(performance.now() - t);
  }
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  return { cold_tok_s: DECODE / (sum(times) / 1000), steady_tok_s: (DECODE - WARM) / (sum(times.slice(WARM)) / 1000) };
}

const out = engineName === 'rill-node' ? await rill('auto') : engineName === 'rill-node-simd' ? await rill('simd') : await native();
out.peak_mem_bytes = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify(out));
process.exit(0);
