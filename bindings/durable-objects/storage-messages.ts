// The messages between the server and its Durable Object storage processes
// (storage-client.ts <-> storage-process.ts).

/** Which object, and how its file is opened the first time the process sees it. */
export interface StorageTarget {
  key: string;
  file: string;
  sqlite: boolean;
  maxDatabaseBytes: number;
}

/** `kv`: the key-value API (get/put/delete/list/deleteAll/begin/commit/rollback);
 *  `sql`: ctx.storage.sql and transactionSync (exec/size/begin/commit/rollback). */
export type StorageJob =
  | { id: number; op: 'kv' | 'sql'; target: StorageTarget; /** open transaction levels the server expects */ depth: number; request: unknown[] }
  | { id: number; op: 'close'; key: string }
  /** the object is starting: open its file now, so its first event's call finds it open */
  | { id: number; op: 'open'; target: StorageTarget };

export type StorageReply = { id: number; cpuUs: number; ok: unknown } | { id: number; cpuUs: number; error: { message: string; name: string; refused: boolean } };

/** The error name a storage process answers with when an object's open transaction was lost. */
export const TRANSACTION_LOST = 'TransactionLost';
