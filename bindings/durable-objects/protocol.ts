// What crosses the isolate wall for Durable Objects, shared by the guest half
// (sandbox/addons/durable-objects.ts) and the host half (host.ts); op names are DO_OPS and
// DO_SYNC_OPS in protocol/wall.ts. Plain data and constants only: the add-on bundles this file.
import type { WireRequest, WireResponse } from '../../protocol/wall.js';

/** The binding type in env descriptors and upload metadata. */
export const DURABLE_OBJECT_BINDING = 'durable_object_namespace';

/** The add-on event kind the host delivers object events under (sandbox/addon-events.ts). */
export const DURABLE_OBJECT_EVENT = 'durable-object';

/** How the host words a failure of the storage itself (not a refused argument): it breaks the
 *  output gate of the event that made the write. */
export const STORAGE_FAILED = 'Durable Object storage failed';

/** Limits as Cloudflare documents them for Durable Object storage. */
export const DO_LIMITS = {
  /** key-value API: bytes of a key (UTF-8) */
  maxKeyBytes: 2048,
  /** key-value API, KV-backed classes: bytes of a value (serialized) */
  maxValueBytes: 128 * 1024,
  /** SQLite-backed classes: key and value together */
  maxSqliteEntryBytes: 2 * 1024 * 1024,
  /** keys in one get/put/delete of many */
  maxBatchKeys: 128,
  /** SQL statement length (bytes) */
  maxSqlBytes: 100_000,
  /** bound parameters in one statement */
  maxSqlBindings: 100,
  /** rows one sql.exec() may return, and bytes of them (the cursor is materialized on the host) */
  maxSqlRows: 100_000,
  maxSqlResultBytes: 32 * 1024 * 1024,
  /** a name given to idFromName (UTF-8 bytes) */
  maxNameBytes: 2048,
} as const;

/** What a stub asks of an object. */
export type ObjectCall =
  | { kind: 'fetch'; request: WireRequest }
  | { kind: 'rpc'; method: string; args: unknown[] };

/** The object's answer, as the calling guest receives it: an error by name and message. */
export type ObjectCallAnswer = { response: WireResponse } | { value: unknown } | { error: { name: string; message: string } };

/** An event as the hosting isolate receives it (the host fills in who the object is). */
export interface ObjectEventPayload {
  className: string;
  id: string;
  name: string | null;
  /** a class from new_sqlite_classes: ctx.storage.sql exists */
  sqlite: boolean;
  event: ObjectCall | { kind: 'alarm'; retryCount: number };
}

/** What the hosting isolate answers for one event. A streamed response body is named at the top
 *  level too (`stream`: a guest stream the host pulls; `hostStream`: a host stream passed on), as
 *  the dispatch result of a fetch names it: the invocation stays open while it is read. */
export type ObjectEventResult = { response: WireResponse; stream?: number; hostStream?: number } | { value: unknown } | { alarm: true };

export interface ListOptionsWire {
  start?: string;
  startAfter?: string;
  end?: string;
  prefix?: string;
  reverse?: boolean;
  limit?: number;
}

/** ctx.storage (key-value API and alarms) as one async op: [kind, ...args]. */
export type StorageRequest =
  | ['get', string[]]
  | ['put', [string, unknown][]]
  | ['delete', string[]]
  | ['list', ListOptionsWire]
  | ['deleteAll']
  | ['begin']
  | ['commit']
  | ['rollback']
  | ['getAlarm']
  | ['setAlarm', number]
  | ['deleteAlarm'];

/** ctx.storage.sql and transactionSync as one sync op. */
export type SqlRequest =
  | ['exec', string, unknown[]]
  | ['size']
  | ['begin']
  | ['commit']
  | ['rollback'];

export interface SqlAnswer {
  columnNames: string[];
  rows: unknown[][];
  rowsRead: number;
  rowsWritten: number;
}
