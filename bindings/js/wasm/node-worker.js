// Node entry of the rill-llm worker (worker_threads): loads the Emscripten build with require()
// and hands it the .wasm bytes (Emscripten 3.1.6 would otherwise try to fetch() a file path).
'use strict';
const fs = require('fs');
const path = require('path');
const { parentPort } = require('worker_threads');
const core = require('./worker-core.js');

core.serve({
  post: (msg) => parentPort.postMessage(msg),
  onMessage: (fn) => parentPort.on('message', fn),
  loadGlue: async (build) => ({
    factory: require(`./rill-${build}.js`),
    moduleArgs: { wasmBinary: fs.readFileSync(path.join(__dirname, `rill-${build}.wasm`)) },
  }),
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
