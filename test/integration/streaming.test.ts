// Bodies stream both ways: uploads reach the guest as they arrive, and a ReadableStream response
// reaches the client chunk by chunk as the guest produces it.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const workers = {
  // Sends "first", then waits until another request to /release arrives before sending "last".
  gated: `
    let release; let gate = new Promise((r) => (release = r)); let cancelled = false;
    export default {
      fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === '/release') { release(); gate = new Promise((r) => (release = r)); return new Response('released'); }
        if (path === '/cancelled') return new Response(String(cancelled));
        const encoder = new TextEncoder();
        let step = 0;
        const stream = new ReadableStream({
          async pull(controller) {
            if (step++ === 0) { controller.enqueue(encoder.encode('first;')); return; }
            await gate;
            if (path === '/forever') { controller.enqueue(encoder.encode('more;')); return; }
            controller.enqueue(encoder.encode('last'));
            controller.close();
          },
          cancel() { cancelled = true; },
        });
        return new Response(stream, { headers: { 'content-type': 'text/plain' } });
      }
    }`,
  upload: `export default {
    async fetch(request) {
      const reader = request.body.getReader();
      let chunks = 0, bytes = 0;
      for (;;) { const { value, done } = await reader.read(); if (done) break; chunks++; bytes += value.byteLength; }
      return Response.json({ chunks, bytes });
    }
  }`,
  hash: { limits: { cpuMs: 5000 }, code: `export default { async fetch(request) { const b = new Uint8Array(await request.arrayBuffer()); let h = 0; for (let i = 0; i < b.length; i++) h = (h * 31 + b[i]) >>> 0; return Response.json({ length: b.length, h }) } }` },
  ignore: `export default { fetch() { return new Response('did not read it') } }`,
  broken: `export default { fetch() {
    let n = 0;
    return new Response(new ReadableStream({ pull(c) { if (n++ < 2) c.enqueue(new TextEncoder().encode('ok;')); else c.error(new Error('stream broke')); } }));
  } }`,
  transform: `export default { fetch() {
    const { readable, writable } = new TransformStream();
    (async () => { const w = writable.getWriter(); for (let i = 0; i < 5; i++) { await new Promise(r => setTimeout(r, 5)); await w.write(new TextEncoder().encode('chunk' + i + ';')); } await w.close(); })();
    return new Response(readable);
  } }`,
};

function rawGet(server: TestServer, worker: string, path: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path, headers: { host: `${worker}.test` } }, resolve);
    req.on('error', reject);
  });
}

function nextChunk(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => res.once('data', (chunk: Buffer) => resolve(chunk.toString())));
}

function hashOf(b: Buffer): number {
  let h = 0;
  for (let i = 0; i < b.length; i++) h = (h * 31 + b[i]) >>> 0;
  return h;
}

describe('streaming bodies', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(workers);
  });
  afterAll(() => server.close());

  it('delivers the first chunk before the guest has produced the last', async () => {
    const res = await rawGet(server, 'gated', '/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    // "first;" is here while the guest is still parked on the gate: "last" does not exist yet.
    expect(await nextChunk(res)).toBe('first;');
    const rest: Buffer[] = [];
    res.on('data', (c: Buffer) => rest.push(c));
    const ended = new Promise((r) => res.on('end', r));
    expect((await server.request('gated', '/release')).text).toBe('released');
    await ended;
    expect(Buffer.concat(rest).toString()).toBe('last');
  });

  it('cancels the guest stream when the client goes away', async () => {
    const res = await rawGet(server, 'gated', '/forever');
    expect(await nextChunk(res)).toBe('first;');
    res.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await server.request('gated', '/release');
    let cancelled = 'false';
    for (let i = 0; i < 50 && cancelled !== 'true'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      cancelled = (await server.request('gated', '/cancelled')).text;
    }
    expect(cancelled).toBe('true');
  });

  it('streams a chunked upload into the guest as it arrives', async () => {
    const result = await new Promise<{ chunks: number; bytes: number }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/', headers: { host: 'upload.test', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      let sent = 0;
      const send = () => {
        if (sent === 5) return req.end();
        req.write(Buffer.alloc(1000, sent++));
        setTimeout(send, 20);
      };
      send();
    });
    expect(result.bytes).toBe(5000);
    expect(result.chunks).toBeGreaterThanOrEqual(2);
  });

  it('reads a large streamed upload whole', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 13) & 0xff;
    const res = await server.request('hash', '/', { method: 'POST', body });
    expect(JSON.parse(res.text)).toEqual({ length: body.length, h: hashOf(body) });
  });

  it('keeps the connection usable when the worker ignores a streamed upload', async () => {
    const res = await server.request('ignore', '/', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 1) });
    expect(res.text).toBe('did not read it');
    expect((await server.request('ignore')).status).toBe(200);
  });

  it('cuts the response short when the guest stream errors, and logs it', async () => {
    const res = await rawGet(server, 'broken', '/');
    const outcome = await new Promise<string>((resolve) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve('complete:' + body));
      res.on('error', () => resolve('aborted:' + body));
      res.on('close', () => resolve((res.complete ? 'complete:' : 'aborted:') + body));
    });
    expect(outcome).toMatch(/^aborted:(ok;)*$/);
    await new Promise((r) => setTimeout(r, 20));
    expect(server.logs.some((l) => l.worker === 'broken' && /stream broke/.test(String(l.err)))).toBe(true);
    expect((await server.request('transform')).status).toBe(200);
  });

  it('flushes a TransformStream written from async code', async () => {
    const res = await server.request('transform');
    expect(res.text).toBe('chunk0;chunk1;chunk2;chunk3;chunk4;');
  });

  it('hashes the same as the client for a buffered upload', async () => {
    const body = Buffer.from('x'.repeat(1000));
    const res = await server.request('hash', '/', { method: 'PUT', body });
    expect(JSON.parse(res.text).h).toBe(hashOf(body));
  });
});
