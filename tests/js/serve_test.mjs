// web/serve.mjs serves the page, the package and the benchmark's models, and nothing else: not a
// sibling folder whose name starts with the repository's, not .git, not the source tree.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const port = 20000 + Math.floor(Math.random() * 20000);
const server = spawn(process.execPath, [path.join(root, 'web/serve.mjs'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => server.stdout.once('data', r));
let failures = 0;
const base = `http://127.0.0.1:${port}`;
const expect = async (p, status) => {
  const r = await fetch(base + p, { redirect: 'manual' });
  const ok = r.status === status && (status !== 200 || r.headers.get('cross-origin-embedder-policy') === 'require-corp');
  console.log(`${ok ? 'ok  ' : 'FAIL'} GET ${p} -> ${r.status} (want ${status})`);
  if (!ok) failures++;
};
try {
  await expect('/', 302);
  await expect('/web/', 200);
  await expect('/bindings/js/index.js', 200);
  await expect('/bindings/js/wasm/worker-core.js', 200);
  // A sibling folder whose name starts with the repository's, holding a file: a prefix check
  // without a separator would serve it.
  const sibling = path.basename(root) + '-serve-test';
  fs.mkdirSync(path.join(root, '..', sibling), { recursive: true });
  fs.writeFileSync(path.join(root, '..', sibling, 'x'), 'secret');
  for (const p of [`/..%2f${sibling}/x`, `/..%2f..%2fetc/passwd`, '/%2e%2e/etc/passwd', '/.git/config', '/web/%2e%2e/.git/config',
    '/src/context.cpp', '/README.md', '/bindings/engine.cpp', '/bindings/js/.gitignore', '/web/%zz', '/bindings%2fjs%2f..%2f..%2fREADME.md'])
    await expect(p, 404);
} finally {
  server.kill();
  fs.rmSync(path.join(root, '..', path.basename(root) + '-serve-test'), { recursive: true, force: true });
}
console.log(`serve: ${failures ? `${failures} failed` : 'all passed'}`);
process.exit(failures ? 1 : 0);
