// Issue 22: a deploy's snapshot build costs no more than the worker's own limits. The builder
// runs the worker's top level and a warm-up GET / (deployment-snapshot.ts); before, a handler that
// spun cost it 15 s of CPU (its RLIMIT_CPU) on every deploy, a cheap way for a tenant to make the
// host burn CPU. Now what it runs meets the worker's limits (snapshot-trial.ts): over a real
// `cinder serve` (admin API and data plane), a worker breaching one deploys and answers as before,
// is served by plain load, and the log line that says why no snapshot was made names the limit,
// with the builder's CPU far below its RLIMIT_CPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, textWorker, type TestCinder } from '../control/helpers.js';
import { DEFAULT_BUILD_CPU_S, DEFAULT_BUILD_WAIT_MS } from '../../src/runtime/deployment-snapshot.js';

let cinder: TestCinder;
beforeAll(async () => {
  // A CPU ceiling above the default, so the memory bomb meets memory first with a 10x margin.
  cinder = await startCinder({ limitCeilings: { cpuMs: 10_000 } });
});
afterAll(() => cinder?.close({ cleanup: true }));

async function deploy(name: string, code: string, limits: Record<string, number> = {}): Promise<void> {
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', limits, routes: [`${name}.example/*`] }, { 'index.js': code }) });
  expect(res.status, res.text).toBeLessThan(300);
}

/** The build of `name`'s snapshot finished: its log line (ready, or why not). */
async function buildLine(name: string): Promise<Record<string, unknown>> {
  await cinder.server.deployments.snapshots!.settled();
  const lines = cinder.logs.filter((l) => l.worker === name && /deployment snapshot of .* ready|no deployment snapshot for/.test(String(l.msg)));
  expect(lines, JSON.stringify(lines)).toHaveLength(1);
  return lines[0];
}

/** The builder's CPU stayed far below its own backstop (15 s), whatever the machine's speed:
 *  what it ran of the worker was stopped at the worker's limit. */
function expectBoundedBuilder(line: Record<string, unknown>): void {
  expect(String(line.msg)).not.toMatch(/used up its|RLIMIT|killed after/);
  expect(typeof line.builder_cpu_ms).toBe('number');
  expect(line.builder_cpu_ms as number).toBeLessThan(5000);
  expect(5000).toBeLessThan(DEFAULT_BUILD_CPU_S * 1000);
}

describe('the snapshot builder under the worker\'s own limits (cinder serve)', () => {
  it('a handler that spins: deploys, requests get the CPU limit as before, no snapshot, the log names the CPU limit', async () => {
    await deploy('spinner', 'export default { fetch() { for (;;) {} } };');
    const res = await cinder.get('spinner.example');
    expect(`${res.status} ${res.text}`).toMatch(/^503 .*exceeded CPU time limit/);
    const line = await buildLine('spinner');
    expect(String(line.msg)).toMatch(/^no deployment snapshot for spinner version 1: the warm-up request \(GET \/\) exceeded the CPU time limit \(cpu_ms 50\); it is loaded plainly$/);
    expectBoundedBuilder(line);
    expect(cinder.server.runtime.definition('spinner')!.snapshot).toBeUndefined();
    // Still served, plainly, as before.
    expect((await cinder.get('spinner.example')).status).toBe(503);
  });

  it('a handler that never answers: requests get the wall limit, the log names the wall limit', async () => {
    await deploy('waiter', 'export default { fetch: () => new Promise(() => {}) };', { wall_ms: 1000 });
    const res = await cinder.get('waiter.example');
    expect(`${res.status} ${res.text}`).toMatch(/^503 .*exceeded wall time limit/);
    const line = await buildLine('waiter');
    expect(String(line.msg)).toMatch(/^no deployment snapshot for waiter version 1: the warm-up request \(GET \/\) exceeded the wall time limit \(wall_ms 1000\); it is loaded plainly$/);
    expectBoundedBuilder(line);
  });

  it('a handler that never answers under a long wall limit: the builder waits only its own cap, names it, and stores the refusal', async () => {
    // wall_ms 30000 (the default; up to the 120 s ceiling is allowed): before, the build waited
    // all of it, holding up every other version's snapshot (builds run one at a time).
    await deploy('idler', 'export default { fetch: () => new Promise(() => {}) };');
    await deploy('after-idler', textWorker('after-idler'));
    const line = await buildLine('idler');
    expect(String(line.msg)).toMatch(
      new RegExp(`^no deployment snapshot for idler version 1: the warm-up request \\(GET /\\) was still waiting after ${DEFAULT_BUILD_WAIT_MS} ms, the longest the snapshot builder waits for one .*; it is loaded plainly$`),
    );
    expect(DEFAULT_BUILD_WAIT_MS).toBeLessThan(30_000);
    expectBoundedBuilder(line);
    // The version deployed after it got its snapshot.
    expect(String((await buildLine('after-idler')).msg)).toMatch(/deployment snapshot of after-idler version 1 ready/);
    expect((await cinder.get('after-idler.example')).text).toBe('after-idler');
    // Kept like the other refusals (the restart below builds nothing for it).
    const version = (await cinder.server.deployments.store.listVersions('idler'))[0];
    expect(await cinder.server.deployments.store.getDeploymentSnapshot(version.id)).toMatchObject({ refused: expect.stringMatching(/was still waiting after/) });
  });

  it('a handler that allocates without bound: requests get the memory limit, the log names the memory limit', async () => {
    await deploy('hoarder', 'export default { fetch() { const keep = []; for (;;) keep.push(new Array(1e6).fill(1.5)); } };', { cpu_ms: 10_000, memory_mb: 64 });
    const res = await cinder.get('hoarder.example');
    expect(`${res.status} ${res.text}`).toMatch(/^503 .*exceeded memory limit/);
    const line = await buildLine('hoarder');
    expect(String(line.msg)).toMatch(/^no deployment snapshot for hoarder version 1: the warm-up request \(GET \/\) exceeded the memory limit \(memory_mb 64\); it is loaded plainly$/);
    expectBoundedBuilder(line);
  });

  it('a top level over the startup limit is refused at deploy, naming the limit, before any build', async () => {
    const res = await cinder.admin('PUT', '/workers/slowstart', { body: multipart({ main_module: 'index.js' }, { 'index.js': 'for (;;) {} export default {};' }) });
    expect(`${res.status} ${res.text}`).toMatch(/^400 .*exceeded the startup time limit/);
    await cinder.server.deployments.snapshots!.settled();
    expect(cinder.logs.some((l) => l.worker === 'slowstart' && /snapshot/.test(String(l.msg)))).toBe(false);
  });

  it('a worker within its limits still gets its snapshot', async () => {
    await deploy('calm', textWorker('calm'));
    const line = await buildLine('calm');
    expect(String(line.msg)).toMatch(/deployment snapshot of calm version 1 ready/);
    expect(line.builder_cpu_ms as number).toBeGreaterThan(0);
    expect(cinder.server.runtime.definition('calm')!.snapshot).toBeDefined();
    expect((await cinder.get('calm.example')).text).toBe('calm');
  });

  it('a refusal is kept: a restart builds nothing again', async () => {
    await cinder.close();
    const dataDir = cinder.dataDir;
    cinder = await startCinder({ dataDir, limitCeilings: { cpuMs: 10_000 } });
    await cinder.server.deployments.snapshots!.settled();
    expect(cinder.logs.filter((l) => /deployment snapshot of .* ready|no deployment snapshot for/.test(String(l.msg)))).toEqual([]);
    expect((await cinder.get('spinner.example')).status).toBe(503);
    expect((await cinder.get('calm.example')).text).toBe('calm');
  });
});
