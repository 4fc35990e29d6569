// Tool calls: how each family's chat template asks the model to write a call, reading the calls
// back out of a reply, and a GBNF grammar that makes the reply one well-formed call.
//
//   'qwen-xml'  Qwen 3.5 (and Qwen3-Coder): <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n</tool_call>
//   'hermes'    Qwen 2.5 and Qwen 3:        <tool_call>\n{"name": NAME, "arguments": {...}}\n</tool_call>
//   'llama3'    Llama 3.1 to 3.3:           {"name": NAME, "parameters": {...}} as the whole reply
//
// Calls come back in OpenAI's shape: { id, type: 'function', function: { name, arguments } },
// arguments a JSON string.

// The format a chat template writes tool calls in, or null when it takes no tools.
export function toolCallFormat(template) {
  if (typeof template !== 'string') return null;
  if (template.includes('<tool_call>') && template.includes('<function=')) return 'qwen-xml';
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('"parameters": ') && template.includes('ipython')) return 'llama3';
  return null;
}

let counter = 0;
function callId() {
  const r = new Uint8Array(6);
  globalThis.crypto.getRandomValues(r);
  return `call_${Array.from(r, (b) => b.toString(16).padStart(2, '0')).join('')}${(counter++).toString(36)}`;
}

const call = (name, args) => ({ id: callId(), type: 'function', function: { name, arguments: JSON.stringify(args) } });

// The declared JSON type of a parameter, if the tools say.
function paramType(tools, fn, param) {
  const t = (tools || []).map((x) => x.function || x).find((f) => f && f.name === fn);
  const p = t && t.parameters && t.parameters.properties && t.parameters.properties[param];
  return p && p.type;
}

// { content, toolCalls }: the reply's text outside its calls, and the calls it makes. Text that
// looks like a call but does not parse stays in content.
export function parseToolCalls(text, format, tools) {
  const toolCalls = [];
  let content = text;
  if (format === 'hermes') {
    content = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (whole, body) => {
      try {
        const v = JSON.parse(body);
        if (!v || typeof v.name !== 'string') return whole;
        toolCalls.push(call(v.name, typeof v.arguments === 'string' ? JSON.parse(v.arguments) : (v.arguments ?? {})));
        return '';
      } catch { return whole; }
    });
  } else if (format === 'qwen-xml') {
    content = text.replace(/<tool_call>\s*<function=([^>\n]+)>\n?([\s\S]*?)<\/function>\s*<\/tool_call>/g, (whole, name, body) => {
      const args = {};
      for (const m of body.matchAll(/<parameter=([^>\n]+)>\n?([\s\S]*?)\n?<\/parameter>/g)) {
        const [, key, raw] = m;
        // The template writes strings as they are and everything else as JSON: read a value as
        // JSON unless the tool declares the parameter a string (or it is no JSON).
        const type = paramType(tools, name, key);
        let value = raw;
        // (and Python's spellings, which the template's `| string` gives: True, False, None).
        if (type !== 'string') {
          const py = { True: true, False: false, None: null };
          try { value = raw in py ? py[raw] : JSON.parse(raw); } catch { value = raw; }
        }
        args[key] = value;
      }
      toolCalls.push(call(name.trim(), args));
      return '';
    });
  } else if (format === 'llama3') {
    const body = text.replace(/^\s*(<\|python_tag\|>)?/, '').trim();
    if (body.startsWith('{')) {
      try {
        const v = JSON.parse(body);
        if (v && typeof v.name === 'string' && (v.parameters !== undefined || v.arguments !== undefined)) {
          toolCalls.push(call(v.name, v.parameters ?? v.arguments));
          content = '';
        }
      } catch { /* not a call */ }
    }
  }
  return { content: content.trim(), toolCalls };
}

// The tools as the templates take them: OpenAI's [{ type: 'function', function: { name,
// description, parameters } }] (a bare { name, parameters } is wrapped). Throws a TypeError
// naming what is wrong.
export function normalizeTools(tools) {
  if (!Array.isArray(tools)) throw new TypeError(`tools must be an array of { type: 'function', function: { name, parameters } }, got ${typeof tools}`);
  return tools.map((t, i) => {
    const f = t && (t.function || t);
    if (!f || typeof f.name !== 'string' || !f.name) throw new TypeError(`tools[${i}] needs function.name, a string`);
    if (f.parameters != null && (typeof f.parameters !== 'object' || Array.isArray(f.parameters)))
      throw new TypeError(`tools[${i}].function.parameters must be a JSON Schema object`);
    return { type: 'function', function: { ...f, parameters: f.parameters || { type: 'object', properties: {} } } };
  });
}

// The JSON Schema of one call of one of these tools, in a JSON format ('hermes', 'llama3').
export function toolCallSchema(format, tools) {
  const argKey = format === 'llama3' ? 'parameters' : 'arguments';
  return {
    anyOf: tools.map(({ function: f }) => ({ type: 'object', properties: { name: { const: f.name }, [argKey]: f.parameters }, required: ['name', argKey] })),
  };
}

// A GBNF grammar for a reply that is exactly one call of one of these tools, in the format. When
// the prompt opened a thinking block, the reply closes it at once: a call is due now. schemaGbnf: the engine's GBNF of
// toolCallSchema() (rules named from root), for the JSON formats.
export function toolCallGrammar(format, tools, schemaGbnf, { thinking = false } = {}) {
  const lit = (s) => JSON.stringify(s);  // a GBNF literal: JSON's string escapes are GBNF's
  const think = thinking ? 'thinking ::= "\\n"? "</think>\\n\\n"\n' : '';
  const start = thinking ? 'thinking ' : '';
  if (format === 'qwen-xml') {
    // Required parameters first; values are text up to the closing tag (none may hold '<'), as
    // the parameter's schema says where that is simple: enums, numbers, booleans, string lengths.
    const valueOf = (schema = {}) => {
      if (Array.isArray(schema.enum)) return `(${schema.enum.map((v) => lit(typeof v === 'string' ? v : JSON.stringify(v))).join(' | ')})`;
      if (schema.type === 'integer') return '"-"? ("0" | [1-9] [0-9]{0,15})';
      if (schema.type === 'number') return '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})?';
      if (schema.type === 'boolean') return '("true" | "false")';
      if (schema.type === 'string' && Number.isInteger(schema.maxLength))
        return `[^<]{${Math.max(1, schema.minLength || 0)},${Math.max(1, schema.maxLength)}}`;
      return 'xml-value';
    };
    const alts = tools.map(({ function: f }) => {
      const properties = (f.parameters && f.parameters.properties) || {};
      const props = Object.keys(properties);
      const required = new Set(f.parameters.required || []);
      const param = (p) => `${lit(`<parameter=${p}>\n`)} ${valueOf(properties[p])} ${lit('\n</parameter>\n')}`;
      const parts = [...props.filter((p) => required.has(p)).map(param), ...props.filter((p) => !required.has(p)).map((p) => `(${param(p)})?`)];
      return [lit(`<tool_call>\n<function=${f.name}>\n`), ...parts, lit('</function>\n</tool_call>')].join(' ');
    });
    return `root ::= ${start}(${alts.join(' | ')})\nxml-value ::= [^<]+\n${think}`;
  }
  const rules = schemaGbnf.replace(/^root ::= /, 'call ::= ');
  const root = format === 'llama3' ? `root ::= ${start}call` : `root ::= ${start}${lit('<tool_call>\n')} call ${lit('\n</tool_call>')}`;
  return `${root}\n${think}${rules}`;
}
