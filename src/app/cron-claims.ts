// Who runs a cron tick when several processes schedule the same crons (CronSchedulerOptions.claim):
// the first to claim it, and only that one. A lease, not a guess: a claim is an atomic insert.
//   - one node, several processes (or a rolling restart, when two overlap): a row in
//     <data>/cron-claims.sqlite (INSERT OR IGNORE on worker + cron + tick);
//   - several nodes on Redis: SET cinder:cron:{<worker>}:<cron>:<tick> <node> NX PX <lease>.
// A node that claims a tick and then dies loses that tick (as Workers may, under failure); it is
// never run twice.
import type { RedisClient } from '../store/redis-connect.js';
import { openSqlite } from '../store/open-sqlite.js';

export interface CronClaims {
  claim(worker: string, cron: string, scheduledTime: number): Promise<boolean>;
  close(): void;
}

/** Leases live this long: far longer than the skew between nodes' clocks, shorter than a day. */
const LEASE_MS = 10 * 60_000;

export function sqliteCronClaims(file: string): CronClaims {
  const db = openSqlite(file, 'NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS cron_claims (worker TEXT NOT NULL, cron TEXT NOT NULL, tick INTEGER NOT NULL, pid INTEGER NOT NULL, PRIMARY KEY (worker, cron, tick)) WITHOUT ROWID');
  const insert = db.prepare('INSERT OR IGNORE INTO cron_claims (worker, cron, tick, pid) VALUES (?, ?, ?, ?)');
  const prune = db.prepare('DELETE FROM cron_claims WHERE tick < ?');
  let lastPrune = 0;
  return {
    async claim(worker, cron, scheduledTime) {
      const now = Date.now();
      if (now - lastPrune > 60_000) {
        lastPrune = now;
        prune.run(now - LEASE_MS);
      }
      return insert.run(worker, cron, scheduledTime, process.pid).changes === 1;
    },
    close() {
      if (db.open) db.close();
    },
  };
}

export function redisCronClaims(client: RedisClient, node: string, prefix = 'cinder'): CronClaims {
  return {
    async claim(worker, cron, scheduledTime) {
      // The hash tag keeps a worker's leases in one slot (Redis Cluster); the cron text is in the
      // key as written (spaces are fine in a key).
      const key = `${prefix}:cron:{${worker}}:${cron}:${scheduledTime}`;
      return (await client.set(key, `${node}/${process.pid}`, 'PX', LEASE_MS, 'NX')) === 'OK';
    },
    close() {},
  };
}
