// `cloudflare:workers` as a worker imports it (env, waitUntil, WorkerEntrypoint, DurableObject,
// RpcTarget), the default export as a WorkerEntrypoint class, and RPC between two workers over a
// service binding: results and thrown errors carried back, what cannot be copied refused, limits
// and metering as for a service fetch, and another account's worker never reached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../../src/runtime/invocation.js';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { makeTenant } from '../security/tenants.js';

let cinder: TestCinder;
const records: InvocationRecord[] = [];

async function deploy(name: string, code: string, metadata: Record<string, unknown> = {}) {
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
  expect(res.status, res.text).toBe(201);
}

beforeAll(async () => {
  cinder = await startCinder();
  cinder.server.runtime.onInvocation((record) => records.push(record));
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('import ... from "cloudflare:workers"', () => {
  it('gives env at the top level (the same object handlers get), and a default export class with this.env and this.ctx', async () => {
    await deploy(
      'entry',
      `import { env, WorkerEntrypoint, DurableObject, RpcTarget, waitUntil } from "cloudflare:workers";
       import * as all from "cloudflare:workers";
       const atTopLevel = env.GREETING;
       let later = '';
       export default class extends WorkerEntrypoint {
         async fetch(request) {
           waitUntil(new Promise((r) => setTimeout(r, 5)).then(() => { later = 'waited'; }));
           return Response.json({
             atTopLevel, sameEnv: this.env === env, fromThis: this.env.GREETING,
             hasWaitUntil: typeof this.ctx.waitUntil, later,
             classes: [typeof DurableObject, typeof RpcTarget, Object.keys(all).sort().join(',')],
             url: new URL(request.url).pathname,
           });
         }
       }`,
      { bindings: [{ type: 'plain_text', name: 'GREETING', text: 'hi' }] },
    );
    const first = JSON.parse((await cinder.get('entry.example.com', '/a')).text);
    expect(first).toEqual({
      atTopLevel: 'hi',
      sameEnv: true,
      fromThis: 'hi',
      hasWaitUntil: 'function',
      later: '',
      classes: ['function', 'function', 'DurableObject,RpcTarget,WorkerEntrypoint,default,env,waitUntil'],
      url: '/a',
    });
    // waitUntil from the module kept the first request's work alive until it ran
    let second = first;
    for (let i = 0; i < 50 && second.later !== 'waited'; i++) second = JSON.parse((await cinder.get('entry.example.com', '/b')).text);
    expect(second.later).toBe('waited');
  });

  it('runs a WorkerEntrypoint class\'s scheduled(controller) for a cron, with this.env', async () => {
    await deploy(
      'cronclass',
      `import { WorkerEntrypoint } from "cloudflare:workers";
       export default class extends WorkerEntrypoint {
         async scheduled(controller) { if (this.env.MODE !== 'on') throw new Error('env missing'); if (controller.cron === '*/5 * * * *') controller.noRetry(); }
       }`,
      { bindings: [{ type: 'plain_text', name: 'MODE', text: 'on' }] },
    );
    const run = await cinder.server.runtime.scheduled('cronclass', '*/5 * * * *');
    expect(run).toMatchObject({ outcome: 'ok', noRetry: true });
  });

  it('refuses waitUntil outside of a request, as workerd does', async () => {
    const res = await cinder.admin('PUT', '/workers/early', {
      body: multipart({ main_module: 'index.js' }, { 'index.js': 'import { waitUntil } from "cloudflare:workers"; waitUntil(Promise.resolve()); export default {};' }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/waitUntil\(\) was called outside of a request/);
  });
});

describe('RPC over service bindings', () => {
  beforeAll(async () => {
    await deploy(
      'calc',
      `import { WorkerEntrypoint } from "cloudflare:workers";
       export class Admin extends WorkerEntrypoint { whoami() { return 'admin of ' + this.env.NAME; } }
       export default class Calc extends WorkerEntrypoint {
         add(a, b) { return a + b; }
         async slowDouble(x) { await new Promise((r) => setTimeout(r, 2)); return x * 2; }
         echo(value) { return value; }
         fail() { const e = new RangeError('out of range: 7'); throw e; }
         custom() { class QuotaError extends Error { constructor(m) { super(m); this.name = 'QuotaError'; } } throw new QuotaError('over quota'); }
         giveFunction() { return () => 1; }
         hugeResult() { return new Array(40).fill('x'.repeat(1 << 20)); }
         count(list) { return list.length; }
         envName() { return this.env.NAME; }
         spin() { for (;;) {} }
         fetch() { return new Response('calc fetch'); }
       }`,
      { bindings: [{ type: 'plain_text', name: 'NAME', text: 'calc' }], limits: { cpu_ms: 50 } },
    );
    await deploy('plain', `export default { fetch() { return new Response('plain'); } };`);
    await deploy(
      'caller',
      `export default { async fetch(request, env) {
        const path = new URL(request.url).pathname;
        const run = async (fn) => { try { return Response.json({ ok: await fn() }); } catch (e) { return Response.json({ error: e.name, message: e.message, isRange: e instanceof RangeError }); } };
        switch (path) {
          case '/add': return run(() => env.CALC.add(40, 2));
          case '/slow': return run(() => env.CALC.slowDouble(21));
          case '/echo': return run(async () => { const v = await env.CALC.echo({ d: new Date(0), m: new Map([[1, 'x']]), bytes: new Uint8Array([1, 2]), nested: [{ a: null }] });
            return [v.d instanceof Date, v.m.get(1), Array.from(v.bytes), v.nested]; });
          case '/throw': return run(() => env.CALC.fail());
          case '/custom': return run(() => env.CALC.custom());
          case '/fn-arg': return run(() => env.CALC.echo(() => 1));
          case '/fn-result': return run(() => env.CALC.giveFunction());
          case '/missing': return run(() => env.CALC.nope());
          case '/env': return run(() => env.CALC.envName());
          case '/spin': return run(() => env.CALC.spin());
          case '/then': return run(() => typeof env.CALC.then);
          case '/fetch': return run(async () => (await env.CALC.fetch('https://calc/')).text());
          case '/named': return run(() => env.ADMIN.whoami());
          case '/huge': return run(() => env.CALC.echo(new Uint8Array(33 * 1024 * 1024)));
          case '/huge-repeated': return run(() => env.CALC.count(new Array(40).fill('y'.repeat(1 << 20))));
          case '/huge-result': return run(() => env.CALC.hugeResult());
          case '/plain': return run(() => env.PLAIN.add(1, 2));
        }
        return new Response('no route', { status: 404 });
      } };`,
      {
        bindings: [
          { type: 'service', name: 'CALC', service: 'calc' },
          { type: 'service', name: 'ADMIN', service: 'calc', entrypoint: 'Admin' },
          { type: 'service', name: 'PLAIN', service: 'plain' },
        ],
        // Copying a 33 MB argument out of the caller costs it about 25 ms of CPU here (one copy;
        // 43 ms with the second the size check made before), near the 50 ms default on a busy
        // machine: the test is about the size refusal, not the caller's CPU limit.
        limits: { cpu_ms: 1000 },
      },
    );
  });

  const call = async (path: string) => JSON.parse((await cinder.get('caller.example.com', path)).text);

  it('calls public methods of the callee\'s WorkerEntrypoint, awaiting promises, with its env', async () => {
    expect(await call('/add')).toEqual({ ok: 42 });
    expect(await call('/slow')).toEqual({ ok: 42 });
    expect(await call('/env')).toEqual({ ok: 'calc' });
    expect(await call('/named')).toEqual({ ok: 'admin of calc' });
    // the binding is still a Fetcher, and is not a thenable
    expect(await call('/fetch')).toEqual({ ok: 'calc fetch' });
    expect(await call('/then')).toEqual({ ok: 'undefined' });
  });

  it('structured-clones arguments and results across the two isolates', async () => {
    expect(await call('/echo')).toEqual({ ok: [true, 'x', [1, 2], [{ a: null }]] });
  });

  it('carries a thrown error back with its name and message', async () => {
    expect(await call('/throw')).toEqual({ error: 'RangeError', message: 'out of range: 7', isRange: true });
    expect(await call('/custom')).toEqual({ error: 'QuotaError', message: 'over quota', isRange: false });
  });

  it('refuses what cannot be cloned, unknown and reserved methods, and workers that are not entrypoint classes', async () => {
    expect(await call('/fn-arg')).toMatchObject({ error: 'DataCloneError', message: expect.stringMatching(/could not be cloned/) });
    expect(await call('/fn-result')).toMatchObject({ error: 'DataCloneError', message: expect.stringMatching(/could not be cloned/) });
    expect(await call('/huge')).toMatchObject({ error: 'RangeError', message: expect.stringMatching(/env\.CALC\.echo\(\): the arguments are \d+ bytes serialized, over the limit of 33554432 bytes/) });
    // A string counts at each reference, as the serializer writes it: 40 x 1 MiB.
    expect(await call('/huge-repeated')).toMatchObject({ error: 'RangeError', isRange: true, message: expect.stringMatching(/^env\.CALC\.count\(\): the arguments are 419\d{5} bytes serialized, over the limit of 33554432 bytes$/) });
    // The result's direction: the caller is told, in the same words.
    expect(await call('/huge-result')).toMatchObject({ error: 'RangeError', isRange: true, message: expect.stringMatching(/^env\.CALC\.hugeResult\(\): the result is 419\d{5} bytes serialized, over the limit of 33554432 bytes$/) });
    // and the callee still answers
    expect(await call('/add')).toEqual({ ok: 42 });
    expect(await call('/missing')).toEqual({ error: 'TypeError', message: 'The RPC receiver does not implement the method "nope".', isRange: false });
    expect(await call('/plain')).toMatchObject({ error: 'TypeError', message: expect.stringMatching(/does not support RPC: its default export is not a class extending WorkerEntrypoint/) });
  });

  it('holds the callee to its own limits, and meters the call as its own invocation and a subrequest of the caller', async () => {
    records.length = 0;
    expect(await call('/spin')).toMatchObject({ message: expect.stringMatching(/worker "calc" exceeded .*CPU/i) });
    const calc = records.find((r) => r.worker === 'calc');
    expect(calc).toMatchObject({ kind: 'rpc', outcome: 'exceededCpu', trigger: { method: 'RPC', url: 'rpc://default/spin' } });
    const caller = records.find((r) => r.worker === 'caller');
    expect(caller?.subrequests).toBe(1);
    // and the callee serves again
    expect(await call('/add')).toEqual({ ok: 42 });
  });
});

describe('RPC across accounts', () => {
  it('never calls a worker of another account that took a bound name', async () => {
    const good = await makeTenant(cinder, 'good');
    const evil = await makeTenant(cinder, 'evil');
    const caller = `export default { async fetch(request, env) { try { return new Response('got ' + await env.HELPER.secret()); } catch (e) { return new Response('refused: ' + e.message); } } };`;
    expect((await good.deploy('rpc-front', caller, { bindings: [{ type: 'service', name: 'HELPER', service: 'rpc-helper' }] })).status).toBe(201);
    const taken = await evil.deploy('rpc-helper', 'import { WorkerEntrypoint } from "cloudflare:workers"; export default class extends WorkerEntrypoint { secret() { return "stolen"; } }');
    expect(taken.status, taken.text).toBe(201);
    const res = await cinder.get('rpc-front.example.com');
    expect(res.text).toMatch(/^refused: .*no worker named "rpc-helper" is deployed/);
  });
});
