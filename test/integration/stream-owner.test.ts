// A stream the host pulls (a response body, an outbound request body) runs its own code (a pull()
// callback) when the host asks for the next chunk, from outside any event. That code belongs to
// the request that offered the stream: its I/O is that request's, even after another request of
// the same isolate has ended meanwhile (which once left it charged to nobody, and refused).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

// highWaterMark 0: pull() runs only when the host reads, never ahead of it in the request's own turn.
const PULLED = `(label) => {
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      await new Promise((r) => setTimeout(r, 15));
      if (i === 6) return c.close();
      try {
        const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(label + i)));
        c.enqueue(new TextEncoder().encode(label + (i++) + ':' + d[0] + ';'));
      } catch (e) {
        c.enqueue(new TextEncoder().encode('ERR ' + e.message + ';'));
        i++;
      }
    },
  }, { highWaterMark: 0 });
}`;

const WORKER = `const pulled = ${PULLED};
export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/quick') return new Response('quick');
    if (path === '/resp') return new Response(pulled('r'));
    if (path === '/up') {
      const r = await fetch(UPSTREAM, { method: 'POST', body: pulled('u'), duplex: 'half' });
      return new Response(await r.text());
    }
    return new Response('not found', { status: 404 });
  },
};`;

async function digestByte(text: string): Promise<number> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))[0]!;
}
async function expected(label: string): Promise<string> {
  let out = '';
  for (let i = 0; i < 6; i++) out += `${label}${i}:${await digestByte(label + i)};`;
  return out;
}

let upstream: http.Server;
let server: TestServer;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => res.writeHead(200).end(Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  server = await startTestServer({ owner: { code: WORKER.replace('UPSTREAM', JSON.stringify(url)), limits: { cpuMs: 1000 } } }, { allowPrivateFetch: true });
});

afterAll(async () => {
  await server.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

/** `path`'s body, while other requests to the same worker (so the same isolate) start and end. */
async function whileOthersEnd(path: string): Promise<{ text: string; others: number }> {
  let done = false;
  const streamed = server.request('owner', path).finally(() => (done = true));
  let others = 0;
  while (!done) {
    const quick = await server.request('owner', '/quick');
    expect(quick.text).toBe('quick');
    others++;
  }
  return { text: (await streamed).text, others };
}

describe('streams the host pulls', () => {
  it("run a response body's pull() for its own request while others end", async () => {
    const { text, others } = await whileOthersEnd('/resp');
    expect(others).toBeGreaterThan(1);
    expect(text).toBe(await expected('r'));
  });

  it("run an outbound request body's pull() for its own request while others end", async () => {
    const { text, others } = await whileOthersEnd('/up');
    expect(others).toBeGreaterThan(1);
    expect(text).toBe(await expected('u'));
  });
});
