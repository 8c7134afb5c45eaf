// What a deployed worker is: its modules, its bindings and limits, under a name and a version.
// Plain data, so the control plane can store it and the runtime can load it anywhere.
import { createHash } from 'node:crypto';
import type { Limits } from './limits.js';

/**
 * The kinds of module a version holds, as Cloudflare's upload names them by content type:
 *   esm       application/javascript+module  an ES module
 *   script    application/javascript         the entry of a service-worker script
 *   commonjs  application/javascript         CommonJS (module.exports, require) in a modules worker
 *   text      text/plain                     Text: `import s from "./a.html"` is a string
 *   json      application/json               `import data from "./a.json"`
 *   data      application/octet-stream       Data: the default export is an ArrayBuffer
 *   wasm      application/wasm               CompiledWasm: the default export is a WebAssembly.Module
 */
export type ModuleType = 'esm' | 'script' | 'commonjs' | 'text' | 'json' | 'data' | 'wasm';

export const MODULE_TYPES: readonly ModuleType[] = ['esm', 'script', 'commonjs', 'text', 'json', 'data', 'wasm'];

/** Modules whose content is bytes, not text. */
export const BINARY_MODULE_TYPES: readonly ModuleType[] = ['data', 'wasm'];

/** The part content type Cloudflare's upload (and wrangler) uses for each module type. */
export const MODULE_CONTENT_TYPES: Record<ModuleType, string> = {
  esm: 'application/javascript+module',
  script: 'application/javascript',
  commonjs: 'application/javascript',
  text: 'text/plain',
  json: 'application/json',
  data: 'application/octet-stream',
  wasm: 'application/wasm',
};

export interface WorkerModuleSource {
  /** module name as other modules import it (e.g. "index.js", "lib/util.js") */
  name: string;
  /** The source text; for binary modules (data, wasm) the bytes in base64, so that a definition
   *  stays plain text that stores, hashes and crosses JSON like any other (moduleBytes decodes). */
  code: string;
  type: ModuleType;
}

export function isBinaryModule(module: Pick<WorkerModuleSource, 'type'>): boolean {
  return BINARY_MODULE_TYPES.includes(module.type);
}

/** The module's content as bytes (decoded from base64 for binary modules, UTF-8 otherwise). */
export function moduleBytes(module: WorkerModuleSource): Buffer {
  return isBinaryModule(module) ? Buffer.from(module.code, 'base64') : Buffer.from(module.code, 'utf8');
}

/** The module's size in bytes as uploaded (what the script size limit counts). */
export function moduleSize(module: WorkerModuleSource): number {
  return isBinaryModule(module) ? Buffer.from(module.code, 'base64').byteLength : Buffer.byteLength(module.code);
}

/** A binary module's definition from its bytes. */
export function binaryModule(name: string, type: 'data' | 'wasm', bytes: Uint8Array): WorkerModuleSource {
  return { name, type, code: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
}

/** How a binding is described to the host (never handed to the guest as-is). */
export type BindingConfig =
  | { type: 'plain_text'; text: string }
  | { type: 'secret_text'; text: string }
  | { type: 'json'; json: unknown }
  | { type: 'kv_namespace'; namespace_id: string }
  | {
      type: 'service';
      service: string;
      /** a named export of the callee (a WorkerEntrypoint class) that RPC calls reach; default export otherwise */
      entrypoint?: string;
      /** set by the control plane: the callee must be of this account */
      account?: string;
    };

export interface WorkerDefinition {
  name: string;
  /** the account that owns the worker (cinder serve); undefined in `cinder dev` */
  account?: string;
  /** version id; a new one for every upload */
  version: string;
  /** the module the runtime evaluates first */
  main: string;
  modules: WorkerModuleSource[];
  bindings: Record<string, BindingConfig>;
  limits?: Partial<Limits>;
  /** the compatibility date the worker was written for (wrangler's compatibility_date) */
  compatibilityDate?: string;
  /** compatibility flags it asks for (nodejs_compat, ...): they choose add-ons and semantics */
  compatibilityFlags?: string[];
  /** V8 code cache per module name, filled on first load and kept beside the deployment */
  codeCache?: Map<string, Buffer>;
  /** True once `codeCache` holds what a first request compiled (see WorkerInstance); whoever
   *  keeps the cache stores this with it, so a restarted server does not make it again. */
  codeCacheAfterRun?: boolean;
  /** Called when entries of `codeCache` were replaced, so whoever keeps the cache can store it
   *  again: V8 rejected one (a damaged file, other V8 flags), or a first request has run. */
  onCodeCacheUpdated?: (codeCache: Map<string, Buffer>, reason: 'rejected' | 'after-run') => void;
  /** A V8 snapshot of the sandbox with this version's top level evaluated, made after deploy and
   *  kept beside the version: a cold start deserializes it instead of compiling and running the
   *  top level (runtime/deployment-snapshot.ts). Absent: a plain load. */
  snapshot?: DeploymentSnapshot;
}

/** A per-deployment snapshot as it is stored and handed to the runtime. */
export interface DeploymentSnapshot {
  /** the platform it was built on (sandbox bundle, Node, V8, isolated-vm and its patch level):
   *  it is used only where this matches, and rebuilt where it does not */
  platform: string;
  data: Buffer;
  /** sha256 of data, written by the builder after the snapshot passed its self-test */
  sha256: string;
  /** what the sandbox's installWorker answers for it ("modules fetch") */
  handlers: string;
}

// A script is an ES module when it has a top-level import/export statement (as wrangler decides
// between the modules and service-worker formats).
// Minified bundles write `export{a as default}` with no space.
const ESM_SYNTAX = /(^|[\n;}])\s*(export\s*(\{|\*)|export\s+(default\b|const\b|let\b|var\b|function\b|async\s+function\b|class\b)|import\s*(\{|\*|[\w$]+\s*(,|from\b)|['"]))/;

export function detectModuleType(code: string): ModuleType {
  const withoutComments = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
  return ESM_SYNTAX.test(withoutComments) ? 'esm' : 'script';
}

export function contentHash(modules: WorkerModuleSource[]): string {
  const hash = createHash('sha256');
  for (const m of modules) hash.update(m.name).update('\0').update(m.type).update('\0').update(m.code).update('\0');
  return hash.digest('hex');
}

/** A single-file worker, format detected from its syntax. */
export function singleScriptWorker(name: string, code: string, options: Partial<WorkerDefinition> = {}): WorkerDefinition {
  const moduleName = options.main ?? 'worker.js';
  const modules = [{ name: moduleName, code, type: detectModuleType(code) }];
  return {
    name,
    version: options.version ?? contentHash(modules).slice(0, 16),
    main: moduleName,
    modules,
    bindings: options.bindings ?? {},
    limits: options.limits,
    codeCache: options.codeCache,
  };
}

/** Add a binding by name as an own property: a plain assignment would treat "__proto__" as the
 *  object's prototype, and `name in bindings` finds "constructor" on every object. */
export function setBinding<T>(bindings: Record<string, T>, name: string, config: NoInfer<T>): void {
  Object.defineProperty(bindings, name, { value: config, enumerable: true, writable: true, configurable: true });
}
