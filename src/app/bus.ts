// How the serving processes of one platform tell each other what changed: a deploy (reload this
// worker from the store), a KV write (drop your cached read), a tail subscriber's interest and the
// tail events it asked for. Fire-and-forget messages on named topics; a message never comes back
// to the process that sent it.
//
// - one process alone: nothing to tell (LocalBus);
// - several processes of one node (`--processes N`, no Redis): relayed by the supervisor over
//   the IPC channel it already has with each child (IpcBus, supervisor.ts relays);
// - several nodes (`--redis`): Redis pub/sub, which every process of every node subscribes to
//   (RedisBus), so one mechanism reaches local and remote processes alike.
//
// Pub/sub loses what is sent while a subscriber is disconnected: whatever must not be missed
// (deploys) is also reconciled from the store after a reconnect and periodically (scale.ts).
import { createRedisClient, type RedisClient } from '../store/redis-connect.js';

export type BusHandler = (data: unknown) => void;

export interface Bus {
  readonly kind: 'local' | 'ipc' | 'redis';
  publish(topic: string, data: unknown): void;
  subscribe(topic: string, handler: BusHandler): void;
  /** called after the bus reconnected (messages may have been missed meanwhile) */
  onReconnect(listener: () => void): void;
  close(): Promise<void>;
}

/** The envelope a bus message travels in (over IPC and Redis alike). */
export interface BusMessage {
  type: 'bus';
  topic: string;
  data: unknown;
  /** the sending process: its own messages are not delivered back to it */
  origin: string;
}

export const processOrigin = (nodeId: string) => `${nodeId}/${process.pid}`;

abstract class HandlerTable {
  protected readonly handlers = new Map<string, BusHandler[]>();
  protected readonly reconnectListeners: (() => void)[] = [];

  subscribe(topic: string, handler: BusHandler): void {
    const list = this.handlers.get(topic) ?? [];
    list.push(handler);
    this.handlers.set(topic, list);
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  protected deliver(topic: string, data: unknown): void {
    for (const handler of this.handlers.get(topic) ?? []) {
      try {
        handler(data);
      } catch {
        // A failing handler must not stop the others (each logs its own failures).
      }
    }
  }
}

export class LocalBus extends HandlerTable implements Bus {
  readonly kind = 'local' as const;
  publish(): void {}
  async close(): Promise<void> {}
}

/** A child of the supervisor: messages go up the IPC channel, the supervisor sends them to the others. */
export class IpcBus extends HandlerTable implements Bus {
  readonly kind = 'ipc' as const;
  private readonly listener = (message: BusMessage) => {
    if (message && message.type === 'bus' && typeof message.topic === 'string' && message.origin !== this.origin) this.deliver(message.topic, message.data);
  };

  constructor(private readonly origin: string) {
    super();
    process.on('message', this.listener);
  }

  publish(topic: string, data: unknown): void {
    if (process.connected) process.send!({ type: 'bus', topic, data, origin: this.origin } satisfies BusMessage);
  }

  async close(): Promise<void> {
    process.off('message', this.listener);
  }
}

/**
 * Redis pub/sub on one channel per topic. A subscribed connection can issue nothing else, so it
 * has its own; publishing goes through the store's client. With Redis down a publish is dropped
 * (logged by the caller's client errors); subscribers reconcile once it is back.
 *
 * On a Redis Cluster the channels are the cluster-wide kind (SUBSCRIBE/PUBLISH, not the sharded
 * SSUBSCRIBE): a message published on any node reaches subscribers on every node, and ioredis
 * re-subscribes on another node if the one it listens on goes away.
 */
export class RedisBus extends HandlerTable implements Bus {
  readonly kind = 'redis' as const;
  private readonly subscriber: RedisClient;
  private readonly publisher: RedisClient;
  private readonly channels = new Set<string>();
  private connectedOnce = false;

  constructor(
    url: string,
    private readonly origin: string,
    private readonly prefix = 'cinder:bus:',
  ) {
    super();
    const options = { maxRetriesPerRequest: 1, enableOfflineQueue: true, retryStrategy: (times: number) => Math.min(50 * times, 1000), lazyConnect: false };
    this.subscriber = createRedisClient(url, options);
    this.publisher = createRedisClient(url, { ...options, enableOfflineQueue: false });
    for (const client of [this.subscriber, this.publisher]) client.on('error', () => {});
    this.subscriber.on('ready', () => {
      if (this.connectedOnce) for (const listener of this.reconnectListeners) listener();
      this.connectedOnce = true;
    });
    this.subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
      let message: BusMessage;
      try {
        message = JSON.parse(payload.toString('utf8')) as BusMessage;
      } catch {
        return;
      }
      if (message.origin === this.origin) return;
      this.deliver(channel.toString('utf8').slice(this.prefix.length), message.data);
    });
  }

  /** Resolves once the subscriptions are in place (a message sent before that would be missed). */
  async ready(): Promise<void> {
    await Promise.all([...this.channels].map((channel) => this.subscriber.subscribe(channel)));
  }

  override subscribe(topic: string, handler: BusHandler): void {
    super.subscribe(topic, handler);
    const channel = this.prefix + topic;
    if (!this.channels.has(channel)) {
      this.channels.add(channel);
      // ioredis re-subscribes by itself after a reconnect.
      this.subscriber.subscribe(channel).catch(() => {});
    }
  }

  publish(topic: string, data: unknown): void {
    const message: BusMessage = { type: 'bus', topic, data, origin: this.origin };
    this.publisher.publish(this.prefix + topic, JSON.stringify(message)).catch(() => {});
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    this.publisher.disconnect();
  }
}
