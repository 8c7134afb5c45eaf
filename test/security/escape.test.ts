// Attempts to reach the host from guest code. Each one must find nothing of Node, of
// isolated-vm, or of another worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Walks everything reachable from the objects the host hands a handler (request, env, ctx and
// the globals), through own properties, prototypes and constructors, looking for host things.
const WALKER = `
function walk(roots) {
  const seen = new Set();
  const queue = roots.slice();
  const findings = [];
  while (queue.length && seen.size < 20000) {
    const value = queue.shift();
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue;
    seen.add(value);
    let names = [];
    try { names = Reflect.ownKeys(value); } catch {}
    for (const key of names) {
      const name = typeof key === 'symbol' ? key.toString() : key;
      if (/^(applySync|applySyncPromise|derefInto|copySync|setSync|getSync|__cinder|transferOut|__ivm)/.test(name)) findings.push(name);
      let child;
      try {
        const d = Object.getOwnPropertyDescriptor(value, key);
        child = d && ('value' in d ? d.value : undefined);
      } catch {}
      if (child !== undefined) queue.push(child);
    }
    try { queue.push(Object.getPrototypeOf(value)); } catch {}
  }
  return { findings, visited: seen.size };
}
`;

const workers = {
  probe: `${WALKER}
  // Code generation from strings works only while the worker starts: walk to Function from there.
  const atStartup = {};
  try { atStartup.ctorProcess = String(globalThis.constructor.constructor('return typeof process')()); } catch (e) { atStartup.ctorProcess = 'threw ' + e.name; }
  try { atStartup.fnProcess = String(Function('return typeof process')()); } catch (e) { atStartup.fnProcess = 'threw ' + e.name; }
  try { atStartup.reqCtor = String(new Request('https://x.test/').constructor.constructor('return typeof process + typeof require')()); } catch (e) { atStartup.reqCtor = 'threw ' + e.name; }
  export default {
    async fetch(request, env, ctx) {
      const out = { ...atStartup };
      out.typeofs = [typeof process, typeof require, typeof module, typeof Buffer, typeof global, typeof __dirname, typeof ivm, typeof _ivm].join(',');
      // In a handler it is refused, and every Function reachable from what the host handed over is
      // this realm's own (no other realm's Function to try instead).
      try { out.ctxCtor = String(ctx.waitUntil.constructor('return typeof process')()); } catch (e) { out.ctxCtor = 'threw ' + e.name; }
      out.sameRealm = [this.constructor.constructor, request.constructor.constructor, ctx.waitUntil.constructor, env.constructor.constructor].every((F) => F === Function);
      try { out.importNode = await import('node:fs').then(() => 'imported', (e) => 'refused'); } catch (e) { out.importNode = 'threw'; }
      out.globalsWithCinder = Object.getOwnPropertyNames(globalThis).filter((n) => /cinder|ivm|bridge/i.test(n));
      const walked = walk([request, env, ctx, globalThis, request.headers, Object.getPrototypeOf(ctx)]);
      out.findings = walked.findings;
      out.visited = walked.visited;
      return Response.json(out);
    }
  }`,
  stacktrace: `export default {
    async fetch() {
      // Structured stack traces can hand out function objects in sloppy code; the sandbox is strict.
      Error.prepareStackTrace = (err, frames) => frames.map((f) => { try { return typeof f.getFunction() } catch { return 'threw' } });
      let captured = [];
      try { await new Promise((_, reject) => setTimeout(() => { try { null.x } catch (e) { captured = e.stack } reject(0) }, 1)) } catch {}
      let viaTimer = [];
      try { setTimeout('return process', 1) } catch (e) { viaTimer = e.name }
      return Response.json({ captured, viaTimer });
    }
  }`,
  'tenant-a': `globalThis.secret = 'tenant A secret'; export default { fetch() { return new Response(String(globalThis.secret)) } }`,
  'tenant-b': `export default { fetch() { return new Response(String(globalThis.secret)) } }`,
  // Hooks the built-ins the sandbox and the bridge lean on, then makes host calls (a timer, a
  // log line, an outbound fetch that fails) and reports whatever the hooks saw.
  poison: `${WALKER}
    export default { async fetch(request) {
      const seen = [];
      const then = Promise.prototype.then;
      Promise.prototype.then = function (a, b) { seen.push(this, a, b); return then.call(this, a, b) };
      Object.defineProperty(Object.prototype, 'then', { get() { seen.push(this); return undefined }, configurable: true });
      Object.defineProperty(Object.prototype, 'timeout', { get() { seen.push(this); return undefined }, configurable: true });
      Object.defineProperty(Object.prototype, 'reference', { get() { seen.push(this); return undefined }, configurable: true });
      try {
        await new Promise((r) => setTimeout(r, 1));
        console.log('still logging');
        try { await fetch('http://127.0.0.1:1/') } catch {}
      } finally {
        Promise.prototype.then = then;
        delete Object.prototype.then; delete Object.prototype.timeout; delete Object.prototype.reference;
      }
      const walked = walk(seen);
      return Response.json({ hooked: seen.length, findings: walked.findings });
    } }`,
};

describe('isolate wall', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(workers);
  });
  afterAll(() => server.close());

  it('finds no process, require, module or isolated-vm from guest code', async () => {
    const res = await server.request('probe');
    expect(res.status).toBe(200);
    const out = JSON.parse(res.text);
    expect(out.typeofs).toBe('undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined');
    expect(out.ctorProcess).toBe('undefined');
    expect(out.fnProcess).toBe('undefined');
    expect(out.reqCtor).toBe('undefinedundefined');
    expect(out.ctxCtor).toBe('threw EvalError');
    expect(out.sameRealm).toBe(true);
    expect(out.importNode).not.toBe('imported');
    expect(out.globalsWithCinder).toEqual([]);
    expect(out.findings).toEqual([]);
    expect(out.visited).toBeGreaterThan(100);
  });

  it('hands out no sandbox functions through stack traces, and refuses string timers', async () => {
    const out = JSON.parse((await server.request('stacktrace')).text);
    expect(out.captured.every((t: string) => t === 'undefined' || t === 'threw')).toBe(true);
    expect(out.viaTimer).toBe('TypeError');
  });

  it('keeps one tenant\'s globals from another', async () => {
    expect((await server.request('tenant-a')).text).toBe('tenant A secret');
    expect((await server.request('tenant-b')).text).toBe('undefined');
  });

  it('lets poisoned built-ins see nothing of the host while the bridge is used', async () => {
    const res = await server.request('poison', '/', { method: 'POST', body: 'x' });
    expect(res.status).toBe(200);
    const out = JSON.parse(res.text);
    expect(out.hooked).toBeGreaterThan(0);
    expect(out.findings).toEqual([]);
    expect(server.logs.some((l) => l.worker === 'poison' && l.msg === 'still logging')).toBe(true);
    expect((await server.request('tenant-b')).status).toBe(200);
  });
});
