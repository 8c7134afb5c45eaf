// Add-ons: guest APIs kept out of the base sandbox (and so out of the V8 snapshot every isolate is
// born from) and installed into an isolate only when its worker calls for them. A worker that
// never uses an API pays nothing for it: no snapshot bytes, no deserialization, no heap.
//
// Each add-on is sandbox/addons/<name>.ts, built to dist/addons/<name>.js. The host decides from
// this table which add-ons a worker needs, and installs them before the worker's modules are
// evaluated (src/runtime/addons.ts). Plain data: both halves import this file.

import { NODE_ADDONS } from './node-modules.js';

/** When an add-on is installed: any one of these is enough. */
export interface AddonSpec {
  /** sandbox/addons/<name>.ts */
  name: string;
  /** binding types (BindingConfig['type']) whose guest half it registers */
  bindings?: readonly string[];
  /** compatibility flags that call for it (e.g. nodejs_compat) */
  flags?: readonly string[];
  /** global identifiers it defines: installed when any module of the worker mentions one */
  globals?: readonly string[];
  /** built-in module specifiers it provides ("node:buffer"): installed when a module imports one */
  modules?: readonly string[];
  /** other add-ons it needs installed first */
  needs?: readonly string[];
  /** files the host reads (paths from the package root) and hands to install() as ArrayBuffers,
   *  by key: bytes an add-on cannot carry as code (a WebAssembly module) */
  files?: Readonly<Record<string, string>>;
}

/** A compatibility flag only the host sets (never accepted from a config): on the definition an
 *  isolate hosting a Durable Object is loaded with, so that isolate gets the add-on that runs it. */
export const DURABLE_OBJECT_HOST_FLAG = 'cinder:durable-object-host';

export const ADDONS: readonly AddonSpec[] = [
  // WebSocketPair, WebSocket and the events (sandbox/addons/websocket.ts); also for a worker that
  // only connects out (it reads the response's `webSocket`) or passes upgrades through (it checks
  // for "Upgrade: websocket"), which name no global of it.
  { name: 'websocket', globals: ['WebSocketPair', 'WebSocket', 'webSocket', 'websocket'] },
  // crypto.subtle, CryptoKey, SubtleCrypto, crypto.DigestStream (bindings/crypto). Also for a
  // worker calling node:crypto's generateKeyPair or pbkdf2: their callback forms run on Web Crypto
  // on the host (sandbox/addons/node/crypto-keys.ts, crypto.ts), not as seconds of JavaScript on
  // the worker's CPU.
  { name: 'crypto-subtle', globals: ['subtle', 'SubtleCrypto', 'CryptoKey', 'DigestStream', 'generateKeyPair', 'pbkdf2'] },
  // CompressionStream, DecompressionStream (bindings/compression).
  { name: 'compression', globals: ['CompressionStream', 'DecompressionStream'] },
  // env bindings of KV namespaces (bindings/kv).
  { name: 'kv', bindings: ['kv_namespace'] },
  // `cloudflare:workers`: env, waitUntil, WorkerEntrypoint, DurableObject, RpcTarget.
  { name: 'cloudflare-workers', modules: ['cloudflare:workers'] },
  // The Cache API (bindings/cache).
  { name: 'cache', globals: ['caches', 'CacheStorage'] },
  // HTMLRewriter on lol-html (WebAssembly, ~0.9 MB, compiled in the isolate that uses it).
  { name: 'html-rewriter', globals: ['HTMLRewriter'], files: { wasm: 'node_modules/html-rewriter-wasm/dist/html_rewriter_bg.wasm' } },
  // D1 bindings' guest half (bindings/d1/guest.ts).
  { name: 'd1', bindings: ['d1'] },
  // R2 bindings' guest half (bindings/r2/guest.ts).
  { name: 'r2', bindings: ['r2_bucket'] },
  // Queues producer bindings' guest half (bindings/queues/guest.ts).
  { name: 'queue', bindings: ['queue'] },
  // env.ASSETS.fetch() (bindings/assets).
  { name: 'assets', bindings: ['assets'] },
  // Durable Objects (bindings/durable-objects): the namespace binding, and in the isolate that hosts
  // an object (src/runtime/durable-objects/object-host.ts marks it with the flag) the object's events.
  { name: 'durable-objects', bindings: ['durable_object_namespace'], flags: [DURABLE_OBJECT_HOST_FLAG], globals: ['WebSocketRequestResponsePair'] },
  // nodejs_compat's Node.js modules and globals, and nodejs_als (protocol/node-modules.ts).
  ...NODE_ADDONS,
];

/** What an add-on's default export is: install(files), files as AddonSpec.files names them. */
export type AddonInstall = (files: Record<string, ArrayBuffer>) => AddonExports;

/** What an add-on's default export (install) returns. */
export interface AddonExports {
  /** defined on globalThis like the base's own globals (writable, configurable, not enumerable) */
  globals?: Record<string, unknown>;
  /** built-in modules: specifier -> namespace (own keys are the named exports, plus `default`) */
  modules?: Record<string, object>;
}

/** The guest entry (returned by the boot hook) the host calls with each add-on's wrapper. */
export const INSTALL_ADDON_ENTRY = 'installAddon';

/** While a worker's modules are evaluated, the built-in modules' shims read their namespaces
 *  through this global; installWorker deletes it. (It hands out nothing an import would not.) */
export const BUILTIN_MODULE_GLOBAL = '__cinder_builtin';

/** What installAddon answers, as JSON: the export names of each built-in module it provides. */
export type AddonInstalled = { modules: Record<string, string[]> };
