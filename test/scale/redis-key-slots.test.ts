// Every multi-key operation Cinder sends to Redis touches keys of one Redis Cluster hash slot
// (a cluster refuses the rest with CROSSSLOT), and different workers, namespaces and queues land
// in different slots (so a cluster spreads them). Every command every ioredis client sends is
// recorded on a real single redis-server while the store, KV, queues, usage and cron leases do
// their whole job; the slots are computed with the CRC16 rule (cluster-key-slot, ioredis's own).
// test/scale/redis-cluster.test.ts runs the same code on a real three-master cluster.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { findRedisServer, startRedis, type RedisServer } from '../kv/fixtures.js';
import { RedisDeploymentStore, type NewVersion } from '../../src/store/index.js';
import { RedisBackend, migrateLegacyKvKeys } from '../../bindings/kv/redis.js';
import { RedisQueueBackend, migrateLegacyQueueKeys, queueKeys } from '../../bindings/queues/redis.js';
import { RedisUsageStore } from '../../src/observability/usage-redis.js';
import { emptyMinute } from '../../src/observability/usage.js';
import { redisCronClaims } from '../../src/app/cron-claims.js';
import { parseRedisUrl, redisLabel } from '../../src/store/redis-connect.js';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string | Buffer) => number;
const redisBinary = findRedisServer();
let server: RedisServer;

// --- the recorder ----------------------------------------------------------------------------------

interface Sent {
  client: object;
  name: string;
  keys: string[];
  /** the pipeline or MULTI it went in (one object per exec), if any */
  batch: object | null;
}
const sent: Sent[] = [];
type SendCommand = (this: Redis, command: { name: string; getKeys(): (string | Buffer)[] }, stream?: { isPipeline?: boolean }) => unknown;
const original = Redis.prototype.sendCommand as unknown as SendCommand;
(Redis.prototype as unknown as { sendCommand: SendCommand }).sendCommand = function (command, stream) {
  let keys: string[] = [];
  try {
    keys = command.getKeys().map(String);
  } catch {
    // a command ioredis has no key table for: none
  }
  sent.push({ client: this, name: command.name.toLowerCase(), keys, batch: stream?.isPipeline ? stream : null });
  return original.call(this, command, stream);
};

const slotsOf = (keys: string[]) => new Set(keys.map((key) => keySlot(key)));

/** Each group of keys that must share a slot, and what it was (for the failure message). */
function groups(records: Sent[]): { what: string; keys: string[] }[] {
  const out: { what: string; keys: string[] }[] = [];
  const batches = new Map<object, Sent[]>();
  for (const record of records) {
    if (record.batch) batches.set(record.batch, [...(batches.get(record.batch) ?? []), record]);
    else if (record.keys.length > 1) out.push({ what: record.name, keys: record.keys });
  }
  for (const batch of batches.values()) out.push({ what: batch.map((r) => r.name).join(' '), keys: batch.flatMap((r) => r.keys) });
  // WATCH ... EXEC on one connection: the watched keys, everything read meanwhile and the MULTI.
  const watching = new Map<object, Sent[]>();
  for (const record of records) {
    const open = watching.get(record.client);
    if (record.name === 'watch') watching.set(record.client, [...(open ?? []), record]);
    else if (open) {
      open.push(record);
      if (record.name === 'exec' || record.name === 'unwatch') {
        out.push({ what: open.map((r) => r.name).join(' '), keys: open.flatMap((r) => r.keys) });
        watching.delete(record.client);
      }
    }
  }
  return out.filter((g) => g.keys.length > 0);
}

function crossSlot(records: Sent[]): string[] {
  return groups(records)
    .filter((g) => slotsOf(g.keys).size > 1)
    .map((g) => `${g.what}: ${g.keys.join(', ')}`);
}

// --- the workload ----------------------------------------------------------------------------------

let n = 0;
function version(worker: string): NewVersion {
  n++;
  return {
    id: `${worker}-${n}`,
    worker,
    hash: `hash-${n}`,
    createdAt: 1_700_000_000_000 + n,
    size: 10,
    main: 'index.js',
    modules: [{ name: 'index.js', type: 'esm', code: `export default {}; // ${n}` }],
    bindings: { S: { type: 'secret_text', text: 's' } },
    routes: null,
    crons: ['* * * * *'],
    limits: { cpuMs: 10 },
    compatibilityDate: '2025-01-01',
    compatibilityFlags: [],
  };
}

beforeAll(async () => {
  if (redisBinary) server = await startRedis(redisBinary);
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('the recorder', () => {
  it('catches a multi-key operation across slots', async () => {
    const records: Sent[] = [
      { client: {}, name: 'eval', keys: ['a', 'b'], batch: null },
      { client: {}, name: 'hset', keys: ['cinder:{x}:1'], batch: sent },
      { client: {}, name: 'hset', keys: ['cinder:{y}:1'], batch: sent },
    ];
    expect(crossSlot(records)).toHaveLength(2);
    expect(crossSlot([{ client: {}, name: 'eval', keys: ['{t}:a', '{t}:b'], batch: null }])).toEqual([]);
  });
});

describe.skipIf(!redisBinary)('Redis keys and hash slots', () => {
  it('every multi-key operation of the store, KV, queues, usage and cron leases stays in one slot', async () => {
    sent.length = 0;
    const store = await RedisDeploymentStore.open({ url: server.url });
    await store.publish(version('alpha'), ['alpha.example.com/*']);
    const beta = await store.publish(version('beta'));
    await store.publish(version('beta'), ['beta.example.com/*']);
    await store.activate('beta', beta.id);
    await store.setRoutes('beta', ['beta.example.com/api/*']);
    await expect(store.setRoutes('nobody', ['x.example/*'])).rejects.toThrow(/no worker/);
    await store.createAccount({ id: 'acct-1', name: 'one', createdAt: 1 });
    await store.createToken({ id: 'tok', hash: 'h', account: 'acct-1', createdAt: 1, name: 't', scopes: ['*'] } as never);
    await store.deleteToken('tok');
    await store.putCodeCache(beta.id, { modules: new Map([['index.js', Buffer.from('cache')]]), afterRun: true });
    await store.putDeploymentSnapshot(beta.id, { platform: 'p', refused: 'no' });
    await store.listRoutes();
    await store.deleteWorker('alpha');
    const writer = (store as unknown as { writer: object }).writer;

    const kv = new RedisBackend({ url: server.url });
    const now = Date.now();
    for (const ns of ['ns-one', 'ns:two']) {
      await kv.put(ns, 'k1', { value: Buffer.from('v'), metadata: '{"m":1}', expiration: null });
      await kv.put(ns, 'k2', { value: Buffer.from('v'), metadata: null, expiration: Math.floor(now / 1000) + 1 });
      await kv.getMany(ns, ['k1', 'k2', 'k3'], now);
      await kv.list(ns, { prefix: 'k', after: null, limit: 1, now });
      await kv.delete(ns, 'k1');
    }
    await kv.purgeExpired(now + 5000);

    const queues = new RedisQueueBackend({ url: server.url, consumer: 'n1' });
    const ref = { account: 'acct-1', queue: 'jobs' };
    await queues.send(ref, [
      { body: Buffer.from('a'), contentType: 'text', delayMs: 0 },
      { body: Buffer.from('b'), contentType: 'text', delayMs: 0 },
      { body: Buffer.from('c'), contentType: 'text', delayMs: 1 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await queues.visible(ref, 10, 30_000);
    const leased = await queues.lease(ref, 10, 30_000);
    expect(leased.length).toBeGreaterThanOrEqual(2);
    await queues.ack(ref, [leased[0]]);
    await queues.retry(ref, leased[1], 0);
    await queues.retry(ref, leased[1], 10);
    await queues.moveTo(ref, leased[2] ?? leased[1], 'jobs-dlq');
    await queues.depth(ref);
    await queues.depths();

    const usage = new RedisUsageStore(store.client, 'node-a');
    const minute = Math.floor(now / 60_000);
    await usage.add([{ ...emptyMinute('beta', minute), requests: 1 }]);
    await usage.range('beta', minute - 1, minute + 1);

    const cron = redisCronClaims(store.client, 'node-a');
    expect(await cron.claim('beta', '* * * * *', 60_000)).toBe(true);
    expect(await cron.claim('beta', '* * * * *', 60_000)).toBe(false);

    const records = [...sent];
    await store.close();
    await kv.close();
    await queues.close();

    // The recorder saw the work (a test that records nothing cannot fail).
    expect(records.filter((r) => r.name === 'exec').length).toBeGreaterThan(15);
    expect(records.some((r) => r.name === 'evalsha' || r.name === 'eval')).toBe(true);
    expect(crossSlot(records)).toEqual([]);
    // The store's transactions (WATCH gen, reads, MULTI/EXEC) all go to the control slot.
    const writerSlots = slotsOf(records.filter((r) => r.client === writer).flatMap((r) => r.keys));
    expect([...writerSlots]).toEqual([keySlot('cinder:{d}:gen')]);
  }, 30_000);

  it('spreads workers, versions, namespaces and queues over different slots', () => {
    const kvSlots = slotsOf(['a', 'b', 'c', 'd'].map((ns) => `cinder:kv:{${ns}}:keys`));
    expect(kvSlots.size).toBe(4);
    const queueSlots = slotsOf(['a', 'b', 'c', 'd'].map((queue) => queueKeys({ account: 'x', queue }).stream));
    expect(queueSlots.size).toBe(4);
    expect(keySlot(queueKeys({ account: 'x', queue: 'a' }).stream)).toBe(keySlot(queueKeys({ account: 'x', queue: 'a' }).delayed));
    // Versions' code and caches spread by version id; the control metadata is one slot on purpose.
    expect(slotsOf(['v1', 'v2', 'v3'].map((id) => `cinder:{v:${id}}:modules`)).size).toBe(3);
  });

  it('renames KV and queue keys of the layout before hash tags, keeping values, TTLs and consumer groups', async () => {
    const client = new Redis(server.url);
    await client.flushall();
    await client.hset('cinder:kv:ns:old%3Ans:e:greeting', 'v', 'hello', 'x', '');
    await client.pexpire('cinder:kv:ns:old%3Ans:e:greeting', 600_000);
    await client.zadd('cinder:kv:ns:old%3Ans:keys', 0, 'greeting');
    await client.sadd('cinder:kv:namespaces', 'old%3Ans');
    // "*" survives URI-encoding (a glob character for SCAN MATCH): such a namespace moves too, and
    // one the registry does not name (never written through Cinder) is left alone.
    await client.hset('cinder:kv:ns:a*b:e:k', 'v', 'star', 'x', '');
    await client.zadd('cinder:kv:ns:a*b:keys', 0, 'k');
    await client.hset('cinder:kv:ns:a-other-b:e:k', 'v', 'other', 'x', '');
    await client.zadd('cinder:kv:ns:a-other-b:keys', 0, 'k');
    await client.sadd('cinder:kv:namespaces', 'a*b');
    await client.sadd('cinder:queues', 'acct\0work');
    await client.xgroup('CREATE', 'cinder:q:acct:work', 'cinder', '0', 'MKSTREAM');
    await client.xadd('cinder:q:acct:work', '*', 'id', 'm1', 'body', 'eA==', 'ct', 'text', 'created', '1', 'attempts', '0');
    await client.zadd('cinder:qd:acct:work', 1, '{"id":"m2"}');

    expect(await migrateLegacyKvKeys(client)).toBe(4);
    expect(await migrateLegacyQueueKeys(client)).toBe(2);
    // A second node starting at the same time finds nothing left to do.
    expect(await migrateLegacyKvKeys(client)).toBe(0);
    expect(await migrateLegacyQueueKeys(client)).toBe(0);

    const kv = new RedisBackend({ client });
    expect((await kv.get('old:ns', 'greeting', Date.now()))?.value.toString()).toBe('hello');
    expect((await kv.list('old:ns', { prefix: '', after: null, limit: 10, now: Date.now() })).keys.map((k) => k.name)).toEqual(['greeting']);
    expect(await client.pttl('cinder:kv:{old%3Ans}:e:greeting')).toBeGreaterThan(0);
    expect((await kv.get('a*b', 'k', Date.now()))?.value.toString()).toBe('star');
    // Not in the registry (never written through Cinder): left alone.
    expect(await client.exists('cinder:kv:ns:a-other-b:keys')).toBe(1);
    const queues = new RedisQueueBackend({ url: server.url, consumer: 'n1' });
    expect(await queues.depth({ account: 'acct', queue: 'work' })).toBe(2);
    const [message] = await queues.lease({ account: 'acct', queue: 'work' }, 10, 30_000);
    expect(message.id).toBe('m1');
    expect(await client.keys('cinder:q*:acct:work')).toEqual([]);
    await queues.close();
    client.disconnect();
  });
});

describe('--redis URLs', () => {
  it('reads one server, or a cluster by its seeds, and refuses what it cannot use by name', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380/2')).toMatchObject({ cluster: false, nodes: [{ host: '127.0.0.1', port: 6380 }], db: 2 });
    expect(parseRedisUrl('rediss+cluster://u:p%40ss@a:7000,b:7001,[::1]:7002')).toMatchObject({
      cluster: true,
      tls: true,
      username: 'u',
      password: 'p@ss',
      nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: '::1', port: 7002 }],
    });
    expect(() => parseRedisUrl('redis://a:1,b:2')).toThrow(/redis\+cluster:\/\/a:1,b:2/);
    expect(() => parseRedisUrl('redis+cluster://a:7000/3')).toThrow(/only database 0/);
    expect(() => parseRedisUrl('http://a')).toThrow(/not a Redis URL/);
    expect(() => parseRedisUrl('redis://h:6379/0?family=6')).toThrow(/"redis:\/\/h:6379\/0": query parameters and fragments are not supported/);
    expect(() => parseRedisUrl('redis+cluster://a:7000,b:7001?x=1')).toThrow(/query parameters and fragments are not supported/);
    expect(() => parseRedisUrl('redis://a:99999')).toThrow(/out of range/);
    expect(redisLabel('redis+cluster://user:secret@a:7000,b')).toBe('redis+cluster://a:7000,b:6379');
  });
});
