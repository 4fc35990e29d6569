// Runs a command to its end for the JS tests: its stdout, or an error carrying its stderr.
import { spawnSync } from 'node:child_process';

export function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return r.stdout.toString();
}
