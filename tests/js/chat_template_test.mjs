// Rill's chat-template renderer (bindings/js/chat.js) against the reference JS renderer,
// @huggingface/jinja, on the real templates of the families Rill runs and on the templates
// inside the vocab GGUFs: identical output for every conversation, or the same refusal.
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { renderChat } from '../../bindings/js/chat.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const llama = process.env.RILL_LLAMA_CPP_DIR || path.join(root, '.cache/llama.cpp');

// tokenizer.chat_template of a GGUF file (a minimal metadata reader).
function ggufChatTemplate(file) {
  const b = fs.readFileSync(file);
  let o = 8;
  const u32 = () => { const v = b.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(b.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const s = b.toString('utf8', o, o + n); o += n; return s; };
  const size = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t) => {
    if (t === 8) str();
    else if (t === 9) { const et = u32(); const n = u64(); for (let i = 0; i < n; i++) skip(et); }
    else o += size[t];
  };
  u64();  // tensor count
  const nkv = u64();
  for (let i = 0; i < nkv; i++) {
    const key = str();
    const t = u32();
    if (key === 'tokenizer.chat_template' && t === 8) return str();
    skip(t);
  }
  return null;
}

const templates = {};
for (const name of ['Qwen-Qwen2.5-7B-Instruct', 'Qwen-Qwen3-0.6B', 'Qwen3.5-4B', 'meta-llama-Llama-3.1-8B-Instruct',
  'meta-llama-Llama-3.2-3B-Instruct', 'meta-llama-Llama-3.3-70B-Instruct', 'HuggingFaceTB-SmolLM3-3B',
  'microsoft-Phi-3.5-mini-instruct', 'LFM2.5-Instruct', 'google-gemma-2-2b-it', 'google-gemma-4-31B-it']) {
  templates[name] = fs.readFileSync(path.join(llama, 'models/templates', `${name}.jinja`), 'utf8');
}
for (const v of ['qwen2', 'qwen35', 'phi-3', 'gemma-4']) {
  const t = ggufChatTemplate(path.join(llama, `models/ggml-vocab-${v}.gguf`));
  if (!t) throw new Error(`ggml-vocab-${v}.gguf has no chat template`);
  templates[`vocab:${v}`] = t;
}

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' }, days: { type: 'integer' } }, required: ['city'] },
  },
}];
const conversations = [
  { name: 'one user turn', vars: { messages: [{ role: 'user', content: 'Hello!' }] } },
  { name: 'system + user', vars: { messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Why is the sky blue?' }] } },
  {
    name: 'multi-turn',
    vars: {
      messages: [
        { role: 'system', content: '  Be kind.\n' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! How can I help?' },
        { role: 'user', content: 'Tell me a joke about "quotes" and \\backslashes\\ — ünïcödé 🎉' },
      ],
    },
  },
  {
    name: 'reasoning in history',
    vars: {
      messages: [
        { role: 'user', content: '2+2?' },
        { role: 'assistant', content: '<think>\nadd them\n</think>\n\n4' },
        { role: 'user', content: 'and 3+3?' },
      ],
    },
  },
  { name: 'no generation prompt', vars: { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }, noGen: true },
  { name: 'thinking off', vars: { messages: [{ role: 'user', content: 'Quick answer' }], enable_thinking: false } },
  {
    name: 'tools and a tool call',
    vars: {
      tools,
      messages: [
        { role: 'system', content: 'Use tools when needed.' },
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris', days: 2 } } }] },
        { role: 'tool', content: '{"temp": 21}' },
        { role: 'user', content: 'Thanks' },
      ],
    },
  },
  { name: 'empty conversation', vars: { messages: [] } },
];

let pass = 0, fail = 0, refused = 0;
for (const [tname, src] of Object.entries(templates)) {
  const ref = new Template(src);
  for (const conv of conversations) {
    const vars = {
      bos_token: '<s>', eos_token: '</s>', add_generation_prompt: !conv.noGen, date_string: '26 Jul 2024',
      ...structuredClone(conv.vars),
    };
    let want, got, wantErr = null, gotErr = null;
    try { want = ref.render(structuredClone(vars)); } catch (e) { wantErr = e.message; }
    try { got = renderChat(src, structuredClone(vars)); } catch (e) { gotErr = e.message; }
    const ok = wantErr ? gotErr !== null : got === want;
    if (ok) { pass++; if (wantErr) refused++; }
    else {
      fail++;
      console.log(`MISMATCH ${tname} / ${conv.name}`);
      if (wantErr || gotErr) console.log(`  reference error: ${wantErr}\n  rill error: ${gotErr}`);
      else {
        let i = 0;
        while (i < want.length && want[i] === got[i]) i++;
        console.log(`  first difference at ${i}:\n  want ${JSON.stringify(want.slice(Math.max(0, i - 40), i + 60))}\n  got  ${JSON.stringify(got.slice(Math.max(0, i - 40), i + 60))}`);
      }
    }
  }
}
console.log(`chat templates: ${Object.keys(templates).length} templates x ${conversations.length} conversations: ${pass} identical (${refused} of them refused by both, e.g. raise_exception), ${fail} different`);
process.exit(fail ? 1 : 0);
