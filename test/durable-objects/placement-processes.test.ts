// Durable Objects under `cinder serve --processes 2` without Redis: the node's serving processes
// place each object in one of them (leases in <data>/durable-objects/placement.sqlite) and the
// other forwards to it, so 50 concurrent increments over connections spread across both
// processes lose nothing and construct the object once; when the holding process is killed with
// -9, the other (or its replacement) takes the object over from the same file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { aliveChildPids, deploy, supervisorLines, startNode, stopNode, until, type Node } from '../scale/helpers.js';

/** A connection of its own per request (node:cluster hands each to the next serving process), and
 *  a bound: a connection handed to a process at the moment it is killed is never answered. */
async function get(target: Node, _worker: string, path: string, _keepAlive: false): Promise<{ status: number; text: string }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const res = await request(`${target.url}${path}`, { headers: { host: 'counter.example' }, dispatcher, headersTimeout: 10_000 });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    void dispatcher.close();
  }
}

const WORKER = `
export class Counter {
  constructor(ctx) {
    this.ctx = ctx;
    ctx.blockConcurrencyWhile(async () => {
      await ctx.storage.put('constructions', ((await ctx.storage.get('constructions')) ?? 0) + 1);
    });
  }
  async fetch(request) {
    const s = this.ctx.storage;
    if (new URL(request.url).pathname === '/inc') {
      const value = ((await s.get('count')) ?? 0) + 1;
      await s.put('count', value);
      return new Response(String(value));
    }
    return Response.json({ count: (await s.get('count')) ?? 0, constructions: await s.get('constructions') });
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      return await env.COUNTER.getByName(url.searchParams.get('name') ?? 'one').fetch(new Request('https://object' + url.pathname));
    } catch (e) {
      return new Response(e.message, { status: 503 });
    }
  },
};
`;
// A first Durable Object event in a process uses 15-28 ms of CPU here (of the 50 ms default):
// a slower, loaded CI machine could cross it; this test is not about the CPU limit.
const METADATA = { bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Counter'] }, limits: { cpu_ms: 1000 } };

let node: Node;

beforeAll(async () => {
  node = await startNode({ processes: 2, args: ['--object-lease-ms', '1500'] });
  const deployed = await deploy(node, 'counter', WORKER, METADATA);
  expect(deployed.status, deployed.text).toBe(201);
}, 120_000);

afterAll(async () => {
  if (node) await stopNode(node);
});

describe('Durable Objects across the serving processes of one node', () => {
  it('50 concurrent increments over both processes: none lost, one construction', async () => {
    // A new connection per request: node:cluster hands each to the next process.
    const results = await Promise.all(Array.from({ length: 50 }, () => get(node, 'counter', '/inc?name=shared', false)));
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.map((r) => Number(r.text)).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (let i = 0; i < 4; i++) expect(JSON.parse((await get(node, 'counter', '/get?name=shared', false)).text)).toEqual({ count: 50, constructions: 1 });
  }, 60_000);

  it('the holding process killed with -9: the object is taken over from its file, nothing lost', async () => {
    const alive = aliveChildPids(node);
    expect(alive.length, supervisorLines(node)).toBe(2);
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    // Both killed: their replacements take the object over once the leases expired.
    let last = { status: 0, text: '' };
    expect(await until(async () => (last = await get(node, 'counter', '/inc?name=shared', false)).status === 200, 30_000, 200), `${last.text}\n${node.stderr.slice(-4000)}`).toBe(true);
    expect(last.text).toBe('51');
    const state = JSON.parse((await get(node, 'counter', '/get?name=shared', false)).text);
    expect(state).toEqual({ count: 51, constructions: 2 });
  }, 60_000);
});
