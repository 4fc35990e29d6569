// Chat templates: a Jinja subset large enough for the templates GGUF files carry
// (tokenizer.chat_template), rendered with Hugging Face's conventions (trim_blocks and
// lstrip_blocks on; raise_exception, namespace, tojson, Python string methods). Verified
// against @huggingface/jinja on real templates (tests/js/chat_template_test.mjs).

// ---- lexer: text and tags --------------------------------------------------------------------

function splitTemplate(src) {
  // -> [{type:'text', value}, {type:'expr'|'stmt', body}] with whitespace control applied
  const parts = [];
  const re = /\{\{|\{%|\{#/g;
  let pos = 0;
  let trimNext = false;   // '-%}' / '-}}' / '#}' with '-': strip leading whitespace of the next text
  let trimBlockNl = false; // trim_blocks: drop one newline after a block tag
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(src);
    let text = src.slice(pos, m ? m.index : src.length);
    if (trimNext) text = text.replace(/^\s+/, '');
    else if (trimBlockNl) text = text.replace(/^\r?\n/, '');
    trimNext = trimBlockNl = false;
    if (!m) { if (text) parts.push({ type: 'text', value: text }); break; }
    const open = m[0];
    const close = open === '{{' ? '}}' : open === '{%' ? '%}' : '#}';
    let start = m.index + 2;
    const stripBefore = src[start] === '-';
    const keepBefore = src[start] === '+';
    if (stripBefore || keepBefore) start++;
    let end;
    if (open === '{#') {
      end = src.indexOf('#}', start);
    } else {
      end = findClose(src, start, close);
    }
    if (end < 0) throw new Error(`template: unclosed ${open}`);
    let body = src.slice(start, end);
    const stripAfter = body.endsWith('-');
    if (stripAfter) body = body.slice(0, -1);
    if (body.endsWith('+')) body = body.slice(0, -1);
    if (stripBefore) text = text.replace(/\s+$/, '');
    else if (open !== '{{' && !keepBefore) text = text.replace(/(^|\n)[ \t]+$/, '$1');  // lstrip_blocks
    if (text) parts.push({ type: 'text', value: text });
    if (open === '{{') parts.push({ type: 'expr', body });
    else if (open === '{%') parts.push({ type: 'stmt', body: body.trim() });
    pos = end + 2;
    trimNext = stripAfter;
    trimBlockNl = open !== '{{';
  }
  return parts;
}

function findClose(src, from, close) {
  // the first `close` outside string literals
  let quote = null;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (src.startsWith(close, i) || (src[i] === '-' && src.startsWith(close, i + 1))) return src[i] === '-' ? i + 1 : i;
  }
  return -1;
}

// ---- expression tokens -----------------------------------------------------------------------

function tokenize(s) {
  const toks = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let out = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\') {
          const n = s[j + 1];
          out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n;
          j += 2;
        } else out += s[j++];
      }
      if (j >= s.length) throw new Error('template: unterminated string');
      toks.push({ t: 'str', v: out });
      i = j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?([eE][-+]?\d+)?/.exec(s.slice(i));
    if (num) { toks.push({ t: 'num', v: Number(num[0]), float: num[0].includes('.') }); i += num[0].length; continue; }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
    if (id) { toks.push({ t: 'name', v: id[0] }); i += id[0].length; continue; }
    const op = /^(\/\/|\*\*|==|!=|<=|>=|[-+*/%~<>()[\]{}.,:|=!])/.exec(s.slice(i));
    if (!op) throw new Error(`template: unexpected character '${c}'`);
    toks.push({ t: 'op', v: op[0] });
    i += op[0].length;
  }
  return toks;
}

// ---- expression parser (Jinja precedence) -----------------------------------------------------

class Parser {
  constructor(src) { this.toks = tokenize(src); this.i = 0; }
  peek(k = 0) { return this.toks[this.i + k]; }
  is(v, k = 0) { const t = this.peek(k); return !!t && (t.t === 'op' || t.t === 'name') && t.v === v; }
  take(v) { if (this.is(v)) { this.i++; return true; } return false; }
  expect(v) { if (!this.take(v)) throw new Error(`template: expected '${v}' near '${this.rest()}'`); }
  done() { return this.i >= this.toks.length; }
  rest() { return this.toks.slice(this.i).map((t) => t.v).join(' '); }
  name() {
    const t = this.peek();
    if (!t || t.t !== 'name') throw new Error(`template: expected a name near '${this.rest()}'`);
    this.i++;
    return t.v;
  }

  expr() {  // a if b else c
    let e = this.or();
    while (this.is('if')) {
      this.i++;
      const cond = this.or();
      const other = this.take('else') ? this.expr() : { k: 'lit', v: undefined };
      e = { k: 'cond', cond, a: e, b: other };
    }
    return e;
  }
  or() { let e = this.and(); while (this.take('or')) e = { k: 'or', a: e, b: this.and() }; return e; }
  and() { let e = this.not(); while (this.take('and')) e = { k: 'and', a: e, b: this.not() }; return e; }
  not() { return this.take('not') ? { k: 'not', a: this.not() } : this.compare(); }
  compare() {
    let e = this.add();
    for (;;) {
      const t = this.peek();
      if (!t) break;
      if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) { this.i++; e = { k: 'bin', op: t.v, a: e, b: this.add() }; }
      else if (this.is('in')) { this.i++; e = { k: 'in', a: e, b: this.add() }; }
      else if (this.is('not') && this.is('in', 1)) { this.i += 2; e = { k: 'not', a: { k: 'in', a: e, b: this.add() } }; }
      else break;
    }
    return e;
  }
  add() {
    let e = this.concat();
    while (this.is('+') || this.is('-')) { const op = this.toks[this.i++].v; e = { k: 'bin', op, a: e, b: this.concat() }; }
    return e;
  }
  concat() { let e = this.mul(); while (this.take('~')) e = { k: 'bin', op: '~', a: e, b: this.mul() }; return e; }
  mul() {
    let e = this.pow();
    while (['*', '/', '//', '%'].some((o) => this.is(o))) { const op = this.toks[this.i++].v; e = { k: 'bin', op, a: e, b: this.pow() }; }
    return e;
  }
  pow() { let e = this.unary(); while (this.take('**')) e = { k: 'bin', op: '**', a: e, b: this.unary() }; return e; }
  unary() {
    if (this.take('-')) return { k: 'neg', a: this.unary() };
    if (this.take('+')) return this.unary();
    return this.postfix(this.primary());
  }
  primary() {
    const t = this.peek();
    if (!t) throw new Error('template: expression ended early');
    this.i++;
    if (t.t === 'str') {
      let v = t.v;
      while (this.peek() && this.peek().t === 'str') v += this.toks[this.i++].v;  // adjacent literals join
      return { k: 'lit', v };
    }
    if (t.t === 'num') return { k: 'lit', v: t.v, float: t.float };
    if (t.t === 'name') {
      if (t.v === 'true' || t.v === 'True') return { k: 'lit', v: true };
      if (t.v === 'false' || t.v === 'False') return { k: 'lit', v: false };
      if (t.v === 'none' || t.v === 'None') return { k: 'lit', v: null };
      return { k: 'var', name: t.v };
    }
    if (t.v === '(') {
      if (this.take(')')) return { k: 'list', items: [] };
      const e = this.expr();
      if (this.take(',')) {  // tuple
        const items = [e];
        while (!this.is(')')) { items.push(this.expr()); if (!this.take(',')) break; }
        this.expect(')');
        return { k: 'list', items };
      }
      this.expect(')');
      return e;
    }
    if (t.v === '[') {
      const items = [];
      while (!this.is(']')) { items.push(this.expr()); if (!this.take(',')) break; }
      this.expect(']');
      return { k: 'list', items };
    }
    if (t.v === '{') {
      const entries = [];
      while (!this.is('}')) { const key = this.expr(); this.expect(':'); entries.push([key, this.expr()]); if (!this.take(',')) break; }
      this.expect('}');
      return { k: 'dict', entries };
    }
    throw new Error(`template: unexpected '${t.v}'`);
  }
  args() {  // after '(': positional and keyword arguments
    const args = [];
    const kwargs = {};
    while (!this.is(')')) {
      if (this.peek() && this.peek().t === 'name' && this.is('=', 1)) {
        const k = this.name();
        this.i++;
        kwargs[k] = this.expr();
      } else args.push(this.expr());
      if (!this.take(',')) break;
    }
    this.expect(')');
    return { args, kwargs };
  }
  postfix(e) {
    for (;;) {
      if (this.take('.')) e = { k: 'attr', obj: e, name: this.name() };
      else if (this.take('[')) {
        let a = null, b = null, c = null;
        const isSlice = () => this.is(':');
        if (!isSlice()) a = this.expr();
        if (this.take(':')) {
          if (!this.is(':') && !this.is(']')) b = this.expr();
          if (this.take(':') && !this.is(']')) c = this.expr();
          this.expect(']');
          e = { k: 'slice', obj: e, a, b, c };
        } else {
          this.expect(']');
          e = { k: 'index', obj: e, key: a };
        }
      } else if (this.take('(')) e = { k: 'call', fn: e, ...this.args() };
      else if (this.take('|')) {
        const name = this.name();
        const call = this.take('(') ? this.args() : { args: [], kwargs: {} };
        e = { k: 'filter', name, a: e, ...call };
      } else if (this.is('is')) {
        this.i++;
        const neg = this.take('not');
        const name = this.is('none') ? (this.i++, 'none') : this.name();
        let args = [];
        if (this.take('(')) args = this.args().args;
        else if (this.peek() && (this.peek().t === 'str' || this.peek().t === 'num')) args = [this.primary()];
        e = { k: 'test', name, neg, a: e, args };
      } else return e;
    }
  }
}

function parseExpr(src) {
  const p = new Parser(src);
  const e = p.expr();
  if (!p.done()) throw new Error(`template: unexpected '${p.rest()}'`);
  return e;
}

// ---- statements -------------------------------------------------------------------------------

function parseTemplate(src) {
  const parts = splitTemplate(src);
  let i = 0;
  function block(ends) {
    const nodes = [];
    while (i < parts.length) {
      const p = parts[i];
      if (p.type === 'text') { nodes.push({ k: 'text', v: p.value }); i++; continue; }
      if (p.type === 'expr') { nodes.push({ k: 'out', e: parseExpr(p.body) }); i++; continue; }
      const kw = /^\w+/.exec(p.body);
      const word = kw ? kw[0] : '';
      if (ends.includes(word)) return { nodes, end: word, body: p.body };
      i++;
      const rest = p.body.slice(word.length);
      if (word === 'if') {
        const branches = [];
        let cond = parseExpr(rest);
        for (;;) {
          const r = block(['elif', 'else', 'endif']);
          branches.push({ cond, nodes: r.nodes });
          i++;
          if (r.end === 'elif') cond = parseExpr(r.body.slice(4));
          else if (r.end === 'else') {
            const r2 = block(['endif']);
            i++;
            branches.push({ cond: null, nodes: r2.nodes });
            break;
          } else break;
        }
        nodes.push({ k: 'if', branches });
      } else if (word === 'for') {
        const p2 = new Parser(rest);
        const targets = [p2.name()];
        while (p2.take(',')) targets.push(p2.name());
        p2.expect('in');
        const iter = p2.or();
        let filter = null;
        if (p2.take('if')) filter = p2.expr();
        if (!p2.done()) throw new Error(`template: unexpected '${p2.rest()}' in for`);
        const r = block(['else', 'endfor']);
        i++;
        let elseNodes = [];
        if (r.end === 'else') { elseNodes = block(['endfor']).nodes; i++; }
        nodes.push({ k: 'for', targets, iter, filter, nodes: r.nodes, elseNodes });
      } else if (word === 'set') {
        const eq = findTopLevelEquals(rest);
        if (eq < 0) {  // block set
          const target = rest.trim();
          const r = block(['endset']);
          i++;
          nodes.push({ k: 'setblock', target, nodes: r.nodes });
        } else {
          const lhs = rest.slice(0, eq).trim();
          const names = lhs.split(',').map((s) => s.trim());
          nodes.push({ k: 'set', targets: names, e: parseExpr(rest.slice(eq + 1)) });
        }
      } else if (word === 'macro') {
        const p2 = new Parser(rest);
        const name = p2.name();
        p2.expect('(');
        const params = [];
        while (!p2.is(')')) {
          const pn = p2.name();
          params.push({ name: pn, def: p2.take('=') ? p2.expr() : undefined });
          if (!p2.take(',')) break;
        }
        p2.expect(')');
        const r = block(['endmacro']);
        i++;
        nodes.push({ k: 'macro', name, params, nodes: r.nodes });
      } else if (word === 'generation') {  // transformers' assistant-mask marker: renders its body
        const r = block(['endgeneration']);
        i++;
        nodes.push(...r.nodes);
      } else if (word === 'break' || word === 'continue') {
        nodes.push({ k: word });
      } else if (word === 'do') {
        nodes.push({ k: 'do', e: parseExpr(rest) });
      } else {
        throw new Error(`template: unsupported tag '${word || p.body}'`);
      }
    }
    if (ends.length) throw new Error(`template: missing {% ${ends[ends.length - 1]} %}`);
    return { nodes, end: null };
  }
  return block([]).nodes;
}

function findTopLevelEquals(s) {
  let quote = null, depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) { if (c === '\\') i++; else if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === '=' && depth === 0 && s[i + 1] !== '=' && !'!<>='.includes(s[i - 1])) return i;
  }
  return -1;
}

// ---- values -----------------------------------------------------------------------------------

class Namespace { constructor(o) { Object.assign(this, o); } }
class Macro { constructor(fn) { this.fn = fn; } }
class BreakSignal {}
class ContinueSignal {}

const isDict = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Macro);
const truthy = (v) => {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v) && !(v instanceof Namespace)) return Object.keys(v).length > 0;
  return true;
};

function str(v) {
  if (v === undefined) return '';
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v) || isDict(v)) return pyRepr(v);
  return String(v);
}

function pyRepr(v) {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (isDict(v)) return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return str(v);
}

// JSON as Python's json.dumps writes it (", " and ": " separators; indent puts each item on a line).
function toJson(v, indent, level = 0) {
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v);
  const pad = indent == null ? null : ' '.repeat(indent * (level + 1));
  const closePad = indent == null ? '' : '\n' + ' '.repeat(indent * level);
  const items = Array.isArray(v) ? v.map((x) => toJson(x, indent, level + 1))
    : Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}: ${toJson(x, indent, level + 1)}`);
  const [o, c] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  if (!items.length) return o + c;
  if (pad == null) return o + items.join(', ') + c;
  return o + '\n' + items.map((s) => pad + s).join(',\n') + closePad + c;
}

function stripChars(s, chars, left, right) {
  const set = chars == null ? null : new Set(chars);
  const ws = (c) => (set ? set.has(c) : /\s/.test(c));
  let a = 0, b = s.length;
  if (left) while (a < b && ws(s[a])) a++;
  if (right) while (b > a && ws(s[b - 1])) b--;
  return s.slice(a, b);
}

function titleCase(s) { return s.replace(/\w\S*/g, (w) => w[0].toUpperCase() + w.slice(1).toLowerCase()); }

function method(obj, name) {
  if (typeof obj === 'string') {
    const s = obj;
    const m = {
      startswith: (p) => (Array.isArray(p) ? p.some((x) => s.startsWith(x)) : s.startsWith(p)),
      endswith: (p) => (Array.isArray(p) ? p.some((x) => s.endsWith(x)) : s.endsWith(p)),
      strip: (c) => stripChars(s, c, true, true),
      lstrip: (c) => stripChars(s, c, true, false),
      rstrip: (c) => stripChars(s, c, false, true),
      split: (sep, max) => {
        if (sep == null) { const parts = s.trim().split(/\s+/); return parts[0] === '' ? [] : parts; }
        const parts = s.split(sep);
        if (max == null || max < 0 || parts.length <= max + 1) return parts;
        return [...parts.slice(0, max), parts.slice(max).join(sep)];
      },
      replace: (a, b, n) => {
        if (n == null || n < 0) return s.split(a).join(b);
        let out = s;
        for (let k = 0, from = 0; k < n; k++) {
          const i = out.indexOf(a, from);
          if (i < 0) break;
          out = out.slice(0, i) + b + out.slice(i + a.length);
          from = i + b.length;
        }
        return out;
      },
      upper: () => s.toUpperCase(),
      lower: () => s.toLowerCase(),
      title: () => titleCase(s),
      capitalize: () => (s ? s[0].toUpperCase() + s.slice(1).toLowerCase() : s),
      find: (x) => s.indexOf(x),
      count: (x) => (x === '' ? s.length + 1 : s.split(x).length - 1),
      join: (items) => items.map(str).join(s),
      isdigit: () => /^\d+$/.test(s),
      format: (...a) => { let k = 0; return s.replace(/\{\}/g, () => str(a[k++])); },
    };
    return m[name];
  }
  if (Array.isArray(obj)) {
    const m = {
      append: (x) => { obj.push(x); return null; },
      index: (x) => obj.indexOf(x),
      count: (x) => obj.filter((y) => y === x).length,
      pop: (k) => (k == null ? obj.pop() : obj.splice(k, 1)[0]),
    };
    return m[name];
  }
  if (isDict(obj) && !(obj instanceof Namespace)) {
    const m = {
      items: () => Object.entries(obj),
      keys: () => Object.keys(obj),
      values: () => Object.values(obj),
      get: (k, d = null) => (Object.prototype.hasOwnProperty.call(obj, k) ? obj[k] : d),
    };
    if (Object.prototype.hasOwnProperty.call(obj, name)) return undefined;
    return m[name];
  }
  return undefined;
}

function getAttr(obj, name) {
  if (obj === undefined || obj === null) return undefined;
  if (isDict(obj) && Object.prototype.hasOwnProperty.call(obj, name)) return obj[name];
  const m = method(obj, name);
  if (m) return m;
  if (Array.isArray(obj) || typeof obj === 'string') return undefined;
  return isDict(obj) ? obj[name] : undefined;
}

function index(obj, key) {
  if (obj === undefined || obj === null) return undefined;
  if (Array.isArray(obj) || typeof obj === 'string') {
    if (typeof key !== 'number') return undefined;
    const i = key < 0 ? obj.length + key : key;
    return i >= 0 && i < obj.length ? obj[i] : undefined;
  }
  if (isDict(obj)) return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : getAttr(obj, key);
  return undefined;
}

function slice(obj, a, b, c) {
  const arr = typeof obj === 'string' ? [...obj] : obj;
  if (!Array.isArray(arr)) return undefined;
  const n = arr.length;
  const step = c == null ? 1 : c;
  const norm = (x, d) => (x == null ? d : x < 0 ? Math.max(n + x, step < 0 ? -1 : 0) : Math.min(x, step < 0 ? n - 1 : n));
  const out = [];
  if (step > 0) for (let i = norm(a, 0); i < norm(b, n); i += step) out.push(arr[i]);
  else for (let i = norm(a, n - 1); i > norm(b, -1); i += step) out.push(arr[i]);
  return typeof obj === 'string' ? out.join('') : out;
}

// `needle in hay` as @huggingface/jinja (the reference) evaluates it: an undefined needle, a none
// on either side or a hay that is no container is an error; an undefined hay contains nothing.
function membership(needle, hay) {
  if (needle === undefined) throw new Error('Cannot perform operation in on undefined values');
  if (needle === null || hay === null) throw new Error('Cannot perform operation in on none');
  if (hay === undefined) return false;
  if (typeof hay !== 'string' && !Array.isArray(hay) && !isDict(hay)) throw new Error(`'in' needs a string, list or mapping on its right`);
  return contains(hay, needle);
}

function contains(hay, needle) {
  if (typeof hay === 'string') return hay.includes(str(needle));
  if (Array.isArray(hay)) return hay.some((x) => x === needle);
  if (isDict(hay)) return Object.prototype.hasOwnProperty.call(hay, needle);
  return false;
}

const TESTS = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  integer: (v) => Number.isInteger(v),
  float: (v) => typeof v === 'number' && !Number.isInteger(v),
  boolean: (v) => typeof v === 'boolean',
  true: (v) => v === true,
  false: (v) => v === false,
  mapping: (v) => isDict(v),
  iterable: (v) => Array.isArray(v) || typeof v === 'string' || isDict(v),
  sequence: (v) => Array.isArray(v) || typeof v === 'string' || isDict(v),
  callable: (v) => typeof v === 'function' || v instanceof Macro,
  odd: (v) => v % 2 === 1,
  even: (v) => v % 2 === 0,
  divisibleby: (v, n) => v % n === 0,
  equalto: (v, x) => v === x,
  eq: (v, x) => v === x,
  ne: (v, x) => v !== x,
  in: (v, x) => contains(x, v),
  lower: (v) => typeof v === 'string' && v === v.toLowerCase(),
  upper: (v) => typeof v === 'string' && v === v.toUpperCase(),
};

function length(v) {
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (isDict(v)) return Object.keys(v).length;
  throw new Error(`template: object of type ${typeof v} has no length`);
}

function iterate(v) {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (isDict(v)) return Object.keys(v);
  if (v === undefined || v === null) return [];
  throw new Error(`template: ${str(v)} is not iterable`);
}

function applyFilter(name, v, args, kwargs, ctx) {
  switch (name) {
    case 'tojson': return toJson(v, kwargs.indent != null ? kwargs.indent : args[0]);
    case 'trim': return stripChars(str(v), args[0], true, true);
    case 'length': case 'count': return length(v);
    case 'upper': return str(v).toUpperCase();
    case 'lower': return str(v).toLowerCase();
    case 'title': return titleCase(str(v));
    case 'capitalize': return method(str(v), 'capitalize')();
    case 'string': return str(v);
    case 'safe': case 'e': case 'escape': return name === 'safe' ? v : str(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
    case 'int': { const n = parseInt(v, 10); return Number.isNaN(n) ? 0 : n; }
    case 'float': { const n = parseFloat(v); return Number.isNaN(n) ? 0 : n; }
    case 'abs': return Math.abs(v);
    case 'list': return [...iterate(v)];
    case 'first': return iterate(v)[0];
    case 'last': { const a = iterate(v); return a[a.length - 1]; }
    case 'reverse': return typeof v === 'string' ? [...v].reverse().join('') : [...iterate(v)].reverse();
    case 'join': return iterate(v).map((x) => (kwargs.attribute || args[1] ? str(getAttr(x, kwargs.attribute || args[1])) : str(x))).join(args[0] == null ? '' : args[0]);
    case 'default': case 'd': return v === undefined || (args[1] && !truthy(v)) ? args[0] : v;
    case 'items': return isDict(v) ? Object.entries(v) : v === undefined || v === null ? [] : (() => { throw new Error('template: items of a non-mapping'); })();
    case 'dictsort': return Object.entries(v).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    case 'replace': return method(str(v), 'replace')(args[0], args[1], args[2]);
    case 'indent': {
      const w = typeof args[0] === 'string' ? args[0] : ' '.repeat(args[0] == null ? 4 : args[0]);
      const first = kwargs.first != null ? kwargs.first : args[1];
      const lines = str(v).split('\n');
      return lines.map((l, k) => ((k === 0 && !first) || l === '' ? l : w + l)).join('\n');
    }
    case 'unique': { const seen = []; for (const x of iterate(v)) if (!seen.includes(x)) seen.push(x); return seen; }
    case 'sum': return iterate(v).reduce((a, b) => a + b, 0);
    case 'min': return Math.min(...iterate(v));
    case 'max': return Math.max(...iterate(v));
    case 'map': {
      if (kwargs.attribute != null) return iterate(v).map((x) => getAttr(x, kwargs.attribute));
      return iterate(v).map((x) => applyFilter(args[0], x, args.slice(1), {}, ctx));
    }
    case 'select': case 'reject': case 'selectattr': case 'rejectattr': {
      const attr = name.endsWith('attr');
      const want = name.startsWith('select');
      return iterate(v).filter((x) => {
        const subject = attr ? getAttr(x, args[0]) : x;
        const testName = attr ? args[1] : args[0];
        const ok = testName == null ? truthy(subject) : runTest(testName, subject, attr ? args.slice(2) : args.slice(1));
        return ok === want;
      });
    }
    case 'batch': { const out = []; const a = iterate(v); for (let k = 0; k < a.length; k += args[0]) out.push(a.slice(k, k + args[0])); return out; }
    case 'wordcount': return str(v).split(/\s+/).filter(Boolean).length;
    default: throw new Error(`template: unknown filter '${name}'`);
  }
}

function runTest(name, v, args) {
  const t = TESTS[name];
  if (!t) throw new Error(`template: unknown test '${name}'`);
  return t(v, ...args);
}

function strftime(fmt, d) {
  const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const p2 = (n) => String(n).padStart(2, '0');
  return fmt.replace(/%([a-zA-Z%])/g, (_, c) => ({
    d: p2(d.getDate()), m: p2(d.getMonth() + 1), Y: String(d.getFullYear()), y: p2(d.getFullYear() % 100),
    b: months[d.getMonth()].slice(0, 3), B: months[d.getMonth()], a: days[d.getDay()].slice(0, 3), A: days[d.getDay()],
    H: p2(d.getHours()), M: p2(d.getMinutes()), S: p2(d.getSeconds()), '%': '%',
  })[c] ?? `%${c}`);
}

// ---- evaluation -------------------------------------------------------------------------------

class Scope {
  constructor(parent, vars = {}) { this.parent = parent; this.vars = vars; }
  get(name) {
    for (let s = this; s; s = s.parent) if (Object.prototype.hasOwnProperty.call(s.vars, name)) return s.vars[name];
    return undefined;
  }
  set(name, v) { this.vars[name] = v; }
}

function evaluate(e, scope) {
  switch (e.k) {
    case 'lit': return e.v;
    case 'var': return scope.get(e.name);
    case 'list': return e.items.map((x) => evaluate(x, scope));
    case 'dict': { const o = {}; for (const [k, v] of e.entries) o[evaluate(k, scope)] = evaluate(v, scope); return o; }
    case 'cond': return truthy(evaluate(e.cond, scope)) ? evaluate(e.a, scope) : evaluate(e.b, scope);
    case 'or': { const a = evaluate(e.a, scope); return truthy(a) ? a : evaluate(e.b, scope); }
    case 'and': { const a = evaluate(e.a, scope); return truthy(a) ? evaluate(e.b, scope) : a; }
    case 'not': return !truthy(evaluate(e.a, scope));
    case 'neg': return -evaluate(e.a, scope);
    case 'in': return membership(evaluate(e.a, scope), evaluate(e.b, scope));
    case 'attr': return getAttr(evaluate(e.obj, scope), e.name);
    case 'index': return index(evaluate(e.obj, scope), evaluate(e.key, scope));
    case 'slice': {
      const ev = (x) => (x ? evaluate(x, scope) : null);
      return slice(evaluate(e.obj, scope), ev(e.a), ev(e.b), ev(e.c));
    }
    case 'filter': {
      const args = e.args.map((x) => evaluate(x, scope));
      const kwargs = {};
      for (const [k, v] of Object.entries(e.kwargs)) kwargs[k] = evaluate(v, scope);
      return applyFilter(e.name, evaluate(e.a, scope), args, kwargs, scope);
    }
    case 'test': {
      const r = runTest(e.name, evaluate(e.a, scope), e.args.map((x) => evaluate(x, scope)));
      return e.neg ? !r : r;
    }
    case 'call': {
      const fn = evaluate(e.fn, scope);
      const args = e.args.map((x) => evaluate(x, scope));
      const kwargs = {};
      for (const [k, v] of Object.entries(e.kwargs)) kwargs[k] = evaluate(v, scope);
      if (fn instanceof Macro) return fn.fn(args, kwargs);
      if (typeof fn === 'function') return fn(...args, ...(Object.keys(kwargs).length ? [kwargs] : []));
      throw new Error(`template: ${e.fn.name || e.fn.k} is not callable`);
    }
    case 'bin': {
      const a = evaluate(e.a, scope), b = evaluate(e.b, scope);
      switch (e.op) {
        case '+':
          if (Array.isArray(a) && Array.isArray(b)) return a.concat(b);
          if (typeof a === 'string' || typeof b === 'string') {
            if (typeof a !== typeof b) throw new Error(`template: cannot add ${typeof a} and ${typeof b}`);
            return a + b;
          }
          return a + b;
        case '-': return a - b;
        case '*': return typeof a === 'string' ? a.repeat(b) : a * b;
        case '/': return a / b;
        case '//': return Math.floor(a / b);
        case '%': return a % b;
        case '**': return a ** b;
        case '~': return str(a) + str(b);
        case '==': return a === b || (a === undefined && b === undefined);
        case '!=': return a !== b;
        case '<': return a < b;
        case '>': return a > b;
        case '<=': return a <= b;
        case '>=': return a >= b;
        default: throw new Error(`template: operator ${e.op}`);
      }
    }
    default: throw new Error(`template: cannot evaluate ${e.k}`);
  }
}

function assign(scope, targets, value) {
  for (let k = 0; k < targets.length; k++) {
    const t = targets[k];
    const v = targets.length > 1 ? iterate(value)[k] : value;
    const dot = t.indexOf('.');
    if (dot > 0) {  // namespace attribute
      const ns = scope.get(t.slice(0, dot));
      if (!(ns instanceof Namespace)) throw new Error(`template: cannot assign to ${t}: not a namespace`);
      ns[t.slice(dot + 1)] = v;
    } else scope.set(t, v);
  }
}

function run(nodes, scope, out) {
  for (const n of nodes) {
    switch (n.k) {
      case 'text': out.push(n.v); break;
      case 'out': out.push(str(evaluate(n.e, scope))); break;
      case 'if':
        for (const b of n.branches) {
          if (b.cond === null || truthy(evaluate(b.cond, scope))) { run(b.nodes, scope, out); break; }
        }
        break;
      case 'for': {
        let items = iterate(evaluate(n.iter, scope));
        if (n.filter) {
          items = items.filter((it) => {
            const s = new Scope(scope);
            assign(s, n.targets, it);
            return truthy(evaluate(n.filter, s));
          });
        }
        if (!items.length) { run(n.elseNodes, scope, out); break; }
        for (let k = 0; k < items.length; k++) {
          const loop = {
            index0: k, index: k + 1, first: k === 0, last: k === items.length - 1, length: items.length,
            revindex: items.length - k, revindex0: items.length - k - 1,
            previtem: k > 0 ? items[k - 1] : undefined, nextitem: k + 1 < items.length ? items[k + 1] : undefined,
            cycle: (...xs) => xs[k % xs.length],
          };
          const s = new Scope(scope, { loop });
          assign(s, n.targets, items[k]);
          try {
            run(n.nodes, s, out);
          } catch (sig) {
            if (sig instanceof BreakSignal) break;
            if (sig instanceof ContinueSignal) continue;
            throw sig;
          }
        }
        break;
      }
      case 'break': throw new BreakSignal();
      case 'continue': throw new ContinueSignal();
      case 'set': assign(scope, n.targets, evaluate(n.e, scope)); break;
      case 'setblock': { const o = []; run(n.nodes, scope, o); assign(scope, [n.target], o.join('')); break; }
      case 'do': evaluate(n.e, scope); break;
      case 'macro': {
        const defScope = scope;
        scope.set(n.name, new Macro((args, kwargs) => {
          const s = new Scope(defScope);
          n.params.forEach((p, k) => {
            let v = k < args.length ? args[k] : kwargs[p.name];
            if (v === undefined && p.def) v = evaluate(p.def, defScope);
            s.set(p.name, v);
          });
          const o = [];
          run(n.nodes, s, o);
          return o.join('');
        }));
        break;
      }
      default: throw new Error(`template: cannot run ${n.k}`);
    }
  }
}

const compiled = new Map();

// Renders a chat template with the given variables (messages, add_generation_prompt, bos_token,
// eos_token, tools, ...). Throws an Error naming the problem for templates it cannot handle
// and for raise_exception() in the template.
export function renderChat(template, variables) {
  let nodes = compiled.get(template);
  if (!nodes) {
    nodes = parseTemplate(template);
    compiled.set(template, nodes);
  }
  const globals = new Scope(null, {
    raise_exception: (msg) => { throw new Error(`chat template: ${msg}`); },
    namespace: (kw = {}) => new Namespace(kw),
    range: (a, b, c) => {
      const [start, stop, step] = b === undefined ? [0, a, 1] : [a, b, c || 1];
      const r = [];
      for (let k = start; step > 0 ? k < stop : k > stop; k += step) r.push(k);
      return r;
    },
    strftime_now: (fmt) => strftime(fmt, new Date()),
    dict: (kw = {}) => ({ ...kw }),
  });
  const scope = new Scope(globals, { ...variables });
  const out = [];
  run(nodes, scope, out);
  return out.join('');
}

// The template for a model without one: Llama 3's when its vocabulary has the header tokens,
// ChatML otherwise (Qwen and most others).
export function builtinTemplate(info) {
  if (info && info.architecture === 'llama' && info.bosText === '<|begin_of_text|>') {
    return "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
  }
  return "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}
