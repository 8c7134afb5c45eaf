// Hostile tenants on the shared executor processes (src/store/executor-processes.ts, which run D1's
// queries and Durable Object storage calls): one tenant's many or slow jobs, a flood past its
// waiting caps, or a job killed over its bound changes nothing for a neighbour sharded to the same
// process but the one turn it waits. Orders of completion and counts, not timings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecutorProcesses, childEntry, type ExecutorOptions, type ExecutorReply, type JobBound } from '../../src/store/executor-processes.js';
import { ObjectStorageClient, StorageCallEnded } from '../../bindings/durable-objects/storage-client.js';
import type { OpCall } from '../../src/runtime/contract.js';
import { children } from '../helpers/child-pids.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/executor-child.mjs', import.meta.url));
const STORAGE_PROCESS = childEntry(new URL('../../bindings/durable-objects/host.ts', import.meta.url).href, 'storage-process.js');
const dir = mkdtempSync(join(tmpdir(), 'cinder-fair-'));
const opened: ExecutorProcesses[] = [];
afterAll(() => {
  for (const processes of opened) processes.close();
  rmSync(dir, { recursive: true, force: true });
});

function executor(entry: string, options: Partial<ExecutorOptions> = {}): ExecutorProcesses {
  const processes = new ExecutorProcesses(entry, { processes: 1, ended: (reason, cpuMs, cap) => new StorageCallEnded(reason, cpuMs, cap), ...options });
  opened.push(processes);
  return processes;
}

const tenant = (account: string, worker: string): JobBound => ({ tenant: { account, worker } });
type Echo = ExecutorReply & { ok: unknown };

/** An op call of worker `worker` in `account`, outside any invocation, with a CPU limit. */
function opCall(worker: string, cpuMs: number, account = 'default'): OpCall {
  return { worker: { name: worker, account }, limits: { cpuMs }, invocation: undefined, exceeded: () => {} } as unknown as OpCall;
}

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('executor processes shared by tenants', () => {
  it("serves waiting jobs by turns across workers: a neighbour's jobs do not wait behind a flood of slow ones", async () => {
    const processes = executor(FIXTURE);
    const done: string[] = [];
    const track = (label: string, job: Promise<{ reply: Echo }>) => job.then(({ reply }) => (done.push(label), reply.ok));
    // The attacker queues 30 slow jobs (20 ms each: 600 ms in all) on the process first.
    const flood = Array.from({ length: 30 }, (_, i) => track(`attacker ${i}`, processes.run<Echo>('k', { op: 'hold', ms: 20, value: i }, tenant('default', 'attacker'))));
    // Then a neighbour worker of the same account, and one of another account, ask for three each.
    const neighbour = [1, 2, 3].map((i) => track(`neighbour ${i}`, processes.run<Echo>('k', { op: 'echo', value: `n${i}` }, tenant('default', 'neighbour'))));
    const other = [1, 2, 3].map((i) => track(`other ${i}`, processes.run<Echo>('k2', { op: 'echo', value: `o${i}` }, tenant('acme', 'shop'))));
    expect(await Promise.all(neighbour)).toEqual(['n1', 'n2', 'n3']);
    expect(await Promise.all(other)).toEqual(['o1', 'o2', 'o3']);
    expect(await Promise.all(flood)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // In turn: the first attacker job was already running; after it, each round serves one job
    // of each waiting account (and within the default account, one of each worker), so the
    // neighbours' last answers come after at most a handful of the attacker's 30, not all of them.
    const attackerBefore = (label: string) => done.slice(0, done.indexOf(label)).filter((l) => l.startsWith('attacker')).length;
    expect(attackerBefore('other 3')).toBeLessThanOrEqual(4);
    expect(attackerBefore('neighbour 3')).toBeLessThanOrEqual(7);
    // Within one worker, still in the order submitted.
    expect(done.filter((l) => l.startsWith('attacker'))).toEqual(Array.from({ length: 30 }, (_, i) => `attacker ${i}`));
  });

  it("refuses a worker's flood past its waiting cap by name, and an account's past the account's cap, while a neighbour's jobs are taken", async () => {
    const processes = executor(FIXTURE, { maxQueuedPerWorker: 5, maxQueuedPerAccount: 8 });
    const blocker = processes.run<Echo>('k', { op: 'hold', ms: 200, value: 'held' }, tenant('acme', 'w0'));
    // (submitted before any is awaited: they all wait behind the blocker)
    const floodJobs = Promise.allSettled(Array.from({ length: 12 }, (_, i) => processes.run<Echo>('k', { op: 'echo', value: i }, tenant('acme', 'w1'))));
    const secondJobs = Promise.allSettled(Array.from({ length: 5 }, (_, i) => processes.run<Echo>('k', { op: 'echo', value: `b${i}` }, tenant('acme', 'w2'))));
    // In the default account (a server without accounts) each worker is a tenant of its own: three
    // of them with five waiting each (15, over the account cap of 8) are all taken.
    const defaults = Promise.allSettled(Array.from({ length: 15 }, (_, i) => processes.run<Echo>('k', { op: 'echo', value: i }, tenant('default', `d${i % 3}`))));
    const neighbour = await processes.run<Echo>('k', { op: 'echo', value: 'mine' }, tenant('other', 'w'));
    const flood = await floodJobs;
    const refused = flood.filter((r) => r.status === 'rejected');
    // (the blocker runs, so it waits on nothing: five of w1's wait, seven are refused)
    expect(refused).toHaveLength(7);
    for (const r of refused) expect(String((r as PromiseRejectedResult).reason)).toMatch(/too many of this worker's storage calls are waiting; await some before making more \(at most 5 waiting\)/);
    // Another worker of the same account fills the account's cap of 8: three more wait, then it is refused.
    const second = await secondJobs;
    expect(second.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([
      expect.stringMatching(/too many of this account's storage calls are waiting; await some before making more \(at most 8 waiting\)/),
      expect.stringMatching(/too many of this account's storage calls are waiting/),
    ]);
    // A neighbour in another account is not refused and gets its answer.
    expect(neighbour.reply.ok).toBe('mine');
    expect((await defaults).filter((r) => r.status === 'rejected')).toEqual([]);
    expect((await blocker).reply.ok).toBe('held');
    expect(flood.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ reply: Echo }>).value.reply.ok)).toEqual([0, 1, 2, 3, 4]);
  });

  it("a job killed over its bound fails alone: the neighbours' jobs waiting behind it run on the fresh process with their answers", async () => {
    const processes = executor(FIXTURE);
    for (let round = 0; round < 3; round++) {
      const before = children();
      const killed = processes.run<Echo>('k', { op: 'spin' }, { ...tenant('evil', 'spinner'), timeoutMs: 100 });
      const waiting = Array.from({ length: 4 }, (_, i) => processes.run<Echo>('k', { op: 'echo', value: `${round}-${i}` }, tenant('good', `w${i % 2}`)));
      await expect(killed).rejects.toThrow(StorageCallEnded);
      const answers = await Promise.allSettled(waiting);
      expect(answers.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(answers.map((r) => (r as PromiseFulfilledResult<{ reply: Echo }>).value.reply.ok)).toEqual([0, 1, 2, 3].map((i) => `${round}-${i}`));
      // After the first kill a spare process is kept started: from then on the neighbours' jobs
      // run on one that was already there when the job before them was killed.
      const pid = (answers[0] as PromiseFulfilledResult<{ reply: Echo & { pid: number } }>).value.reply.pid;
      expect(before.has(pid)).toBe(round > 0);
    }
    // One process at a time runs one job: the neighbours' jobs were never running beside the killed one.
    expect(processes.generation('k')).toBe(3);
  });

  it("in a pool (D1's placement), a tenant's long jobs hold at most all processes but one: a neighbour's jobs run beside them", async () => {
    const processes = executor(FIXTURE, { processes: 2, placement: 'pool' });
    const done: string[] = [];
    // One account, two workers, each starting a job that never answers (ended at its deadline),
    // on two different keys: the account may hold one process of the two.
    const spins = ['w1', 'w2'].map((worker) =>
      processes.run<Echo>(`db-${worker}`, { op: 'spin' }, { ...tenant('evil', worker), timeoutMs: 1500 }).then(
        () => done.push(`${worker} answered`),
        () => done.push(`${worker} ended`),
      ),
    );
    // A neighbour of another account asks ten times, one after another, while they spin.
    for (let i = 0; i < 10; i++) {
      const { reply } = await processes.run<Echo>('db-good', { op: 'echo', value: i }, tenant('good', 'shop'));
      expect(reply.ok).toBe(i);
      done.push(`neighbour ${i}`);
    }
    await Promise.all(spins);
    // Every neighbour answer came before the first spinning job was ended.
    expect(done.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `neighbour ${i}`));
    expect(done.slice(10).sort()).toEqual(['w1 ended', 'w2 ended']);
  });

  it('in a pool, jobs of one key run one at a time (a database stays serial) while another key runs beside them', async () => {
    const processes = executor(FIXTURE, { processes: 2, placement: 'pool' });
    const done: string[] = [];
    const slow = processes.run<Echo>('db', { op: 'hold', ms: 300, value: 'slow' }, tenant('a', 'w')).then(() => done.push('slow'));
    const sameKey = processes.run<Echo>('db', { op: 'echo', value: 1 }, tenant('b', 'w')).then(() => done.push('same key'));
    const otherKey = processes.run<Echo>('other', { op: 'echo', value: 2 }, tenant('c', 'w')).then(() => done.push('other key'));
    await Promise.all([slow, sameKey, otherKey]);
    expect(done).toEqual(['other key', 'slow', 'same key']);
  });

  it("a Durable Object's runaway statement is ended alone: a neighbour object's calls queued behind it on the same process all commit and read back", async () => {
    const processes = executor(STORAGE_PROCESS);
    const target = (key: string) => ({ key, file: join(dir, `${key}.sqlite`), sqlite: true, maxDatabaseBytes: 1 << 30 });
    const attacker = new ObjectStorageClient(processes, target('attacker'));
    const neighbour = new ObjectStorageClient(processes, target('neighbour'));
    const mine = opCall('neighbour', 10_000);
    await neighbour.call('kv', ['put', [['before', 1]]], mine);
    const runaway = attacker.call('sql', ['exec', RUNAWAY, []], opCall('attacker', 200, 'evil'));
    const writes = Array.from({ length: 10 }, (_, i) => neighbour.call('kv', ['put', [[`k${i}`, i]]], mine));
    await expect(runaway).rejects.toThrow(/ran past the CPU limit and was ended/);
    const settled = await Promise.allSettled(writes);
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    const read = (await neighbour.call('kv', ['list', {}], mine)) as [string, number][];
    expect(Object.fromEntries(read)).toEqual({ before: 1, ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])) });
    expect(processes.generation('neighbour')).toBe(1);
  });
});
