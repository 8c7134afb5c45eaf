// Durable Object placement on a real three-master Redis Cluster: holder leases, object records and
// the shared classes keep to one hash slot per script (a cluster refuses the rest), so two nodes
// on the cluster count 40 concurrent increments split between them with one instance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { findRedisServer, startRedisCluster, type RedisCluster } from '../kv/fixtures.js';
import { deploy, startNode, stopNode, until, type Node } from '../scale/helpers.js';

const redisBinary = findRedisServer();
const WORKER = `
export class Counter {
  constructor(ctx) {
    this.ctx = ctx;
    ctx.blockConcurrencyWhile(async () => { await ctx.storage.put('constructions', ((await ctx.storage.get('constructions')) ?? 0) + 1); });
  }
  async inc() { const v = ((await this.ctx.storage.get('count')) ?? 0) + 1; await this.ctx.storage.put('count', v); return v; }
  async state() { return { count: (await this.ctx.storage.get('count')) ?? 0, constructions: await this.ctx.storage.get('constructions') }; }
}
export default {
  async fetch(request, env) {
    const stub = env.COUNTER.getByName(new URL(request.url).searchParams.get('name') ?? 'one');
    try {
      return new URL(request.url).pathname === '/inc' ? new Response(String(await stub.inc())) : Response.json(await stub.state());
    } catch (e) {
      return new Response(e.message, { status: 503 });
    }
  },
};
`;
// A first Durable Object event in a process uses 15-28 ms of CPU here (of the 50 ms default):
// a slower, loaded CI machine could cross it; this test is not about the CPU limit.
const METADATA = { bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Counter'] }, limits: { cpu_ms: 1000 } };
let cluster: RedisCluster;
const nodes: Node[] = [];

async function call(node: Node, path: string) {
  const res = await request(`${node.url}${path}`, { headers: { host: 'counter.example' } });
  return { status: res.statusCode, text: await res.body.text() };
}

beforeAll(async () => {
  if (!redisBinary) return;
  cluster = await startRedisCluster(redisBinary);
  nodes.push(await startNode({ redis: cluster.url, nodeId: 'node-a' }));
  nodes.push(await startNode({ redis: cluster.url, nodeId: 'node-b' }));
}, 240_000);

afterAll(async () => {
  await Promise.all(nodes.map((node) => stopNode(node)));
  await cluster?.stop();
});

describe.skipIf(!redisBinary)('Durable Objects on a Redis Cluster', () => {
  it('40 concurrent increments over two nodes: none lost, one instance', async () => {
    const [a, b] = nodes;
    expect((await deploy(a, 'counter', WORKER, METADATA)).status).toBe(201);
    expect(await until(async () => (await call(b, '/?name=warm')).status === 200, 10_000)).toBe(true);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => call(i % 2 ? b : a, '/inc?name=clustered')));
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.map((r) => Number(r.text)).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const node of [a, b]) expect(JSON.parse((await call(node, '/?name=clustered')).text)).toEqual({ count: 40, constructions: 1 });
  }, 60_000);
});
