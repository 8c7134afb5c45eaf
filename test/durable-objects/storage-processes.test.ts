// The storage processes on their own (real child processes, real SQLite files): a call over its
// CPU budget kills its process and is charged; a neighbour object on the same process loses its
// open transaction (rolled back, said so) instead of committing half of it; an invocation that
// ends while its call runs ends the call; everything committed before stays.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecutorProcesses, childEntry } from '../../src/store/executor-processes.js';
import { ObjectStorageClient, StorageCallEnded } from '../../bindings/durable-objects/storage-client.js';
import type { OpCall } from '../../src/runtime/contract.js';

const dir = mkdtempSync(join(tmpdir(), 'cinder-do-storage-'));
// One process, so that every object shares it.
const processes = new ExecutorProcesses(childEntry(new URL('../../bindings/durable-objects/host.ts', import.meta.url).href, 'storage-process.js'), {
  processes: 1,
  ended: (reason, cpuMs) => new StorageCallEnded(reason, cpuMs),
});
afterAll(() => {
  processes.close();
  rmSync(dir, { recursive: true, force: true });
});

function object(name: string): ObjectStorageClient {
  return new ObjectStorageClient(processes, { key: name, file: join(dir, `${name}.sqlite`), sqlite: true, maxDatabaseBytes: 1 << 30 });
}

/** An op call as the runtime makes it, for an invocation with `cpuMs` of CPU limit. */
function opCall(cpuMs: number) {
  const controller = new AbortController();
  const abort = (error: Error) => controller.abort(error);
  const exceeded: string[] = [];
  const invocation = { cpuNs: 0n, signal: controller.signal, requestId: 'r', subrequests: 0, bytesIn: 0, bytesOut: 0, hostWorkMs: 0 };
  const call = { worker: { name: 'w' }, limits: { cpuMs }, invocation, exceeded: (limit: string) => exceeded.push(limit) } as unknown as OpCall;
  return { call, invocation, exceeded, abort };
}

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('Durable Object storage processes', () => {
  it("end a call at its CPU budget, charge it, and a neighbour's transaction on the same process goes on (redone in the fresh process)", async () => {
    const calm = object('calm');
    const spinner = object('spinner');
    const { call } = opCall(10_000);
    await calm.call('sql', ['exec', 'CREATE TABLE t (v TEXT)', []], call);
    await calm.call('sql', ['exec', "INSERT INTO t VALUES ('committed')", []], call);
    await calm.call('kv', ['begin'], call);
    await calm.call('sql', ['exec', "INSERT INTO t VALUES ('in the transaction')", []], call);
    expect(((await calm.call('sql', ['exec', 'SELECT count(*) FROM t', []], call)) as { rows: unknown[][] }).rows).toEqual([[2]]);
    await calm.call('kv', ['put', [['seen', 2]]], call);

    const run = opCall(200);
    await expect(spinner.call('sql', ['exec', RUNAWAY, []], run.call)).rejects.toThrow(/Durable Object storage failed: a storage call ran past the CPU limit/);
    expect(run.exceeded).toEqual(['cpu']);
    expect(Number(run.invocation.cpuNs) / 1e6).toBeGreaterThanOrEqual(180);

    // The neighbour's transaction went with the process, and was redone (every call answering as
    // it had): its next write goes into it, and its commit keeps all of it.
    await calm.call('sql', ['exec', "INSERT INTO t VALUES ('after the restart')", []], call);
    await expect(calm.call('kv', ['commit'], call)).resolves.toBeUndefined();
    const rows = (await calm.call('sql', ['exec', 'SELECT v FROM t ORDER BY rowid', []], call)) as { rows: unknown[][] };
    expect(rows.rows).toEqual([['committed'], ['in the transaction'], ['after the restart']]);
    expect(await calm.call('kv', ['get', ['seen']], call)).toEqual([['seen', 2]]);
    // Both objects work again.
    expect(((await spinner.call('sql', ['exec', 'SELECT 41 + 1', []], call)) as { rows: unknown[][] }).rows).toEqual([[42]]);
  });

  it("a neighbour's transaction that saw something it cannot see again (random()) is rolled back by a restart, and its write never commits alone", async () => {
    const calm = object('calm-random');
    const spinner = object('spinner-random');
    const { call } = opCall(10_000);
    await calm.call('sql', ['exec', 'CREATE TABLE t (v TEXT)', []], call);
    await calm.call('sql', ['exec', "INSERT INTO t VALUES ('committed')", []], call);
    await calm.call('kv', ['begin'], call);
    await calm.call('sql', ['exec', 'SELECT random()', []], call);
    await calm.call('sql', ['exec', "INSERT INTO t VALUES ('in the transaction')", []], call);

    await expect(spinner.call('sql', ['exec', RUNAWAY, []], opCall(200).call)).rejects.toThrow(/ran past the CPU limit/);

    await expect(calm.call('sql', ['exec', "INSERT INTO t VALUES ('after the restart')", []], call)).rejects.toThrow(/storage restarted during this transaction, which was rolled back/);
    // Its rollback is then a no-op (it has happened); a commit would have been refused.
    await expect(calm.call('kv', ['rollback'], call)).resolves.toBeUndefined();
    const rows = (await calm.call('sql', ['exec', 'SELECT v FROM t ORDER BY rowid', []], call)) as { rows: unknown[][] };
    expect(rows.rows).toEqual([['committed']]);
  });

  it('end a call when its invocation ends (a wall-time limit) and keep what was committed', async () => {
    const store = object('walled');
    const { call } = opCall(60_000);
    await store.call('kv', ['put', [['kept', 1]]], call);
    const run = opCall(60_000);
    const pending = store.call('sql', ['exec', RUNAWAY, []], run.call);
    run.abort(new Error('exceeded wall time limit'));
    await expect(pending).rejects.toThrow(/the invocation ended while a storage call ran/);
    expect(run.exceeded).toEqual([]);
    expect(await store.call('kv', ['get', ['kept']], call)).toEqual([['kept', 1]]);
  });

  it('bounds what one get() of many keys or one list() copies back (64 MB), naming the bound; paged reads work', async () => {
    const big = object('big');
    const { call } = opCall(60_000);
    const value = new Uint8Array(2_000_000).fill(7);
    for (let i = 0; i < 34; i++) await big.call('kv', ['put', [[`k${String(i).padStart(2, '0')}`, value]]], call);
    await expect(big.call('kv', ['list', {}], call)).rejects.toThrow('list(): the entries are larger than 67108864 bytes together; pass a limit (and start after the last key) to read them in pages');
    const keys = Array.from({ length: 34 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    await expect(big.call('kv', ['get', keys], call)).rejects.toThrow('get(): the values are larger than 67108864 bytes together; get fewer keys at once');
    const page = (await big.call('kv', ['list', { limit: 10 }], call)) as [string, Uint8Array][];
    expect(page.map(([key]) => key)).toEqual(keys.slice(0, 10));
    expect(page[9][1].byteLength).toBe(2_000_000);
    expect(((await big.call('kv', ['get', keys.slice(20)], call)) as unknown[]).length).toBe(14);
  });

  it('charges the CPU each call took to its invocation', async () => {
    const store = object('metered');
    const light = opCall(10_000);
    await store.call('sql', ['exec', 'SELECT 1', []], light.call);
    const heavy = opCall(10_000);
    await store.call('sql', ['exec', 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000000) SELECT count(*) FROM c', []], heavy.call);
    expect(heavy.invocation.cpuNs).toBeGreaterThan(light.invocation.cpuNs + 20_000_000n);
  });
});
