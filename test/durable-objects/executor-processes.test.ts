// The shared executor (src/store/executor-processes.ts) when its child goes away unexpectedly:
// the OOM killer's SIGKILL, or a channel that closes before the child's exit is seen. The server
// must keep serving: the job that was running fails with a clear error, the queued ones run on a
// fresh child, and nothing is left to throw an unhandled 'error'.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecutorProcesses, childEntry, type ExecutorReply } from '../../src/store/executor-processes.js';
import { ObjectStorageClient, StorageCallEnded } from '../../bindings/durable-objects/storage-client.js';
import type { OpCall } from '../../src/runtime/contract.js';
import { PlacementLostError, type Fence } from '../../bindings/durable-objects/placement.js';
import { children } from '../helpers/child-pids.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/executor-child.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cinder-executor-'));
const opened: ExecutorProcesses[] = [];
afterAll(() => {
  for (const processes of opened) processes.close();
  rmSync(dir, { recursive: true, force: true });
});

function executor(entry: string): ExecutorProcesses {
  const processes = new ExecutorProcesses(entry, { processes: 1, ended: (reason, cpuMs) => new StorageCallEnded(reason, cpuMs) });
  opened.push(processes);
  return processes;
}

function opCall(cpuMs: number): OpCall {
  return { worker: { name: 'w' }, limits: { cpuMs }, invocation: undefined, exceeded: () => {} } as unknown as OpCall;
}

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('executor processes losing their child', () => {
  it('a storage call running when its lease lapses is ended with the fencing error, and the CPU it used is charged', async () => {
    const processes = executor(childEntry(new URL('../../bindings/durable-objects/host.ts', import.meta.url).href, 'storage-process.js'));
    let until = Number.POSITIVE_INFINITY;
    const fence: Fence = {
      holder: 'h',
      token: 1,
      validUntil: () => until,
      check: () => {
        if (performance.now() > until) throw new PlacementLostError('this process lost its Durable Object lease and no longer holds the object; nothing was written');
      },
    };
    const store = new ObjectStorageClient(processes, { key: 'lapsing', file: join(dir, 'lapsing.sqlite'), sqlite: true, maxDatabaseBytes: 1 << 30 }, fence);
    const newCall = () => {
      const invocation = { cpuNs: 0n, signal: new AbortController().signal, requestId: 'r', subrequests: 0, bytesIn: 0, bytesOut: 0, hostWorkMs: 0 };
      return { invocation, call: { worker: { name: 'w' }, limits: { cpuMs: 60_000 }, invocation, exceeded: () => {} } as unknown as OpCall };
    };
    // The executor's child started and the database opened first: the lease's 500 ms are then
    // the statement's, however long a loaded machine takes to start a process.
    await store.call('sql', ['exec', 'SELECT 1', []], newCall().call);
    const { invocation, call } = newCall();
    until = performance.now() + 500;
    await expect(store.call('sql', ['exec', RUNAWAY, []], call)).rejects.toThrow(/lost its Durable Object lease/);
    // (the runaway statement ran on its core from the start until the lapse)
    expect(Number(invocation.cpuNs) / 1e6).toBeGreaterThan(100);
  });


  it('a storage process killed with SIGKILL while calls wait: the running call fails clearly, the queued ones run on a fresh process', async () => {
    const before = children();
    const processes = executor(childEntry(new URL('../../bindings/durable-objects/host.ts', import.meta.url).href, 'storage-process.js'));
    const store = new ObjectStorageClient(processes, { key: 'oom', file: join(dir, 'oom.sqlite'), sqlite: true, maxDatabaseBytes: 1 << 30 });
    const call = opCall(600_000);
    await store.call('kv', ['put', [['kept', 1]]], call);
    const [child] = [...children()].filter((pid) => !before.has(pid));
    expect(child).toBeGreaterThan(0);

    const running = store.call('sql', ['exec', RUNAWAY, []], call);
    const queued = [store.call('kv', ['put', [['after', 2]]], call), store.call('kv', ['get', ['kept', 'after']], call)];
    const generation = processes.generation('oom');
    process.kill(child, 'SIGKILL');
    await expect(running).rejects.toThrow(/Durable Object storage failed: the storage process stopped while running this call; it was not committed/);
    await expect(queued[0]).resolves.toBeUndefined();
    expect(await queued[1]).toEqual([['kept', 1], ['after', 2]]);
    expect(processes.generation('oom')).toBe(generation + 1);
  });

  it('a child whose channel closes before it exits: the next job runs on a fresh child instead of an unhandled error', async () => {
    const processes = executor(FIXTURE);
    const first = await processes.run<ExecutorReply & { ok: string; pid: number }>('k', { op: 'answer-then-disconnect' });
    expect(first.reply.ok).toBe('last');
    // The old child's channel closes (it stays alive): a job sent to it as that happens fails with
    // a clear error; none hangs, none throws an unhandled 'error' (vitest would fail the run).
    const next = await Promise.allSettled([1, 2, 3].map((value) => processes.run<ExecutorReply & { ok: number; pid: number }>('k', { op: 'echo', value })));
    for (const [i, result] of next.entries()) {
      if (result.status === 'fulfilled') expect(result.value.reply.ok).toBe(i + 1);
      else expect(String(result.reason)).toMatch(/the storage process stopped while running this call/);
    }
    const after = await processes.run<ExecutorReply & { ok: number; pid: number }>('k', { op: 'echo', value: 4 });
    expect(after.reply.ok).toBe(4);
    expect(after.reply.pid).not.toBe(first.reply.pid);
    expect(processes.generation('k')).toBe(1);
  });

  it('close() kills a child that is running a job (it would not see a disconnect until the job ends)', async () => {
    const before = children();
    const processes = executor(FIXTURE);
    await processes.run('k', { op: 'echo', value: 0 });
    const [child] = [...children()].filter((pid) => !before.has(pid));
    const spinning = processes.run('k', { op: 'spin' });
    processes.close();
    await expect(spinning).rejects.toThrow(/shutting down/);
    for (let i = 0; i < 200 && children().has(child); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(children().has(child)).toBe(false);
  });

  it('a storage call whose lease lapses while it waits behind another is refused with the fencing error when it would start, and writes nothing', async () => {
    const processes = executor(childEntry(new URL('../../bindings/durable-objects/host.ts', import.meta.url).href, 'storage-process.js'));
    const target = { file: join(dir, 'fenced.sqlite'), sqlite: true, maxDatabaseBytes: 1 << 30 };
    const neighbour = new ObjectStorageClient(processes, { key: 'neighbour', ...target, file: join(dir, 'neighbour.sqlite') });
    // The neighbour's call takes at least its CPU budget (400 ms); the lease is 50 ms.
    const busy = neighbour.call('sql', ['exec', RUNAWAY, []], opCall(400));
    const until = performance.now() + 50;
    let checks = 0;
    const fence: Fence = {
      holder: 'h',
      token: 1,
      validUntil: () => until,
      check: () => {
        checks++;
        if (performance.now() > until) throw new PlacementLostError('this process lost its Durable Object lease and no longer holds the object; nothing was written');
      },
    };
    const fenced = new ObjectStorageClient(processes, { key: 'fenced', ...target }, fence);
    const write = fenced.call('kv', ['put', [['stale', 1]]], opCall(10_000));
    await expect(busy).rejects.toThrow(/ran past the CPU limit/);
    await expect(write).rejects.toThrow(/lost its Durable Object lease and no longer holds the object; nothing was written/);
    expect(checks).toBe(1);
    const reader = new ObjectStorageClient(processes, { key: 'fenced', ...target });
    expect(await reader.call('kv', ['get', ['stale']], opCall(10_000))).toEqual([]);
  });
});
