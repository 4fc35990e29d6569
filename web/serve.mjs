// A development server for the browser build: serves the chat page, the npm package and the
// benchmark's models with the headers wasm threads need (COOP/COEP, so the page is cross-origin
// isolated) on 127.0.0.1, and nothing else: no other folder of the repository, no dot-files,
// nothing outside it (paths are resolved, then checked by whole path segments).
//   node web/serve.mjs [PORT] [--models DIR]   then open http://127.0.0.1:8080/web/
// (--models: the folder served as /bench/models/, default the repository's bench/models)
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const at = argv.indexOf('--models');
const modelsDir = at >= 0 ? path.resolve(argv.splice(at, 2)[1]) : path.join(root, 'bench/models');
const port = Number(argv[0] || 8080);
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.json': 'application/json' };
const SERVED = ['web', 'bindings/js'].map((d) => path.join(root, d));

// The file a URL path names, or null when it is not one this server serves.
function resolve(urlPath) {
  let p;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p.includes('\0')) return null;
  let file = path.resolve(root, '.' + path.posix.normalize('/' + p));
  const models = path.join(root, 'bench/models');
  if (file === models || file.startsWith(models + path.sep)) file = path.join(modelsDir, path.relative(models, file));
  const base = [...SERVED, modelsDir].find((d) => file === d || file.startsWith(d + path.sep));
  if (!base) return null;
  if (path.relative(base, file).split(path.sep).some((s) => s.startsWith('.'))) return null;  // .git, .env, ...
  return file;
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  if (url.pathname === '/') { res.writeHead(302, { Location: '/web/' }); res.end(); return; }
  let file = resolve(url.pathname);
  if (!file) { res.writeHead(404, headers); res.end('not found'); return; }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) { res.writeHead(404, headers); res.end('not found'); return; }
    res.writeHead(200, { ...headers, 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Content-Length': st.size });
    fs.createReadStream(file).pipe(res);
  });
}).listen(port, '127.0.0.1', () => console.log(`serving the chat page, the package and bench/models on http://127.0.0.1:${port}/web/ (cross-origin isolated)`));
