// Per-deployment snapshots (issue 23): a version's top level evaluated once, in a child process,
// snapshotted with the sandbox and stored beside the version; cold starts deserialize it. Whatever
// cannot be snapshotted safely is loaded plainly, with a log line naming why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { buildDeploymentSnapshot, buildWaitMs, DEFAULT_BUILD_CPU_S, DEFAULT_BUILD_WAIT_MS } from '../../src/runtime/deployment-snapshot.js';
import { bundleWorker } from '../../src/app/bundle.js';
import { Deployments } from '../../src/control/deployments.js';
import { Router } from '../../src/data-plane/router.js';
import { SqliteDeploymentStore } from '../../src/store/index.js';
import { packageRoot } from '../../src/runtime/paths.js';
import type { WorkerDefinition, WorkerModuleSource } from '../../src/model/worker-definition.js';
import type { RuntimeRequest } from '../../src/runtime/contract.js';

const esm = (code: string): WorkerModuleSource[] => [{ name: 'worker.js', code, type: 'esm' }];
const worker = (code: string) => ({ main: 'worker.js', modules: esm(code) });
const def = (name: string, modules: WorkerModuleSource[], main = 'worker.js'): WorkerDefinition => ({ name, version: `${name}-v1`, main, modules, bindings: {} });
// (a fixed request id: the example app draws a UUID per request otherwise)
const req = (path: string, init: Partial<RuntimeRequest> = {}): RuntimeRequest => ({ method: 'GET', url: `http://app.test${path}`, body: null, ...init, headers: [['x-request-id', 'r-1'], ...(init.headers ?? [])] });

async function text(runtime: Runtime, name: string, request: RuntimeRequest) {
  const res = await runtime.fetch(name, request);
  let body = res.body == null ? '' : typeof res.body === 'string' ? res.body : Buffer.from(res.body as Uint8Array).toString();
  if (res.stream) for await (const chunk of res.stream) body += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  const headers = res.headers.filter(([k]) => !['x-request-id', 'date'].includes(k.toLowerCase()));
  return { status: res.status, headers, body, loadError: res.loadError, coldMs: res.coldMs };
}

describe('per-deployment snapshots', () => {
  let runtime: Runtime;
  let logs: Record<string, unknown>[];
  let hono: { main: string; modules: WorkerModuleSource[] };

  beforeAll(async () => {
    const captured = captureLogger();
    logs = captured.logs;
    runtime = await Runtime.create({ logger: captured.logger, pool: { min: 1, max: 2 }, deploymentSnapshots: { minCodeBytes: 0, breakEvenMs: 0 } });
    hono = await bundleWorker(join(packageRoot, 'examples', 'hono-app.ts'));
  });
  afterAll(() => runtime.close());

  it('a Hono app answers every route from a snapshot isolate exactly as from a plain load', async () => {
    const built = await buildDeploymentSnapshot(hono);
    expect(built.ok, JSON.stringify(built)).toBe(true);
    const plain = { ...def('hono-plain', hono.modules, hono.main) };
    const snap = { ...def('hono-snap', hono.modules, hono.main), snapshot: built.ok ? built.snapshot : undefined };
    runtime.deploy(plain);
    runtime.deploy(snap);
    const auth = `Basic ${Buffer.from('admin:hunter2').toString('base64')}`;
    const requests = [
      req('/'),
      req('/api/users/42?field=name&field=email'),
      req('/api/users/7', { headers: [['origin', 'https://example.com']] }),
      req('/api/echo', { method: 'POST', headers: [['content-type', 'application/json']], body: Buffer.from('{"hi":1}') }),
      req('/api/form', { method: 'POST', headers: [['content-type', 'application/x-www-form-urlencoded']], body: Buffer.from('a=1&b=two') }),
      req('/etag'),
      req('/secure'),
      req('/admin/stats'),
      req('/admin/stats', { headers: [['authorization', auth]] }),
      req('/stream'),
      req('/sse'),
      req('/teapot'),
      req('/error'),
      req('/no/such/route'),
    ];
    const taken = runtime.snapshots!.stats.taken;
    for (const request of requests) {
      // Each request is a cold start of the snapshot version.
      runtime.evict('hono-snap');
      const [a, b] = [await text(runtime, 'hono-plain', request), await text(runtime, 'hono-snap', request)];
      expect(b, request.url).toEqual({ ...a, coldMs: b.coldMs });
    }
    expect(runtime.snapshots!.stats.taken - taken).toBe(requests.length);
    expect(runtime.snapshots!.stats.refused).toBe(0);
  });

  it('two isolates from one snapshot draw different Math.random sequences', async () => {
    const built = await buildDeploymentSnapshot(worker('export default { fetch() { return new Response(JSON.stringify([Math.random(), Math.random(), crypto.randomUUID()])); } };'));
    expect(built.ok).toBe(true);
    runtime.deploy({ ...def('random', esm('')), snapshot: built.ok ? built.snapshot : undefined });
    const draws = [];
    for (let i = 0; i < 2; i++) {
      runtime.evict('random');
      draws.push((await text(runtime, 'random', req('/'))).body);
    }
    expect(JSON.parse(draws[0])).toHaveLength(3);
    expect(draws[0]).not.toBe(draws[1]);
  });

  it.each([
    ['Math.random at the top level', 'const seed = Math.random(); export default { fetch: () => new Response(String(seed)) };', /Math\.random/],
    ['Date.now at the top level', 'const t = Date.now(); export default { fetch: () => new Response(String(t)) };', /Date\.now/],
    // (refused in any load now, with workerd's words: sandbox/global-scope.ts)
    ['crypto.randomUUID at the top level', 'const id = crypto.randomUUID(); export default { fetch: () => new Response(id) };', /Disallowed operation called within global scope/],
    ['a draw in a top-level microtask', 'let v; Promise.resolve().then(() => { v = Math.random(); }); export default { fetch: () => new Response(String(v)) };', /Math\.random/],
    ['a draw hidden by try/catch', 'try { crypto.getRandomValues(new Uint8Array(4)); } catch {} export default { fetch: () => new Response("ok") };', /getRandomValues/],
    ['a top-level timer', 'setTimeout(() => {}, 10); export default { fetch: () => new Response("ok") };', /Disallowed operation called within global scope/],
    ['console at the top level', 'console.log("starting"); export default { fetch: () => new Response("ok") };', /console\.log/],
    ['top-level await', 'await Promise.resolve(); export default { fetch: () => new Response("ok") };', /[Tt]op-level await/],
    ['a dynamic import', 'export default { fetch: async () => { await import("./other.js"); return new Response("ok"); } };', /dynamic import/],
    ['import.meta', 'export default { fetch: () => new Response(String(import.meta.url)) };', /import\.meta/],
    ['a throwing top level', 'throw new Error("boom at start"); export default {};', /boom at start/],
    ['no handler to install', 'export const x = 1;', /exports|no default export/],
  ])('refuses %s, naming why', async (_what, code, why) => {
    const built = await buildDeploymentSnapshot(worker(code));
    expect(built.ok).toBe(false);
    expect(built.ok ? '' : built.reason).toMatch(why);
  });

  it('holds the add-ons a worker needs, installed before its top level ran', async () => {
    // Mentions caches (the Cache API add-on) and uses its global at the top level.
    const code = 'const kind = typeof caches.default.match; export default { fetch: () => new Response(kind + " " + typeof globalThis.__cinder_builtin) };';
    const built = await buildDeploymentSnapshot(worker(code));
    expect(built.ok ? 'built' : built.reason).toBe('built');
    runtime.deploy({ ...def('addon-snapshot', esm(code)), snapshot: built.ok ? built.snapshot : undefined });
    const answer = await text(runtime, 'addon-snapshot', req('/'));
    expect(answer.body).toBe('function undefined');
  });

  it('refuses a worker whose add-on carries WebAssembly (HTMLRewriter), naming it', async () => {
    const built = await buildDeploymentSnapshot(worker('export default { fetch: (r) => new HTMLRewriter().transform(new Response("<p>x</p>")) };'));
    expect(built.ok ? '' : built.reason).toMatch(/html-rewriter carries WebAssembly/);
  });

  it('keeps the boot hook out of reach of the top level', async () => {
    const built = await buildDeploymentSnapshot(worker('const seen = typeof globalThis.__cinder_boot; export default { fetch: () => new Response(seen) };'));
    expect(built.ok).toBe(true);
    runtime.deploy({ ...def('boot-hidden', esm('')), snapshot: built.ok ? built.snapshot : undefined });
    expect((await text(runtime, 'boot-hidden', req('/'))).body).toBe('undefined');
    const globals = await text(runtime, 'boot-hidden', req('/'));
    expect(globals.status).toBe(200);
  });

  it('kills a builder that hangs or runs out of memory; nothing is built', async () => {
    // A startup limit far away: only the parent's timer can end this build.
    const hang = await buildDeploymentSnapshot({ ...worker('for (;;) {} export default {};'), limits: { startupMs: 600_000 } }, { timeoutMs: 1500 });
    expect(hang.ok).toBe(false);
    expect(hang.ok ? '' : hang.reason).toMatch(/killed after 1500 ms/);
    // Within its limits in the trial (an isolate of isolated-vm's, which has SharedArrayBuffer),
    // not in createSnapshot's context (which has none): the builder's heap limit ends it there, or
    // the CPU budget from its trial when V8's last collections near the limit take longer than it.
    const oom = await buildDeploymentSnapshot(worker('if (typeof SharedArrayBuffer === "undefined") { const a = []; for (;;) a.push(new Array(4e6).fill(1.5)); } export default {};'), { maxOldSpaceMb: 64, timeoutMs: 20_000 });
    expect(oom.ok).toBe(false);
    expect(oom.ok ? '' : oom.reason).toMatch(/^the builder (exited|killed)|^making the snapshot used more CPU than the worker's trial/);
  }, 120_000); // ~22 s here (the 20 s timer can be what ends the second): room for a slower machine

  // What the builder runs of the worker's code meets the worker's own limits (snapshot-trial.ts).
  it.each([
    ['a top level that spins, at the startup limit', 'for (;;) {} export default {};', {}, /top-level code exceeded the startup time limit \(startup_ms 1000\)/],
    ['a handler that spins, at the CPU limit', 'export default { fetch() { for (;;) {} } };', {}, /warm-up request \(GET \/\) exceeded the CPU time limit \(cpu_ms 50\)/],
    ['a handler that never answers, at the wall limit', 'export default { fetch: () => new Promise(() => {}) };', { wallMs: 500 }, /warm-up request \(GET \/\) exceeded the wall time limit \(wall_ms 500\)/],
    ['a handler that blocks, at the wall limit', 'export default { fetch() { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return new Response("x"); } };', { wallMs: 500 }, /exceeded the wall time limit \(wall_ms 500\)/],
    ['a handler that blocks under a long wall limit, at the builder\'s own wait cap', 'export default { fetch() { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return new Response("x"); } };', { wallMs: 120_000 }, /warm-up request \(GET \/\) was still waiting after 5000 ms, the longest the snapshot builder waits/],
    ['a handler that never answers under a long wall limit, at the builder\'s own wait cap', 'export default { fetch: () => new Promise(() => {}) };', { wallMs: 120_000 }, /warm-up request \(GET \/\) was still waiting after 5000 ms/],
    ['a handler that allocates without bound, at the memory limit', 'export default { fetch() { const keep = []; for (;;) keep.push(new Array(1e6).fill(1.5)); } };', { cpuMs: 30_000, memoryMb: 64 }, /warm-up request \(GET \/\) exceeded the memory limit \(memory_mb 64\)/],
    ['a top level that allocates without bound, at the memory limit', 'const keep = []; for (;;) keep.push(new Array(1e6).fill(1.5)); export default {};', { startupMs: 60_000, memoryMb: 64 }, /top-level code exceeded the memory limit \(memory_mb 64\)/],
  ])('refuses %s, naming it, long before the builder\'s own CPU limit', async (_what, code, limits, why) => {
    const built = await buildDeploymentSnapshot({ ...worker(code), limits });
    expect(built.ok ? '' : built.reason).toMatch(why);
    // What the builder reported it used (it names a limit of the worker's, so it said so itself).
    expect(built.builderCpuMs).toBeGreaterThan(0);
    expect(built.builderCpuMs).toBeLessThan(DEFAULT_BUILD_CPU_S * 1000);
  }, 60_000);

  it('the builder\'s wait cap is the operator\'s CINDER_SNAPSHOT_WARMUP_WAIT_MS, refused by name when it is not a duration', async () => {
    expect(buildWaitMs({})).toBe(DEFAULT_BUILD_WAIT_MS);
    expect(buildWaitMs({ CINDER_SNAPSHOT_WARMUP_WAIT_MS: '1500' })).toBe(1500);
    expect(() => buildWaitMs({ CINDER_SNAPSHOT_WARMUP_WAIT_MS: 'soon' })).toThrow(/CINDER_SNAPSHOT_WARMUP_WAIT_MS must be a positive number of milliseconds, not "soon"/);
    const built = await buildDeploymentSnapshot({ ...worker('export default { fetch: () => new Promise(() => {}) };'), limits: { wallMs: 120_000 } }, { warmUpWaitMs: 1500 });
    expect(built.ok ? '' : built.reason).toMatch(/was still waiting after 1500 ms/);
  }, 60_000);

  it('a refusal after the trial is the answer, every time (the builder exiting right after disposing the trial\'s isolate crashed 2 in 5)', async () => {
    const reasons: string[] = [];
    for (let i = 0; i < 6; i++) {
      const built = await buildDeploymentSnapshot(worker(i % 2 ? 'throw new Error("boom at start"); export default {};' : 'export default { fetch() { for (;;) {} } };'));
      reasons.push(built.ok ? 'built' : built.reason);
    }
    expect(reasons.filter((r) => !/boom at start|exceeded the CPU time limit/.test(r))).toEqual([]);
  }, 120_000);

  it('stops a worker that spins only in createSnapshot at a budget from its trial, before the builder\'s own CPU limit', async () => {
    // createSnapshot's context has no SharedArrayBuffer, the trial's isolate has: a worker can tell
    // them apart (or draw Math.random to decide), so the trial alone does not bound it; the budget
    // the builder states from its trial (~2 s here), enforced by the parent, does.
    const built = await buildDeploymentSnapshot(worker('export default { fetch() { if (typeof SharedArrayBuffer === "undefined") for (;;) {} return new Response("ok"); } };'));
    expect(built.ok ? '' : built.reason).toMatch(/making the snapshot used more CPU than the worker's trial under its limits allows/);
    expect(built.builderCpuMs).toBeLessThan(DEFAULT_BUILD_CPU_S * 1000);
  }, 60_000);

  it('bounds the builder\'s CPU in the builder itself: a handler that spins at its warm-up request ends the build, parent timer or not', async () => {
    // The parent's timer is far away, and the trial passes (see above): only the builder's own
    // CPU limit, below the budget from its trial (~2 s), can end this build.
    const spin = await buildDeploymentSnapshot(worker('export default { fetch() { if (typeof SharedArrayBuffer === "undefined") for (;;) {} return new Response("ok"); } };'), { timeoutMs: 300_000, cpuSeconds: 1 });
    expect(spin.ok).toBe(false);
    expect(spin.ok ? '' : spin.reason).toMatch(/the builder used up its 1 s of CPU \(SIG(XCPU|KILL)\)/);
    // The default limit would let it go on for DEFAULT_BUILD_CPU_S; a worker whose request returns builds.
    const fine = await buildDeploymentSnapshot(worker('export default { fetch() { return new Response("ok") } };'), { cpuSeconds: 5 });
    expect(fine.ok, fine.ok ? '' : fine.reason).toBe(true);
  });

  it('takes its running builders with it when the process exits', async () => {
    // A process starts a build that would spin until its CPU limit (a startup limit far away),
    // then exits; it prints the builder's pid (its one child), which must be gone once the process is.
    const module = join(packageRoot, 'dist', 'src', 'runtime', 'deployment-snapshot.js');
    const script = `import { buildDeploymentSnapshot } from ${JSON.stringify(module)};
      import { readdirSync, readFileSync } from 'node:fs';
      buildDeploymentSnapshot({ main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'for (;;) {} export default {};' }], limits: { startupMs: 600000 } });
      setTimeout(() => {
        const kids = readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'latin1').trim().split(' ').filter(Boolean));
        console.log(kids.join(' '));
        process.exit(0);
      }, 500);`;
    const pids = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim().split(' ').filter(Boolean);
    expect(pids).toHaveLength(1);
    const running = () => existsSync(`/proc/${pids[0]}`) && !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pids[0]}/stat`, 'latin1'));
    const deadline = Date.now() + 10_000; // the kill is at once; a loaded machine can take a while to reap
    while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(running()).toBe(false);
  });

  it('a builder whose parent was killed with -9 ends at once, even inside createSnapshot', async () => {
    // The parent starts a build whose worker spins only in createSnapshot (its context has no
    // SharedArrayBuffer, the trial's isolate has), which nothing inside the builder can interrupt,
    // and prints the builder's pid. Once the builder has spun a while, the parent is killed with -9:
    // its exit hook, its timer and its CPU-budget watch die with it. Before, only the builder's
    // RLIMIT_CPU (15 s of CPU) ended it.
    const module = join(packageRoot, 'dist', 'src', 'runtime', 'deployment-snapshot.js');
    const script = `import { buildDeploymentSnapshot } from ${JSON.stringify(module)};
      import { readdirSync, readFileSync } from 'node:fs';
      buildDeploymentSnapshot({ main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'export default { fetch() { if (typeof SharedArrayBuffer === "undefined") for (;;) {} return new Response("ok"); } };' }] }, { timeoutMs: 600000 });
      setTimeout(() => {
        const kids = readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'latin1').trim().split(' ').filter(Boolean));
        console.log(kids.join(' '));
      }, 200);
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pids = (await new Promise<string>((resolve) => parent.stdout.once('data', (chunk) => resolve(String(chunk))))).trim().split(' ').filter(Boolean);
      expect(pids).toHaveLength(1);
      const stat = `/proc/${pids[0]}/stat`;
      /** The builder's CPU so far (ms), or null once it is gone (or a zombie). */
      const cpuMs = (): number | null => {
        try {
          const text = readFileSync(stat, 'latin1');
          const fields = text.split(') ').pop()!.split(' ');
          if (fields[0] === 'Z' || fields[0] === 'X') return null;
          return (Number(fields[11]) + Number(fields[12])) * 10;
        } catch {
          return null;
        }
      };
      // Past its trial (~0.3 s of CPU here) and spinning in createSnapshot: the deadline is generous.
      let until = Date.now() + 60_000;
      while ((cpuMs() ?? 0) < 1500 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(cpuMs()).toBeGreaterThanOrEqual(1500);
      parent.kill('SIGKILL');
      let last = cpuMs()!;
      until = Date.now() + 30_000; // the kill is at once; a loaded machine can take a while to reap
      for (let now = cpuMs(); now !== null && Date.now() < until; now = cpuMs()) {
        last = now;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(cpuMs()).toBeNull();
      // Gone long before its RLIMIT_CPU would have ended it: its CPU, not the wall clock, says so.
      expect(last).toBeLessThan((DEFAULT_BUILD_CPU_S * 1000) / 2);
    } finally {
      parent.kill('SIGKILL');
    }
  }, 120_000);

  it('refuses a damaged snapshot by its hash and loads plainly', async () => {
    const built = await buildDeploymentSnapshot(worker('export default { fetch: () => new Response("fine") };'));
    if (!built.ok) throw new Error(built.reason);
    const data = Buffer.from(built.snapshot.data);
    data[data.length >> 1] ^= 0xff;
    const before = logs.length;
    runtime.deploy({ ...def('damaged', esm('export default { fetch: () => new Response("fine") };')), snapshot: { ...built.snapshot, data } });
    const res = await text(runtime, 'damaged', req('/'));
    expect(res.body).toBe('fine');
    expect(logs.slice(before).some((l) => /deployment snapshot of damaged refused: its bytes do not match/.test(String(l.msg)))).toBe(true);
  });
});

describe('per-deployment snapshots through deployments', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-dsnap-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start() {
    const { logger, logs } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 }, deploymentSnapshots: { minCodeBytes: 0, breakEvenMs: 0 } });
    const store = new SqliteDeploymentStore(join(dir, 'deployments.sqlite'));
    const deployments = new Deployments({ runtime, router: new Router((n) => runtime.has(n)), store, logger, snapshots: true });
    return { runtime, store, deployments, logs, stop: async () => (runtime.close(), await store.close()) };
  }
  const upload = (code: string) => ({ main: 'worker.js', modules: esm(code), bindings: {}, keepBindings: [], crons: [], limits: {}, compatibilityDate: null });

  it('builds after the deploy answers, logs why when it cannot, and a restart reuses what is stored', async () => {
    const first = await start();
    await first.deployments.upload('good', upload('export default { fetch: () => new Response("good") };'));
    await first.deployments.upload('seeded', upload('const seed = Math.random(); export default { fetch: () => new Response(seed < 2 ? "seeded" : "") };'));
    await first.deployments.upload('logger', upload('export default { fetch() { return new Response("x"); } }; console.log("starting");'));
    // The deploy answered before any snapshot existed.
    expect(first.runtime.definition('good')!.snapshot).toBeUndefined();
    await first.deployments.snapshots!.settled();
    expect(first.runtime.definition('good')!.snapshot).toBeDefined();
    expect(first.runtime.definition('seeded')!.snapshot).toBeUndefined();
    const refusals = first.logs.filter((l) => /no deployment snapshot for/.test(String(l.msg)));
    expect(refusals.map((l) => l.worker).sort()).toEqual(['logger', 'seeded']);
    expect(String(refusals.find((l) => l.worker === 'seeded')!.msg)).toMatch(/Math\.random.*loaded plainly/);
    // Both still serve, plainly; the good one from its snapshot.
    expect((await text(first.runtime, 'seeded', req('/'))).body).toBe('seeded');
    expect((await text(first.runtime, 'logger', req('/'))).body).toBe('x');
    expect((await text(first.runtime, 'good', req('/'))).body).toBe('good');
    expect(first.runtime.snapshots!.stats.taken).toBe(1);
    await first.stop();

    const second = await start();
    await second.deployments.restore();
    expect(second.runtime.definition('good')!.snapshot).toBeDefined();
    await second.deployments.snapshots!.settled();
    // Nothing built again: the snapshot and the refusals were stored.
    expect(second.logs.some((l) => /deployment snapshot of .* ready|no deployment snapshot for/.test(String(l.msg)))).toBe(false);
    expect((await text(second.runtime, 'good', req('/'))).body).toBe('good');
    expect(second.runtime.snapshots!.stats.taken).toBe(1);
    await second.stop();
  });

  it('a throwing top level falls back to a plain load, which fails as it always did', async () => {
    const server = await start();
    const code = 'export default { fetch: () => new Response("x") }; if (!globalThis.__allow) throw new Error("top level failed");';
    // The deploy-time check refuses it before any snapshot is tried.
    await expect(server.deployments.upload('thrower', upload(code))).rejects.toThrow(/top level failed/);
    const built = await buildDeploymentSnapshot(worker(code));
    expect(built.ok ? '' : built.reason).toMatch(/the top level threw: .*top level failed/);
    await server.stop();
  });
});

describe('when a cold start uses the deployment snapshot', () => {
  it('small workers come from the ready pool, big ones and slow plain loads from their snapshot', async () => {
    const { logger } = captureLogger();
    // defaults: 64 KB of code before a first plain load, then the plain load's time against 2 ms
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 } });
    try {
      const small = worker(`export default { fetch() { return new Response('small') } }`);
      const big = worker(`const table = ${JSON.stringify('x'.repeat(70 * 1024))};\nexport default { fetch() { return new Response('big ' + table.length) } }`);
      const [smallBuilt, bigBuilt] = [await buildDeploymentSnapshot(small), await buildDeploymentSnapshot(big)];
      expect(smallBuilt.ok && bigBuilt.ok).toBe(true);
      const smallDef = { ...def('small', small.modules), snapshot: smallBuilt.ok ? smallBuilt.snapshot : undefined };
      const bigDef = { ...def('big', big.modules), snapshot: bigBuilt.ok ? bigBuilt.snapshot : undefined };
      runtime.deploy(smallDef);
      runtime.deploy(bigDef);
      const snapshots = runtime.snapshots!;
      expect([snapshots.preferred(smallDef), snapshots.preferred(bigDef)]).toEqual([false, true]);
      const taken = snapshots.stats.taken;
      expect((await text(runtime, 'small', req('/'))).body).toBe('small');
      expect(snapshots.stats.taken).toBe(taken);
      expect((await text(runtime, 'big', req('/'))).body).toBe(`big ${70 * 1024}`);
      expect(snapshots.stats.taken).toBe(taken + 1);
      // A measured plain load decides from then on, whatever the size.
      snapshots.recordPlainLoad(smallDef, 25);
      snapshots.recordPlainLoad(bigDef, 0.3);
      expect([snapshots.preferred(smallDef), snapshots.preferred(bigDef)]).toEqual([true, false]);
    } finally {
      runtime.close();
    }
  });

  it('a version that cold-starts again gets a spare isolate from its snapshot, which its next cold start takes', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 } });
    try {
      const big = worker(`const table = ${JSON.stringify('y'.repeat(70 * 1024))};\nlet served = 0;\nexport default { fetch() { return new Response('big ' + table.length + ' ' + ++served) } }`);
      const built = await buildDeploymentSnapshot(big);
      expect(built.ok ? '' : built.reason).toBe('');
      runtime.deploy({ ...def('big', big.modules), snapshot: built.ok ? built.snapshot : undefined });
      const snapshots = runtime.snapshots!;
      const made = () => snapshots.stats.made;
      const coldStart = async () => {
        const body = (await text(runtime, 'big', req('/'))).body;
        runtime.evict('big');
        return body;
      };
      // Every answer counts from 1: the builder's warm-up request to GET / ran in a throwaway
      // context, so none of its state (the counter) is in the snapshot.
      // First cold start: one isolate made for it, no spare (the version may not come back soon).
      expect(await coldStart()).toBe(`big ${70 * 1024} 1`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect([made(), snapshots.stats.taken]).toEqual([1, 1]);
      // Second, while the first is recent: made on demand again, and a spare made after it.
      expect(await coldStart()).toBe(`big ${70 * 1024} 1`);
      await until(() => made() === 3);
      // Third: takes the spare (a fresh isolate: its top-level state is the snapshot's), and the
      // spare is made again.
      expect(await coldStart()).toBe(`big ${70 * 1024} 1`);
      expect(snapshots.stats.taken).toBe(3);
      await until(() => made() === 4);
      // With spares off, every cold start makes its own.
      const off = await Runtime.create({ logger, pool: { min: 1, max: 2 }, deploymentSnapshots: { spares: 0 } });
      try {
        off.deploy({ ...def('big', big.modules), snapshot: built.ok ? built.snapshot : undefined });
        for (let i = 0; i < 3; i++) {
          expect((await text(off, 'big', req('/'))).body).toBe(`big ${70 * 1024} 1`);
          off.evict('big');
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect([off.snapshots!.stats.made, off.snapshots!.stats.taken]).toEqual([3, 3]);
      } finally {
        off.close();
      }
    } finally {
      runtime.close();
    }
  });
});

// A deadline far past what it takes here: a loaded CI machine takes several times longer.
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
