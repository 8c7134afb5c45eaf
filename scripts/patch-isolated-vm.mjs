#!/usr/bin/env node
// isolated-vm 5.0.4's binding.gyp gives the `isolated_vm` target two `conditions` keys; in a
// Python dict literal the second wins, so USE_CLOCK_THREAD_CPUTIME_ID is never defined on Linux
// and `isolate.cpuTime` reports wall time. Cinder's CPU limit depends on a real CPU clock, so we
// merge the two lists and build the addon once. package.json's allowScripts denies isolated-vm
// its own install script (which would try a prebuilt download, then build the unpatched source),
// so this is normally the only build. Idempotent: a stamp file records the build.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

const require = createRequire(import.meta.url);
const ivmDir = dirname(require.resolve('isolated-vm/package.json'));
const gypPath = join(ivmDir, 'binding.gyp');
const stamp = join(ivmDir, 'out', '.cinder-cputime-patched');

const LINUX_DEFINE = `[ 'OS == "linux"', { 'defines': [ 'USE_CLOCK_THREAD_CPUTIME_ID' ] } ],`;

function patchGyp(text) {
  // The first `conditions` block holds only the Linux define; drop it and add the define to the
  // second block, which is the one gyp actually keeps.
  const first = /'conditions': \[\s*\[ 'OS == "linux"', \{ 'defines': \[ 'USE_CLOCK_THREAD_CPUTIME_ID' \] \} \],\s*\],\s*/;
  if (!first.test(text)) return null;
  const without = text.replace(first, '');
  const second = /('conditions': \[\s*)(\[ 'OS != "win"')/;
  if (!second.test(without)) throw new Error('isolated-vm binding.gyp has an unexpected shape; cannot patch');
  return without.replace(second, `$1${LINUX_DEFINE}\n\t\t\t\t$2`);
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const npmCli = process.env.npm_execpath;
  const candidates = [];
  if (npmCli) candidates.push(join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('node-gyp not found; run this script through npm');
  return found;
}

const original = readFileSync(gypPath, 'utf8');
const patched = patchGyp(original);
if (patched) writeFileSync(gypPath, patched);
const merged = readFileSync(gypPath, 'utf8');
if (!merged.includes('USE_CLOCK_THREAD_CPUTIME_ID')) throw new Error('USE_CLOCK_THREAD_CPUTIME_ID missing after patch');

if (process.platform !== 'linux') process.exit(0);
if (existsSync(stamp) && !patched && existsSync(join(ivmDir, 'out', 'isolated_vm.node'))) {
  console.log('[cinder] isolated-vm already built with a thread CPU clock');
  process.exit(0);
}
console.log('[cinder] building isolated-vm with USE_CLOCK_THREAD_CPUTIME_ID (about a minute)...');
// Build against the headers of the Node that runs us (no download): npm's `nodedir` when set,
// else the install prefix of this node binary when it ships its headers.
const nodedir = process.env.npm_config_nodedir || join(dirname(process.execPath), '..');
const args = [findNodeGyp(), 'rebuild', '--release', '-j', 'max'];
if (existsSync(join(nodedir, 'include', 'node', 'node.h'))) args.push(`--nodedir=${nodedir}`);
execFileSync(process.execPath, args, { cwd: ivmDir, stdio: 'inherit' });
writeFileSync(stamp, new Date().toISOString() + '\n');
console.log('[cinder] isolated-vm built');
