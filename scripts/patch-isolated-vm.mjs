#!/usr/bin/env node
// Two fixes to isolated-vm 5.0.4 that Cinder's CPU limit depends on, applied at install time:
//
// 1. binding.gyp gives the `isolated_vm` target two `conditions` keys; in a Python dict literal
//    the second wins, so USE_CLOCK_THREAD_CPUTIME_ID is never defined on Linux and
//    `isolate.cpuTime` reports wall time. We merge the two lists.
// 2. Even with the thread clock, a reading taken while the isolate runs adds the running slice
//    as *wall* time (CpuTimer::Delta uses the steady clock), so a busy machine inflates CPU
//    readings mid-run and the CPU limit fires early. We read the running thread's own CPU clock
//    (pthread_getcpuclockid) instead.
//
// Then the addon is built once. package.json's allowScripts denies isolated-vm its own install
// script (a prebuilt download that cannot work here, then a build of the unpatched source), so
// this is normally the only build. Idempotent: a stamp file names the patch level it was built at.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

const PATCH_LEVEL = 'cinder-cputime-2';
const require = createRequire(import.meta.url);
const ivmDir = dirname(require.resolve('isolated-vm/package.json'));
const stamp = join(ivmDir, 'out', '.cinder-cputime-patched');

/** Replace `from` with `to` in a file, once; fine if `to` is already there; loud otherwise. */
function edit(file, from, to) {
  const path = join(ivmDir, file);
  const text = readFileSync(path, 'utf8');
  if (text.includes(to)) return false;
  if (!text.includes(from)) throw new Error(`isolated-vm ${file} has an unexpected shape; cannot patch (looked for: ${from.slice(0, 60)}...)`);
  writeFileSync(path, text.replace(from, to));
  return true;
}

function patchGyp() {
  const path = join(ivmDir, 'binding.gyp');
  const text = readFileSync(path, 'utf8');
  // The first `conditions` block holds only the Linux define; drop it and add the define to the
  // second block, which is the one gyp actually keeps.
  const first = /'conditions': \[\s*\[ 'OS == "linux"', \{ 'defines': \[ 'USE_CLOCK_THREAD_CPUTIME_ID' \] \} \],\s*\],\s*/;
  if (!first.test(text)) return false;
  const without = text.replace(first, '');
  const second = /('conditions': \[\s*)(\[ 'OS != "win"')/;
  if (!second.test(without)) throw new Error('isolated-vm binding.gyp has an unexpected shape; cannot patch');
  writeFileSync(path, without.replace(second, `$1[ 'OS == "linux"', { 'defines': [ 'USE_CLOCK_THREAD_CPUTIME_ID' ] } ],\n\t\t\t\t$2`));
  return true;
}

function patchRunningSlice() {
  let changed = false;
  changed = edit(
    'src/isolate/executor.h',
    '\t\t\t\tstd::chrono::time_point<std::chrono::steady_clock> steady_time;\n#endif',
    '\t\t\t\tstd::chrono::time_point<std::chrono::steady_clock> steady_time;\n\t\t\t\tclockid_t thread_clock{CLOCK_THREAD_CPUTIME_ID};\n#endif',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '#include <cstdio>\n',
    '#include <cstdio>\n#include <pthread.h>\n#include <ctime>\n',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '{\n\tcpu_timer_thread = this;\n',
    '{\n#if USE_CLOCK_THREAD_CPUTIME_ID\n\t// The clock of the thread this slice runs on, readable from the thread that asks for cpuTime.\n\tpthread_getcpuclockid(pthread_self(), &thread_clock);\n#endif\n\tcpu_timer_thread = this;\n',
  ) || changed;
  changed = edit(
    'src/isolate/executor.cc',
    '#if USE_CLOCK_THREAD_CPUTIME_ID\n\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - steady_time);\n#else',
    '#if USE_CLOCK_THREAD_CPUTIME_ID\n\ttimespec ts{};\n\tif (clock_gettime(thread_clock, &ts) != 0) {\n\t\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - steady_time);\n\t}\n\tTimePoint now{std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec})};\n\treturn std::chrono::duration_cast<std::chrono::nanoseconds>(now - time);\n#else',
  ) || changed;
  return changed;
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('node-gyp not found; run this script through npm');
  return found;
}

const changed = [patchGyp(), patchRunningSlice()].some(Boolean);
if (process.platform !== 'linux') process.exit(0);
const built = existsSync(join(ivmDir, 'out', 'isolated_vm.node'));
if (!changed && built && existsSync(stamp) && readFileSync(stamp, 'utf8').startsWith(PATCH_LEVEL)) {
  console.log('[cinder] isolated-vm already built with a thread CPU clock');
  process.exit(0);
}
console.log('[cinder] building isolated-vm with a thread CPU clock (about a minute)...');
// Build against the headers of the Node that runs us (no download): npm's `nodedir` when set,
// else the install prefix of this node binary when it ships its headers.
const nodedir = process.env.npm_config_nodedir || join(dirname(process.execPath), '..');
const args = [findNodeGyp(), 'rebuild', '--release', '-j', 'max'];
if (existsSync(join(nodedir, 'include', 'node', 'node.h'))) args.push(`--nodedir=${nodedir}`);
execFileSync(process.execPath, args, { cwd: ivmDir, stdio: 'inherit' });
writeFileSync(stamp, `${PATCH_LEVEL} ${new Date().toISOString()}\n`);
console.log('[cinder] isolated-vm built');
