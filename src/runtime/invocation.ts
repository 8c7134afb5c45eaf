// One invocation of a worker (a fetch or scheduled event) while it runs: what it used so far, the
// limit that ended it if one did, and the record it leaves when it ends.
import { LimitExceededError, type LimitKind } from '../model/limits.js';
import type { GuestException } from '../../protocol/wall.js';
import type { OpInvocation } from './contract.js';
import type { InvocationPlace } from '../model/request-tree.js';
import { LogBudget } from './log-budget.js';

export type Outcome = 'ok' | 'exception' | 'exceededCpu' | 'exceededWall' | 'exceededMemory' | 'canceled';

/** What one invocation used: the metering record (usage, metrics and tail read it). */
export interface InvocationRecord {
  worker: string;
  version: string;
  requestId: string;
  /** 'websocket': one event (a message, a close) delivered to a WebSocket's guest end;
   *  'durable-object': an event of a Durable Object (stub fetch, RPC call or alarm);
   *  'rpc': a method call on a WorkerEntrypoint through a service binding */
  kind: InvocationKind;
  outcome: Outcome;
  cpuMs: number;
  wallMs: number;
  subrequests: number;
  bytesIn: number;
  bytesOut: number;
  /** isolate heap in use (bytes, incl. external) near the end of the invocation */
  memoryBytes: number;
  /** the isolate's peak heap so far (bytes) */
  peakMemoryBytes: number;
  /** console lines dropped over the per-invocation log budget (log-budget.ts) */
  logLinesDropped?: number;
  /** host CPU spent for it outside its isolate (key generation; opening a Durable Object's file), ms */
  hostWorkMs?: number;
  /** what the guest threw, when outcome is "exception" (live tail shows it with its stack) */
  exception?: GuestException;
  /** what started it: the request (and the status answered) or the cron */
  trigger?: InvocationTrigger;
}

export type InvocationKind = 'fetch' | 'scheduled' | 'queue' | 'websocket' | 'durable-object' | 'rpc';

export type InvocationTrigger = { method: string; url: string; status?: number } | { cron: string; scheduledTime: number } | { queue: string; messages: number };

let nextInvocationId = 1;

export class Invocation implements OpInvocation {
  readonly id = nextInvocationId++;
  cpuNs = 0n;
  subrequests = 0;
  bytesIn = 0;
  bytesOut = 0;
  hostWorkMs = 0;
  readonly startedAt = performance.now();
  private abortWith!: (error: LimitExceededError) => void;
  /** rejects when a limit ends this invocation early */
  readonly aborted: Promise<never>;
  limit: LimitExceededError | null = null;
  /** what its console may still write to the host log */
  readonly logBudget = new LogBudget();
  exception?: GuestException;
  trigger?: InvocationTrigger;

  private markFlushed: (() => void) | null = null;
  private flushedAlready = false;

  constructor(
    readonly requestId: string,
    readonly kind: InvocationKind,
    /** the top-level request this invocation serves, shared with the workers it calls */
    readonly place: InvocationPlace,
  ) {
    this.aborted = new Promise<never>((_, reject) => {
      this.abortWith = reject;
    });
    this.aborted.catch(() => {});
  }

  /** The guest's 'flush' message arrived: the console lines it sent before it are delivered. */
  flush(): void {
    this.flushedAlready = true;
    this.markFlushed?.();
  }

  /** Resolves once the 'flush' message has arrived (it may already have). */
  flushed(): Promise<void> {
    if (this.flushedAlready) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.markFlushed = resolve;
    });
  }

  abort(limit: LimitKind): void {
    if (this.limit) return;
    this.limit = new LimitExceededError(limit);
    this.abortWith(this.limit);
    this.controller?.abort(this.limit);
  }

  private controller: AbortController | null = null;

  /** Aborted when a limit ends it early: ops stop work they run for it elsewhere (made on first use). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.limit) this.controller.abort(this.limit);
    }
    return this.controller.signal;
  }

  get cpuMs(): number {
    return Number(this.cpuNs) / 1e6;
  }
}

export function outcomeOf(limit: LimitKind): Outcome {
  switch (limit) {
    case 'cpu':
      return 'exceededCpu';
    case 'memory':
      return 'exceededMemory';
    case 'wall':
      return 'exceededWall';
    default:
      return 'exception';
  }
}
