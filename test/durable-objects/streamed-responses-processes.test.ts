// A Durable Object's streamed response reaches a client connected to a serving process that does
// not hold the object (`cinder serve --processes 2` without Redis): the holder answers the forward
// with the body as the object writes it, so the first server-sent event arrives while the object
// still holds the stream open, and the rest only when a later request releases it. Asserted by
// the order of events, not by time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { deploy, get, startNode, stopNode, type Node } from '../scale/helpers.js';

const CODE = `
import { DurableObject } from 'cloudflare:workers';
export class Feed extends DurableObject {
  waiting = [];
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/release') {
      const n = this.waiting.length;
      for (const release of this.waiting.splice(0)) release();
      return new Response('released ' + n);
    }
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const encoder = new TextEncoder();
    const released = new Promise((resolve) => this.waiting.push(resolve));
    (async () => {
      await writer.write(encoder.encode('data: first\\n\\n'));
      await released;
      await writer.write(encoder.encode('data: second\\n\\n'));
      await writer.close();
    })();
    return new Response(readable, { headers: { 'content-type': 'text/event-stream' } });
  }
}
export default {
  fetch(request, env) {
    return env.FEED.getByName('one').fetch('https://do' + new URL(request.url).pathname);
  },
};`;

let node: Node;
beforeAll(async () => {
  node = await startNode({ processes: 2 });
  const deployed = await deploy(node, 'feed', CODE, { bindings: [{ type: 'durable_object_namespace', name: 'FEED', class_name: 'Feed' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Feed'] } });
  expect(deployed.status, deployed.text).toBe(201);
}, 120_000);
afterAll(async () => {
  if (node) await stopNode(node);
});

describe('a streamed Durable Object response across serving processes', () => {
  it('reaches every client event by event, whichever process it is connected to', async () => {
    const events: string[] = [];
    const readers: { text: string; next: () => Promise<boolean> }[] = [];
    // A connection of its own each: the two processes take turns taking them.
    for (let i = 0; i < 4; i++) {
      const res = await request(`${node.url}/events`, { headers: { host: 'feed.example' }, dispatcher: new Agent({ connections: 1 }) });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/event-stream');
      const iterator = res.body[Symbol.asyncIterator]();
      const reader = {
        text: '',
        async next() {
          const step = await iterator.next();
          if (step.done) return false;
          reader.text += String(step.value);
          return true;
        },
      };
      readers.push(reader);
    }
    // Each client reads its first event; until the release nothing more can come.
    for (const [i, reader] of readers.entries()) {
      while (!reader.text.includes('data: first') && (await reader.next()));
      if (reader.text.includes('data: first')) events.push(`first ${i}`);
    }
    const released = await get(node, 'feed', '/release', false);
    events.push(released.text);
    for (const [i, reader] of readers.entries()) {
      while (await reader.next());
      if (reader.text.includes('data: second')) events.push(`second ${i}`);
    }
    expect(events).toEqual(['first 0', 'first 1', 'first 2', 'first 3', 'released 4', 'second 0', 'second 1', 'second 2', 'second 3']);
  }, 120_000);
});
