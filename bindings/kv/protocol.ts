// What crosses the isolate wall for KV, shared by the guest half (guest.ts) and the host half
// (host.ts); the op names are KV_OPS in protocol/wall.ts. Pure data and constants only: the sandbox bundle imports this file too, so it must
// not touch Node or allocate anything at module top level.

/** Limits as Cloudflare documents them for Workers KV. */
export const KV_LIMITS = {
  maxKeyBytes: 512,
  maxValueBytes: 25 * 1024 * 1024,
  maxMetadataBytes: 1024,
  maxListKeys: 1000,
  maxBulkKeys: 100,
  /** total decoded size of one bulk get */
  maxBulkBytes: 25 * 1024 * 1024,
  minCacheTtl: 30,
  minExpirationTtl: 60,
} as const;

export type GetType = 'text' | 'json' | 'arrayBuffer' | 'stream';

/** One value as the host hands it to the guest: `value` is a string for text/json, bytes
 *  otherwise; metadata stays the JSON text it was stored as and is parsed in the guest. */
export interface WireValue {
  value: string | ArrayBuffer;
  metadata: string | null;
  cacheStatus: 'HIT' | 'MISS';
}

export interface WirePutOptions {
  expiration?: number;
  expirationTtl?: number;
  /** JSON text, made by JSON.stringify in the guest exactly as workerd does */
  metadata?: string;
}

export interface WireListKey {
  name: string;
  expiration?: number;
  metadata?: string;
}

export interface WireListResult {
  keys: WireListKey[];
  list_complete: boolean;
  cursor?: string;
}
