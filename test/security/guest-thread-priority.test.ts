// Guest code runs below the thread that serves requests (scripts/patch-isolated-vm.mjs, patch 12):
// every thread isolated-vm runs isolates on lowers its own priority by CINDER_GUEST_THREAD_NICE
// (default 5) when it starts, and libuv's threadpool is lowered as much, so a tenant keeping those threads busy cannot take the cores from
// the serving thread. Read from the kernel's view of a real `cinder serve`: after a worker has
// burned CPU, the thread that burned it runs niced and the serving thread does not.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { DEFAULT_GUEST_THREAD_NICE } from '../../src/runtime/thread-priority.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { multipart } from '../control/helpers.js';

const TOKEN = 'guest-thread-priority-token';
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Thread {
  tid: number;
  name: string;
  cpuTicks: number;
  nice: number;
}

/** The threads of `pid` as /proc shows them (the name is in parentheses and may hold spaces). */
function threads(pid: number): Thread[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      return []; // ended since the listing
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    // fields from the 3rd (state) on: utime is the 14th, stime the 15th, nice the 19th
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [{ tid: Number(tid), name, cpuTicks: Number(fields[11]) + Number(fields[12]), nice: Number(fields[16]) }];
  });
}

/** Serve one CPU-heavy worker, request it until it has burned a few hundred ms, and return the
 *  serving thread and the busiest other thread named as the serving thread is (isolated-vm's
 *  threads take the name of the thread that started them; Node's own threads have names of
 *  their own). */
async function burnAndLook(env: Record<string, string>): Promise<{ serving: Thread; guest: Thread; threadpool: Thread[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cinder-nice-'));
  dirs.push(dataDir);
  const server = await startServeProcess(dataDir, TOKEN, children, { env });
  // The loop's first, unoptimized run takes ~45 ms of CPU here: 1 s (the default ceiling) keeps a
  // slower CI machine from answering it with the 50 ms default's 503 (this test is about niceness).
  const code = `export default { fetch() { let x = 0; for (let i = 0; i < 1e7; i++) x = (x + i) | 0; return new Response(String(x)) } }`;
  const deployed = await fetch(`http://127.0.0.1:${server.adminPort}/workers/burn`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: multipart({ main_module: 'index.js', limits: { cpu_ms: 1000 } }, { 'index.js': code }),
  });
  expect(deployed.status, await deployed.text()).toBeLessThan(300);
  for (let i = 0; i < 60; i++) {
    const res = await request(`http://127.0.0.1:${server.port}/`, { headers: { host: 'burn.example' } });
    expect(res.statusCode).toBe(200);
    await res.body.text();
  }
  const pid = server.child.pid!;
  const all = threads(pid);
  const serving = all.find((t) => t.tid === pid)!;
  const guest = all.filter((t) => t.tid !== pid && t.name === serving.name).sort((a, b) => b.cpuTicks - a.cpuTicks)[0];
  const threadpool = all.filter((t) => t.name === 'libuv-worker');
  server.child.kill('SIGKILL');
  return { serving, guest, threadpool };
}

describe.runIf(process.platform === 'linux')('guest threads and the serving thread', () => {
  it('runs guest code niced below the serving thread by default', async () => {
    const { serving, guest, threadpool } = await burnAndLook({});
    expect(guest, 'no isolate thread found').toBeDefined();
    // the thread that ran the worker (60 requests of ~10 ms each; a tick is 10 ms)
    expect(guest.cpuTicks).toBeGreaterThan(5);
    expect(guest.nice).toBe(Math.min(19, serving.nice + DEFAULT_GUEST_THREAD_NICE));
    expect(serving.nice).toBe(threads(process.pid).find((t) => t.tid === process.pid)!.nice);
    // libuv's threadpool (key generation, PBKDF2, DNS lookups a guest causes) runs as low
    expect(threadpool.length).toBeGreaterThan(0);
    expect(threadpool.map((t) => t.nice)).toEqual(threadpool.map(() => Math.min(19, serving.nice + DEFAULT_GUEST_THREAD_NICE)));
  });

  it('leaves the priority alone when the operator sets CINDER_GUEST_THREAD_NICE=0', async () => {
    const { serving, guest, threadpool } = await burnAndLook({ CINDER_GUEST_THREAD_NICE: '0' });
    expect(guest.cpuTicks).toBeGreaterThan(5);
    expect(guest.nice).toBe(serving.nice);
    expect(threadpool.every((t) => t.nice === serving.nice)).toBe(true);
  });
});
