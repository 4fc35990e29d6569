// Browser entry of the rill-llm worker (a classic Web Worker): loads the Emscripten build with
// importScripts. Its pthread workers must load the build's script, not this one.
/* global importScripts, rillWorkerCore, rillModelCache, createRillModule */
'use strict';
importScripts('worker-core.js', 'model-cache.js');

rillWorkerCore.serve({
  post: (msg) => self.postMessage(msg),
  cache: rillModelCache,
  onMessage: (fn) => { self.onmessage = (ev) => fn(ev.data); },
  loadGlue: async (build) => {
    const url = new URL(`rill-${build}.js`, self.location.href).href;
    importScripts(url);
    return { factory: createRillModule, moduleArgs: { mainScriptUrlOrBlob: url } };
  },
  openFile: () => { throw new Error('file paths can only be loaded in Node; in a browser pass a URL, a File/Blob or bytes'); },
});
