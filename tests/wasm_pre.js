// Node under Emscripten 3.1.6 would fetch() the .wasm by path and fail: hand it the bytes.
if (typeof __filename == 'string') {
  Module['wasmBinary'] = require('fs').readFileSync(__filename.replace(/\.js$/, '.wasm'));
}
