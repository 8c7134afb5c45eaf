// Queue consumers: for each queue a worker consumes (wrangler's queues.consumers), batches of up
// to max_batch_size messages go to the worker's queue() handler once that many are waiting or the
// oldest has waited max_batch_timeout seconds. What the handler decides is applied: acknowledged
// messages are deleted; retried ones (or all undecided ones when the handler threw) come back
// after their delay (the message's own, else retry_delay, else an exponential backoff), and once
// a message has been delivered max_retries + 1 times it goes to the dead-letter queue (or is
// dropped when there is none). One batch per consumer at a time; a batch's messages are leased,
// so a node that dies mid-batch leaves them to be delivered again.
import type { QueueDispatchResult, WireQueueMessage } from '../../protocol/wall.js';
import type { QueueBackend, QueueRef, StoredMessage } from './store.js';
import { decodeBody } from './codec.js';

export interface ConsumerConfig {
  queue: string;
  /** messages per batch (default 10, at most 100) */
  maxBatchSize?: number;
  /** seconds to wait for a full batch (default 5, at most 60) */
  maxBatchTimeout?: number;
  /** deliveries after the first before a message is given up (default 3, at most 100) */
  maxRetries?: number;
  /** where given-up messages go (default: dropped) */
  deadLetterQueue?: string;
  /** seconds before a retried message is delivered again (default: backoff 1, 2, 4 ... 60 s) */
  retryDelay?: number;
}

export type DispatchBatch = (worker: string, queue: string, messages: WireQueueMessage[]) => Promise<{ outcome: 'ok' | 'exception' | 'limit'; result?: QueueDispatchResult; error?: string }>;

export interface QueueStats {
  delivered: number;
  acked: number;
  retried: number;
  deadLettered: number;
  dropped: number;
  batches: number;
  failedBatches: number;
}

interface Consumer {
  worker: string;
  account: string;
  config: Required<Omit<ConsumerConfig, 'deadLetterQueue' | 'retryDelay'>> & Pick<ConsumerConfig, 'deadLetterQueue' | 'retryDelay'>;
  busy: boolean;
}

export interface QueueConsumersOptions {
  store: QueueBackend;
  dispatch: DispatchBatch;
  /** how often waiting queues are looked at (ms, default 100) */
  pollMs?: number;
  /** how long a batch's messages stay hidden while its handler runs (ms, default 15 min: Workers' consumer wall limit) */
  leaseMs?: number;
  onError?: (error: unknown, consumer: { worker: string; queue: string }) => void;
}

export function checkConsumer(raw: ConsumerConfig, where: string): Consumer['config'] {
  const int = (value: unknown, name: string, min: number, max: number, fallback: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new Error(`${where}.${name} must be an integer from ${min} to ${max}`);
    return value;
  };
  if (typeof raw.queue !== 'string' || !raw.queue) throw new Error(`${where}.queue must name a queue`);
  return {
    queue: raw.queue,
    maxBatchSize: int(raw.maxBatchSize, 'max_batch_size', 1, 100, 10),
    maxBatchTimeout: int(raw.maxBatchTimeout, 'max_batch_timeout', 0, 60, 5),
    maxRetries: int(raw.maxRetries, 'max_retries', 0, 100, 3),
    deadLetterQueue: raw.deadLetterQueue,
    retryDelay: raw.retryDelay === undefined ? undefined : int(raw.retryDelay, 'retry_delay', 0, 43_200, 0),
  };
}

export class QueueConsumers {
  readonly #store: QueueBackend;
  readonly #dispatch: DispatchBatch;
  readonly #leaseMs: number;
  readonly #onError: QueueConsumersOptions['onError'];
  readonly #byWorker = new Map<string, Consumer[]>();
  readonly #timer: NodeJS.Timeout;
  readonly #inFlight = new Set<Promise<void>>();
  readonly stats = new Map<string, QueueStats>();
  #closed = false;

  constructor(options: QueueConsumersOptions) {
    this.#store = options.store;
    this.#dispatch = options.dispatch;
    this.#leaseMs = options.leaseMs ?? 15 * 60_000;
    this.#onError = options.onError;
    this.#timer = setInterval(() => this.poll(), options.pollMs ?? 100);
    this.#timer.unref();
  }

  /** The queues `worker` of `account` consumes (replacing what it consumed before). */
  set(worker: string, account: string, configs: ConsumerConfig[]): void {
    const consumers = configs.map((config, i) => ({ worker, account, config: checkConsumer(config, `queues.consumers[${i}]`), busy: false }));
    if (consumers.length) this.#byWorker.set(worker, consumers);
    else this.#byWorker.delete(worker);
  }

  remove(worker: string): void {
    this.#byWorker.delete(worker);
  }

  /** A send landed: look at that queue now rather than at the next poll. */
  wake(ref: QueueRef): void {
    for (const consumers of this.#byWorker.values()) for (const consumer of consumers) if (consumer.account === ref.account && consumer.config.queue === ref.queue) this.#consider(consumer);
  }

  poll(): void {
    for (const consumers of this.#byWorker.values()) for (const consumer of consumers) this.#consider(consumer);
  }

  statsOf(account: string, queue: string): QueueStats {
    const key = `${account}\0${queue}`;
    let stats = this.stats.get(key);
    if (!stats) this.stats.set(key, (stats = { delivered: 0, acked: 0, retried: 0, deadLettered: 0, dropped: 0, batches: 0, failedBatches: 0 }));
    return stats;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#inFlight]);
  }

  #consider(consumer: Consumer): void {
    if (consumer.busy || this.#closed) return;
    consumer.busy = true;
    const ref = { account: consumer.account, queue: consumer.config.queue };
    const run: Promise<void> = this.#maybeRunBatch(consumer, ref)
      .catch((error) => {
        this.#onError?.(error, { worker: consumer.worker, queue: ref.queue });
        return false;
      })
      .then((ran) => {
        consumer.busy = false;
        this.#inFlight.delete(run);
        // After a batch more may be waiting already; otherwise the next poll or send looks again.
        if (ran && !this.#closed) queueMicrotask(() => this.#consider(consumer));
      });
    this.#inFlight.add(run);
  }

  async #maybeRunBatch(consumer: Consumer, ref: QueueRef): Promise<boolean> {
    const { count, oldestAgeMs } = await this.#store.visible(ref, consumer.config.maxBatchSize, this.#leaseMs);
    if (count === 0) return false;
    if (count < consumer.config.maxBatchSize && oldestAgeMs < consumer.config.maxBatchTimeout * 1000) return false;
    await this.#runBatch(consumer, ref);
    return true;
  }

  async #runBatch(consumer: Consumer, ref: QueueRef): Promise<void> {
    const leased = await this.#store.lease(ref, consumer.config.maxBatchSize, this.#leaseMs);
    if (!leased.length) return;
    const stats = this.statsOf(ref.account, ref.queue);
    stats.batches++;
    stats.delivered += leased.length;
    const messages: WireQueueMessage[] = [];
    const undecodable: StoredMessage[] = [];
    for (const row of leased) {
      try {
        messages.push({ id: row.id, timestamp: row.created, body: decodeBody(row.body, row.contentType), attempts: row.attempts });
      } catch {
        undecodable.push(row);
      }
    }
    for (const row of undecodable) await this.#giveUp(consumer, ref, row, stats);
    if (!messages.length) return;
    const answer = await this.#dispatch(consumer.worker, ref.queue, messages);
    if (answer.outcome !== 'ok') stats.failedBatches++;
    const byId = new Map(leased.map((row) => [row.id, row]));
    const acked = new Set(answer.result?.acked ?? []);
    const retried = new Map((answer.result?.retried ?? []).map(([id, delay]) => [id, delay]));
    const toAck: StoredMessage[] = [];
    for (const message of messages) {
      const row = byId.get(message.id)!;
      // A handler that ended at a limit (or gave no answer) has every message retried.
      if (acked.has(message.id) && answer.result) {
        toAck.push(row);
        stats.acked++;
        continue;
      }
      const delay = retried.get(message.id) ?? null;
      if (row.attempts > consumer.config.maxRetries) {
        await this.#giveUp(consumer, ref, row, stats);
        continue;
      }
      stats.retried++;
      await this.#store.retry(ref, row, this.#retryDelayMs(consumer, row.attempts, delay));
    }
    if (toAck.length) await this.#store.ack(ref, toAck);
  }

  #retryDelayMs(consumer: Consumer, attempts: number, delaySeconds: number | null): number {
    if (delaySeconds !== null) return delaySeconds * 1000;
    if (consumer.config.retryDelay !== undefined) return consumer.config.retryDelay * 1000;
    return Math.min(60, 2 ** (attempts - 1)) * 1000;
  }

  async #giveUp(consumer: Consumer, ref: QueueRef, row: StoredMessage, stats: QueueStats): Promise<void> {
    if (consumer.config.deadLetterQueue) {
      await this.#store.moveTo(ref, row, consumer.config.deadLetterQueue);
      stats.deadLettered++;
      this.wake({ account: consumer.account, queue: consumer.config.deadLetterQueue });
    } else {
      await this.#store.ack(ref, [row]);
      stats.dropped++;
    }
  }
}
