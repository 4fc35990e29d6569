// The benchmark's models: synthetic GGUF files in the shapes and layouts of public ones, made
// once with `rill synth` into bench/models/ (random weights cost the same to run as real ones).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rill = path.join(root, 'build/native/rill');
const vocabDir = path.join(root, '.cache/llama.cpp/models');
const modelDir = path.join(root, 'bench/models');

const QWEN35_08B = ['--arch', 'qwen35', '--vocab', `${vocabDir}/ggml-vocab-qwen35.gguf`, '--tied', '--vocab-size', '248320',
  '--set', 'embedding_length=1024', '--set', 'block_count=24', '--set', 'feed_forward_length=3584',
  '--set', 'attention.head_count=8', '--set', 'attention.head_count_kv=2', '--set', 'attention.key_length=256',
  '--set', 'attention.value_length=256', '--set', 'rope.dimension_count=64', '--set', 'rope.dimension_sections=11,11,10,0',
  '--set', 'ssm.state_size=128', '--set', 'ssm.group_count=16', '--set', 'ssm.time_step_rank=16', '--set', 'ssm.inner_size=2048',
  '--set', 'context_length=262144'];
const LLAMA_1B = ['--arch', 'llama', '--vocab', `${vocabDir}/ggml-vocab-llama-bpe.gguf`, '--tied',
  '--set', 'embedding_length=2048', '--set', 'block_count=16', '--set', 'feed_forward_length=8192',
  '--set', 'attention.head_count=32', '--set', 'attention.head_count_kv=8', '--set', 'rope.freq_base=500000',
  '--set', 'context_length=131072'];
// Gemma-3-1B's shape (26 layers, 5 sliding-window to 1 global, window 512, 262k vocabulary; Llama 2's
// SPM vocabulary padded to that size stands in for Gemma's, which the bundle does not carry).
const GEMMA3_1B = ['--arch', 'gemma3', '--vocab', `${vocabDir}/ggml-vocab-llama-spm.gguf`, '--tied', '--vocab-size', '262144',
  '--set', 'embedding_length=1152', '--set', 'block_count=26', '--set', 'feed_forward_length=6912',
  '--set', 'attention.head_count=4', '--set', 'attention.head_count_kv=1', '--set', 'attention.key_length=256',
  '--set', 'attention.value_length=256', '--set', 'attention.sliding_window=512', '--set', 'rope.freq_base=1000000',
  '--set', 'context_length=32768'];
// LFM2-1.2B's shape: 16 layers, 10 short convolutions and 6 GQA attention layers, 65k vocabulary
// (Llama 2's SPM one padded to it).
const LFM2_1_2B = ['--arch', 'lfm2', '--vocab', `${vocabDir}/ggml-vocab-llama-spm.gguf`, '--tied', '--vocab-size', '65536',
  '--set', 'embedding_length=2048', '--set', 'block_count=16', '--set', 'feed_forward_length=8192',
  '--set', 'attention.head_count=32', '--set', 'attention.head_count_kv=0,0,8,0,0,8,0,0,8,0,8,0,8,0,8,0',
  '--set', 'shortconv.l_cache=3', '--set', 'rope.freq_base=1000000', '--set', 'context_length=128000'];
// Qwen3-Embedding-0.6B's shape (a qwen3 file with last-token pooling), in Q8_0 as it is published.
const QWEN3_EMBED_06B = ['--arch', 'qwen3', '--vocab', `${vocabDir}/ggml-vocab-qwen2.gguf`, '--tied',
  '--set', 'embedding_length=1024', '--set', 'block_count=28', '--set', 'feed_forward_length=3072',
  '--set', 'attention.head_count=16', '--set', 'attention.head_count_kv=8', '--set', 'attention.key_length=128',
  '--set', 'attention.value_length=128', '--set', 'rope.freq_base=1000000', '--set', 'pooling_type=3',
  '--set', 'context_length=32768'];
const QWEN35_08B_Q4_0 = [...QWEN35_08B, '--type', 'q4_0', '--tensor-type', 'token_embd=q6_K', '--tensor-type', 'ssm_out=q5_K'];
export const MODELS = {
  // Qwen3.5-0.8B's shape and the public Q4_0 file's layout (token_embd Q6_K, ssm_out Q5_K).
  'qwen35-0.8b': QWEN35_08B_Q4_0,
  // The same shape in llama.cpp's layouts of the files people download (rill synth --layout).
  'qwen35-0.8b-q4_k_m': [...QWEN35_08B, '--layout', 'q4_k_m'],
  'qwen35-0.8b-q8_0': [...QWEN35_08B, '--layout', 'q8_0'],
  'qwen35-0.8b-iq4_xs': [...QWEN35_08B, '--layout', 'iq4_xs'],
  // ... with the multi-token-prediction layer the current converter keeps (speculative decoding).
  'qwen35-0.8b-mtp': [...QWEN35_08B_Q4_0, '--mtp'],
  'qwen35-0.8b-q4_k_m-mtp': [...QWEN35_08B, '--layout', 'q4_k_m', '--mtp'],
  // Llama-3.2-1B's shape, Q4_0 and Q4_K_M.
  'llama-1b': [...LLAMA_1B, '--type', 'q4_0'],
  'llama-1b-q4_k_m': [...LLAMA_1B, '--layout', 'q4_k_m'],
  // Gemma-3-1B and LFM2-1.2B in the Q4_K_M layout (llama.cpp's fallbacks where rows are not whole K blocks).
  'gemma3-1b-q4_k_m': [...GEMMA3_1B, '--layout', 'q4_k_m'],
  'lfm2-1.2b-q4_k_m': [...LFM2_1_2B, '--layout', 'q4_k_m'],
  // An embedding model (bench/embed.mjs).
  'qwen3-embedding-0.6b-q8_0': [...QWEN3_EMBED_06B, '--type', 'q8_0'],
};

export const modelPath = (m) => path.join(modelDir, `${m}.gguf`);

// Makes the models not made yet; throws for an unknown name.
export function ensureModels(names) {
  fs.mkdirSync(modelDir, { recursive: true });
  for (const m of names) {
    if (!MODELS[m]) throw new Error(`unknown model ${m} (known: ${Object.keys(MODELS).join(', ')})`);
    if (fs.existsSync(modelPath(m))) continue;
    console.error(`bench: making ${m} with rill synth`);
    const r = spawnSync(rill, ['synth', ...MODELS[m], '--out', modelPath(m), '--seed', '1'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('rill synth failed (build first: scripts/test.sh or cmake --build --preset native)');
  }
}
