// Issue 22, fuzzing the admin API's upload and metadata parsing: whatever the body (multipart
// shapes, metadata JSON, bindings, routes, limits, module parts, content types), the answer is a
// 2xx or a 4xx with a JSON error — never a 5xx, never a crash — and a 4xx changes nothing.
//
// A small seeded generator rather than fast-check (not installed here): every run is the same
// sequence, a failure names its seed and case number, and CINDER_FUZZ_SEED / CINDER_FUZZ_RUNS
// explore further. (With fast-check, the same generators would become arbitraries and gain
// shrinking; the properties would not change.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlError } from '../../src/control/errors.js';
import { readUpload } from '../../src/control/upload.js';
import { textWorker, type TestCinder } from '../control/helpers.js';
import { twoTenants, type Tenant } from './tenants.js';

const SEED = Number(process.env.CINDER_FUZZ_SEED ?? 22);
const RUNS = Number(process.env.CINDER_FUZZ_RUNS ?? 1);

/** mulberry32: a tiny, good-enough PRNG with a seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
type Rng = ReturnType<typeof prng>;

const STRINGS = ['', 'index.js', './index.js', '../etc/passwd', '/abs.js', 'a\u0000b', 'lib/x.js', 'lib//x.js', 'ö.js', '*', '__proto__', 'constructor', 'x'.repeat(300), 'KV', 'GREETING', '\ud800', ' ', 'fz', 'victim', 'default'];
const NUMBERS = [0, -1, 1, 0.5, 50, 1000, 3000, 1e308, -1e308, 2 ** 53, 100000, 600000];
const PATTERNS = ['*/*', '*', 'example.com/*', 'good.example.com:443/*', 'GOOD.example.com./login*', 'ｇｏｏｄ．example.com/*', 'gööd.example.com', '*.com/*', 'a..b/*', 'ex ample.com/*', 'http://x.y/z', 'victim.example.org/*', '*.fuzz.test/*', 'fz.fuzz.test/api/*', 'a'.repeat(2000)];
const BINDING_TYPES = ['plain_text', 'secret_text', 'json', 'kv_namespace', 'service', 'durable_object_namespace', 42, null];
const LIMIT_KEYS = ['cpu_ms', 'cpuMs', 'wall_ms', 'memory_mb', 'subrequests', 'script_bytes', 'request_body_bytes', 'startup_ms', 'unknown_limit', '__proto__'];
const CODE = [
  textWorker('fuzzed'),
  'export default {',
  'throw new Error("top level")',
  '',
  'addEventListener("fetch", (e) => e.respondWith(new Response("sw")));',
  'export default 42;',
  'import x from "./missing.js"; export default { fetch() { return new Response(x); } };',
  '{"json": true}',
];
const CONTENT_TYPES = ['application/javascript+module', 'application/javascript', 'text/plain', 'application/json', 'application/source-map', 'application/wasm', 'text/html', '', 'application/octet-stream'];

function value(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 4 : 7)) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.pick(NUMBERS);
    case 3: return rng.pick(STRINGS);
    case 4: return Array.from({ length: rng.int(4) }, () => value(rng, depth + 1));
    default: return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(STRINGS), value(rng, depth + 1)]));
  }
}

function binding(rng: Rng): unknown {
  if (rng.chance(0.1)) return value(rng);
  const b: Record<string, unknown> = { type: rng.pick(BINDING_TYPES), name: rng.chance(0.7) ? rng.pick(['KV', 'GREETING', 'SVC', 'X']) : rng.pick(STRINGS) };
  if (rng.chance(0.7)) b.text = rng.chance(0.8) ? 'hello' : value(rng);
  if (rng.chance(0.5)) b.json = value(rng);
  if (rng.chance(0.5)) b.namespace_id = rng.chance(0.7) ? rng.pick(['ns', 'sessions', 'x'.repeat(300)]) : value(rng);
  if (rng.chance(0.5)) b.service = rng.chance(0.7) ? rng.pick(['victim', 'fz', 'nobody']) : value(rng);
  return b;
}

function metadata(rng: Rng, main: string): unknown {
  if (rng.chance(0.05)) return value(rng);
  const m: Record<string, unknown> = {};
  if (rng.chance(0.8)) m[rng.chance(0.8) ? 'main_module' : 'body_part'] = rng.chance(0.8) ? main : rng.pick(STRINGS);
  if (rng.chance(0.5)) m.bindings = rng.chance(0.9) ? Array.from({ length: rng.int(4) }, () => binding(rng)) : value(rng);
  if (rng.chance(0.2)) m.vars = rng.chance(0.7) ? { MODE: 'x', N: rng.pick(NUMBERS) } : value(rng);
  if (rng.chance(0.5)) m.routes = rng.chance(0.9) ? Array.from({ length: rng.int(3) }, () => (rng.chance(0.8) ? rng.pick(PATTERNS) : rng.chance(0.5) ? { pattern: rng.pick(PATTERNS), zone_name: 'x' } : value(rng))) : value(rng);
  if (rng.chance(0.2)) m.crons = rng.chance(0.7) ? [rng.pick(['* * * * *', '*/5 * * * *', 'nope', '61 * * * *', '0 0 30 2 *'])] : value(rng);
  if (rng.chance(0.5)) m.limits = rng.chance(0.9) ? Object.fromEntries(Array.from({ length: 1 + rng.int(3) }, () => [rng.pick(LIMIT_KEYS), rng.chance(0.85) ? rng.pick(NUMBERS) : value(rng)])) : value(rng);
  if (rng.chance(0.1)) m.keep_bindings = rng.chance(0.5) ? ['secret_text'] : value(rng);
  if (rng.chance(0.1)) m.compatibility_date = rng.pick(['2025-01-01', '2025-13-45', 'today', '']);
  if (rng.chance(0.05)) m[rng.pick(['route', 'usage_model', '__proto__', 'constructor'])] = value(rng);
  return m;
}

/** A request body and its headers for PUT /workers/:name. */
function upload(rng: Rng): { body: BodyInit; headers: Record<string, string> } {
  const shape = rng.int(10);
  if (shape === 0) return { body: rng.pick(CODE), headers: { 'content-type': rng.pick(CONTENT_TYPES) } };
  if (shape === 1) {
    // hand-made multipart: a wrong or missing boundary, truncated, or bytes that are not UTF-8
    const boundary = rng.pick(['b', 'x'.repeat(80), '']);
    const text = `--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{"main_module":"index.js"}\r\n--${boundary}\r\nContent-Disposition: form-data; name="index.js"; filename="index.js"\r\nContent-Type: application/javascript+module\r\n\r\n${rng.pick(CODE)}\r\n${rng.chance(0.5) ? `--${boundary}--\r\n` : ''}`;
    const bytes = rng.chance(0.3) ? Buffer.concat([Buffer.from(text), Buffer.from([0xff, 0xfe, 0xc3])]) : Buffer.from(text);
    return { body: bytes, headers: { 'content-type': `multipart/form-data; boundary=${rng.pick([boundary, 'other', ''])}` } };
  }
  const form = new FormData();
  const main = rng.chance(0.8) ? 'index.js' : rng.pick(STRINGS);
  const meta = metadata(rng, main);
  if (rng.chance(0.95)) {
    const text = rng.chance(0.05) ? '{"main_module": "index.js",' : JSON.stringify(meta);
    form.append('metadata', rng.chance(0.8) ? new Blob([text], { type: 'application/json' }) : (text as unknown as Blob));
  }
  const parts = rng.chance(0.8) ? 1 : rng.int(4);
  for (let i = 0; i < parts; i++) {
    const name = i === 0 ? main : rng.pick(STRINGS);
    const code = rng.chance(0.05) ? new Uint8Array([0xff, 0xfe, 0x00]) : rng.pick(CODE);
    if (rng.chance(0.1)) form.append(name, code as string);
    else form.append(name, new Blob([code], { type: i === 0 && rng.chance(0.8) ? 'application/javascript+module' : rng.pick(CONTENT_TYPES) }), name);
  }
  return { body: form, headers: {} };
}

describe('upload parsing (in process)', () => {
  it('turns any body into an upload or a ControlError with a 4xx, nothing else', async () => {
    for (let run = 0; run < RUNS; run++) {
      const rng = prng(SEED + run);
      for (let i = 0; i < 1500; i++) {
        const { body, headers } = upload(rng);
        const request = new Request('http://admin/workers/fz', { method: 'PUT', body, headers });
        const outcome = await readUpload(request).then(
          (spec) => ({ spec }),
          (error: unknown) => ({ error }),
        );
        const where = `seed ${SEED + run} case ${i}`;
        if ('spec' in outcome) {
          // something to run: the entry module is among the modules
          expect(outcome.spec.modules.some((m) => m.name === outcome.spec.main), where).toBe(true);
        } else {
          expect(outcome.error, `${where}: ${(outcome.error as Error)?.stack}`).toBeInstanceOf(ControlError);
          const status = (outcome.error as ControlError).status;
          expect(status >= 400 && status < 500, `${where}: status ${status}`).toBe(true);
        }
      }
    }
  });
});

describe('admin API over HTTP', () => {
  let cinder: TestCinder;
  let victim: Tenant;
  let attacker: Tenant;
  beforeAll(async () => {
    ({ cinder, good: victim, evil: attacker } = await twoTenants());
    expect((await victim.deploy('victim', textWorker('victim'), { routes: ['victim.example.org/*'] })).status).toBe(201);
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
  });

  /** Everything an admin call could change: workers, owners, live versions, version counts, routes. */
  async function state(): Promise<string> {
    const store = cinder.server.store;
    const workers = await store.listWorkers();
    const versions = await Promise.all(workers.map(async (w) => (await store.listVersions(w.name)).length));
    return JSON.stringify({ workers: workers.map((w, i) => [w.name, w.account, w.currentVersion, versions[i]]), routes: await store.listRoutes(), live: cinder.server.runtime.workers().sort() });
  }

  it('answers any upload or route change with a 2xx or a JSON 4xx, and a 4xx changes nothing', async () => {
    const statuses = new Map<number, number>();
    for (let run = 0; run < RUNS; run++) {
      const rng = prng(SEED * 7919 + run);
      for (let i = 0; i < 250; i++) {
        // the operator, the attacker, or the victim on workers of its own other than "victim"
        const who = rng.pick([undefined, attacker, victim]);
        const name = rng.pick(['fz', 'fz-2', who === attacker ? 'victim' : 'fz-3', 'Bad_Name', 'a'.repeat(70)]);
        const before = await state();
        let res;
        if (rng.chance(0.2)) {
          const json = rng.chance(0.7) ? { routes: Array.from({ length: rng.int(3) }, () => rng.pick(PATTERNS)) } : value(rng);
          const init = { body: rng.chance(0.1) ? '{"routes": [' : JSON.stringify(json), headers: { 'content-type': 'application/json' } };
          res = who ? await who.admin('PUT', `/workers/${name}/routes`, init) : await cinder.admin('PUT', `/workers/${name}/routes`, init);
        } else {
          const init = upload(rng);
          res = who ? await who.admin('PUT', `/workers/${name}`, init) : await cinder.admin('PUT', `/workers/${name}`, init);
        }
        const where = `seed ${SEED * 7919 + run} case ${i} (${who?.name ?? 'operator'} ${name}): ${res.status} ${res.text.slice(0, 300)}`;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, where).toBeLessThan(500);
        expect(res.status, where).toBeGreaterThanOrEqual(200);
        if (res.status >= 400) {
          expect(typeof res.body?.error, where).toBe('string');
          expect(await state(), where).toBe(before);
        }
      }
    }
    if (process.env.CINDER_FUZZ_VERBOSE) console.log(JSON.stringify(Object.fromEntries(statuses)));
    // the generator reaches both sides of the property
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThan(2);
    // and the victim was never touched by any of it
    expect((await cinder.get('victim.example.org')).text).toBe('victim');
    expect((await cinder.get('victim.example.com')).text).toBe('victim');
  }, 180_000);
});
