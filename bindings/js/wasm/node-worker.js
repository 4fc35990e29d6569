// Node entry of the rill-llm worker (worker_threads): loads the Emscripten build with require()
// and hands it the .wasm bytes (Emscripten 3.1.6 would otherwise try to fetch() a file path).
'use strict';
const fs = require('fs');
const path = require('path');
const { parentPort } = require('worker_threads');
const os = require('os');
const core = require('./worker-core.js');
const cache = require('./model-cache.js');

// Where downloaded models are kept: $RILL_CACHE_DIR, else the platform's user cache folder.
function defaultCacheDir() {
  if (process.env.RILL_CACHE_DIR) return process.env.RILL_CACHE_DIR;
  const home = os.homedir();
  if (process.platform === 'win32') return path.join(process.env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'rill-llm', 'cache');
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Caches', 'rill-llm');
  return path.join(process.env.XDG_CACHE_HOME || path.join(home, '.cache'), 'rill-llm');
}

core.serve({
  post: (msg) => parentPort.postMessage(msg),
  onMessage: (fn) => parentPort.on('message', fn),
  loadGlue: async (build) => ({
    factory: require(`./rill-${build}.js`),
    moduleArgs: { wasmBinary: fs.readFileSync(path.join(__dirname, `rill-${build}.wasm`)) },
  }),
  // Node hashes downloads natively (model-cache.js's own SHA-256 serves browsers).
  cache: { ...cache, sha256: () => {
    const h = require('crypto').createHash('sha256');
    return { update: (b) => h.update(b), hex: () => h.digest('hex') };
  } },
  directory: (dir) => cache.directoryStore(fs, path, path.resolve(dir || defaultCacheDir())),
  openFile: (file) => {
    let fd;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new Error(`cannot open model file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    }
    return {
      size: fs.fstatSync(fd).size,
      read: (buf, pos) => fs.readSync(fd, buf, 0, buf.length, pos),
      close: () => fs.closeSync(fd),
    };
  },
});
