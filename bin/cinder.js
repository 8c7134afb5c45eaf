#!/usr/bin/env -S node --no-node-snapshot
// isolated-vm needs Node's own startup snapshot off (Node 20+); the shebang passes the flag, and
// this re-exec covers `node bin/cinder.js` started without it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (!process.execArgv.includes('--no-node-snapshot')) {
  const result = spawnSync(process.execPath, ['--no-node-snapshot', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
await import('../dist/src/cli.js');
