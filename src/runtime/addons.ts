// The host side of add-ons (protocol/addons.ts): which add-ons a worker needs, and installing
// them into its isolate before its modules are evaluated. Every step that runs guest-side code
// (the add-on's bundle, its install()) runs on isolated-vm's threads, as the worker's own code does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ivm from './ivm.js';
import { toExternal } from './isolate-source.js';
import { packageRoot } from './paths.js';
import type { ReadyIsolate } from './ready-isolate.js';
import type { WorkerDefinition } from '../model/worker-definition.js';
import { effectiveFlags, nodeModuleName, nodeModuleRefusal } from '../../protocol/node-modules.js';
import { ADDONS, BUILTIN_MODULE_GLOBAL, type AddonInstalled, type AddonSpec } from '../../protocol/addons.js';

interface AddonSource {
  code: string;
  /** AddonSpec.files, read once and held outside any isolate; copied into each that installs it */
  files?: ivm.ExternalCopy<Record<string, ArrayBuffer>>;
  /** V8 code cache, made by the first isolate that compiles the add-on in this process */
  cache?: Buffer;
  /** whether `cache` was made again after an install, so it holds the functions install() ran */
  cacheAfterRun?: boolean;
  /** ... and again after an event the add-on handles (a Durable Object's), see cacheAfterEvent */
  cacheAfterEvent?: boolean;
}

/** The cache a compile in a warmed isolate made, kept if it holds more than the one there was
 *  (more bytes: more functions compiled in it). */
function keepLargerCache(source: AddonSource, script: ivm.Script): void {
  const made = (script as unknown as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
  script.release();
  if (!made) return;
  const bytes = Buffer.from(made.copy({ release: true }));
  if (!source.cache || bytes.byteLength > source.cache.byteLength) source.cache = bytes;
}

export class AddonCatalog {
  private readonly sources = new Map<string, AddonSource>();
  private readonly byWorker = new WeakMap<WorkerDefinition, string[]>();
  private readonly byName: Map<string, AddonSpec>;

  constructor(
    readonly specs: readonly AddonSpec[] = ADDONS,
    /** where the built add-ons are (scripts/build-addons.mjs) */
    readonly dir = join(packageRoot, 'dist', 'addons'),
  ) {
    this.byName = new Map(specs.map((spec) => [spec.name, spec]));
  }

  /** What the worker needs whatever its modules import: for its bindings, its compatibility
   *  flags, and the add-on globals its code mentions. Worked out once per definition. */
  forWorker(def: WorkerDefinition): string[] {
    let names = this.byWorker.get(def);
    if (names) return names;
    const types = new Set(Object.values(def.bindings).map((b) => b.type as string));
    // with those the compatibility date implies (nodejs_compat_v2 from nodejs_compat, ...)
    const flags = new Set(effectiveFlags(def.compatibilityDate, def.compatibilityFlags));
    names = this.specs
      .filter((spec) => spec.bindings?.some((t) => types.has(t)) || spec.flags?.some((f) => flags.has(f)) || spec.globals?.some((g) => def.modules.some((m) => m.code.includes(g))))
      .map((spec) => spec.name);
    this.byWorker.set(def, names);
    return names;
  }

  /** Everything a worker importing `builtins` needs, each after the add-ons it needs. */
  resolve(def: WorkerDefinition, builtins: Iterable<string>): string[] {
    const names = new Set(this.forWorker(def));
    let flags: string[] | undefined;
    for (const specifier of builtins) {
      // A Node.js module the worker's flags (and date) do not offer is refused by name, as the
      // bundler refuses it: an upload of modules built elsewhere meets the same rule.
      const nodeName = nodeModuleName(specifier) ?? (specifier.startsWith('node:') ? specifier.slice(5) : undefined);
      if (nodeName !== undefined) {
        const refusal = nodeModuleRefusal(nodeName, (flags ??= effectiveFlags(def.compatibilityDate, def.compatibilityFlags)));
        if (refusal) throw new Error(refusal);
      }
      const provider = this.forModule(specifier);
      if (provider) names.add(provider);
    }
    return this.withNeeds(names);
  }

  /** The add-on's built code (dist/addons/<name>.js). */
  code(name: string): string {
    return this.source(name).code;
  }

  /** Whether the add-on is handed files (bytes a snapshot cannot hold, such as WebAssembly). */
  hasFiles(name: string): boolean {
    return !!this.byName.get(name)?.files;
  }

  /** The add-on that provides a built-in module specifier ("node:buffer"), if any. */
  forModule(specifier: string): string | undefined {
    return this.specs.find((spec) => spec.modules?.includes(specifier))?.name;
  }

  /**
   * Install the add-ons named (and those they need, first) into a fresh isolate. Answers the
   * export names of the built-in modules they provide, for the loader's module shims.
   *
   * An add-on is Cinder's own code, not a tenant's, and installing one is a few tens of
   * microseconds once its code cache exists: it is done on this thread, in the isolate the loader
   * just took from the pool (idle, so its lock is free), where three round trips to isolated-vm's
   * threads would cost more than the work (bench/README.md). Add-ons handed files compile them
   * (WebAssembly: milliseconds), and those, like the first compile of any add-on, go to
   * isolated-vm's threads.
   */
  async install(ready: ReadyIsolate, names: Iterable<string>, timeout: number): Promise<Map<string, string[]>> {
    const modules = new Map<string, string[]>();
    for (const name of this.withNeeds(names)) {
      const source = this.source(name);
      const inline = source.cache !== undefined && !this.hasFiles(name);
      const options = {
        filename: `cinder:addons/${name}.js`,
        ...(source.cache ? { cachedData: toExternal(source.cache) } : { produceCachedData: true }),
      };
      const script = inline ? ready.isolate.compileScriptSync(source.code, options) : await ready.isolate.compileScript(source.code, options);
      const made = (script as unknown as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
      if (!source.cache && made) source.cache = Buffer.from(made.copy({ release: true }));
      const runOptions = { reference: true, timeout, release: true } as const;
      const wrapper = (inline ? script.runSync(ready.context, runOptions) : await script.run(ready.context, runOptions)) as ivm.Reference<Function>;
      try {
        const args = [wrapper.derefInto(), name, this.filesArgument(name, source)];
        const answer = inline ? ready.entry.installAddon.applySync(undefined, args, { timeout }) : await ready.entry.installAddon.apply(undefined, args, { timeout });
        for (const [specifier, exportNames] of Object.entries((JSON.parse(String(answer)) as AddonInstalled).modules)) modules.set(specifier, exportNames);
      } finally {
        wrapper.release();
      }
      if (!source.cacheAfterRun) this.cacheAfterRun(ready, name, source);
    }
    return modules;
  }

  /**
   * A code cache made at compile time holds only the add-on's top level; compiled again in the
   * isolate that just ran its install(), V8's compilation cache hands back the script with every
   * function install() compiled, and the cache made from it spares later isolates those compiles
   * (as worker-loader's cacheAfterRun does for workers).
   */
  private cacheAfterRun(ready: ReadyIsolate, name: string, source: AddonSource): void {
    source.cacheAfterRun = true;
    try {
      keepLargerCache(source, ready.isolate.compileScriptSync(source.code, { filename: `cinder:addons/${name}.js`, produceCachedData: true }));
    } catch {
      // the compile-time cache stays
    }
  }

  /**
   * After the first event an add-on handled in this process (a Durable Object's first event: the
   * object constructed, its storage, its response), the cache made again from that isolate holds
   * the functions the event compiled, which every later object's first event would otherwise
   * compile again out of its own CPU limit (bench/README.md, issue 23 round 7). On isolated-vm's
   * threads: the isolate may have guest work again by then. Once per add-on per process.
   */
  async cacheAfterEvent(ready: ReadyIsolate, names: Iterable<string>): Promise<void> {
    for (const name of this.withNeeds(names)) {
      const source = this.sources.get(name);
      if (!source || source.cacheAfterEvent) continue;
      source.cacheAfterEvent = true;
      try {
        keepLargerCache(source, await ready.isolate.compileScript(source.code, { filename: `cinder:addons/${name}.js`, produceCachedData: true }));
      } catch {
        // (the isolate went meanwhile) the cache there was stays
      }
    }
  }

  /** The add-on's files as one object of ArrayBuffers, copied into the isolate with the call. */
  private filesArgument(name: string, source: AddonSource): ivm.Copy<Record<string, ArrayBuffer>> | undefined {
    const spec = this.byName.get(name)!;
    if (!spec.files) return undefined;
    if (!source.files) {
      const files: Record<string, ArrayBuffer> = {};
      for (const [key, path] of Object.entries(spec.files)) {
        const bytes = readFileSync(join(packageRoot, path));
        files[key] = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      }
      source.files = new ivm.ExternalCopy(files);
    }
    return source.files.copyInto();
  }

  private withNeeds(names: Iterable<string>): string[] {
    const ordered: string[] = [];
    const visit = (name: string, path: string[]): void => {
      if (ordered.includes(name)) return;
      const spec = this.byName.get(name);
      if (!spec) throw new Error(`cinder: no add-on named "${name}" (protocol/addons.ts)`);
      if (path.includes(name)) throw new Error(`cinder: add-ons need each other in a cycle: ${[...path, name].join(' -> ')}`);
      for (const need of spec.needs ?? []) visit(need, [...path, name]);
      ordered.push(name);
    };
    for (const name of names) visit(name, []);
    return ordered;
  }

  private source(name: string): AddonSource {
    let source = this.sources.get(name);
    if (!source) {
      const file = join(this.dir, `${name}.js`);
      let code: string;
      try {
        code = readFileSync(file, 'utf8');
      } catch {
        throw new Error(`cinder: add-on "${name}" is not built (${file}); run npm run build`);
      }
      source = { code };
      this.sources.set(name, source);
    }
    return source;
  }
}

export const defaultAddons = new AddonCatalog();

/** The source of the ES module that stands for a built-in module: it re-exports, under their
 *  own names, the values the add-on's namespace holds. */
export function builtinModuleShim(specifier: string, exportNames: string[]): string {
  const lines = [`const m = globalThis[${JSON.stringify(BUILTIN_MODULE_GLOBAL)}](${JSON.stringify(specifier)});`];
  const exported: string[] = [];
  exportNames.forEach((name, i) => {
    lines.push(`const e${i} = m[${JSON.stringify(name)}];`);
    exported.push(`e${i} as ${JSON.stringify(name)}`);
  });
  if (exported.length) lines.push(`export { ${exported.join(', ')} };`);
  return lines.join('\n');
}
