// The model cache of rill-llm: downloaded GGUF files kept by URL, so that a second load makes
// no network request. Runs in the engine's worker (browser Web Worker or Node worker thread),
// where the download is streamed into wasm memory and into the cache in one pass.
//
// Stores (all hold the same two things per URL: the file's bytes and a small JSON record):
//   directory  Node: <dir>/<key>.gguf and <key>.json (default dir: the user's cache folder)
//   opfs       browsers: the origin private file system, folder "rill-llm"
//   cache-api  browsers without OPFS: the Cache API, cache "rill-llm", the record in a header
// An entry is valid only when its record exists and its size matches the record's. The record
// is written last, atomically, after the bytes are complete and checked (size, and SHA-256 when
// the server or the caller names one), and removed first when an entry is replaced: a download
// that fails, is aborted, or dies with its tab leaves no entry that looks valid.
/* eslint-disable no-restricted-globals */
(function (root) {
  'use strict';

  const FORMAT = 1;
  const CHUNK = 16 << 20;  // bytes read from a store at a time (never one read of a whole file)

  // ---- SHA-256 (FIPS 180-4), incremental: keys of URLs and content checks -------------------
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

  function sha256() {
    const h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Int32Array(64);  // Int32: values stay small integers in V8 (Uint32 above 2^31 are doubles)
    const tail = new Uint8Array(64);
    let held = 0;
    let length = 0;  // bytes

    function block(b, o) {
      for (let i = 0; i < 16; i++) w[i] = (b[o + 4 * i] << 24) | (b[o + 4 * i + 1] << 16) | (b[o + 4 * i + 2] << 8) | b[o + 4 * i + 3];
      for (let i = 16; i < 64; i++) {
        const x = w[i - 15], y = w[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[i] = (((w[i - 16] + s0) | 0) + ((w[i - 7] + s1) | 0)) | 0;  // int32 sums all the way: no doubles
      }
      let a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (((((hh + S1) | 0) + ((e & f) ^ (~e & g))) | 0) + ((K[i] + w[i]) | 0)) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }

    return {
      update(bytes) {
        let i = 0;
        length += bytes.length;
        if (held) {
          while (held < 64 && i < bytes.length) tail[held++] = bytes[i++];
          if (held < 64) return;
          block(tail, 0);
          held = 0;
        }
        for (; i + 64 <= bytes.length; i += 64) block(bytes, i);
        while (i < bytes.length) tail[held++] = bytes[i++];
      },
      hex() {
        const bits = length * 8;
        const pad = new Uint8Array((held < 56 ? 64 : 128) - held);
        pad[0] = 0x80;
        const n = pad.length;
        for (let i = 0; i < 8; i++) pad[n - 1 - i] = Math.floor(bits / 2 ** (8 * i)) & 0xff;
        this.update(pad);
        return Array.from(h, (x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
      },
    };
  }

  function sha256Hex(text) {
    const s = sha256();
    s.update(new TextEncoder().encode(text));
    return s.hex();
  }

  const keyOf = (url) => sha256Hex(url).slice(0, 32);

  // The content hash a server states for a response, as lowercase hex, or null: Repr-Digest /
  // Digest (sha-256, base64), x-amz-checksum-sha256 (base64), or an ETag / x-linked-etag that
  // is 64 hex digits (Hugging Face's large files).
  function statedSha256(headers) {
    const b64hex = (s) => {
      try { return Array.from(atob(s), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(''); } catch (e) { return null; }
    };
    const repr = headers.get('repr-digest') || headers.get('digest') || '';
    const m = /sha-256=:?([A-Za-z0-9+/=]+):?/i.exec(repr);
    if (m) { const x = b64hex(m[1]); if (x && x.length === 64) return x; }
    const amz = headers.get('x-amz-checksum-sha256');
    if (amz) { const x = b64hex(amz); if (x && x.length === 64) return x; }
    for (const name of ['x-linked-etag', 'etag']) {
      const v = (headers.get(name) || '').replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
      if (/^[0-9a-f]{64}$/.test(v)) return v;
    }
    return null;
  }

  // A record as this format writes it, or null.
  const validRecord = (r) => (r && r.format === FORMAT && typeof r.url === 'string' && Number.isFinite(r.size) ? r : null);
  const parseRecord = (text) => { try { return validRecord(JSON.parse(text)); } catch (e) { return null; } };

  const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;

  // The error of a cache that cannot take a model: names the model's size and the limit.
  function quotaError(size, limit) {
    const e = new Error(`the model cache has no room for this model (${mb(size)}): ${limit}; `
      + 'delete cached models (deleteCached, clearCache) or load with { cache: false }');
    e.name = 'QuotaExceededError';
    e.explained = true;
    return e;
  }

  const isQuota = (e) => e && (e.name === 'QuotaExceededError' || e.code === 'ENOSPC' || e.code === 'EDQUOT');

  // ---- directory (Node) --------------------------------------------------------------------
  function directoryStore(fs, path, dir) {
    const data = (key) => path.join(dir, `${key}.gguf`);
    const record = (key) => path.join(dir, `${key}.json`);
    const readRecord = (file) => { try { return parseRecord(fs.readFileSync(file, 'utf8')); } catch (e) { return null; } };
    const removeKey = (key) => {
      let had = false;
      for (const f of [record(key), data(key)]) { try { fs.unlinkSync(f); had = true; } catch (e) { /* absent */ } }
      return had;
    };
    const entries = () => {
      let names;
      try { names = fs.readdirSync(dir); } catch (e) { return []; }
      return names.filter((n) => n.endsWith('.json')).map((n) => [n.slice(0, -5), readRecord(path.join(dir, n))]);
    };
    return {
      name: 'directory',
      where: dir,
      async lookup(url) {
        const key = keyOf(url);
        const r = readRecord(record(key));
        if (!r || r.url !== url) return null;
        let fd;
        try {
          fd = fs.openSync(data(key), 'r');
          if (fs.fstatSync(fd).size !== r.size) throw new Error('size');
        } catch (e) {
          if (fd !== undefined) fs.closeSync(fd);
          removeKey(key);  // a record without its bytes: not an entry
          return null;
        }
        let open = true;
        const close = () => { if (open) { open = false; fs.closeSync(fd); } };
        return {
          record: r,
          close,  // without reading
          // Copies the bytes into view() (wasm memory), straight from the file.
          async copyTo(view, progress) {
            try {
              for (let pos = 0; pos < r.size;) {
                const n = fs.readSync(fd, view().subarray(pos, Math.min(r.size, pos + CHUNK)), 0, Math.min(CHUNK, r.size - pos), pos);
                if (n <= 0) throw new Error(`the cached copy of ${url} ended at byte ${pos} of ${r.size}`);
                pos += n;
                progress(pos);
              }
            } finally {
              close();
            }
          },
          drop: () => { close(); removeKey(key); },
        };
      },
      async create(url, rec) {
        fs.mkdirSync(dir, { recursive: true });
        const key = keyOf(url);
        try { fs.unlinkSync(record(key)); } catch (e) { /* none */ }
        if (typeof fs.statfsSync === 'function') {
          const st = fs.statfsSync(dir);
          const room = Number(st.bavail) * Number(st.bsize);
          if (rec.size > room) throw quotaError(rec.size, `the disk holding ${dir} has ${mb(room)} free`);
        }
        const part = `${data(key)}.${process.pid}.${Date.now().toString(36)}.part`;
        const fd = fs.openSync(part, 'w');
        let pos = 0;
        let open = true;
        const abort = () => {
          if (open) { open = false; try { fs.closeSync(fd); } catch (e) { /* closed */ } }
          try { fs.unlinkSync(part); } catch (e) { /* gone */ }
        };
        return {
          async write(chunk) {
            try {
              for (let done = 0; done < chunk.length;) done += fs.writeSync(fd, chunk, done, chunk.length - done, pos + done);
            } catch (e) {
              abort();
              throw e;
            }
            pos += chunk.length;
          },
          async commit(final) {
            fs.fsyncSync(fd);
            fs.closeSync(fd);
            open = false;
            fs.renameSync(part, data(key));
            const tmp = `${record(key)}.${process.pid}.tmp`;
            fs.writeFileSync(tmp, JSON.stringify(final));
            fs.renameSync(tmp, record(key));
          },
          abort,
        };
      },
      async list() { return entries().filter(([, r]) => r).map(([, r]) => r); },
      async explainQuota(size) {
        let free = '';
        try { const st = fs.statfsSync(dir); free = `, ${mb(Number(st.bavail) * Number(st.bsize))} free`; } catch (e) { /* unknown */ }
        return quotaError(size, `the disk holding ${dir} is full${free}`);
      },
      async remove(url) { return removeKey(keyOf(url)); },
      async clear() {
        let n = 0;
        let names = [];
        try { names = fs.readdirSync(dir); } catch (e) { return 0; }
        for (const name of names) {
          if (!/^[0-9a-f]{32}\.(gguf|json)/.test(name)) continue;  // only what this cache wrote
          if (name.endsWith('.json')) n++;
          try { fs.unlinkSync(path.join(dir, name)); } catch (e) { /* gone */ }
        }
        return n;
      },
    };
  }

  // ---- origin private file system (browsers) -----------------------------------------------
  async function storageRoom() {
    if (!(root.navigator && navigator.storage && navigator.storage.estimate)) return null;
    const { quota, usage } = await navigator.storage.estimate();
    return quota == null ? null : { quota, usage, room: quota - (usage || 0) };
  }

  async function originLimit() {
    const q = await storageRoom();
    return q ? `the origin's storage quota is ${mb(q.quota)}, ${mb(q.usage)} of it used` : 'the browser\'s storage quota was reached';
  }

  async function checkRoom(size) {
    const q = await storageRoom();
    if (q && size > q.room) throw quotaError(size, await originLimit());
  }

  // A write refused for quota, though the estimate may still show room (browsers estimate).
  const explainQuota = async (size) => {
    const q = await storageRoom();
    return quotaError(size, q && size <= q.room
      ? `the browser refused to store it past the origin's storage quota (it estimates the quota at ${mb(q.quota)}, ${mb(q.usage)} used)`
      : await originLimit());
  };

  async function writeWhole(dirHandle, name, text) {
    const fh = await dirHandle.getFileHandle(name, { create: true });
    const w = await fh.createWritable();  // replaces the file atomically on close
    await w.write(text);
    await w.close();
  }

  async function opfsStore() {
    const top = await navigator.storage.getDirectory();
    const dir = await top.getDirectoryHandle('rill-llm', { create: true });
    const remove = async (name) => { try { await dir.removeEntry(name); return true; } catch (e) { return false; } };
    const readRecord = async (name) => { try { return parseRecord(await (await (await dir.getFileHandle(name)).getFile()).text()); } catch (e) { return null; } };
    return {
      name: 'opfs',
      explainQuota,
      where: 'the origin private file system',
      async lookup(url) {
        const key = keyOf(url);
        const r = await readRecord(`${key}.json`);
        if (!r || r.url !== url) return null;
        let file;
        try { file = await (await dir.getFileHandle(`${key}.gguf`)).getFile(); } catch (e) { file = null; }
        if (!file || file.size !== r.size) {
          await remove(`${key}.json`);
          await remove(`${key}.gguf`);
          return null;
        }
        return {
          record: r,
          async copyTo(view, progress) {
            // In a worker, a sync access handle reads straight into wasm memory (or, where a
            // shared view is refused, through one reused buffer); elsewhere Blob slices.
            let handle = null;
            try { handle = await (await dir.getFileHandle(`${key}.gguf`)).createSyncAccessHandle(); } catch (e) { handle = null; }
            if (handle) {
              let scratch = null;
              try {
                for (let pos = 0; pos < r.size;) {
                  const end = Math.min(r.size, pos + CHUNK);
                  let n;
                  if (!scratch) {
                    try { n = handle.read(view().subarray(pos, end), { at: pos }); } catch (e) { if (!(e instanceof TypeError)) throw e; scratch = new Uint8Array(CHUNK); }
                  }
                  if (scratch) {
                    n = handle.read(scratch.subarray(0, end - pos), { at: pos });
                    view().set(scratch.subarray(0, n), pos);
                  }
                  if (!(n > 0)) throw new Error(`the cached copy of ${url} ended at byte ${pos} of ${r.size}`);
                  pos += n;
                  progress(pos);
                }
              } finally {
                handle.close();
              }
              return;
            }
            for (let pos = 0; pos < r.size; pos += CHUNK) {
              const end = Math.min(r.size, pos + CHUNK);
              view().set(new Uint8Array(await file.slice(pos, end).arrayBuffer()), pos);
              progress(end);
            }
          },
          drop: async () => { await remove(`${key}.json`); await remove(`${key}.gguf`); },
        };
      },
      async create(url, rec) {
        const key = keyOf(url);
        await remove(`${key}.json`);
        await checkRoom(rec.size);
        const fh = await dir.getFileHandle(`${key}.gguf`, { create: true });
        // A worker's sync access handle writes in place, at disk speed; elsewhere a writable.
        let sync = null;
        let writable = null;
        if (typeof fh.createSyncAccessHandle === 'function') {
          sync = await fh.createSyncAccessHandle();
          sync.truncate(0);
        } else {
          writable = await fh.createWritable();
        }
        let pos = 0;
        let open = true;
        const close = async (keep) => {
          if (!open) return;
          open = false;
          try {
            if (sync) { if (keep) sync.flush(); sync.close(); } else if (keep) await writable.close(); else await writable.abort();
          } catch (e) { if (keep) throw e; }
        };
        const abort = async () => { await close(false); await remove(`${key}.gguf`); };
        return {
          async write(chunk) {
            try {
              if (sync) {
                for (let done = 0; done < chunk.length;) {
                  const n = sync.write(chunk.subarray(done), { at: pos + done });
                  if (n <= 0) throw Object.assign(new Error('short write'), { name: 'QuotaExceededError' });
                  done += n;
                }
              } else {
                await writable.write(chunk);
              }
            } catch (e) {
              await abort();
              throw e;
            }
            pos += chunk.length;
          },
          async commit(final) {
            await close(true);
            await writeWhole(dir, `${key}.json`, JSON.stringify(final));
          },
          abort,
        };
      },
      async list() {
        const out = [];
        for await (const [name] of dir.entries()) {
          if (!name.endsWith('.json')) continue;
          const r = await readRecord(name);
          if (r) out.push(r);
        }
        return out;
      },
      async remove(url) {
        const key = keyOf(url);
        const a = await remove(`${key}.json`);
        const b = await remove(`${key}.gguf`);
        return a || b;
      },
      async clear() {
        const names = [];
        for await (const [name] of dir.entries()) names.push(name);
        for (const name of names) await remove(name);
        return names.filter((n) => n.endsWith('.json')).length;
      },
    };
  }

  // ---- Cache API (browsers without OPFS) ---------------------------------------------------
  // cache.put() stores a response only once its whole body has been written, so a failed or
  // aborted download is never stored; the record rides along in a header.
  async function cacheApiStore() {
    const cache = await caches.open('rill-llm');
    const recordOf = (res) => parseRecord(res.headers.get('x-rill-record'));
    return {
      name: 'cache-api',
      explainQuota,
      where: 'the Cache API',
      async lookup(url) {
        const res = await cache.match(url);
        const r = res && recordOf(res);
        if (!r || r.url !== url) { if (res) await cache.delete(url); return null; }
        return {
          record: r,
          async copyTo(view, progress) {
            // A byte stream is read into one reused buffer (fewer, larger copies), else as it comes.
            let reader, buf = null;
            try { reader = res.body.getReader({ mode: 'byob' }); buf = new ArrayBuffer(CHUNK); } catch (e) { reader = res.body.getReader(); }
            let pos = 0;
            for (;;) {
              const { done, value } = await (buf ? reader.read(new Uint8Array(buf, 0, CHUNK)) : reader.read());
              if (done) break;
              if (buf) buf = value.buffer;
              if (pos + value.length > r.size) { reader.cancel().catch(() => {}); break; }
              view().set(value, pos);
              pos += value.length;
              progress(pos);
            }
            if (pos !== r.size) throw new Error(`the cached copy of ${url} does not hold the ${r.size} bytes its record names`);
          },
          drop: () => cache.delete(url),
        };
      },
      async create(url, rec) {
        await cache.delete(url);
        await checkRoom(rec.size);
        let controller;
        let pulled = null;
        const body = new ReadableStream({
          start(c) { controller = c; },
          pull() { if (pulled) { const p = pulled; pulled = null; p(); } },
        }, new ByteLengthQueuingStrategy({ highWaterMark: 32 << 20 }));
        const headers = { 'content-type': 'application/octet-stream', 'x-rill-record': JSON.stringify(rec) };
        let failed = null;
        const stored = cache.put(url, new Response(body, { headers })).catch((e) => { failed = e; });
        const fail = async (e) => {
          try { controller.error(e); } catch (x) { /* closed */ }
          await stored;
          await cache.delete(url);
        };
        let pos = 0;
        return {
          async write(chunk) {
            if (failed) {
              const e = failed;
              await fail(e);
              throw e;
            }
            controller.enqueue(chunk.slice());  // the stream keeps it; the caller may reuse its buffer
            pos += chunk.length;
            if (controller.desiredSize <= 0) await new Promise((r) => { pulled = r; });
          },
          async commit(final) {
            if (JSON.stringify(final) !== JSON.stringify(rec)) throw new Error('the Cache API store takes its record up front');
            controller.close();
            await stored;
            if (failed) {
              await cache.delete(url);
              throw failed;
            }
          },
          abort: () => fail(new Error('download abandoned')),
        };
      },
      async list() {
        const out = [];
        for (const req of await cache.keys()) {
          const res = await cache.match(req);
          const r = res && recordOf(res);
          if (r) out.push(r);
        }
        return out;
      },
      async remove(url) { return cache.delete(url); },
      async clear() {
        const n = (await cache.keys()).length;
        await caches.delete('rill-llm');
        return n;
      },
    };
  }

  // The store for options { cacheStore: 'auto' | 'opfs' | 'cache-api' | 'directory', cacheDir }.
  // host.directory(dir) gives the Node store.
  async function openStore(options, host) {
    const kind = options.cacheStore || 'auto';
    if (host.directory) {
      if (kind !== 'auto' && kind !== 'directory') throw new Error(`cacheStore '${kind}' is for browsers; Node caches in a directory`);
      return host.directory(options.cacheDir);
    }
    const hasOpfs = root.navigator && navigator.storage && typeof navigator.storage.getDirectory === 'function';
    const hasCacheApi = typeof caches !== 'undefined';
    if (kind === 'opfs' || (kind === 'auto' && hasOpfs)) {
      if (!hasOpfs) throw new Error('this browser has no origin private file system (cacheStore: \'opfs\')');
      try { return await opfsStore(); } catch (e) { if (kind === 'opfs' || !hasCacheApi) throw e; }
    }
    if (kind === 'cache-api' || kind === 'auto') {
      if (!hasCacheApi) throw new Error('this browser has no Cache API (cacheStore: \'cache-api\')');
      return cacheApiStore();
    }
    throw new Error(`unknown cacheStore '${kind}': use 'auto', 'opfs' or 'cache-api' (browsers), 'directory' (Node)`);
  }

  // What a new entry records about its source.
  function recordFor(url, res, size, expectedSha) {
    return {
      format: FORMAT, url, size,
      etag: res.headers.get('etag') || null,
      lastModified: res.headers.get('last-modified') || null,
      sha256: expectedSha || null,
      storedAt: new Date().toISOString(),
    };
  }

  const api = { openStore, directoryStore, recordFor, statedSha256, sha256, sha256Hex, keyOf, isQuota, CHUNK };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.rillModelCache = api;
})(typeof self !== 'undefined' ? self : this);
