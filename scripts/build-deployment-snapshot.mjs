#!/usr/bin/env -S node --no-node-snapshot
// Child process that turns one deployed version of a worker into a V8 startup snapshot: the
// sandbox bundle and the worker's top level, evaluated together (src/runtime/deployment-snapshot.ts
// starts it, with a time limit and --max-old-space-size, and kills it on overrun). isolated-vm's
// createSnapshot runs both without isolation, which is why this is a process of its own.
//   usage: build-deployment-snapshot.mjs <job.json>
//   job: { sandboxPath, manifestPath, main, modules: [{name, code, type}], bindings, compatibilityFlags, out,
//          namespaceGlobal, bootGlobal, limits: {cpuMs, wallMs, memoryMb, startupMs, waitMs} }
//   stdout, last line: {"ok":true,"bytes":N,"sha256":"...","handlers":"modules fetch","cpuMs":N} or
//                      {"ok":false,"reason":"...","cpuMs":N} (a refusal: the worker is loaded plainly)
//   (cpuMs: the CPU this process used, all threads)
//
// The worker's code runs here under its own limits, as a plain cold start and a request to it would
// (src/runtime/snapshot-trial.ts): first a trial in an isolate with isolation, where its top level
// meets the startup limit and its warm-up request the CPU, wall and memory limits; a breach is a
// refusal naming the limit. Then createSnapshot, which runs the same code again with no limit of
// its own, under a CPU budget derived from the trial (a line on stdout, {"budget": {fromCpuMs,
// cpuMs, reason}}, tells the parent, which ends this process past it); and the RLIMIT_CPU its
// parent set behind both.
//
// What it refuses, so that an isolate born from the snapshot behaves as one that ran the top level
// itself: a top level that throws, awaits (top-level await), imports dynamically or uses
// import.meta; that draws a per-isolate value (Math.random, Date.now, performance.now,
// crypto.randomUUID / getRandomValues / subtle) or reaches the host (console, fetch, timers,
// compression streams) while it runs, its microtasks included; that leaves the sandbox's globals
// answering differently; or whose exports have no handler the sandbox can install.
import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, writeSync } from 'node:fs';

/** What createSnapshot and the self-test may use beyond three times the trial (ms of CPU): the
 *  second context's sandbox, serializing the snapshot, the self-test's isolates. */
const BUILD_MARGIN_MS = 2000;

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// The add-ons the worker needs (protocol/addons.ts) are installed into the snapshot as a plain
// load installs them, and its imports of built-in modules read their namespaces as the loader's
// shims do (src/runtime/addons.ts).
const { AddonCatalog } = await import(new URL('../dist/src/runtime/addons.js', import.meta.url).href);
const { BUILTIN_MODULE_GLOBAL } = await import(new URL('../dist/protocol/addons.js', import.meta.url).href);
const addons = new AddonCatalog();
const builtins = new Set();
/** The CPU this process has used so far, all threads (ms). */
const cpuUsedMs = () => {
  const { user, system } = process.cpuUsage();
  return Math.round((user + system) / 1000);
};
const refuse = (reason) => {
  console.log(JSON.stringify({ ok: false, reason, cpuMs: cpuUsedMs() }));
  process.exit(0);
};
const limits = job.limits ?? { cpuMs: 50, wallMs: 30_000, memoryMb: 128, startupMs: 1_000 };

/** Resolve an import specifier against the importing module's name (as worker-loader.ts does). */
function resolveSpecifier(specifier, referrer) {
  if (!specifier.startsWith('./') && !specifier.startsWith('../') && !specifier.startsWith('/')) return specifier;
  const parts = specifier.startsWith('/') ? [] : referrer.split('/').slice(0, -1);
  for (const part of specifier.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

/** The version's ES modules as one classic script whose completion value is the main module's
 *  namespace, bundled faithfully: no tree shaking, no minifying, no syntax lowering. */
async function bundleModules() {
  const modules = new Map(job.modules.map((m) => [m.name, m]));
  const result = await build({
    entryPoints: [job.main],
    bundle: true,
    write: false,
    format: 'cjs',
    platform: 'neutral',
    target: 'esnext',
    treeShaking: false,
    ignoreAnnotations: true,
    logLevel: 'silent',
    metafile: true,
    plugins: [
      {
        name: 'cinder-version-modules',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind === 'dynamic-import') return { errors: [{ text: `dynamic import("${args.path}")` }] };
            if (args.kind === 'require-call' || args.kind === 'require-resolve') return { errors: [{ text: `require("${args.path}")` }] };
            const name = args.kind === 'entry-point' ? args.path : resolveSpecifier(args.path, args.importer);
            if (!modules.has(name) && addons.forModule(args.path)) {
              builtins.add(args.path);
              return { path: args.path, namespace: 'cinder-builtin' };
            }
            const module = modules.get(name);
            if (!module || module.type !== 'esm') return { errors: [{ text: `No such module "${args.path}"` }] };
            return { path: name, namespace: 'cinder' };
          });
          b.onLoad({ filter: /.*/, namespace: 'cinder' }, (args) => ({ contents: modules.get(args.path).code, loader: 'js' }));
          // A built-in module as CommonJS that esbuild's interop reads as an ES namespace: its own
          // keys as live exports, its \`default\` as the default.
          b.onLoad({ filter: /.*/, namespace: 'cinder-builtin' }, (args) => ({
            contents: `const ns = globalThis[${JSON.stringify(BUILTIN_MODULE_GLOBAL)}](${JSON.stringify(args.path)});
              Object.defineProperty(exports, '__esModule', { value: true });
              for (const key of Object.keys(ns)) Object.defineProperty(exports, key, { enumerable: true, get: () => ns[key] });`,
            loader: 'js',
          }));
        },
      },
    ],
  }).catch((error) => error);
  const messages = [...(result.errors ?? []), ...(result.warnings ?? [])];
  if (messages.length) refuse(`bundling: ${messages.map((m) => m.text).join('; ')}`);
  return result.outputFiles[0].text;
}

const main = job.modules.find((m) => m.name === job.main);
if (!main) refuse(`main module "${job.main}" is not among the modules`);
if (main.type === 'esm' && /\bimport\s*\.\s*meta\b/.test(job.modules.map((m) => m.code).join('\n'))) refuse('import.meta');

// The worker's code, as the snapshot's second script. Module syntax: the bundle inside a strict
// function; its exports end up on a private global (the namespace the host hands installWorker).
// Service-worker syntax: the script itself, as a plain load runs it.
const workerScript =
  main.type === 'esm'
    ? `(function () { "use strict"; var module = { exports: {} }, exports = module.exports;\n${await bundleModules()}\n` +
      `Object.defineProperty(globalThis, ${JSON.stringify(job.namespaceGlobal)}, { value: module.exports, configurable: true, writable: false, enumerable: false }); })();`
    : main.code;

// Around it, a prologue and an epilogue. The prologue hides the sandbox's boot hook (in a plain
// load the host has called it, and it has deleted itself, before any worker code runs) and wraps
// every global that draws a per-isolate value or reaches the host, so that a use while the top
// level (or its microtasks) runs is recorded. The epilogue, run after V8 drained the microtasks,
// puts the originals and the boot hook back and fails the build if anything was recorded. The
// two meet through a function on a non-configurable global with a random name, which answers
// only to a random token held in the scripts' text (a top level cannot replace it, nor call it
// without the token); once used it does nothing. Wrappers a top level kept a reference to stay in
// the snapshot and just call the original.
const token = randomBytes(16).toString('hex');
const stash = `__cinder_snapshot_${randomBytes(6).toString('hex')}`;
const prologue = `(() => {
  const g = globalThis, boot = ${JSON.stringify(job.bootGlobal)}, bootDescriptor = Object.getOwnPropertyDescriptor(g, boot);
  const uses = new Set(), restores = [];
  let building = true, used = false;
  const wrap = (holder, key, label) => {
    const original = holder && holder[key];
    if (typeof original !== 'function') return;
    const descriptor = Object.getOwnPropertyDescriptor(holder, key);
    if (!descriptor || !descriptor.configurable) return;
    // Without a host (none is there while the snapshot is made) such a call throws: say which.
    const call = (run) => {
      try {
        return run();
      } catch (error) {
        if (building && /host bridge not installed/.test(String(error && error.message))) throw new Error('cinder-refuse: the top level used ' + label + ', which needs the host');
        throw error;
      }
    };
    let wrapper;
    if (original.prototype && /^[A-Z]/.test(key)) {
      wrapper = new Proxy(original, { construct(target, args, newTarget) { if (building) uses.add(label); return call(() => Reflect.construct(target, args, newTarget)); } });
    } else {
      wrapper = { [key](...args) { if (building) uses.add(label); return call(() => Reflect.apply(original, this, args)); } }[key];
      Object.defineProperty(wrapper, 'length', { value: original.length });
    }
    Object.defineProperty(holder, key, { ...descriptor, value: wrapper });
    restores.push(() => Object.defineProperty(holder, key, descriptor));
  };
  wrap(Math, 'random', 'Math.random()');
  wrap(Date, 'now', 'Date.now()');
  if (g.performance) wrap(Object.getPrototypeOf(g.performance).hasOwnProperty('now') ? Object.getPrototypeOf(g.performance) : g.performance, 'now', 'performance.now()');
  if (g.crypto) {
    const proto = Object.getPrototypeOf(g.crypto);
    for (const key of ['getRandomValues', 'randomUUID']) wrap(Object.prototype.hasOwnProperty.call(g.crypto, key) ? g.crypto : proto, key, 'crypto.' + key + '()');
    let subtle;
    try { subtle = g.crypto.subtle; } catch { subtle = undefined; }
    if (subtle) {
      const subtleProto = Object.getPrototypeOf(subtle);
      for (const key of Object.getOwnPropertyNames(subtleProto)) if (key !== 'constructor') wrap(subtleProto, key, 'crypto.subtle.' + key + '()');
      for (const key of Object.getOwnPropertyNames(subtle)) wrap(subtle, key, 'crypto.subtle.' + key + '()');
    }
  }
  if (g.console) for (const key of Object.getOwnPropertyNames(g.console)) wrap(g.console, key, 'console.' + key + '()');
  for (const key of ['fetch', 'setTimeout', 'setInterval', 'reportError', 'CompressionStream', 'DecompressionStream']) wrap(g, key, key + (/^[A-Z]/.test(key) ? '' : '()'));
  if (bootDescriptor) delete g[boot];
  Object.defineProperty(g, ${JSON.stringify(stash)}, { configurable: false, writable: false, enumerable: false, value: (given) => {
    if (given !== ${JSON.stringify(token)} || used) throw new TypeError('Illegal invocation');
    used = true;
    building = false;
    for (const restore of restores.reverse()) restore();
    if (bootDescriptor) Object.defineProperty(g, boot, bootDescriptor);
    return [...uses].join(', ');
  } });
})();`;
const epilogue = `(() => {
  const uses = globalThis[${JSON.stringify(stash)}](${JSON.stringify(token)});
  if (uses) throw new Error('cinder-refuse: the top level used ' + uses + ', which would be shared by every isolate born from the snapshot');
})();`;

const needed = addons.resolve({ bindings: job.bindings ?? {}, compatibilityFlags: job.compatibilityFlags ?? [], modules: job.modules }, builtins);
const carrying = needed.filter((name) => addons.hasFiles(name));
if (carrying.length) refuse(`the add-on ${carrying.join(', ')} carries WebAssembly, which a snapshot cannot hold`);
const addonScript = needed.map((name) => `globalThis[${JSON.stringify(job.bootGlobal)}].installAddon(${addons.code(name)}, ${JSON.stringify(name)});`).join('\n');

// The warm-up script (job.warmUp: "request" by default, "sandbox", or "none"), as for the base
// snapshot (scripts/build-snapshot.mjs): isolated-vm runs every script above again in a throwaway
// context and then this one there, and only the bytecode it compiled reaches the snapshot, none
// of that context's state. "sandbox": the sandbox's own warm-up. "request": that, then the
// worker installed and sent one GET / (its handlers compiled as a first request compiles them;
// whatever it would ask of the host fails there, as there is none, and the answer is dropped).
// Measured on the 151 KiB API worker (bench/README.md, issue 23 round 5): ~+100 KiB of snapshot,
// its first request 2.7-2.9 ms instead of 6.0-6.3. The trial below has run the same request under
// the worker's CPU, wall and memory limits first; one that breached them never gets here.
const warmUpKind = job.warmUp ?? 'request';
const warmUpRequest = JSON.stringify({ method: 'GET', url: 'http://warm.cinder.internal/', headers: [['host', 'warm.cinder.internal']], body: null });
const noHost = `() => { throw new Error('no host in the snapshot builder'); }`;
const warmUp =
  warmUpKind === 'none'
    ? undefined
    : `(() => {
  const entry = globalThis[${JSON.stringify(job.bootGlobal)}](${noHost}, ${noHost}, () => {}, ${limits.memoryMb});
  const warmed = entry.warmUp(32);
  ${
    warmUpKind === 'request'
      ? `warmed.then(() => {
    entry.installWorker(globalThis[${JSON.stringify(job.namespaceGlobal)}], '{}');
    return entry.dispatchFetch(1, ${JSON.stringify(warmUpRequest)});
  }).catch(() => {});`
      : ''
  }
})();`;

const sandboxCode = readFileSync(job.sandboxPath, 'utf8');
const platformScripts = [
  { code: sandboxCode, filename: 'cinder:sandbox.js' },
  ...(addonScript ? [{ code: addonScript, filename: 'cinder:addons.js' }] : []),
  { code: prologue, filename: 'cinder:snapshot-prologue.js' },
];
const workerEntry = { code: workerScript, filename: `file:///${job.main}` };
const epilogueEntry = { code: epilogue, filename: 'cinder:snapshot-epilogue.js' };
/** A failure of the worker's code, said as the builder says it. */
const refuseFor = (error) => {
  const message = String(error?.message ?? error);
  const refusal = /cinder-refuse: (.*)/.exec(message);
  refuse(refusal ? refusal[1] : `the top level threw: ${message.split('\n')[0]}`);
};

// The trial, under the worker's own limits (src/runtime/snapshot-trial.ts).
const { runTrial, TrialPlatformError } = await import(new URL('../dist/src/runtime/snapshot-trial.js', import.meta.url).href);
let trial;
let trialError;
try {
  trial = await runTrial({ platform: platformScripts, worker: workerEntry, epilogue: epilogueEntry, bootGlobal: job.bootGlobal, namespaceGlobal: job.namespaceGlobal, warmUp: warmUpKind, request: warmUpRequest, limits });
} catch (error) {
  trialError = error;
}
if (trialError || !trial.ok) {
  // The trial's isolate was disposed just now, and isolated-vm may still be tearing it down on its
  // thread: a process that exits at once then crashes (SIGSEGV, about 2 in 5 here). A moment's
  // wait avoids it; the parent takes the answer either way, and the shell that started this
  // process turned core dumps off.
  await new Promise((resolve) => setTimeout(resolve, 20));
  if (trialError instanceof TrialPlatformError) refuse(trialError.message);
  if (trialError) refuseFor(trialError);
  refuse(trial.reason);
}

// createSnapshot runs the trial's scripts twice (a clean context and the warm-up's) and the
// warm-up once, and nothing can interrupt it. A worker that stayed within its limits in the trial
// and does not here (it can tell the two apart, or draws Math.random to decide) is stopped at a CPU
// budget of three times what its trial used and a margin for what is not the worker's
// (serializing, the self-test below): this line tells the parent, which watches this process's
// CPU from then on and ends it past the budget (a thread here to watch cost ~40 ms of CPU per
// build, the parent's reading nothing: bench/README.md). The RLIMIT_CPU stays behind it.
const budgetMs = Math.round(3 * trial.cpuMs + BUILD_MARGIN_MS);
writeSync(1, JSON.stringify({ budget: { fromCpuMs: cpuUsedMs(), cpuMs: budgetMs, reason: `making the snapshot used more CPU than the worker's trial under its limits allows (${budgetMs} ms: three times the ${Math.round(trial.cpuMs)} ms of the trial and ${BUILD_MARGIN_MS} ms): the worker's code did more there than in its trial` } }) + '\n');

let snapshot;
try {
  snapshot = ivm.Isolate.createSnapshot([...platformScripts, workerEntry, epilogueEntry], warmUp);
} catch (error) {
  refuseFor(error);
}
const bytes = Buffer.from(snapshot.copy());
const external = () => new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

// Self-test (src/runtime/snapshot-check.ts): the sandbox's globals and the Web platform answer as
// in an isolate that ran the bundle itself; then the worker's exports have a handler the sandbox
// can install, and two isolates from the snapshot draw different Math.random sequences.
const { referenceAnswers, snapshotProblems } = await import(new URL('../dist/src/runtime/snapshot-check.js', import.meta.url).href);
const manifest = JSON.parse(readFileSync(job.manifestPath, 'utf8'));
// (a snapshot too big for the self-test's isolate is a refusal, not a crash of the builder)
const problems = await snapshotProblems(external(), manifest, await referenceAnswers(sandboxCode)).catch((error) => [String(error?.message ?? error).split('\n')[0]]);
if (problems.length) refuse(`self-test: ${problems.join('; ').slice(0, 500)}`);

const SHAPE = `(() => {
  const ns = globalThis[${JSON.stringify(job.namespaceGlobal)}];
  if (typeof globalThis[${JSON.stringify(job.bootGlobal)}] !== 'function') return 'no boot hook';
  const d = ns && typeof ns === 'object' ? ns.default : undefined;
  const handlers = (o) => ['fetch', 'scheduled'].filter((k) => typeof o[k] === 'function').join(' ');
  if (${main.type === 'esm'}) return d && (typeof d === 'object' || typeof d === 'function') ? ('modules ' + handlers(d)).trim() : 'no default export';
  return 'service-worker';
})() + '|' + JSON.stringify([Math.random(), Math.random()])`;
const answers = [];
for (let i = 0; i < 2; i++) {
  const isolate = new ivm.Isolate({ snapshot: external(), memoryLimit: limits.memoryMb });
  try {
    // (the worker's getters may run: the startup limit, as installWorker has in a load)
    answers.push(String(isolate.createContextSync().evalSync(SHAPE, { timeout: limits.startupMs })).split('|'));
  } catch (error) {
    refuse(/timed out/i.test(String(error?.message)) ? `the worker's exports took longer than the startup time limit (startup_ms ${limits.startupMs}) to read` : `exports: ${String(error?.message ?? error).split('\n')[0]}`);
  } finally {
    isolate.dispose();
  }
}
const [[handlers, draws], [, otherDraws]] = answers;
if (!/^(modules|service-worker)/.test(handlers)) refuse(`exports: ${handlers}`);
if (draws === otherDraws) refuse('Math.random draws the same sequence in every isolate from the snapshot');

writeFileSync(job.out + '.tmp', bytes);
renameSync(job.out + '.tmp', job.out);
console.log(JSON.stringify({ ok: true, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), handlers, cpuMs: cpuUsedMs() }));
