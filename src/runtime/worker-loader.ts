// Loading a worker into a ready isolate: compile its modules (with V8 code cache), link and run its
// top level, install its env; and, once it has served a first request, make the code cache again
// so that it also holds the functions that request compiled. Every step that runs guest code runs
// on isolated-vm's threads (the async forms): the top level is guest code, and guest code never
// runs on the thread that serves requests. Linking, which runs none, is done here, and so is the
// compile of a small version that has a code cache (bounded by size: see compilesInline).
import ivm from './ivm.js';
import { toExternal } from './isolate-source.js';
import type { Logger } from 'pino';
import type { Limits } from '../model/limits.js';
import { setBinding, type BindingConfig, type WorkerDefinition } from '../model/worker-definition.js';
import type { EnvDescriptor } from '../../protocol/wall.js';
import type { ReadyIsolate } from './ready-isolate.js';
import { packageRoot } from './paths.js';
import { installFromSnapshot, isDeploymentSnapshotIsolate } from './deployment-snapshot.js';
import { isBinaryModule, moduleBytes, type WorkerModuleSource } from '../model/worker-definition.js';
import { MODULE_VALUES_SOURCE, moduleSource, type ModuleSourceContext } from './module-sources.js';
import { resolveSpecifier } from './specifiers.js';
import { MODULE_VALUES_SPECIFIER } from '../../protocol/wall.js';
import { PROCESS_ENV_ADDON } from '../../protocol/node-modules.js';
import { builtinModuleShim, defaultAddons, type AddonCatalog } from './addons.js';

export class WorkerLoadError extends Error {
  constructor(
    message: string,
    /** the load went over a limit (startup time, memory): answered 503, as other limits are */
    readonly overLimit = false,
  ) {
    super(message);
    this.name = 'WorkerLoadError';
  }
}

/**
 * Compile the modules, run the top level and install env, all on isolated-vm's threads. Throws
 * WorkerLoadError. Returns the compiled modules when their code cache is to be made again after a
 * first request (see cacheAfterRun).
 */
export async function loadWorker(
  def: WorkerDefinition,
  ready: ReadyIsolate,
  limits: Limits,
  addons: AddonCatalog = defaultAddons,
  exportsOut?: string[],
  /** gets the serving thread's CPU the load used for the worker (ms): the inline compile and the
   *  link, host work the worker caused, charged to its first invocation (worker-instance.ts) */
  hostWorkOut?: { ms: number },
): Promise<Map<string, ivm.Module> | undefined> {
  // An isolate from the version's own snapshot holds the evaluated modules: only install. Its
  // errors are not the worker's (the runtime loads plainly then), so they stay unwrapped.
  if (isDeploymentSnapshotIsolate(ready)) {
    await installFromSnapshot(def, ready, JSON.stringify(guestEnv(def.bindings)), limits.startupMs);
    return undefined;
  }
  const main = def.modules.find((m) => m.name === def.main);
  if (!main) throw new WorkerLoadError(`main module "${def.main}" is not among the uploaded modules`);
  // The startup limit is wall time on the isolate's thread (isolated-vm's timeout), per step.
  const timeout = limits.startupMs;
  let namespace: ivm.Reference | undefined;
  let deadline: LoadDeadline | undefined;
  let renewed = false;
  let modulesToCache: Map<string, ivm.Module> | undefined;
  let installing: Promise<unknown> | undefined;
  let evaluated = false;
  try {
    if (main.type === 'esm' || main.type === 'commonjs') {
      const compiled = new Map<string, ivm.Module>();
      const names = new Map<ivm.Module, string>();
      const context = sourceContext(def, addons);
      const inline = compilesInline(def);
      for (const source of def.modules) {
        const code = moduleSource(source, context);
        if (code === null) continue;
        const options = { filename: moduleFilename(source.name), ...cacheOptions(def, source.name) };
        const module = inline ? servingThreadWork(hostWorkOut, () => ready.isolate.compileModuleSync(code, options)) : await ready.isolate.compileModule(code, options);
        renewed = keepCache(def, source.name, module) || renewed;
        compiled.set(source.name, module);
        names.set(module, source.name);
      }
      // Imports of names no uploaded module has are built-in modules (node:*, cloudflare:*):
      // their add-ons are installed with the worker's others, and each gets a small shim module.
      const builtins = new Set<string>();
      for (const module of compiled.values()) {
        for (const specifier of module.dependencySpecifiers) {
          if (specifier !== MODULE_VALUES_SPECIFIER && !compiled.has(resolveSpecifier(specifier, names.get(module)!))) builtins.add(specifier);
        }
      }
      const wanted = addons.resolve(def, builtins);
      const exportNames = wanted.length ? await addons.install(ready, wanted, timeout) : new Map<string, string[]>();
      // Before any of the worker's code runs: cloudflare:workers' env filled (the top level may
      // read it), so too process.env under nodejs_compat (as workerd fills it), and Data and
      // CompiledWasm values made (a wasm module compiled there, on the isolate's thread) for the
      // internal module their synthesized modules import.
      const internal = await prepareLoad(def, ready, builtins.has(CLOUDFLARE_WORKERS) || wanted.includes(PROCESS_ENV_ADDON), timeout);
      for (const specifier of builtins) {
        const exported = exportNames.get(specifier);
        if (!exported) continue;
        const shim = await ready.isolate.compileModule(builtinModuleShim(specifier, exported), { filename: specifier });
        compiled.set(specifier, shim);
      }
      const entry = compiled.get(main.name)!;
      // Linking runs no guest code (V8 only binds imports to exports), and the isolate was just
      // taken from the pool, idle, so its lock is free: linked here in ~30 us instead of an async
      // round trip to isolated-vm's threads (~60 us at p50, ~0.7 ms at p90: bench/cold-steps.mjs).
      // The resolver is host code and only looks names up.
      servingThreadWork(hostWorkOut, () =>
        entry.instantiateSync(ready.context, (specifier, referrer) => {
          const from = names.get(referrer) ?? main.name;
          // The internal module answers only the modules synthesized for Data and CompiledWasm.
          if (specifier === MODULE_VALUES_SPECIFIER && internal && isBinaryModule(context.modules.get(from)!)) return internal;
          const target = compiled.get(resolveSpecifier(specifier, from)) ?? compiled.get(specifier);
          if (!target) throw new Error(`No such module "${specifier}" (imported from ${from})`);
          return target;
        }),
      );
      // An entry V8 refused was just replaced by a compile-time one: the cache as a whole is
      // no longer the after-first-request kind, and is made again after this isolate's first.
      if (renewed) def.codeCacheAfterRun = false;
      // One crossing: the top level's synchronous part runs under the startup limit (isolated-vm's
      // timeout), and the answer is V8's evaluation promise, settled at once unless the top level
      // awaits; what it awaits must then settle within the same limit.
      deadline = new LoadDeadline(ready, timeout);
      const evaluating = entry.evaluate({ timeout, promise: true } as ivm.ScriptRunOptions);
      evaluating.catch(() => {}); // raced below; until then a failure must not go unhandled
      if (!exportsOut && !awaitsAtTopLevel(def)) {
        // Queued right behind the evaluation, so the isolate's thread runs both in one go and the
        // load waits for one round trip instead of two. The namespace is held from the link on
        // (isolated-vm patch 15); the evaluation runs first, and a module with no `await` has
        // finished with it. Should the top level fail, its error is the load's; the install
        // behind it still runs (it may read an export made before the throw, or run what a
        // timed-out top level left queued), so the isolate is ended at once (see the catch).
        namespace = entry.namespace;
        installing = installWorker(def, ready, namespace, timeout);
      }
      await deadline.race(evaluating);
      evaluated = true;
      namespace ??= entry.namespace;
      if (exportsOut) exportsOut.push(...(await deadline.race(exportedClasses(ready, namespace, timeout))));
      if (def.codeCache && !def.codeCacheAfterRun) modulesToCache = compiled;
    } else {
      const wanted = addons.forWorker(def);
      if (wanted.length) await addons.install(ready, wanted, timeout);
      const script = await ready.isolate.compileScript(main.code, { filename: moduleFilename(main.name), ...cacheOptions(def, main.name) });
      renewed = keepCache(def, main.name, script);
      deadline = new LoadDeadline(ready, timeout);
      await deadline.race(script.run(ready.context, { timeout, release: true }));
    }
    const installed = await deadline.race(installing ?? installWorker(def, ready, namespace, timeout));
    checkInstalled(installed);
    // As on workerd: eval() and new Function() work while the worker starts, not in its handlers.
    // (A flag the isolate's code-generation callback reads: no guest code runs.)
    ready.disallowCodeGeneration();
  } catch (error) {
    const message = error instanceof LoadDeadlineError ? error.describe() : describeLoadError(error, ready.isDisposed);
    // An install queued behind a failed evaluation runs the worker's code for nobody: end it now,
    // not when the caller's reaper gets to the isolate (a failed load's isolate is never reused).
    if (installing && !evaluated) ready.dispose('load failed');
    throw new WorkerLoadError(message, message === STARTUP_LIMIT_MESSAGE || message === LOAD_MEMORY_MESSAGE);
  } finally {
    deadline?.clear();
    if (!ready.isDisposed) namespace?.release();
  }
  if (renewed) def.onCodeCacheUpdated?.(def.codeCache!, 'rejected');
  return modulesToCache;
}

/** The sandbox's install of the evaluated worker (its namespace, for modules) and its env. */
function installWorker(def: WorkerDefinition, ready: ReadyIsolate, namespace: ivm.Reference | undefined, timeout: number): Promise<unknown> {
  const installing = ready.entry.installWorker.apply(undefined, [namespace ? namespace.derefInto() : undefined, JSON.stringify(guestEnv(def.bindings))], { timeout });
  installing.catch(() => {}); // queued behind an evaluation that failed: that error is the load's
  return installing;
}

/**
 * Whether any module of the version might await at its top level. Such a module's evaluation
 * answers before its top level has finished, so its install must wait for that answer. A
 * top-level await needs the keyword, which cannot be written with escapes: a version whose text
 * nowhere holds "await" (in code, strings or comments) has none.
 */
function awaitsAtTopLevel(def: WorkerDefinition): boolean {
  // once per version: a large bundle with no `await` would otherwise be read through at every cold start
  let awaits = topLevelAwaits.get(def);
  if (awaits === undefined) {
    awaits = def.modules.some((m) => (m.type === 'esm' || m.type === 'commonjs' || m.type === 'script') && m.code.includes('await'));
    topLevelAwaits.set(def, awaits);
  }
  return awaits;
}
const topLevelAwaits = new WeakMap<WorkerDefinition, boolean>();

/**
 * Run a synchronous step of the load that works on this (the serving) thread for the worker, and
 * add the thread's CPU it used to `into` (ms): host work the worker caused, metered in its usage as
 * a Durable Object's file open is (hostWorkMs), outside its own CPU limit, which counts the
 * isolate's thread only. The step runs no guest code, so the worker cannot stretch it beyond what
 * its size allows (compilesInline's bounds).
 */
function servingThreadWork<T>(into: { ms: number } | undefined, step: () => T): T {
  if (!into) return step();
  const before = process.threadCpuUsage();
  try {
    return step();
  } finally {
    const used = process.threadCpuUsage(before);
    into.ms += (used.user + used.system) / 1000;
  }
}

/** A version of ES modules that add up to at most this many characters of source, and whose code
 *  caches add up to at most INLINE_COMPILE_MAX_CACHE_BYTES, is compiled on this thread instead of
 *  isolated-vm's (see compilesInline). */
export const INLINE_COMPILE_MAX_CHARS = 8 * 1024;
/** Reading a code cache costs about in proportion to its size (a cache made after the first
 *  request holds every function that request compiled), so the cache is bounded too: what a
 *  version at both bounds costs this thread is measured in bench/README.md, issue 23 round 8. */
export const INLINE_COMPILE_MAX_CACHE_BYTES = 32 * 1024;

/**
 * Whether to compile this version's modules on this thread. Compiling runs no guest code (V8 reads
 * the code cache, or parses), and the isolate was just taken from the pool, idle, so its lock is
 * free: for a small version with a code cache this costs less here than an async round trip to
 * isolated-vm's threads, which on a busy machine waits behind the pool's builds (bench/README.md,
 * issue 23 round 8). Bounded by size, so the host work a guest causes
 * here stays small; a larger version, or one without a cache (its first load: V8 parses and
 * makes the cache), compiles on isolated-vm's threads as before.
 */
function compilesInline(def: WorkerDefinition): boolean {
  if (!def.codeCache) return false;
  let chars = 0;
  let cacheBytes = 0;
  for (const m of def.modules) {
    const cache = m.type === 'esm' ? def.codeCache.get(m.name) : undefined;
    if (!cache) return false;
    chars += m.code.length;
    cacheBytes += cache.byteLength;
    if (chars > INLINE_COMPILE_MAX_CHARS || cacheBytes > INLINE_COMPILE_MAX_CACHE_BYTES) return false;
  }
  return true;
}

/**
 * The main module's named exports that are functions (Durable Object classes are among them), for
 * the checks a deploy makes. Asked on isolated-vm's threads; no guest function is called (reading
 * a module namespace runs no getters), and a guest that replaced Object.keys only misleads its
 * own deploy check.
 */
async function exportedClasses(ready: ReadyIsolate, namespace: ivm.Reference, timeout: number): Promise<string[]> {
  const names = await ready.context.evalClosure(
    'const out = []; for (const k of Object.keys($0)) if (k !== "default" && typeof $0[k] === "function") out.push(k); return out.join(",");',
    [namespace.derefInto()],
    { timeout, result: { copy: true } },
  );
  return String(names).split(",").filter(Boolean);
}

function sourceContext(def: WorkerDefinition, addons?: AddonCatalog): ModuleSourceContext {
  return { modules: new Map(def.modules.map((m) => [m.name, m])), isBuiltin: addons ? (specifier) => addons.forModule(specifier) !== undefined : undefined };
}

const CLOUDFLARE_WORKERS = 'cloudflare:workers';

/**
 * The guest's prepareLoad, when the worker needs it (sandbox/prepare-load.ts): the env filled
 * early when `withEnv`, and the Data and CompiledWasm values made. Answers the internal module
 * that hands those values to their synthesized modules (protocol/wall.ts MODULE_VALUES_GLOBAL),
 * evaluated here; undefined when the version has none. A wasm module that does not compile fails
 * the load here.
 */
async function prepareLoad(def: WorkerDefinition, ready: ReadyIsolate, withEnv: boolean, timeout: number): Promise<ivm.Module | undefined> {
  const binaries = def.modules.filter(isBinaryModule);
  if (!binaries.length && !withEnv) return undefined;
  const kinds = JSON.stringify(binaries.map((m: WorkerModuleSource) => [m.name, m.type]));
  const buffers = binaries.map((m) => toExternal(moduleBytes(m)).copyInto({ release: true }));
  const env = withEnv ? JSON.stringify(guestEnv(def.bindings)) : null;
  await ready.entry.prepareLoad.apply(undefined, [env, kinds, ...buffers], { timeout });
  if (!binaries.length) return undefined;
  const internal = await ready.isolate.compileModule(MODULE_VALUES_SOURCE, { filename: 'cinder:module-values' });
  internal.instantiateSync(ready.context, () => {
    throw new Error('the internal module imports nothing');
  });
  await internal.evaluate({ timeout });
  return internal;
}

function moduleFilename(name: string): string {
  return `file:///${name}`;
}

/** The guest's answer to installWorker: its format, then the handlers it found ("modules fetch"). */
function checkInstalled(answer: unknown): void {
  const [format] = String(answer).split(' ');
  if (format !== 'modules' && format !== 'service-worker') throw new Error(`the sandbox answered installWorker with ${JSON.stringify(answer)}`);
}

function guestEnv(bindings: Record<string, BindingConfig>): EnvDescriptor {
  const env: EnvDescriptor = {};
  for (const [name, binding] of Object.entries(bindings)) {
    switch (binding.type) {
      case 'plain_text':
      case 'secret_text':
        setBinding(env, name, { type: binding.type, text: binding.text });
        break;
      case 'json':
        setBinding(env, name, { type: 'json', json: binding.json });
        break;
      default:
        // Host-backed bindings reach the guest as their type only; the guest calls back by
        // binding name and the host resolves the name against this worker's own config.
        setBinding(env, name, { type: binding.type });
    }
  }
  return env;
}

// With both options isolated-vm produces a cache only when none was given or V8 rejected the
// one given, so a rejected entry is replaced in the same load instead of the next one.
function cacheOptions(def: WorkerDefinition, moduleName: string): { cachedData?: ivm.ExternalCopy<ArrayBuffer>; produceCachedData?: boolean } {
  if (!def.codeCache) return {};
  const cached = def.codeCache.get(moduleName);
  if (!cached) return { produceCachedData: true };
  return { cachedData: toExternal(cached), produceCachedData: true };
}

/** Keep what V8 produced; true when it replaced an entry V8 rejected. */
function keepCache(def: WorkerDefinition, moduleName: string, compiled: object): boolean {
  const cache = def.codeCache;
  if (!cache) return false;
  const { cachedData, cachedDataRejected } = compiled as { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };
  if (cachedDataRejected) cache.delete(moduleName);
  if (cache.has(moduleName) || !cachedData) return false;
  cache.set(moduleName, Buffer.from(cachedData.copy()));
  return cachedDataRejected === true;
}

/**
 * Replace the code cache made at compile time with one made now. V8 compiles most functions on
 * their first call, and a cache made at compile time holds only the top level; one made after
 * the top level and a first request also holds every function they called, which a later cold
 * start then need not compile (bench/README.md has the measurements). Once per version and
 * process, when the isolate is idle, so no invocation is charged for it.
 *
 * It runs on isolated-vm's threads: each module's source is compiled again in the same isolate
 * (asynchronously) with produceCachedData. V8's per-isolate compilation cache hands back the very
 * script the worker ran, lazily compiled functions included, so the cache produced is the
 * after-run one (the same bytes module.createCachedDataSync() makes, which only has a
 * synchronous form). Should V8 have dropped that script from its compilation cache, what comes
 * back is a compile-time cache again; it is kept only if it is larger than the one held.
 */
export async function cacheAfterRun(def: WorkerDefinition, ready: ReadyIsolate, modules: Map<string, ivm.Module>, alive: () => boolean, logger: Logger): Promise<void> {
  def.codeCacheAfterRun = true;
  try {
    const context = sourceContext(def);
    for (const name of modules.keys()) {
      const source = context.modules.get(name);
      const code = source && moduleSource(source, context);
      if (!code) continue;
      const again = await ready.isolate.compileModule(code, { filename: moduleFilename(name), produceCachedData: true });
      const made = (again as unknown as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
      again.release();
      if (!made) continue;
      const bytes = Buffer.from(made.copy({ release: true }));
      const held = def.codeCache!.get(name);
      if (!held || bytes.byteLength > held.byteLength) def.codeCache!.set(name, bytes);
    }
  } catch (error) {
    // The compile-time cache stays (entries made before the failure are as good), and a later
    // isolate tries again; an isolate disposed meanwhile is the usual cause and not worth a line.
    def.codeCacheAfterRun = false;
    if (alive()) logger.warn({ worker: def.name, err: (error as Error).message }, 'could not make the code cache after the first request');
    return;
  }
  def.onCodeCacheUpdated?.(def.codeCache!, 'after-run');
}

export { resolveSpecifier } from './specifiers.js';

const UNSETTLED_MESSAGE = 'Top-level await in module is unsettled.';
/** read by describeLoadError as the startup limit, as isolated-vm's own timeout is */
const TOP_LEVEL_TIMED_OUT = 'the top level timed out after an await';

/** How long past the startup limit the host waits before ending a load itself: isolated-vm's own
 *  timeout (which starts when the isolate's thread takes the task) is the one meant to fire. */
const LOAD_DEADLINE_MARGIN_MS = 100;

class LoadDeadlineError extends Error {
  constructor(readonly running: boolean) {
    super(running ? TOP_LEVEL_TIMED_OUT : UNSETTLED_MESSAGE);
  }

  describe(): string {
    return this.running ? STARTUP_LIMIT_MESSAGE : `Error: ${UNSETTLED_MESSAGE}`;
  }
}

/**
 * The startup limit over everything a load runs in the isolate once the worker's code starts: its
 * top level, what that awaits, and the install after it. isolated-vm's timeout covers each task's
 * synchronous run only; what a top level awaits (crypto.subtle, say, done on the host) and any
 * chain it started without awaiting continue in later tasks that no timeout covers, so a
 * continuation that never ends would hold the load, and the isolate's thread, for ever. Past the
 * limit the isolate is disposed at once (ending whatever runs there) and the load fails.
 *
 * A top level still waiting then waits on what never settles (I/O and timers are refused there):
 * workerd's "unsettled" error. Unless the isolate was still running at the end: that is the
 * startup limit, named as such. Waiting costs the isolate no CPU; "running" is a tenth of the
 * window's last fifth, room for a spinning thread that a busy machine runs part-time.
 */
class LoadDeadline {
  private timer: NodeJS.Timeout | undefined;
  private readonly expired: Promise<never>;

  constructor(private readonly ready: ReadyIsolate, ms: number) {
    const lastFifth = ms / 5;
    this.expired = new Promise<never>((_, reject) => {
      this.timer = setTimeout(() => {
        const before = this.cpuMs();
        this.timer = setTimeout(() => {
          const running = this.cpuMs() - before >= lastFifth / 10;
          reject(new LoadDeadlineError(running));
          ready.dispose('startup');
        }, lastFifth + LOAD_DEADLINE_MARGIN_MS);
      }, ms - lastFifth);
    });
    this.expired.catch(() => {});
  }

  /** `work`, unless the deadline passes first. */
  race<T>(work: Promise<T>): Promise<T> {
    work.catch(() => {}); // still pending when the race is lost: it ends with the isolate
    return Promise.race([work, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }

  private cpuMs(): number {
    try {
      return Number(this.ready.isolate.cpuTime) / 1e6;
    } catch {
      return 0; // disposed meanwhile: its own error wins the race
    }
  }
}

const LOAD_MEMORY_MESSAGE = 'Uncaught Error: exceeded memory limit while loading the worker';
const STARTUP_LIMIT_MESSAGE = 'Uncaught Error: the worker\'s top-level code exceeded the startup time limit';

function describeLoadError(error: unknown, disposed: boolean): string {
  const e = error as Error;
  const message = String(e?.message ?? error);
  if (disposed || /memory limit/i.test(message)) return LOAD_MEMORY_MESSAGE;
  if (/timed out/i.test(message)) return STARTUP_LIMIT_MESSAGE;
  const stack = String(e?.stack ?? '');
  // isolated-vm appends "[file:///name:line:col]" to compile errors; keep it, it names the line.
  // Frames from the host (a resolver error thrown in Node) name nothing the user wrote: skip them.
  const firstFrame = stack.split('\n').find((line) => /file:\/\/\//.test(line) && !line.includes(packageRoot) && !line.includes('node_modules'));
  const name = e?.name && !message.startsWith(e.name) ? `${e.name}: ` : '';
  return firstFrame && !message.includes('file:///') ? `${name}${message}\n${firstFrame.trim()}` : `${name}${message}`;
}
