// What crosses the isolate wall for Durable Objects, shared by the guest half
// (sandbox/addons/durable-objects.ts) and the host half (host.ts); op names are DO_OPS and
// DO_SYNC_OPS in protocol/wall.ts. Plain data and constants only: the add-on bundles this file.
import type { SocketEvent, WireRequest, WireResponse } from '../../protocol/wall.js';

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
  /** bytes of values one get() of many keys or one list() may answer with: Cinder's own bound
   *  (Cloudflare's is the isolate's memory), so an object's whole file is never copied at once */
  maxReadBytes: 64 * 1024 * 1024,
  /** a name given to idFromName (UTF-8 bytes) */
  maxNameBytes: 2048,
} as const;

/** The WebSocket hibernation API's limits, as Cloudflare states them (workerd's words in errors). */
export const HIBERNATION_LIMITS = {
  /** hibernatable WebSockets one object may hold (accepted and not yet closed) */
  maxSockets: 32_768,
  /** distinct tags on one WebSocket */
  maxTags: 10,
  /** bytes (UTF-8) of one tag ("characters" in workerd's message) */
  maxTagLength: 256,
  /** bytes of a serialized attachment (V8's serializer, header included) */
  maxAttachmentBytes: 16_384,
  /** bytes of an auto-response's request and of its response */
  maxAutoResponseBytes: 2_048,
  /** setHibernatableWebSocketEventTimeout() at most (7 days) */
  maxEventTimeoutMs: 604_800_000,
} as const;

/** What a stub asks of an object. `socketId` (fetch): the calling isolate's id for a WebSocket the
 *  object may answer with (reserved by the caller's WebSocket add-on; absent when it has none). */
export type ObjectCall =
  | { kind: 'fetch'; request: WireRequest; socketId?: number }
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
  event: ObjectCall | { kind: 'alarm'; retryCount: number } | { kind: 'websocket'; socketId: number; event: SocketEvent };
}

/** What the hosting isolate answers for one event. A 101 response's `webSocket` is the object's
 *  hibernatable socket id, or with `isolateSocket` the isolate's guest id of a socket it accept()ed.
 *  A streamed response body is named at the top level too (`stream`: a guest stream the host
 *  pulls; `hostStream`: a host stream passed on), as the dispatch result of a fetch names it: the
 *  invocation stays open while it is read. */
export type ObjectEventResult = { response: WireResponse; isolateSocket?: true; stream?: number; hostStream?: number } | { value: unknown } | { alarm: true } | { websocket: true };

/** ctx's hibernation API as one sync op (DO_SYNC_OPS.webSocket): [kind, ...args]. Socket ids are
 *  the host's (per object), stable while the socket is open, across hibernation. */
export type HibernationRequest =
  | ['accept', string[]]
  | ['list', string | null]
  | ['tags', number]
  | ['serialize', number, unknown]
  | ['deserialize', number]
  | ['setAutoResponse', string, string]
  | ['clearAutoResponse']
  | ['getAutoResponse']
  | ['autoResponseTimestamp', number]
  | ['setEventTimeout', number | null]
  | ['getEventTimeout'];

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
