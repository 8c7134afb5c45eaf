// better-sqlite3 against node:sqlite on Cinder's two SQLite paths, same files, same pragmas, same
// process: KV (a put with synchronous=FULL as `cinder serve` runs it, a point get, a list page)
// and the deployment store (a 100 KB version written in a transaction, then read back).
//   node bench/sqlite-engines.mjs [--n=2000]      (run through npm's PATH, i.e. the project's Node)
import Database from 'better-sqlite3';
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const n = Number(process.argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 2000);
const SCHEMA = `CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER);
CREATE UNIQUE INDEX kv_key ON kv (namespace, key);
CREATE TABLE versions (name TEXT NOT NULL, version INTEGER NOT NULL, script BLOB NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (name, version));`;
const PUT = `INSERT INTO kv (namespace, key, value, metadata, expiration) VALUES (?, ?, ?, ?, ?)
  ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration`;

const engines = {
  'better-sqlite3': (file) => {
    const db = new Database(file);
    db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL'); db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    return { prepare: (sql) => db.prepare(sql), tx: (fn) => db.transaction(fn), close: () => db.close() };
  },
  'node:sqlite': (file) => {
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
    db.exec(SCHEMA);
    const tx = (fn) => (...args) => { db.exec('BEGIN'); try { const r = fn(...args); db.exec('COMMIT'); return r; } catch (e) { db.exec('ROLLBACK'); throw e; } };
    return { prepare: (sql) => db.prepare(sql), tx, close: () => db.close() };
  },
};

function median(xs) { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }
function time(count, fn) {
  const samples = [];
  for (let i = 0; i < count; i++) { const t = process.hrtime.bigint(); fn(i); samples.push(Number(process.hrtime.bigint() - t) / 1000); }
  return median(samples);
}

const value = Buffer.alloc(1024, 7);
const script = Buffer.alloc(100 * 1024, 'x');
const rows = [];
for (const round of [1, 2]) {
  for (const [name, open] of Object.entries(engines)) {
    const dir = mkdtempSync(join(tmpdir(), 'sqlite-bench-'));
    const db = open(join(dir, 'db.sqlite'));
    const put = db.prepare(PUT);
    const get = db.prepare('SELECT value, metadata, expiration FROM kv WHERE namespace = ? AND key = ? AND (expiration IS NULL OR expiration * 1000 > ?)');
    const list = db.prepare('SELECT key, metadata, expiration FROM kv WHERE namespace = ? AND key >= ? AND key > ? ORDER BY key LIMIT ?');
    const insertVersion = db.prepare('INSERT INTO versions (name, version, script, meta) VALUES (?, ?, ?, ?)');
    const readVersion = db.prepare('SELECT script, meta FROM versions WHERE name = ? AND version = ?');
    const deploy = db.tx((i) => insertVersion.run('w', i, script, JSON.stringify({ bindings: [], main: 'index.js' })));
    const r = { engine: name, round };
    r.putUs = time(n, (i) => put.run('ns', `key-${String(i).padStart(6, '0')}`, value, null, null));
    r.getUs = time(n, (i) => get.get('ns', `key-${String(i % n).padStart(6, '0')}`, Date.now()));
    r.list100Us = time(Math.min(n, 500), (i) => list.all('ns', 'key-', `key-${String(i).padStart(6, '0')}`, 100));
    r.deployUs = time(Math.min(n, 300), (i) => deploy(i));
    r.readVersionUs = time(Math.min(n, 300), (i) => readVersion.get('w', i));
    db.close();
    rmSync(dir, { recursive: true, force: true });
    rows.push(r);
  }
}
console.log(`Node ${process.versions.node}, n=${n}; medians in microseconds (round 2 is after both engines warmed the disk)`);
console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && k !== 'round' ? Number(v.toFixed(1)) : v]))));
