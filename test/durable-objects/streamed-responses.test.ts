// A Durable Object's streamed response reaches the client chunk by chunk, through the stub fetch
// of the worker in front of it: the first event of a server-sent-event stream arrives while the
// object still holds the stream open, and the object (free for other events meanwhile) sends the
// rest only when told to. Asserted by the order of events, not by time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

let cinder: TestCinder;

const CODE = `
export class Feed {
  constructor(ctx) { this.ctx = ctx; this.waiting = []; }
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/release') {
      const n = this.waiting.length;
      for (const release of this.waiting.splice(0)) release();
      return new Response('released ' + n);
    }
    if (path === '/events') {
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      const released = new Promise((resolve) => this.waiting.push(resolve));
      (async () => {
        await writer.write(encoder.encode('event: hello\\ndata: first\\n\\n'));
        await released;
        await this.ctx.storage.put('released', true);
        await writer.write(encoder.encode('data: second\\n\\n'));
        await writer.close();
      })();
      return new Response(readable, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
    }
    if (path === '/big') {
      const chunk = new Uint8Array(64 * 1024).fill(97);
      let sent = 0;
      return new Response(new ReadableStream({ pull(controller) { if (sent++ < 64) controller.enqueue(chunk); else controller.close(); } }));
    }
    return new Response('not found', { status: 404 });
  }
}
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return env.FEED.getByName('one').fetch('https://do' + url.pathname);
  },
};`;

beforeAll(async () => {
  cinder = await startCinder();
  const res = await cinder.admin('PUT', '/workers/feed', {
    // (a first Durable Object event uses ~20 ms of CPU here, of the 50 ms default: room for CI)
    body: multipart({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'FEED', class_name: 'Feed' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Feed'] }, limits: { cpu_ms: 1000 } }, { 'index.js': CODE }),
  });
  expect(res.status, res.text).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('streamed Durable Object responses', () => {
  it('deliver an SSE stream chunk by chunk while the object still holds it open', async () => {
    const events: string[] = [];
    const res = await undiciRequest(`${cinder.server.url}/events`, { headers: { host: 'feed.example.com' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    let text = '';
    for await (const chunk of res.body) {
      text += String(chunk);
      events.push(`chunk: ${JSON.stringify(String(chunk))}`);
      if (text === 'event: hello\ndata: first\n\n') {
        // Only now may the object go on: the first event arrived before the stream could end.
        const release = await cinder.get('feed.example.com', '/release');
        events.push(release.text);
      }
    }
    events.push('end');
    expect(text).toBe('event: hello\ndata: first\n\ndata: second\n\n');
    expect(events).toEqual(['chunk: "event: hello\\ndata: first\\n\\n"', 'released 1', 'chunk: "data: second\\n\\n"', 'end']);
  });

  it('stream a large body in full, pulled as the client reads', async () => {
    const res = await undiciRequest(`${cinder.server.url}/big`, { headers: { host: 'feed.example.com' } });
    expect(res.statusCode).toBe(200);
    let bytes = 0;
    let chunks = 0;
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).byteLength;
      chunks++;
    }
    expect(bytes).toBe(64 * 64 * 1024);
    expect(chunks).toBeGreaterThan(1);
  });
});
