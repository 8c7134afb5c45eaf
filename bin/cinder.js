#!/usr/bin/env -S node --no-node-snapshot
// isolated-vm needs Node's own startup snapshot off (Node 20+); the shebang passes the flag, and
// this re-exec covers `node bin/cinder.js` started without it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Only the commands that load isolated-vm need the flag; the others skip the re-exec (~0.5 s).
const needsIsolates = new Set(['dev', 'serve', 'bench']);
if (!process.execArgv.includes('--no-node-snapshot') && needsIsolates.has(process.argv[2])) {
  const child = spawn(process.execPath, ['--no-node-snapshot', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Pass signals on, so stopping this process stops the server too.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 15 : 1)));
} else {
  await import('../dist/src/cli.js');
}
