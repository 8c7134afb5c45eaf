// One way to open a Cinder SQLite file (deployments, usage, KV): the directory made if needed, WAL
// so readers never block the writer, and a busy timeout because another process (the CLI, a
// second server on the same --data) may hold the write lock for a moment. `synchronous` is the
// caller's durability choice: FULL survives power loss, NORMAL survives a crashed process.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const BUSY_TIMEOUT_MS = 5000;
const RETRY_PAUSE_MS = 10;
const pause = new Int32Array(new SharedArrayBuffer(4));

export function openSqlite(file: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  useWal(db);
  db.pragma(`synchronous = ${synchronous}`);
  return db;
}

/**
 * Switch the file to WAL. The switch takes an exclusive lock, and SQLite answers SQLITE_BUSY at
 * once when another connection holds the file then, without the busy timeout: the serving
 * processes of one node open the same new files at the same moment when they start, and one of
 * them died of it ("database is locked") and was restarted by the supervisor. A file already in
 * WAL needs no switch; a new one is retried, as the busy timeout would, for as long.
 */
function useWal(db: Database.Database): void {
  if (db.pragma('journal_mode', { simple: true }) === 'wal') return;
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (!String((error as { code?: string }).code).startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw error; // (and its extended codes)
      // (a synchronous pause, as SQLite's own busy handler makes: opening a file is synchronous)
      Atomics.wait(pause, 0, 0, RETRY_PAUSE_MS);
    }
  }
}
