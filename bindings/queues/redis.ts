// Queues on Redis Streams, for nodes sharing queues (`cinder serve --redis`). Each queue is a
// stream with one consumer group; every node reads it as its own consumer, so a message goes to
// exactly one node's batch, and stays in that node's pending list until acknowledged (deleted).
// A node that dies mid-batch leaves its entries pending: once idle longer than the lease they are
// claimed (XAUTOCLAIM) by whichever node looks next. Delayed messages (send delays, retries) wait
// in a sorted set by due time and are moved into the stream by a script, atomically, so two nodes
// cannot both move one. Bodies are kept base64 in the entries.
//
//   cinder:q:{<account>:<queue>}:stream    the stream (consumer group "cinder")
//   cinder:q:{<account>:<queue>}:delayed   sorted set of delayed entries by due time
//   cinder:queues                          set of every queue that had a message (for metrics)
// Account and queue are URI-encoded. The hash tag puts a queue's stream and delayed set in one
// Redis Cluster slot (the promote script and the MULTIs touch both) and spreads queues over the
// cluster. Moving a message to a dead-letter queue crosses queues, so slots: it is added there
// first and only then removed here; a node dying between the two leaves it in both, never in
// neither (delivered again rather than lost, as Queues promise: at least once).
// The layout before hash tags ("cinder:q:<a>:<q>", "cinder:qd:<a>:<q>") is renamed by
// migrateLegacyQueueKeys.
import { createRedisClient, type RedisClient } from '../../src/store/redis-connect.js';
import { randomBytes, randomUUID } from 'node:crypto';
import type { QueueContentType } from './protocol.js';
import type { QueueBackend, QueueRef, StoredMessage } from './store.js';

const GROUP = 'cinder';
const REGISTRY = 'cinder:queues';

// Move due entries from the delayed set into the stream: KEYS[1] delayed, KEYS[2] stream; ARGV[1] now.
const PROMOTE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local m = cjson.decode(member)
    redis.call('XADD', KEYS[2], '*', 'id', m.id, 'body', m.body, 'ct', m.ct, 'created', m.created, 'attempts', m.attempts)
  end
end
return #due`;

interface Entry {
  id: string;
  body: string;
  ct: QueueContentType;
  created: number;
  attempts: number;
}

function fieldsOf(raw: string[]): Entry {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) map.set(raw[i], raw[i + 1]);
  return { id: map.get('id')!, body: map.get('body') ?? '', ct: (map.get('ct') ?? 'v8') as QueueContentType, created: Number(map.get('created')), attempts: Number(map.get('attempts') ?? 0) };
}

function keyPart(value: string): string {
  return encodeURIComponent(value);
}

export class RedisQueueBackend implements QueueBackend {
  readonly kind = 'redis' as const;
  readonly #client: RedisClient;
  readonly #consumer: string;
  readonly #groups = new Set<string>();

  /** `consumer`: this node's name in every queue's consumer group (unique per node). */
  constructor(options: { url: string; consumer?: string }) {
    this.#client = createRedisClient(options.url, { maxRetriesPerRequest: 3 });
    this.#consumer = options.consumer ?? `node-${randomBytes(6).toString('hex')}`;
  }

  #stream(ref: QueueRef): string {
    return queueKeys(ref).stream;
  }

  #delayed(ref: QueueRef): string {
    return queueKeys(ref).delayed;
  }

  async #group(ref: QueueRef): Promise<string> {
    const stream = this.#stream(ref);
    if (!this.#groups.has(stream)) {
      try {
        await this.#client.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      }
      this.#groups.add(stream);
    }
    return stream;
  }

  async send(ref: QueueRef, messages: { body: Buffer; contentType: QueueContentType; delayMs: number }[]): Promise<string[]> {
    const stream = await this.#group(ref);
    const now = Date.now();
    const ids: string[] = [];
    // The registry is another slot: named first, so metrics see every queue holding messages.
    await this.#client.sadd(REGISTRY, `${ref.account}\0${ref.queue}`);
    const multi = this.#client.multi();
    for (const message of messages) {
      const id = randomUUID().replace(/-/g, '');
      ids.push(id);
      const entry: Entry = { id, body: message.body.toString('base64'), ct: message.contentType, created: now, attempts: 0 };
      if (message.delayMs > 0) multi.zadd(this.#delayed(ref), now + message.delayMs, JSON.stringify(entry));
      else multi.xadd(stream, '*', 'id', id, 'body', entry.body, 'ct', entry.ct, 'created', String(now), 'attempts', '0');
    }
    await multi.exec();
    return ids;
  }

  async visible(ref: QueueRef, upTo: number, leaseMs: number): Promise<{ count: number; oldestAgeMs: number }> {
    const stream = await this.#group(ref);
    const now = Date.now();
    await this.#client.eval(PROMOTE, 2, this.#delayed(ref), stream, String(now));
    // Pending entries of a node that went away count as ready once their lease is over.
    const stale = (await this.#client.call('XPENDING', stream, GROUP, 'IDLE', String(leaseMs), '-', '+', String(upTo))) as unknown[];
    const info = (await this.#client.call('XINFO', 'GROUPS', stream)) as unknown[][];
    const group = info.map((g) => new Map(pairs(g))).find((g) => g.get('name') === GROUP);
    const last = String(group?.get('last-delivered-id') ?? '0-0');
    const fresh = (await this.#client.xrange(stream, `(${last}`, '+', 'COUNT', upTo)) as [string, string[]][];
    const count = stale.length + fresh.length;
    if (count === 0) return { count: 0, oldestAgeMs: 0 };
    const oldest = stale.length ? Infinity : now - Number(fresh[0][0].split('-')[0]);
    return { count, oldestAgeMs: oldest };
  }

  async lease(ref: QueueRef, max: number, leaseMs: number): Promise<StoredMessage[]> {
    const stream = await this.#group(ref);
    const out: StoredMessage[] = [];
    const claimed = (await this.#client.call('XAUTOCLAIM', stream, GROUP, this.#consumer, String(leaseMs), '0-0', 'COUNT', String(max))) as [string, [string, string[]][]];
    for (const [handle, raw] of claimed[1] ?? []) if (raw) out.push(this.#message(handle, raw));
    if (out.length < max) {
      const read = (await this.#client.call('XREADGROUP', 'GROUP', GROUP, this.#consumer, 'COUNT', String(max - out.length), 'STREAMS', stream, '>')) as unknown[] | null;
      // [[stream, entries]] as Redis answers it; ioredis flattens a single stream to [stream, entries]
      const entries = (read === null ? [] : typeof read[0] === 'string' ? read[1] : (read[0] as unknown[])[1]) as [string, string[]][];
      for (const [handle, raw] of entries ?? []) out.push(this.#message(handle, raw));
    }
    return out;
  }

  #message(handle: string, raw: string[]): StoredMessage {
    const entry = fieldsOf(raw);
    return { handle, id: entry.id, body: Buffer.from(entry.body, 'base64'), contentType: entry.ct, attempts: entry.attempts + 1, created: entry.created };
  }

  async ack(ref: QueueRef, messages: StoredMessage[]): Promise<void> {
    if (!messages.length) return;
    const stream = this.#stream(ref);
    const handles = messages.map((m) => m.handle);
    await this.#client.multi().xack(stream, GROUP, ...handles).xdel(stream, ...handles).exec();
  }

  async retry(ref: QueueRef, message: StoredMessage, delayMs: number): Promise<void> {
    const stream = this.#stream(ref);
    const entry: Entry = { id: message.id, body: message.body.toString('base64'), ct: message.contentType, created: message.created, attempts: message.attempts };
    const multi = this.#client.multi().xack(stream, GROUP, message.handle).xdel(stream, message.handle);
    if (delayMs > 0) multi.zadd(this.#delayed(ref), Date.now() + delayMs, JSON.stringify(entry));
    else multi.xadd(stream, '*', 'id', entry.id, 'body', entry.body, 'ct', entry.ct, 'created', String(entry.created), 'attempts', String(entry.attempts));
    await multi.exec();
  }

  async moveTo(ref: QueueRef, message: StoredMessage, queue: string): Promise<void> {
    const target = { account: ref.account, queue };
    const targetStream = await this.#group(target);
    const stream = this.#stream(ref);
    // Two queues are two slots: there first, then gone from here (see the header).
    await this.#client.sadd(REGISTRY, `${target.account}\0${target.queue}`);
    await this.#client.xadd(targetStream, '*', 'id', message.id, 'body', message.body.toString('base64'), 'ct', message.contentType, 'created', String(Date.now()), 'attempts', '0');
    await this.#client.multi().xack(stream, GROUP, message.handle).xdel(stream, message.handle).exec();
  }

  async depth(ref: QueueRef): Promise<number> {
    const [[, length], [, delayed]] = (await this.#client.multi().xlen(this.#stream(ref)).zcard(this.#delayed(ref)).exec()) as [unknown, number][];
    return Number(length) + Number(delayed);
  }

  async depths(): Promise<{ account: string; queue: string; depth: number }[]> {
    const members = await this.#client.smembers(REGISTRY);
    return Promise.all(
      members.map(async (member) => {
        const [account, queue] = member.split('\0');
        return { account, queue, depth: await this.depth({ account, queue }) };
      }),
    );
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

function pairs(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}

/** A queue's keys (see the header). */
export function queueKeys(ref: QueueRef): { stream: string; delayed: string } {
  const tag = `{${keyPart(ref.account)}:${keyPart(ref.queue)}}`;
  return { stream: `cinder:q:${tag}:stream`, delayed: `cinder:q:${tag}:delayed` };
}

/**
 * Rename the keys of the layout before hash tags to the current one, on a single Redis server.
 * RENAME keeps a stream's consumer group and its pending entries. One RENAMENX per queue and
 * kind (no scan: every serving process runs this at start). Idempotent; a key another node
 * renamed first, or that is not there, is skipped. Returns how many moved.
 */
export async function migrateLegacyQueueKeys(client: RedisClient): Promise<number> {
  let moved = 0;
  // Every queue that ever had a message is in the registry (the old layout wrote it too).
  for (const member of await client.smembers(REGISTRY)) {
    const [account, queue] = member.split('\0');
    if (queue === undefined) continue;
    const keys = queueKeys({ account, queue });
    const old = { stream: `cinder:q:${keyPart(account)}:${keyPart(queue)}`, delayed: `cinder:qd:${keyPart(account)}:${keyPart(queue)}` };
    for (const kind of ['stream', 'delayed'] as const) {
      if ((await client.renamenx(old[kind], keys[kind]).catch(() => 0)) === 1) moved++;
    }
  }
  return moved;
}
