// Issue 22, rule 4: every per-worker limit has an operator ceiling. Limits were uncapped
// (`cpu_ms: 1e308`, `memory_mb: 100000`, `startup_ms: 600000` accepted; `cpu_ms: 3000` froze the
// server 6 s). Now an upload over a ceiling is a 400 naming the limit and the ceiling, nothing is
// stored, and the neighbour (and the worker's own live version) keep serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CEILINGS, HARD_MAXIMUMS, clampToCeilings, resolveCeilings } from '../../src/control/ceilings.js';
import { multipart, startCinder, textWorker, type TestCinder } from '../control/helpers.js';
import { makeTenant, type Tenant } from './tenants.js';

let cinder: TestCinder;
let tenant: Tenant;

beforeAll(async () => {
  cinder = await startCinder();
  tenant = await makeTenant(cinder, 'acme');
  expect((await tenant.deploy('steady', textWorker('steady v1'))).status).toBe(201);
  expect((await cinder.admin('PUT', '/workers/neighbour', { body: textWorker('neighbour'), headers: { 'content-type': 'application/javascript' } })).status).toBe(201);
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('default ceilings', () => {
  const attacks: [Record<string, unknown>, string, number][] = [
    [{ cpu_ms: 1e308 }, 'cpu_ms', DEFAULT_CEILINGS.cpuMs],
    [{ cpu_ms: 3000 }, 'cpu_ms', DEFAULT_CEILINGS.cpuMs],
    [{ memory_mb: 100000 }, 'memory_mb', DEFAULT_CEILINGS.memoryMb],
    [{ startup_ms: 600000 }, 'startup_ms', DEFAULT_CEILINGS.startupMs],
    [{ subrequests: 1e6 }, 'subrequests', DEFAULT_CEILINGS.subrequests],
    [{ wall_ms: 86_400_000 }, 'wall_ms', DEFAULT_CEILINGS.wallMs],
    [{ request_body_bytes: 1e12 }, 'request_body_bytes', DEFAULT_CEILINGS.requestBodyBytes],
    [{ script_bytes: 1e12 }, 'script_bytes', DEFAULT_CEILINGS.scriptBytes],
    [{ cpuMs: 50, memoryMb: 4096 }, 'memory_mb', DEFAULT_CEILINGS.memoryMb],
  ];
  for (const [limits, name, ceiling] of attacks) {
    it(`refuses ${JSON.stringify(limits)} with a 400 naming ${name} and its ceiling ${ceiling}; nothing changes`, async () => {
      for (const deploy of [() => tenant.deploy('steady', textWorker('steady v2'), { limits }), () => cinder.admin('PUT', '/workers/fresh', { body: multipart({ main_module: 'index.js', limits }, { 'index.js': textWorker('fresh') }) })]) {
        const res = await deploy();
        expect(res.status, res.text).toBe(400);
        expect(res.body).toMatchObject({ limit: name, ceiling });
        expect(res.body.error).toContain(`limits.${name}`);
        expect(res.body.error).toContain(`ceiling of ${ceiling}`);
      }
      expect((await tenant.admin('GET', '/workers/steady/versions')).body.versions).toHaveLength(1);
      expect((await cinder.admin('GET', '/workers/fresh')).status).toBe(404);
      expect((await cinder.get('steady.example.com')).text).toBe('steady v1');
      expect((await cinder.get('neighbour.example.com')).text).toBe('neighbour');
    });
  }

  it('accepts limits within the ceilings', async () => {
    const res = await tenant.deploy('steady', textWorker('steady v2'), { limits: { cpu_ms: DEFAULT_CEILINGS.cpuMs, memory_mb: 256, startup_ms: 1500, subrequests: 1000 } });
    expect(res.status, res.text).toBe(201);
    expect(cinder.server.runtime.definition('steady')?.limits).toMatchObject({ cpuMs: DEFAULT_CEILINGS.cpuMs, memoryMb: 256 });
    expect((await cinder.get('steady.example.com')).text).toBe('steady v2');
  });
});

describe('operator ceilings', () => {
  it('are the operator\'s to lower and raise, never past the hard maximum', () => {
    expect(resolveCeilings({ cpuMs: 100 }).cpuMs).toBe(100);
    expect(resolveCeilings({ cpuMs: HARD_MAXIMUMS.cpuMs }).cpuMs).toBe(30_000);
    expect(() => resolveCeilings({ cpuMs: 30_001 })).toThrow(/--max-cpu-ms is 30001, over the hard maximum of 30000/);
    expect(() => resolveCeilings({ memoryMb: -1 })).toThrow(/--max-memory-mb must be a positive number/);
    expect(DEFAULT_CEILINGS.cpuMs).toBeLessThan(HARD_MAXIMUMS.cpuMs!);
  });

  it('cut a stored version over a lowered ceiling when it comes back, and cap defaults above it', async () => {
    const other = await startCinder({ limitCeilings: { cpuMs: 20, memoryMb: 64 } });
    try {
      // a server with low ceilings refuses over them...
      const refused = await other.admin('PUT', '/workers/hot', { body: multipart({ main_module: 'index.js', limits: { cpu_ms: 30 } }, { 'index.js': textWorker('hot') }) });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ limit: 'cpu_ms', value: 30, ceiling: 20 });
      // ...and a worker naming no limit runs under them, not over them with the defaults
      expect((await other.admin('PUT', '/workers/plain', { body: textWorker('plain'), headers: { 'content-type': 'application/javascript' } })).status).toBe(201);
      expect(other.server.runtime.definition('plain')?.limits).toMatchObject({ cpuMs: 20, memoryMb: 64 });
    } finally {
      await other.close({ cleanup: true });
    }
    expect(clampToCeilings({ cpuMs: 5000, wallMs: 10 }, resolveCeilings({})).limits).toEqual({ cpuMs: DEFAULT_CEILINGS.cpuMs, wallMs: 10 });
    expect(clampToCeilings({ cpuMs: 5000 }, resolveCeilings({})).clamped).toEqual(['cpu_ms']);
  });

  it('restores a version stored with a limit above a ceiling lowered since, clamped, with a log line', async () => {
    const first = await startCinder();
    const dataDir = first.dataDir;
    expect((await first.admin('PUT', '/workers/old', { body: multipart({ main_module: 'index.js', limits: { cpu_ms: 900 } }, { 'index.js': textWorker('old') }) })).status).toBe(201);
    await first.close();
    const again = await startCinder({ dataDir, limitCeilings: { cpuMs: 100 } });
    try {
      expect(again.server.restored.workers).toContain('old');
      expect(again.server.runtime.definition('old')?.limits?.cpuMs).toBe(100);
      expect(again.logs.some((l) => /cpu_ms cut to the operator's ceiling/.test(String(l.msg)))).toBe(true);
      expect((await again.get('old.example.com')).text).toBe('old');
    } finally {
      await again.close({ cleanup: true });
    }
  });
});
