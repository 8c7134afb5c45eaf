#!/usr/bin/env -S node --no-node-snapshot
// The `cinder` command. It runs on the Node the project pins (scripts/project-node.mjs): started by
// another Node (e.g. the machine's own, older one), it re-executes itself on that one. isolated-vm
// also needs Node's own startup snapshot off; the shebang passes the flag, and the same re-exec
// covers `node bin/cinder.js` started without it.
import { fileURLToPath } from 'node:url';
import { reexec, runsOnRequiredNode } from '../scripts/project-node.mjs';

// Only the commands that load isolated-vm need the flag; the others skip that re-exec (~0.5 s).
const needsIsolates = new Set(['dev', 'serve', 'bench']);
const missingFlag = !process.execArgv.includes('--no-node-snapshot') && needsIsolates.has(process.argv[2]);
if (!runsOnRequiredNode() || missingFlag) {
  const nodeArgs = [...new Set(['--no-node-snapshot', ...process.execArgv])];
  reexec(nodeArgs, fileURLToPath(import.meta.url), process.argv.slice(2));
} else {
  await import('../dist/src/app/cli/index.js');
}
