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
import { effectiveFlags } from '../../protocol/node-modules.js';
import { ADDONS, BUILTIN_MODULE_GLOBAL, type AddonInstalled, type AddonSpec } from '../../protocol/addons.js';

interface AddonSource {
  code: string;
  /** V8 code cache, made by the first isolate that compiles the add-on in this process */
  cache?: Buffer;
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

  /** The add-on that provides a built-in module specifier ("node:buffer"), if any. */
  forModule(specifier: string): string | undefined {
    return this.specs.find((spec) => spec.modules?.includes(specifier))?.name;
  }

  /**
   * Install the add-ons named (and those they need, first) into a fresh isolate. Answers the
   * export names of the built-in modules they provide, for the loader's module shims.
   */
  async install(ready: ReadyIsolate, names: Iterable<string>, timeout: number): Promise<Map<string, string[]>> {
    const modules = new Map<string, string[]>();
    for (const name of this.withNeeds(names)) {
      const source = this.source(name);
      const script = await ready.isolate.compileScript(source.code, {
        filename: `cinder:addons/${name}.js`,
        ...(source.cache ? { cachedData: toExternal(source.cache) } : { produceCachedData: true }),
      });
      const made = (script as unknown as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
      if (!source.cache && made) source.cache = Buffer.from(made.copy({ release: true }));
      const wrapper = (await script.run(ready.context, { reference: true, timeout, release: true })) as ivm.Reference<Function>;
      try {
        const answer = JSON.parse(String(await ready.entry.installAddon.apply(undefined, [wrapper.derefInto(), name], { timeout }))) as AddonInstalled;
        for (const [specifier, exportNames] of Object.entries(answer.modules)) modules.set(specifier, exportNames);
      } finally {
        wrapper.release();
      }
    }
    return modules;
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
