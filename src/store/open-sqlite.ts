// One way to open a Cinder SQLite file (deployments, usage, KV): the directory made if needed, WAL
// so readers never block the writer, and a busy timeout because another process (the CLI, a
// second server on the same --data) may hold the write lock for a moment. `synchronous` is the
// caller's durability choice: FULL survives power loss, NORMAL survives a crashed process.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export function openSqlite(file: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  // The timeout first: switching a new file to WAL takes an exclusive lock, and the serving
  // processes of one node open the same files at the same moment when they start.
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  return db;
}
