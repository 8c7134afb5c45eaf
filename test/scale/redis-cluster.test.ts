// Two `cinder serve` nodes on a real three-master Redis Cluster (started here: redis-server
// --cluster-enabled, redis-cli --cluster create): node A is given one cluster node as a plain
// redis:// URL (Cinder finds out it is a cluster), node B the redis+cluster:// seed list. They
// behave as one platform: a deploy with a route and a secret on A is served by B; KV written
// through A is read through B; a cron on a seconds schedule fires once per tick across the two; a
// queue's messages are each processed once; the platform's keys spread over the masters; and with the
// cluster gone both serve on while deploys are refused naming it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { findRedisServer, startRedisCluster, type RedisCluster } from '../kv/fixtures.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { admin, deploy, get, sleep, startNode, stopNode, tempDir, until, type Node } from './helpers.js';

const redisBinary = findRedisServer();
const KV = { type: 'kv_namespace', name: 'KV', namespace_id: 'cluster-shared' };
let cluster: RedisCluster;
let a: Node;
let b: Node;

beforeAll(async () => {
  if (!redisBinary) return;
  cluster = await startRedisCluster(redisBinary);
  a = await startNode({ redis: `redis://127.0.0.1:${cluster.ports[1]}`, nodeId: 'node-a' });
  b = await startNode({ redis: cluster.url, nodeId: 'node-b' });
}, 240_000);

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((node) => stopNode(node)));
  await cluster?.stop();
});

/** Requests to `node` until it answers `text` (a deploy is heard in ms: a handful at most). */
let last = '';
async function triesUntil(node: Node, worker: string, text: string, host = `${worker}.example`, max = 40): Promise<number> {
  for (let tries = 0; tries < max; tries++) {
    const res = await request(`${node.url}/`, { headers: { host } });
    const body = await res.body.text();
    if (body === text) return tries;
    last = `${res.statusCode} ${body.slice(0, 200)}`;
    await sleep(10);
  }
  return max;
}

describe.skipIf(!redisBinary)('two nodes on a Redis Cluster', () => {
  it('node A, given one cluster node as redis://, connects as a cluster client', () => {
    expect(a.stdout).toMatch(/Redis is a cluster: connecting as a cluster client/);
  });

  it('a deploy with a route and a secret on A is served by B', async () => {
    const code = `export default { fetch(req, env) { return new Response('shop ' + env.VERSION + ' ' + env.API_KEY); } };`;
    const metadata = (tag: string) => ({ routes: ['shop.cluster.test/*'], bindings: [{ type: 'plain_text', name: 'VERSION', text: tag }], keep_bindings: ['secret_text'] });
    expect((await deploy(a, 'shop', code, metadata('v1'))).status).toBe(201);
    const secret = await admin(a, 'PUT', '/workers/shop/secrets', JSON.stringify({ name: 'API_KEY', text: 'k-123', type: 'secret_text' }));
    expect(secret.status).toBeLessThan(300);
    expect(await triesUntil(b, 'shop', 'shop v1 k-123', 'shop.cluster.test'), last).toBeLessThan(40);
    // The secret is listed by name on B and never shown.
    expect((await admin(b, 'GET', '/workers/shop/secrets')).json().secrets).toEqual([{ name: 'API_KEY', type: 'secret_text' }]);
    expect((await admin(b, 'GET', '/routes')).json().routes).toContainEqual(expect.objectContaining({ pattern: 'shop.cluster.test/*', worker: 'shop' }));
    // A new version keeps the secret; B serves it.
    expect((await deploy(a, 'shop', code, metadata('v2'))).status).toBe(201);
    expect(await triesUntil(b, 'shop', 'shop v2 k-123', 'shop.cluster.test'), last).toBeLessThan(40);
    // Rollback from B (to the version the secret made), served by A.
    expect((await admin(b, 'POST', '/workers/shop/rollback')).status).toBe(200);
    expect(await triesUntil(a, 'shop', 'shop v1 k-123', 'shop.cluster.test'), last).toBeLessThan(40);
  }, 60_000);

  it('KV written through A is read and listed through B', async () => {
    const kv = `export default { async fetch(req, env) {
      const url = new URL(req.url);
      if (req.method === 'PUT') { await env.KV.put(url.searchParams.get('k'), url.searchParams.get('v')); return new Response('ok'); }
      if (url.pathname === '/list') return Response.json((await env.KV.list()).keys.map((k) => k.name));
      return new Response(String(await env.KV.get(url.searchParams.get('k'))));
    } };`;
    expect((await deploy(a, 'kv', kv, { bindings: [KV] })).status).toBe(201);
    expect(await until(async () => (await get(b, 'kv', '/?k=none')).text === 'null', 20_000)).toBe(true);
    for (const [k, v] of [['one', '1'], ['two', '2'], ['three', '3']]) {
      const res = await request(`${a.url}/?k=${k}&v=${v}`, { method: 'PUT', headers: { host: 'kv.example' } });
      expect([res.statusCode, await res.body.text()]).toEqual([200, 'ok']);
    }
    expect((await get(b, 'kv', '/?k=two')).text).toBe('2');
    expect(JSON.parse((await get(b, 'kv', '/list')).text)).toEqual(['one', 'three', 'two']);
    // B's cached read is dropped when A writes (invalidation over cluster pub/sub).
    await request(`${a.url}/?k=two&v=22`, { method: 'PUT', headers: { host: 'kv.example' } }).then((r) => r.body.text());
    expect(await until(async () => (await get(b, 'kv', '/?k=two')).text === '22', 5_000, 20)).toBe(true);
  }, 60_000);

  it('a queue\'s messages are each processed once across the two nodes', async () => {
    const producer = `export default { async fetch(req, env) {
      const from = Number(new URL(req.url).searchParams.get('from'));
      await env.JOBS.sendBatch(Array.from({ length: 20 }, (_, i) => ({ body: { n: from + i } })));
      return new Response('sent');
    } };`;
    const consumer = `export default {
      async fetch(req, env) { return Response.json((await env.KV.list({ prefix: 'job:' })).keys.map((k) => k.name)); },
      async queue(batch, env) { for (const m of batch.messages) await env.KV.put('job:' + m.body.n + ':' + crypto.randomUUID(), '1'); },
    };`;
    expect((await deploy(a, 'jobs-consumer', consumer, { bindings: [KV], queue_consumers: [{ queue: 'cluster-jobs', max_batch_size: 5, max_batch_timeout: 0 }] })).status).toBe(201);
    expect((await deploy(a, 'jobs-producer', producer, { bindings: [{ type: 'queue', name: 'JOBS', queue_name: 'cluster-jobs' }] })).status).toBe(201);
    expect(await until(async () => (await get(b, 'jobs-producer', '/?from=0')).text === 'sent', 20_000)).toBe(true);
    expect((await get(a, 'jobs-producer', '/?from=20')).text).toBe('sent');
    const done = async () => JSON.parse((await get(b, 'jobs-consumer')).text) as string[];
    expect(await until(async () => (await done()).length >= 40, 20_000, 200)).toBe(true);
    await sleep(1000); // a message processed twice would show up by now
    const counts = new Map<string, number>();
    for (const name of await done()) counts.set(name.split(':')[1], (counts.get(name.split(':')[1]) ?? 0) + 1);
    expect([...counts.keys()].map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  }, 80_000);

  it('a cron on a seconds schedule fires once per tick across the two nodes', async () => {
    const cron = `export default {
      async fetch(req, env) { return Response.json((await env.KV.list({ prefix: 'tick:' })).keys.map((k) => k.name)); },
      async scheduled(event, env) { await env.KV.put('tick:' + event.scheduledTime + ':' + crypto.randomUUID(), '1'); },
    };`;
    expect((await deploy(a, 'ticker', cron, { bindings: [KV], crons: ['* * * * * *'] })).status).toBe(201);
    expect(await until(async () => (await get(b, 'ticker')).status === 200, 20_000)).toBe(true);
    await sleep(8_000);
    expect((await deploy(a, 'ticker', cron, { bindings: [KV] })).status).toBe(201); // no crons: both stop
    await sleep(1500);
    const names = JSON.parse((await get(b, 'ticker')).text) as string[];
    const perTick = new Map<string, number>();
    for (const name of names) perTick.set(name.split(':')[1], (perTick.get(name.split(':')[1]) ?? 0) + 1);
    expect(perTick.size).toBeGreaterThanOrEqual(5);
    expect([...perTick].filter(([, n]) => n !== 1), 'ticks fired more than once').toEqual([]);
  }, 60_000);

  it('the platform\'s keys spread over the masters', async () => {
    const holding: number[] = [];
    for (const port of cluster.ports) {
      const client = new Redis({ host: '127.0.0.1', port });
      holding.push(await client.dbsize());
      client.disconnect();
    }
    expect(holding.filter((n) => n > 0).length, `keys per master: ${holding.join(', ')}`).toBeGreaterThanOrEqual(2);
  });

  it('a node given a cluster node with a database other than 0 does not start, saying why', () => {
    const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
    const run = spawnSync(process.execPath, ['--no-node-snapshot', bin, 'serve', '--no-supervisor', '--port', '0', '--admin-port', '0', '--data', tempDir('cinder-cluster-db-'), '--redis', `redis://127.0.0.1:${cluster.ports[0]}/3`], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).not.toBe(0);
    expect(run.stderr + run.stdout).toMatch(/a Redis Cluster has only database 0/);
  }, 60_000);

  it('with the cluster gone, both nodes serve on and deploys are refused naming Redis', async () => {
    await cluster.stop();
    expect(await triesUntil(b, 'shop', 'shop v1 k-123', 'shop.cluster.test')).toBe(0);
    expect(await triesUntil(a, 'shop', 'shop v1 k-123', 'shop.cluster.test')).toBe(0);
    const refused = await deploy(a, 'shop', 'export default { fetch() { return new Response("v3"); } };');
    expect(refused.status).toBe(503);
    expect(refused.json().error).toMatch(/Redis at redis\+cluster:\/\/127\.0\.0\.1:\d+ is unreachable/);
    expect((await admin(b, 'GET', '/readyz')).json()).toMatchObject({ ready: true, redis: 'down' });
  }, 60_000);
});
