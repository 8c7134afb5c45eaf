// Durable Object placement among the serving processes of one node without Redis (`--processes N`):
// the same leases and records as on Redis (object-placement.ts), in
// <data>/durable-objects/placement.sqlite. Every holder is on this machine, so one clock serves
// for the leases, and any process may take over an object whose holder's lease expired (they
// share the data directory). Each call is one immediate transaction: atomic across processes.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { openSqlite } from '../store/open-sqlite.js';
import type { PlacementBackend } from './object-placement.js';

export function sqlitePlacementBackend(dataDir: string): PlacementBackend & { secret(): string; close(): void } {
  const dir = join(dataDir, 'durable-objects');
  mkdirSync(dir, { recursive: true });
  const db = openSqlite(join(dir, 'placement.sqlite'), 'NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS holders (holder TEXT PRIMARY KEY, expires INTEGER NOT NULL, address TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  const expiresOf = db.prepare('SELECT expires FROM holders WHERE holder = ?').pluck();
  const upsert = db.prepare('INSERT INTO holders (holder, expires, address) VALUES (?, ?, ?) ON CONFLICT(holder) DO UPDATE SET expires = excluded.expires, address = excluded.address');
  const prune = db.prepare('DELETE FROM holders WHERE expires < ?');
  const lease = db.transaction((holder: string, leaseMs: number, address: string, renew: boolean) => {
    const now = Date.now();
    if (renew) {
      const expires = expiresOf.get(holder) as number | undefined;
      if (expires === undefined || expires <= now) return false;
    }
    upsert.run(holder, now + leaseMs, address);
    prune.run(now - 3_600_000);
    return true;
  });
  const liveOne = db.prepare('SELECT holder, address FROM holders WHERE holder = ? AND expires > ?');
  const liveAny = db.prepare('SELECT holder, address FROM holders WHERE expires > ? ORDER BY expires DESC LIMIT 1');
  const recordOf = db.prepare('SELECT record FROM objects WHERE key = ?').pluck();
  const put = db.prepare('INSERT INTO objects (key, record) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET record = excluded.record');
  const swap = db.transaction((key: string, expected: string, next: string) => {
    if (((recordOf.get(key) as string | undefined) ?? '') !== expected) return false;
    put.run(key, next);
    return true;
  });
  db.prepare('INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)').run('link', randomBytes(32).toString('hex'));
  const secret = db.prepare('SELECT value FROM secrets WHERE name = ?').pluck().get('link') as string;
  return {
    async lease(_node, holder, leaseMs, address, renew) {
      return lease.immediate(holder, leaseMs, address, renew);
    },
    async live(_node, holder) {
      const row = (holder ? liveOne.get(holder, Date.now()) : liveAny.get(Date.now())) as { holder: string; address: string } | undefined;
      return row ? [row.holder, row.address] : null;
    },
    async record(key) {
      return (recordOf.get(key) as string | undefined) ?? '';
    },
    async swap(key, expected, next) {
      return swap.immediate(key, expected, next);
    },
    async release(_node, holder) {
      db.prepare('DELETE FROM holders WHERE holder = ?').run(holder);
    },
    // One node: nowhere to move its objects to.
    async movedTo() {
      return null;
    },
    async setMoved() {
      throw new Error('moving a node\'s Durable Objects needs --redis (several nodes)');
    },
    secret: () => secret,
    close() {
      if (db.open) db.close();
    },
  };
}
