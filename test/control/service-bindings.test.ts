// Service bindings: env.OTHER.fetch() runs another deployed worker in-process, with the callee's
// own limits and metering, counted as a subrequest of the caller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../../src/runtime/invocation.js';
import { multipart, startCinder, type TestCinder } from './helpers.js';

let cinder: TestCinder;
const records: InvocationRecord[] = [];

async function deploy(name: string, code: string, metadata: Record<string, unknown> = {}) {
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
  expect(res.status, res.text).toBe(201);
}

const service = (name: string, target: string) => ({ type: 'service', name, service: target });

beforeAll(async () => {
  cinder = await startCinder();
  cinder.server.runtime.onInvocation((record) => records.push(record));

  await deploy(
    'echo',
    `export default { async fetch(request, env) {
      const body = request.method === 'GET' ? '' : await request.text();
      return new Response(JSON.stringify({ method: request.method, url: request.url, who: request.headers.get('x-who'), body, secret: env.SECRET }), {
        status: 201, headers: { 'content-type': 'application/json', 'x-from': 'echo' },
      });
    } };`,
    { bindings: [{ type: 'secret_text', name: 'SECRET', text: 'echo-only' }] },
  );
  await deploy(
    'streamer',
    `export default { fetch() {
      const encoder = new TextEncoder();
      let i = 0;
      const body = new ReadableStream({ async pull(controller) {
        await new Promise((r) => setTimeout(r, 5));
        if (i === 3) return controller.close();
        controller.enqueue(encoder.encode('part' + i++ + ';'));
      } });
      return new Response(body);
    } };`,
  );
  await deploy('spinner', `export default { fetch() { for (;;) {} } };`, { limits: { cpu_ms: 20 } });
  await deploy('thrower', `export default { fetch() { throw new RangeError('callee broke'); } };`);

  await deploy(
    'gateway',
    `export default { async fetch(request, env) {
      const path = request.url.slice(request.url.indexOf('/', 8));
      const call = async (fn) => { try { return await fn(); } catch (e) { return new Response('caught: ' + e.message, { status: 502 }); } };
      if (path === '/forward') {
        const res = await env.ECHO.fetch(request);
        return new Response('gateway saw ' + res.status + ' ' + res.headers.get('x-from') + ' ' + (await res.text()), { status: res.status });
      }
      if (path === '/url') return env.ECHO.fetch('https://echo.internal/hello?q=1', { method: 'PUT', body: 'payload', headers: { 'x-who': 'gateway' } });
      if (path === '/spin') return call(() => env.SPINNER.fetch('https://spinner/'));
      if (path === '/throw') return call(() => env.THROWER.fetch('https://thrower/'));
      if (path === '/missing') return call(() => env.MISSING.fetch('https://missing/'));
      if (path === '/many') {
        for (let i = 0; i < 5; i++) await env.ECHO.fetch('https://echo/' + i);
        return new Response('made 5 calls');
      }
      if (path === '/stream') {
        const res = await env.STREAMER.fetch('https://streamer/');
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let chunks = 0, text = '';
        for (;;) { const { value, done } = await reader.read(); if (done) break; chunks++; text += decoder.decode(value, { stream: true }); }
        return new Response(text + ' in ' + (chunks > 1 ? 'several chunks' : 'one chunk'));
      }
      if (path === '/env') return new Response(String(typeof env.ECHO.fetch) + ' ' + Object.prototype.toString.call(env.ECHO) + ' ' + String(env.SECRET));
      return new Response('no route', { status: 404 });
    } };`,
    {
      bindings: [service('ECHO', 'echo'), service('STREAMER', 'streamer'), service('SPINNER', 'spinner'), service('THROWER', 'thrower'), service('MISSING', 'not-deployed')],
      limits: { subrequests: 3 },
    },
  );

  await deploy(
    'loop',
    `export default { async fetch(request, env) {
      const depth = Number(request.headers.get('x-depth') || '0');
      try {
        const res = await env.SELF.fetch('https://loop/', { headers: { 'x-depth': String(depth + 1) } });
        return new Response(await res.text(), { status: res.status });
      } catch (e) {
        return new Response('stopped at depth ' + depth + ': ' + e.message, { status: 508 });
      }
    } };`,
    { bindings: [service('SELF', 'loop')] },
  );
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('service bindings', () => {
  it('forward the incoming request to another worker and return its response', async () => {
    records.length = 0;
    const res = await cinder.get('gateway.example.com', '/forward', { method: 'POST', body: 'hello body' });
    expect(res.status).toBe(201);
    expect(res.text).toMatch(/^gateway saw 201 echo /);
    const echoed = JSON.parse(res.text.replace(/^gateway saw 201 echo /, ''));
    expect(echoed).toEqual({ method: 'POST', url: 'http://gateway.example.com/forward', who: null, body: 'hello body', secret: 'echo-only' });
    // two invocations, each metered for itself; the call counted as the gateway's subrequest
    const gateway = records.find((r) => r.worker === 'gateway');
    const echo = records.find((r) => r.worker === 'echo');
    expect(gateway).toMatchObject({ outcome: 'ok', subrequests: 1 });
    expect(echo).toMatchObject({ outcome: 'ok', subrequests: 0, kind: 'fetch' });
    expect(echo!.requestId).not.toBe(gateway!.requestId);
  });

  it('take a URL and init, like fetch()', async () => {
    const res = await cinder.get('gateway.example.com', '/url');
    expect(res.status).toBe(201);
    expect(res.headers['x-from']).toBe('echo');
    expect(JSON.parse(res.text)).toMatchObject({ method: 'PUT', url: 'https://echo.internal/hello?q=1', who: 'gateway', body: 'payload' });
  });

  it('stream a streamed response through to the caller', async () => {
    const res = await cinder.get('gateway.example.com', '/stream');
    expect(res.text).toBe('part0;part1;part2; in several chunks');
  });

  it('expose a Fetcher, not the callee\'s env', async () => {
    const res = await cinder.get('gateway.example.com', '/env');
    expect(res.text).toBe('function [object Fetcher] undefined');
  });

  it('apply the callee\'s own limits; the caller gets an error and carries on', async () => {
    const res = await cinder.get('gateway.example.com', '/spin');
    expect(res.status).toBe(502);
    expect(res.text).toBe('caught: env.SPINNER.fetch(): worker "spinner" exceeded CPU time limit');
    // both workers still answer
    expect((await cinder.get('gateway.example.com', '/url')).status).toBe(201);
  });

  it('surface the callee\'s exception in the caller', async () => {
    const res = await cinder.get('gateway.example.com', '/throw');
    expect(res.text).toBe('caught: env.THROWER.fetch(): worker "thrower" threw RangeError: callee broke');
  });

  it('say when the bound worker is not deployed', async () => {
    const res = await cinder.get('gateway.example.com', '/missing');
    expect(res.text).toBe('caught: env.MISSING.fetch(): no worker named "not-deployed" is deployed');
  });

  it('count as subrequests, under the same limit as fetch()', async () => {
    const res = await cinder.get('gateway.example.com', '/many');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/TypeError: Too many subrequests: this invocation may make at most 3\./);
    expect((await cinder.get('gateway.example.com', '/url')).status).toBe(201);
  });

  it('stop a worker that calls itself forever', async () => {
    const res = await cinder.get('loop.example.com', '/');
    expect(res.status).toBe(508);
    // 32 invocations for one request in all (as on Workers): the top one and 31 levels of calls.
    expect(res.text).toMatch(/^stopped at depth 31: Too many worker invocations: one request may invoke at most 32 workers through service bindings\.$/);
  });

  it('reach a worker deployed after the caller, and follow its redeploys', async () => {
    await deploy('late', `export default { async fetch(request, env) { return env.TARGET.fetch(request); } };`, { bindings: [service('TARGET', 'target')] });
    expect((await cinder.get('late.example.com')).text).toMatch(/no worker named "target"/);
    await deploy('target', `export default { fetch() { return new Response('target v1'); } };`);
    expect((await cinder.get('late.example.com')).text).toBe('target v1');
    await deploy('target', `export default { fetch() { return new Response('target v2'); } };`);
    expect((await cinder.get('late.example.com')).text).toBe('target v2');
  });
});
