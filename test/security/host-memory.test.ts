// Host memory held for a guest: a response the client does not read must not sit in host memory
// (24 non-reading clients took the server from 98 MB to 1.35 GB), and response headers are
// bounded (64 MB were sent). Large bodies are pulled from the guest only as the socket drains;
// what the host holds per response is a chunk and the socket's buffer.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const BODY = 4 * 1024 * 1024;

// Making 4 MB bodies and 64 MB of headers takes up to ~20 ms of CPU here, of the 50 ms default: a
// slower, loaded CI machine could end them with the CPU limit before the bound under test.
const ROOMY = { cpuMs: 1000 };

beforeAll(async () => {
  server = await startTestServer({
    big: { limits: ROOMY, code: `export default { fetch() { return new Response('x'.repeat(${BODY})) } }` },
    bigbytes: { limits: ROOMY, code: `export default { fetch() { const b = new Uint8Array(${BODY}); b[0] = 1; b[b.length - 1] = 2; return new Response(b) } }` },
    onechunk: { limits: ROOMY, code: `export default { fetch() { return new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(${BODY}).fill(7)); c.close() } })) } }` },
    headers: `export default { fetch(request) {
      const n = Number(new URL(request.url).searchParams.get('n'));
      const h = new Headers();
      for (let i = 0; i < n; i++) h.set('x-h' + i, 'v'.repeat(4096));
      return new Response('ok', { headers: h });
    } }`,
    hugeheaders: { limits: ROOMY, code: `export default { fetch() {
      const h = new Headers();
      const v = 'v'.repeat(64 * 1024);
      for (let i = 0; i < 1024; i++) h.set('x-h' + i, v);
      return new Response('ok', { headers: h });
    } }` },
    neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
  });
});
afterAll(() => server.close());

/** Open a connection, send a request, and never read the answer. */
function nonReadingClient(worker: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(server.port, '127.0.0.1', () => {
      socket.pause();
      socket.write(`GET / HTTP/1.1\r\nHost: ${worker}.test\r\n\r\n`);
      resolve(socket);
    });
  });
}

describe('responses to clients that do not read', () => {
  it('are pulled from the guest as the socket drains, not buffered whole in the host', async () => {
    const serverSockets: net.Socket[] = [];
    const onConnection = (socket: net.Socket) => serverSockets.push(socket);
    server.server.on('connection', onConnection);
    const clients = await Promise.all(Array.from({ length: 12 }, (_, i) => nonReadingClient(i % 2 ? 'big' : 'bigbytes')));
    await new Promise((r) => setTimeout(r, 500));
    // What Node holds in user space for each response: well under the body, not all of it.
    const held = serverSockets.map((socket) => socket.writableLength);
    expect(held.length).toBe(12);
    for (const bytes of held) expect(bytes).toBeLessThan(512 * 1024);
    const answers = await Promise.all(Array.from({ length: 30 }, () => server.request('neighbour')));
    expect(answers.filter((r) => r.status !== 200 || r.text !== 'neighbour ok')).toHaveLength(0);
    for (const client of clients) client.destroy();
    server.server.off('connection', onConnection);
  });

  it('still reach a reading client whole, with their length', async () => {
    const text = await server.request('big');
    expect(text.headers['content-length']).toBe(String(BODY));
    expect(text.body.length).toBe(BODY);
    const bytes = await server.request('bigbytes');
    expect(bytes.headers['content-length']).toBe(String(BODY));
    expect([bytes.body[0], bytes.body[1], bytes.body[BODY - 1]]).toEqual([1, 0, 2]);
    const chunk = await server.request('onechunk');
    expect(chunk.body.length).toBe(BODY);
    expect(chunk.body.every((b) => b === 7)).toBe(true);
  });
});

describe('response headers', () => {
  it('are accepted up to 128 KB in total', async () => {
    // A client that accepts large headers (undici's default stops at 16 KB).
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.port, path: '/?n=30', headers: { host: 'headers.test' }, maxHeaderSize: 256 * 1024 }, resolve).on('error', reject);
    });
    res.resume();
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-h29']).toBe('v'.repeat(4096));
  });

  it('over 128 KB fail the invocation with a clear error', async () => {
    const res = await server.request('headers', '/?n=40');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/TypeError: Response headers exceed the limit of 131072 bytes in total\./);
    const huge = await server.request('hugeheaders');
    expect(huge.status).toBe(500);
    expect(huge.text).toMatch(/Response headers exceed the limit/);
    const answers = await Promise.all(Array.from({ length: 20 }, () => server.request('neighbour')));
    expect(answers.filter((r) => r.status !== 200)).toHaveLength(0);
  });
});
