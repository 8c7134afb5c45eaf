// Durable Object placement across serving processes and nodes, on Redis (`cinder serve --redis`),
// or across the serving processes of one node on a SQLite file (`--processes N` without Redis:
// placement-sqlite.ts, same rules, every holder on one node).
//
// Every serving process is a *holder* (`<node>/<pid>/<random>`) with a lease in Redis: a score in
// the sorted set `cinder:{do-node:<node>}:live` (expiry in Redis's own clock), renewed every
// quarter lease, and its internal address beside it. An object's record,
// `cinder:{do:<namespace dir>/<id>}:holder`, names its holder, the holder's node and a fencing
// token. The first process to locate an unheld object claims it (compare-and-set); the others
// forward its events to the holder over the internal endpoint (node-link.ts); a stub's fetch with
// `Upgrade: websocket` goes there as a WebSocket of its own, which carries the object's WebSocket
// when it answers with one (forwardSocket).
//
// The object's storage is a SQLite file in its node's data directory, so an object is homed to
// its node. When the holder's lease expires (the process died, hung, or lost Redis):
//   - another process of the same node (same data directory) takes the object over, raising the
//     token: `--processes N`, a restart, a rolling restart;
//   - a process of another node forwards to any live process of the home node, and with none
//     answers that the node is unavailable (the stub throws an error naming it; the data is on
//     that node's disk, so nobody else may serve the object until it returns).
// A holder serves an object only while its own lease is valid by its own clock (the local
// deadline is counted from before the renewal was sent, so it passes before Redis expires the
// lease), and a holder that lapsed never renews that identity: it registers as a new holder and
// every object it held must be located (and taken over, token + 1) again. Every storage operation
// and every answer checks the fence, so a partitioned or paused holder refuses instead of making
// a second copy of the object.
import type { RedisClient } from '../store/redis-connect.js';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { serialize, deserialize } from 'node:v8';
import { Agent, request } from 'undici';
import { WebSocket, type RawData } from 'ws';
import type { EarlyEvent, WebSocketHost } from '../../bindings/websocket/host.js';
import { redisKey } from '../store/redis.js';
import { HAND_OFF_ONLY, HAND_OFF_TIMEOUT_MS, NOT_HELD, PlacementLostError, type DeliveryOutcome, type Fence, type ForwardedEvent, type ObjectPlacement, type RemoteHolder, type ScriptClasses, type SocketDeliveryOutcome, type SharedClasses, type Whereabouts } from '../../bindings/durable-objects/index.js';

export const DEFAULT_OBJECT_LEASE_MS = 10_000;
/** whereabouts remembered per process, at most (each side) */
const MAX_CACHED = 100_000;
/** the internal endpoint's paths: one event, and an upgrade that may carry the object's WebSocket */
export const FORWARD_PATH = '/durable-object-event';
export const SOCKET_PATH = '/durable-object-socket';
/** the upgrade's event (v8-serialized, base64) and the holder's outcome beside its 101 */
export const EVENT_HEADER = 'x-cinder-event';
export const OUTCOME_HEADER = 'x-cinder-outcome';
/** an upgrade request forwarded to another process carries this much (headers and body) at most */
export const MAX_SOCKET_EVENT_BYTES = 256 * 1024;
/** how long the holder may take to answer an upgrade (its object runs within its own wall limit) */
const SOCKET_HANDSHAKE_TIMEOUT_MS = 10 * 60_000;

interface HolderRecord {
  holder: string;
  node: string;
  token: number;
}

// Redis time in ms, inside a script (the one clock every node's lease is compared against).
const NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS: live zset, addresses hash. ARGV: holder, lease ms, address, "renew"|"register".
 *  A renewal of a lease that already expired fails: that identity is over. */
const REGISTER = `${NOW}
if ARGV[4] == 'renew' then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not s or tonumber(s) <= now then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
for _, m in ipairs(dead) do redis.call('ZREM', KEYS[1], m) redis.call('HDEL', KEYS[2], m) end
return 1`;

/** KEYS: live zset, addresses hash. ARGV: holder ('' for any). Address and holder of a live one. */
const LIVE = `${NOW}
if ARGV[1] ~= '' then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if s and tonumber(s) > now then return {ARGV[1], redis.call('HGET', KEYS[2], ARGV[1]) or ''} end
  return false
end
local m = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. now, 'LIMIT', 0, 1)
if #m == 0 then return false end
return {m[1], redis.call('HGET', KEYS[2], m[1]) or ''}`;

/** KEYS: one key. ARGV: expected value ('' for none), new value. */
const SWAP = `if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0`;

/** Where leases and object records are kept: Redis (nodes), or a SQLite file (the processes of
 *  one node without Redis: placement-sqlite.ts). Each call is atomic. */
export interface PlacementBackend {
  /** take (or, with `renew`, extend) a holder's lease; a renewal of an expired lease fails */
  lease(node: string, holder: string, leaseMs: number, address: string, renew: boolean): Promise<boolean>;
  /** `holder` if its lease is live, or with holder '' any live holder of the node: [holder, address] */
  live(node: string, holder: string): Promise<[string, string] | null>;
  /** the object's record ('' when none) */
  record(objectKey: string): Promise<string>;
  /** replace the record if it is still `expected` */
  swap(objectKey: string, expected: string, next: string): Promise<boolean>;
  /** end a holder's lease now (a graceful stop) */
  release(node: string, holder: string): Promise<void>;
  /** the node an operator moved a dead node's objects to (null: none) */
  movedTo(node: string): Promise<string | null>;
  setMoved(node: string, to: string | null): Promise<void>;
}

export function redisPlacementBackend(client: RedisClient, prefix = 'cinder'): PlacementBackend {
  // Node ids are the operator's words: encoded, so a brace cannot move the hash tag.
  const nodeTag = (node: string) => `do-node:${encodeURIComponent(node)}`;
  const nodeKeys = (node: string): [string, string] => [redisKey(prefix, nodeTag(node), 'live'), redisKey(prefix, nodeTag(node), 'addresses')];
  const objectKey = (key: string) => redisKey(prefix, `do:${key}`, 'holder');
  return {
    async lease(node, holder, leaseMs, address, renew) {
      return (await client.eval(REGISTER, 2, ...nodeKeys(node), holder, String(leaseMs), address, renew ? 'renew' : 'register')) === 1;
    },
    async live(node, holder) {
      return (await client.eval(LIVE, 2, ...nodeKeys(node), holder)) as [string, string] | null;
    },
    async record(key) {
      return (await client.get(objectKey(key))) ?? '';
    },
    async swap(key, expected, next) {
      return (await client.eval(SWAP, 1, objectKey(key), expected, next)) === 1;
    },
    async release(node, holder) {
      await client.zrem(nodeKeys(node)[0], holder);
    },
    async movedTo(node) {
      return client.get(redisKey(prefix, nodeTag(node), 'moved-to'));
    },
    async setMoved(node, to) {
      if (to === null) await client.del(redisKey(prefix, nodeTag(node), 'moved-to'));
      else await client.set(redisKey(prefix, nodeTag(node), 'moved-to'), to);
    },
  };
}

/** Refused: a node with a live process keeps its objects. */
export class NodeAliveError extends Error {}

export interface PlacementOptions {
  backend: PlacementBackend;
  node: string;
  logger: Logger;
  /** the holder lease (default 10 s): how long a dead process's objects wait before another
   *  process of its node takes them over */
  leaseMs?: number;
  /** what a lapse is blamed on, in messages ("Redis", "the node's placement file") */
  store?: string;
  /** the WebSocket host: with it, an object's WebSocket answered in another process is relayed */
  webSockets?: WebSocketHost;
}

export class LeasedObjectPlacement implements ObjectPlacement {
  private readonly backend: PlacementBackend;
  private readonly node: string;
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly store: string;
  private readonly webSockets: WebSocketHost | undefined;
  private holder = '';
  private address = '';
  private secret = '';
  /** performance.now() past which this process may not serve what it holds */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private closed = false;
  private readonly here = new Map<string, Fence>();
  private readonly remote = new Map<string, { to: RemoteHolder; until: number }>();
  private readonly locating = new Map<string, Promise<Whereabouts>>();
  // The holder answers within its event's wall limit; this only bounds a holder that hangs.
  // A streamed response (its outcome in a header) stays open as long as the object writes it.
  private readonly agent = new Agent({ connections: 64, keepAliveTimeout: 10_000, headersTimeout: 10 * 60_000, bodyTimeout: 0, maxHeaderSize: 4 * 1024 * 1024 });
  /** objects this process took over from a holder whose lease expired */
  takeovers = 0;
  /** a margin for clocks that run at slightly different rates (ours against Redis's) */
  private get driftMs(): number {
    return this.leaseMs / 20;
  }

  constructor(options: PlacementOptions) {
    this.backend = options.backend;
    this.node = options.node;
    this.logger = options.logger;
    this.leaseMs = options.leaseMs ?? DEFAULT_OBJECT_LEASE_MS;
    this.store = options.store ?? 'Redis';
    this.webSockets = options.webSockets;
    if (!this.webSockets) this.forwardSocket = undefined;
  }

  /** this process's holder identity now ('' before start) */
  get holderId(): string {
    return this.holder;
  }

  /** Take a lease (the internal endpoint listens at `address`), and keep it renewed. */
  async start(address: string, secret: string): Promise<void> {
    this.address = address;
    this.secret = secret;
    await this.register();
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 4)));
    this.timer.unref();
  }

  private async register(): Promise<void> {
    const holder = `${this.node}/${process.pid}/${randomBytes(4).toString('hex')}`;
    const sentAt = performance.now();
    await this.backend.lease(this.node, holder, this.leaseMs, this.address, false);
    this.holder = holder;
    this.here.clear();
    this.validUntil = sentAt + this.leaseMs - this.driftMs;
  }

  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      if (this.closed) return;
      const sentAt = performance.now();
      try {
        if (await this.backend.lease(this.node, this.holder, this.leaseMs, this.address, true)) {
          this.validUntil = sentAt + this.leaseMs - this.driftMs;
          return;
        }
        // The lease expired before we renewed it (Redis unreachable, the process paused): what
        // this identity held may already be another's. Start over as a new holder.
        this.logger.warn({ holder: this.holder }, 'Durable Object lease lapsed: this process held no object meanwhile; its objects are located again');
        await this.register();
      } catch (error) {
        if (performance.now() > this.validUntil) this.logger.warn({ err: (error as Error).message }, `Durable Object lease cannot be renewed (${this.store} unreachable): objects held here are refused until it is back`);
      }
    })().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private fence(token: number): Fence {
    const holder = this.holder;
    return {
      holder,
      token,
      validUntil: () => (this.holder === holder ? this.validUntil : -Infinity),
      check: () => {
        if (this.holder !== holder || performance.now() > this.validUntil) {
          throw new PlacementLostError(`this process (node "${this.node}") lost its Durable Object lease with ${this.store} and no longer holds the object; nothing was written`);
        }
      },
    };
  }

  locate(objectKey: string, className: string): Promise<Whereabouts> {
    if (performance.now() > this.validUntil) {
      return Promise.resolve({ unavailable: `Durable Object ${className}: node "${this.node}" cannot reach ${this.store} to locate it (its lease lapsed); try again shortly` });
    }
    const held = this.here.get(objectKey);
    if (held && held.holder === this.holder) return Promise.resolve({ here: held });
    const remote = this.remote.get(objectKey);
    if (remote && remote.until > Date.now()) return Promise.resolve({ remote: remote.to });
    let pending = this.locating.get(objectKey);
    if (!pending) {
      pending = this.lookUp(objectKey, className)
        .catch((error): Whereabouts => ({ unavailable: `Durable Object ${className}: node "${this.node}" cannot reach ${this.store} to locate it (${(error as Error).message}); try again shortly` }))
        .finally(() => this.locating.delete(objectKey));
      this.locating.set(objectKey, pending);
    }
    return pending;
  }

  private async lookUp(objectKey: string, className: string): Promise<Whereabouts> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const raw = await this.backend.record(objectKey);
      const record = raw ? (JSON.parse(raw) as HolderRecord) : null;
      if (record && record.holder === this.holder) return this.hold(objectKey, record.token);
      if (record) {
        const live = await this.backend.live(record.node, record.holder);
        if (live) return this.sendTo(objectKey, { holder: live[0], node: record.node, address: live[1] });
        // Its holder is gone. Its node keeps it, unless an operator moved that node's objects.
        const home = (await this.backend.movedTo(record.node)) ?? record.node;
        if (home !== this.node) {
          // A live process of the home node takes it over when it gets the event.
          const other = await this.backend.live(home, '');
          if (other) return this.sendTo(objectKey, { holder: other[0], node: home, address: other[1] });
          return { unavailable: `Durable Object ${className} is stored on node "${home}", which is unavailable (no live process there since its lease expired); requests for it fail until that node is back` };
        }
      }
      const movedAway = record ? null : await this.backend.movedTo(this.node);
      if (movedAway) {
        // This node's objects were moved away while it was down: it takes no new ones either
        // until the operator undoes that; the object goes to where they went.
        const home = movedAway;
        const other = await this.backend.live(home, '');
        if (other) return this.sendTo(objectKey, { holder: other[0], node: home, address: other[1] });
        return { unavailable: `Durable Object ${className}: this node's objects were moved to node "${home}", which is unavailable` };
      }
      // Unheld, or held by a dead process of this node (same data directory): claim it.
      const holder = this.holder;
      const next: HolderRecord = { holder, node: this.node, token: (record?.token ?? 0) + 1 };
      if (await this.backend.swap(objectKey, raw, JSON.stringify(next))) {
        if (record) {
          this.takeovers++;
          this.logger.info({ object: objectKey, from: record.holder, token: next.token }, `took over Durable Object ${className} from a process whose lease expired`);
        }
        // A lapse re-registered this process meanwhile: the record names the identity that is
        // over, so it is not held under the new one; looked at again (and claimed anew).
        if (this.holder === holder) return this.hold(objectKey, next.token);
        continue;
      }
      // Another process claimed it at the same moment: read again.
    }
    return { unavailable: `Durable Object ${className}: its placement keeps changing; try again shortly` };
  }

  private hold(objectKey: string, token: number): Whereabouts {
    // A cache, not the truth (the record is): bounded by starting over when it grows large.
    if (this.here.size >= MAX_CACHED) this.here.clear();
    const fence = this.fence(token);
    this.here.set(objectKey, fence);
    this.remote.delete(objectKey);
    return { here: fence };
  }

  private sendTo(objectKey: string, to: RemoteHolder): Whereabouts {
    if (this.remote.size >= MAX_CACHED) this.remote.clear();
    // Looked at again after a lease's time: a holder that went away is noticed without a failure.
    this.remote.set(objectKey, { to, until: Date.now() + this.leaseMs });
    return { remote: to };
  }

  /**
   * An operator moves a dead node's objects to another node (`to`, which takes each over, token
   * raised, at its next event). Refused while `from` has a live process. The data is not copied:
   * copy <data>/durable-objects/ of `from` to `to` first, or the objects start empty there.
   * `to` null undoes it (objects already moved stay where they are).
   */
  async reassign(from: string, to: string | null): Promise<void> {
    if (to !== null) {
      if (to === from) throw new NodeAliveError(`cannot move node "${from}"'s objects to itself`);
      if (await this.backend.live(from, '')) throw new NodeAliveError(`node "${from}" has a live process: its objects stay with it while it lives (stop it first)`);
    }
    await this.backend.setMoved(from, to);
    this.remote.clear();
    this.logger.warn({ from, to }, to === null ? `Durable Objects of node "${from}" are no longer moved` : `Durable Objects of node "${from}" moved to node "${to}" by the operator`);
  }

  forget(objectKey: string): void {
    this.remote.delete(objectKey);
  }

  async forward(to: RemoteHolder, event: ForwardedEvent): Promise<(DeliveryOutcome & { stream?: AsyncGenerator<Uint8Array, void, undefined> }) | typeof NOT_HELD> {
    const res = await request(`http://${to.address}${FORWARD_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.secret}`, 'content-type': 'application/octet-stream', 'x-cinder-holder': to.holder },
      body: serialize(event),
      dispatcher: this.agent,
    });
    const streamed = res.headers[OUTCOME_HEADER];
    if (res.statusCode === 200 && typeof streamed === 'string') {
      // A streamed response: its body is read as the calling guest reads it (body.read pulls
      // here), so the socket's flow control reaches back to the object's stream.
      let outcome: DeliveryOutcome;
      try {
        outcome = deserialize(Buffer.from(streamed, 'base64')) as DeliveryOutcome;
      } catch {
        res.body.destroy();
        throw new Error('the holder answered a streamed response without a readable outcome');
      }
      const body = res.body;
      const stream = (async function* () {
        try {
          for await (const chunk of body) yield new Uint8Array((chunk as Buffer).buffer, (chunk as Buffer).byteOffset, (chunk as Buffer).byteLength);
        } finally {
          // cancelled (or done): the holder sees the connection go and cancels the object's stream
          if (!body.destroyed) body.destroy();
        }
      })();
      return { ...outcome, stream };
    }
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 409) return NOT_HELD;
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${body.toString('utf8').slice(0, 300)}`);
    return deserialize(body) as DeliveryOutcome;
  }

  /**
   * A stub's fetch with `Upgrade: websocket` for an object another process holds: a WebSocket to
   * the holder's socket endpoint, which runs the fetch there and, if the object answers with a
   * WebSocket, joins this connection to it. The calling isolate then holds this connection as it
   * holds an outbound fetch's socket (WebSocketHost.adopt): returned in a 101, it is spliced to
   * the client; frames, closes and backpressure go both ways, bounded as every relay is.
   */
  forwardSocket? = async (to: RemoteHolder, event: ForwardedEvent): Promise<SocketDeliveryOutcome | typeof NOT_HELD> => {
    const webSockets = this.webSockets!;
    const payload = serialize(event);
    if (payload.length > MAX_SOCKET_EVENT_BYTES) {
      return { failure: `a WebSocket upgrade request to a Durable Object held by another process carries at most ${MAX_SOCKET_EVENT_BYTES} bytes of headers and body (this one: ${payload.length})` };
    }
    const ws = new WebSocket(`ws://${to.address}${SOCKET_PATH}`, {
      headers: { authorization: `Bearer ${this.secret}`, 'x-cinder-holder': to.holder, [EVENT_HEADER]: payload.toString('base64') },
      perMessageDeflate: false,
      maxPayload: webSockets.bounds.maxMessageBytes,
      handshakeTimeout: SOCKET_HANDSHAKE_TIMEOUT_MS,
      followRedirects: false,
      maxHeaderSize: 4 * 1024 * 1024,
    });
    let outcomeHeader: string | undefined;
    ws.once('upgrade', (res) => {
      const value = res.headers[OUTCOME_HEADER];
      outcomeHeader = typeof value === 'string' ? value : undefined;
    });
    return new Promise<SocketDeliveryOutcome | typeof NOT_HELD>((resolve, reject) => {
      ws.once('open', () => {
        // What arrives before the calling isolate takes the connection waits here.
        const early: EarlyEvent[] = [];
        const onMessage = (data: RawData, isBinary: boolean) => early.push({ data, isBinary });
        const onClose = (code: number, reason: Buffer) => early.push({ close: code, reason: reason.toString('utf8') });
        ws.on('message', onMessage);
        ws.on('close', onClose);
        const stopCollecting = () => {
          ws.off('message', onMessage);
          ws.off('close', onClose);
        };
        let outcome: SocketDeliveryOutcome;
        try {
          outcome = deserialize(Buffer.from(outcomeHeader ?? '', 'base64')) as SocketDeliveryOutcome;
        } catch {
          stopCollecting();
          ws.terminate();
          reject(new Error('the holder answered the WebSocket upgrade without an outcome'));
          return;
        }
        if (outcome.result && 'response' in outcome.result) this.logger.debug({ pid: process.pid, object: `${event.dir}/${event.id}`, holder: to.holder }, 'Durable Object WebSocket relayed to the process holding the object');
        let settled = false;
        outcome.socket = {
          attach: (owner, socketId) => {
            if (settled) return false;
            settled = true;
            stopCollecting();
            return webSockets.adopt(owner, socketId, ws, early, { refusal: HAND_OFF_ONLY, timeoutMs: HAND_OFF_TIMEOUT_MS });
          },
          close: () => {
            if (settled) return;
            settled = true;
            stopCollecting();
            ws.close(1001, 'the calling worker did not take the WebSocket');
          },
        };
        resolve(outcome);
      });
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(error));
        res.on('end', () => {
          ws.terminate();
          const body = Buffer.concat(chunks);
          if (res.statusCode === 409) return resolve(NOT_HELD);
          if (res.statusCode !== 200) return reject(new Error(`${res.statusCode} ${body.toString('utf8').slice(0, 300)}`));
          try {
            resolve(deserialize(body) as DeliveryOutcome);
          } catch {
            reject(new Error('the holder answered the WebSocket upgrade with a malformed outcome'));
          }
        });
      });
      ws.on('error', (error) => reject(error));
    });
  };

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing?.catch(() => {});
    // Gone at once rather than after the lease: the node's other processes take over now.
    if (this.holder) await this.backend.release(this.node, this.holder).catch(() => {});
    this.validUntil = 0;
    await this.agent.close().catch(() => {});
  }
}

/** A secret every node shares, made by the first to ask (kept in Redis); `seed`: the one to make
 *  it from (a node's own id secret from before it used Redis, so the ids it handed out stay valid). */
export async function sharedSecret(client: RedisClient, name: string, prefix = 'cinder', seed?: Buffer): Promise<Buffer> {
  const key = redisKey(prefix, 'do', name);
  await client.set(key, (seed ?? randomBytes(32)).toString('hex'), 'NX');
  const hex = await client.get(key);
  if (!hex || !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`Redis key ${key} does not hold a secret (64 hex digits)`);
  return Buffer.from(hex, 'hex');
}

/** Each worker's Durable Object classes in Redis: `cinder:{do}:classes:<account>/<script>`. */
export function redisSharedClasses(client: RedisClient, prefix = 'cinder'): SharedClasses {
  const key = (account: string, script: string) => redisKey(prefix, 'do', `classes:${encodeURIComponent(account)}/${encodeURIComponent(script)}`);
  return {
    async get(account, script) {
      const raw = await client.get(key(account, script));
      return raw ? (JSON.parse(raw) as ScriptClasses) : null;
    },
    async put(account, script, base, next) {
      return (await client.eval(SWAP, 1, key(account, script), base ? JSON.stringify(base) : '', JSON.stringify(next))) === 1;
    },
  };
}
