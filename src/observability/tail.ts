// Live tail: a hub that turns the runtime's invocation records and console lines into tail
// events and hands each to the subscribers of that worker only. With nobody tailing a worker it
// costs one map lookup per event. `GET /workers/:name/tail` (server-sent events) and
// `cinder tail` sit on top.
import type { LogLevel } from '../../protocol/wall.js';
import type { InvocationKind, InvocationRecord, InvocationTrigger, Outcome } from '../runtime/invocation.js';

export interface TailLogEvent {
  type: 'log';
  timestamp: number;
  worker: string;
  requestId: string;
  level: LogLevel;
  message: string;
}

export interface TailExceptionEvent {
  type: 'exception';
  timestamp: number;
  worker: string;
  version: string;
  requestId: string;
  name: string;
  message: string;
  stack: string;
}

/** One invocation's summary, sent when it ends (after its logs and exception). */
export interface TailInvocationEvent {
  type: 'invocation';
  timestamp: number;
  worker: string;
  version: string;
  requestId: string;
  kind: InvocationKind;
  outcome: Outcome;
  cpu_ms: number;
  wall_ms: number;
  subrequests: number;
  bytes_in: number;
  bytes_out: number;
  memory_bytes: number;
  /** fetch: the request and the status answered */
  request?: { method: string; url: string; status?: number };
  /** scheduled: the cron and when it was due */
  cron?: string;
  scheduled_time?: number;
  /** queue: the queue and how many messages the batch held */
  queue?: string;
  messages?: number;
}

export type TailEvent = TailLogEvent | TailExceptionEvent | TailInvocationEvent;

export type TailListener = (event: TailEvent) => void;

/** What the hub listens to (the Runtime). */
export interface TailSource {
  onInvocation(listener: (record: InvocationRecord) => void): void;
  onConsole(listener: (worker: string, requestId: string, level: LogLevel, message: string) => void): void;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

export class TailHub {
  private readonly subscribers = new Map<string, Set<TailListener>>();
  /** listeners that pass this process's events on to other processes (scale.ts): they hear local
   *  events only, and are not subscribers (they do not ask other processes for events) */
  private readonly relays = new Map<string, Set<TailListener>>();

  constructor(source?: TailSource) {
    if (source) this.attach(source);
  }

  attach(source: TailSource): void {
    source.onInvocation((record) => this.invocation(record));
    source.onConsole((worker, requestId, level, message) => this.console(worker, requestId, level, message));
  }

  /** Receive `worker`'s events until the returned function is called. */
  private readonly subscribeListeners: ((worker: string) => void)[] = [];

  /** Hear of each new subscriber (scale.ts asks the other processes for that worker's events). */
  onSubscribe(listener: (worker: string) => void): void {
    this.subscribeListeners.push(listener);
  }

  subscribe(worker: string, listener: TailListener): () => void {
    let set = this.subscribers.get(worker);
    if (!set) this.subscribers.set(worker, (set = new Set()));
    set.add(listener);
    for (const hear of this.subscribeListeners) hear(worker);
    return () => {
      const current = this.subscribers.get(worker);
      if (!current) return;
      current.delete(listener);
      if (!current.size) this.subscribers.delete(worker);
    };
  }

  /** Subscribers of one worker, or of all. */
  /** Pass this process's events of `worker` to `listener` (another process asked for them). */
  relay(worker: string, listener: TailListener): () => void {
    let set = this.relays.get(worker);
    if (!set) this.relays.set(worker, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.relays.get(worker);
      if (!current) return;
      current.delete(listener);
      if (!current.size) this.relays.delete(worker);
    };
  }

  /** An event of another process or node: to this process's subscribers only. */
  deliverRemote(event: TailEvent): void {
    const set = this.subscribers.get(event.worker);
    if (set) this.emit(set, event);
  }

  /** Workers someone tails here. */
  tailedWorkers(): string[] {
    return [...this.subscribers.keys()];
  }

  subscriberCount(worker?: string): number {
    if (worker !== undefined) return this.subscribers.get(worker)?.size ?? 0;
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  console(worker: string, requestId: string, level: LogLevel, message: string): void {
    const set = this.listenersOf(worker);
    if (!set) return;
    this.emit(set, { type: 'log', timestamp: Date.now(), worker, requestId, level, message });
  }

  /** Subscribers and relays of a worker, or null when nobody listens (the common case: cheap). */
  private listenersOf(worker: string): Set<TailListener> | null {
    const subscribers = this.subscribers.get(worker);
    const relays = this.relays.get(worker);
    if (!relays) return subscribers ?? null;
    if (!subscribers) return relays;
    return new Set([...subscribers, ...relays]);
  }

  invocation(record: InvocationRecord): void {
    const set = this.listenersOf(record.worker);
    if (!set) return;
    const timestamp = Date.now();
    if (record.exception) {
      const { name, message, stack } = record.exception;
      this.emit(set, { type: 'exception', timestamp, worker: record.worker, version: record.version, requestId: record.requestId, name, message, stack });
    }
    const event: TailInvocationEvent = {
      type: 'invocation',
      timestamp,
      worker: record.worker,
      version: record.version,
      requestId: record.requestId,
      kind: record.kind,
      outcome: record.outcome,
      cpu_ms: round3(record.cpuMs),
      wall_ms: round3(record.wallMs),
      subrequests: record.subrequests,
      bytes_in: record.bytesIn,
      bytes_out: record.bytesOut,
      memory_bytes: record.memoryBytes,
    };
    const trigger: InvocationTrigger | undefined = record.trigger;
    if (trigger && 'cron' in trigger) {
      event.cron = trigger.cron;
      event.scheduled_time = trigger.scheduledTime;
    } else if (trigger && 'queue' in trigger) {
      event.queue = trigger.queue;
      event.messages = trigger.messages;
    } else if (trigger) {
      event.request = { method: trigger.method, url: trigger.url, status: trigger.status };
    }
    this.emit(set, event);
  }

  private emit(set: Set<TailListener>, event: TailEvent): void {
    for (const listener of set) {
      try {
        listener(event);
      } catch {
        // A broken subscriber must not break the invocation that produced the event.
      }
    }
  }
}
