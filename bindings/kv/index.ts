// The host's entry to KV: pick a backend from the server's options (--redis URL, else a SQLite
// file under --data, else memory), wrap it in the service, and describe namespaces as bindings.
// `cinder serve`, `cinder dev --kv` and `cinder kv` all come through here, so they agree on
// where data lives.
import { join } from 'node:path';
import type { BindingConfig } from '../../src/model/worker-definition.js';
import type { KVBackend } from './backend.js';
import { MemoryBackend } from './memory.js';
import { RedisBackend } from './redis.js';
import { KVService, type KVServiceOptions } from './service.js';
import { SqliteBackend } from './sqlite.js';

export { KVService, type KVServiceOptions, type KVRead, type KVListResult } from './service.js';
export { KVError } from './validate.js';
export { installKV, type KVHostOptions } from './host.js';
export type { KVBackend, StoredEntry } from './backend.js';
export { MemoryBackend, SqliteBackend, RedisBackend };

export interface KVStorageOptions {
  /** Redis URL: namespaces shared by every node using it */
  redis?: string;
  /** data directory: namespaces in <data>/kv.sqlite */
  data?: string;
  /** neither: keep everything in memory (lost on exit) */
  memory?: boolean;
  /** SQLite only: 'full' adds an fsync per put (survives power loss, not just kill -9) */
  synchronous?: 'normal' | 'full';
}

export function kvDatabasePath(dataDir: string): string {
  return join(dataDir, 'kv.sqlite');
}

export function openKVBackend(options: KVStorageOptions): KVBackend {
  if (options.redis) return new RedisBackend({ url: options.redis });
  if (options.data) return new SqliteBackend({ path: kvDatabasePath(options.data), synchronous: options.synchronous });
  if (options.memory) return new MemoryBackend();
  throw new Error('KV storage: give a Redis URL, a data directory, or ask for memory');
}

export function createKVService(storage: KVStorageOptions, options: Omit<KVServiceOptions, 'backend'> = {}): KVService {
  return new KVService({ ...options, backend: openKVBackend(storage) });
}

/** `--kv NAME` bindings: env.NAME bound to the namespace with id NAME. */
export function kvBindings(names: string[]): Record<string, BindingConfig> {
  const bindings: Record<string, BindingConfig> = {};
  for (const name of names) {
    if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`invalid KV binding name "${name}" (expected a JavaScript identifier)`);
    bindings[name] = { type: 'kv_namespace', namespace_id: name };
  }
  return bindings;
}
