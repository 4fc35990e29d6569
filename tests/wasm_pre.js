// Node under Emscripten 3.1.6 would fetch() the .wasm by path and fail: hand it the bytes.
if (typeof __filename == 'string') {
  Module['wasmBinary'] = require('fs').readFileSync(__filename.replace(/\.js$/, '.wasm'));
  // getenv() sees Emscripten's own environment: pass the RILL_* variables on (RILL_THREADS, ...).
  Module['preRun'] = [function () {
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith('RILL_')) ENV[k] = v;
  }];
}
