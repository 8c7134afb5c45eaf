// A Durable Object storage process: a child of the server that owns the SQLite files of the
// objects sharded to it and runs every storage call on them, one at a time, in the order they
// came (storage-client.ts). The serving thread never runs an object's SQL, and a statement that
// would run past its invocation's limit is ended by killing this process. Each reply carries the
// CPU the call took, charged to the invocation that made it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectStorage, StorageError } from './object-storage.js';
import { startExecutorChild } from '../../src/store/executor-processes.js';
import { TRANSACTION_LOST, type StorageJob, type StorageReply, type StorageTarget } from './storage-messages.js';


const open = new Map<string, ObjectStorage>();

function storageOf(target: StorageTarget): ObjectStorage {
  let storage = open.get(target.key);
  if (!storage) {
    storage = new ObjectStorage(target.file, { sqlite: target.sqlite, maxDatabaseBytes: target.maxDatabaseBytes });
    open.set(target.key, storage);
  }
  return storage;
}

function kv(storage: ObjectStorage, request: unknown[]): unknown {
  switch (request[0]) {
    case 'get':
      return storage.get(request[1]);
    case 'put':
      return storage.put(request[1]);
    case 'delete':
      return storage.delete(request[1]);
    case 'list':
      return storage.list(request[1]);
    case 'deleteAll':
      return storage.deleteAll();
    default:
      if (isTransactionStep(request[0])) return transaction(storage, request[0]);
      throw new StorageError(`ctx.storage: unknown operation ${JSON.stringify(String(request[0]))}`, 'TypeError');
  }
}

function sql(storage: ObjectStorage, request: unknown[]): unknown {
  switch (request[0]) {
    case 'exec':
      return storage.exec(request[1], request[2]);
    case 'size':
      return storage.size();
    default:
      if (isTransactionStep(request[0])) return transaction(storage, request[0]);
      throw new TypeError('ctx.storage.sql: invalid request');
  }
}

/** The transaction steps both APIs share (the key-value API's and SQL's). */
const TRANSACTION_STEPS = ['begin', 'commit', 'rollback'] as const;

function isTransactionStep(op: unknown): op is (typeof TRANSACTION_STEPS)[number] {
  return (TRANSACTION_STEPS as readonly unknown[]).includes(op);
}

function transaction(storage: ObjectStorage, step: (typeof TRANSACTION_STEPS)[number]): void {
  storage[step]();
}

function handle(job: StorageJob): unknown {
  if (job.op === 'close') {
    open.get(job.key)?.close();
    open.delete(job.key);
    return null;
  }
  if (job.op === 'open') {
    storageOf(job.target).prepare();
    return null;
  }
  const storage = storageOf(job.target);
  if (storage.transactionDepth !== job.depth) {
    // This process was restarted (a neighbour's call ran past its limit) inside the object's
    // transaction: what it wrote so far is rolled back, and nothing after it may commit alone.
    storage.close();
    open.delete(job.target.key);
    throw Object.assign(new Error('the storage restarted during this transaction, which was rolled back'), { name: TRANSACTION_LOST });
  }
  return job.op === 'kv' ? kv(storage, job.request) : sql(storage, job.request);
}

process.on('message', (job: StorageJob) => {
  const before = process.cpuUsage();
  let reply: StorageReply;
  try {
    const ok = handle(job);
    reply = { id: job.id, cpuUs: 0, ok };
  } catch (error) {
    const { message, name } = error as Error;
    reply = { id: job.id, cpuUs: 0, error: { message: String(message ?? error), name: String(name ?? 'Error'), refused: error instanceof StorageError || error instanceof TypeError } };
  }
  const used = process.cpuUsage(before);
  reply.cpuUs = used.user + used.system;
  // (the server may be gone by now: a reply nobody can take is dropped, not an error)
  if (process.connected) process.send!(reply, undefined, undefined, () => {});
});

// The server going away takes this process with it; open transactions are not kept.
process.on('disconnect', () => {
  for (const storage of open.values()) storage.close();
  process.exit(0);
});

/**
 * Run every kind of call once on a scratch database before saying ready. The first calls a fresh
 * process runs cost several milliseconds more than later ones (its code compiled, SQLite's first
 * statements): that is this process's start-up, and without this the first object sharded to it
 * paid for it from its event's CPU limit (bench/README.md, issue 23 round 7).
 */
function warmUp(): void {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'cinder-storage-warm-'));
    const target: StorageTarget = { key: 'warm-up', file: join(dir, 'warm.sqlite'), sqlite: true, maxDatabaseBytes: 1024 * 1024 };
    const job = (op: 'kv' | 'sql', request: unknown[], depth = 0) => handle({ id: 0, op, target, depth, request });
    handle({ id: 0, op: 'open', target });
    job('kv', ['get', ['a']]);
    job('kv', ['put', [['a', 1], ['b', { c: [2] }]]]);
    job('kv', ['get', ['a', 'b']]);
    job('kv', ['list', { prefix: 'a', limit: 10 }]);
    job('kv', ['begin']);
    job('kv', ['put', [['c', 3]]], 1);
    job('kv', ['commit'], 1);
    job('kv', ['delete', ['a']]);
    job('sql', ['exec', 'CREATE TABLE IF NOT EXISTS t (x INTEGER)', []]);
    job('sql', ['exec', 'INSERT INTO t VALUES (?)', [1]]);
    job('sql', ['exec', 'SELECT x FROM t', []]);
    job('sql', ['size']);
    job('kv', ['deleteAll']);
  } catch {
    // a warm-up that fails leaves the process as it was without one
  } finally {
    open.get('warm-up')?.close();
    open.delete('warm-up');
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

warmUp();
startExecutorChild();
