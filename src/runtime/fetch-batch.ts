// Light fetch events that arrive together enter their isolate in one batch. A synchronous entry
// into an isolate costs ~40-130 us of this thread's time under load before any work (the lock,
// the timeout's timer, the promise plumbing, the copies), against ~6 us for a hello world's own
// dispatch; batching pays that once for up to MAX_BATCH events.
//
// Once two or more events for the isolate arrived in one turn of the event loop, the owner queues
// its light ones here (see WorkerInstance.dispatchFetch); at the end of the turn (setImmediate)
// each batch goes in with two calls: the guest's dispatchBatch starts every event, and V8 runs
// their microtasks before the call returns, so every handler that needed nothing from the host has
// settled; takeSettled hands those answers back. A handler still waiting (on a binding, a timer, a
// body) answers later by a 'settled' message (settled below).
import type ivm from 'isolated-vm';
import type { WireRequest } from '../../protocol/wall.js';
import { parseJsonOrUndefined } from './guest-wire.js';

/** At most this many fetch events enter an isolate in one batch... */
const MAX_BATCH = 16;
/** ...whose time bound is the CPU limit plus this much for each event after the first. */
const BATCH_HEADROOM_MS = 2;

/** The part of an invocation the batcher touches. */
export interface BatchedInvocation {
  readonly id: number;
  /** set once the handler waits on the host: its guest code goes on on isolated-vm's threads */
  offThread: boolean;
}

/** What the batcher needs of the worker instance that owns the isolate. */
export interface BatchOwner<I extends BatchedInvocation> {
  readonly dispatchBatch: ivm.Reference<Function>;
  readonly takeSettled: ivm.Reference<Function>;
  /** the isolate is alive and no guest code can be running in it on another thread */
  canEnterSynchronously(): boolean;
  /** enter for one event the usual way (synchronously when allowed, unless `mayEnterSync` is false) */
  enterAlone(invocation: I, request: WireRequest, mayEnterSync: boolean): Promise<unknown>;
  /** after a synchronous entry: share out the CPU it used, and enforce the limit */
  chargeSync(invocations: I[]): void;
  /** wall-time bound of one synchronous entry (the CPU limit) */
  readonly syncTimeoutMs: number;
  /** counters of how events entered */
  readonly entries: { batched: number; batches: number };
}

interface Queued<I> {
  invocation: I;
  request: WireRequest;
  answer: (value: unknown) => void;
  fail: (error: unknown) => void;
}

export class FetchBatcher<I extends BatchedInvocation> {
  private queue: Queued<I>[] = [];
  /** events dispatched in this turn of the event loop, and in the previous turn that had any */
  private arrivalsThisTurn = 0;
  private arrivalsLastTurn = 0;
  /** batched events whose answer has not come back yet, by invocation id */
  private readonly awaiting = new Map<number, (answer: unknown) => void>();

  constructor(private readonly owner: BatchOwner<I>) {}

  /**
   * Count a fetch event's arrival and say whether it should wait for this turn's batch: only once
   * events were seen arriving together (two or more in the previous turn). One on its own goes in
   * at once: waiting for the end of the turn would expose it to whatever else the turn does. (A
   * synchronous entry completes its answer before it returns, so "others in flight" says nothing
   * about concurrency.)
   */
  arrive(): boolean {
    const together = this.queue.length > 0 || this.arrivalsLastTurn >= 2;
    if (this.arrivalsThisTurn++ === 0) setImmediate(this.endTurn);
    return together;
  }

  /** Queue an event for the end of this turn; resolves to the guest's answer. */
  enqueue(invocation: I, request: WireRequest): Promise<unknown> {
    return new Promise((answer, fail) => {
      if (this.queue.length === 0) setImmediate(this.flush);
      this.queue.push({ invocation, request, answer, fail });
    });
  }

  /** A batched event's answer, from takeSettled or a later 'settled' message. */
  settled(invocationId: number, answer: unknown): void {
    const deliver = this.awaiting.get(invocationId);
    if (!deliver) return;
    this.awaiting.delete(invocationId);
    deliver(answer);
  }

  /** The invocation ended (answered, or cut by a limit): no answer is expected any more. */
  forget(invocationId: number): void {
    this.awaiting.delete(invocationId);
  }

  private readonly endTurn = (): void => {
    this.arrivalsLastTurn = this.arrivalsThisTurn;
    this.arrivalsThisTurn = 0;
  };

  private readonly flush = (): void => {
    const queued = this.queue;
    this.queue = [];
    const waiting: I[] = [];
    for (let from = 0; from < queued.length; from += MAX_BATCH) waiting.push(...this.enter(queued.slice(from, from + MAX_BATCH)));
    // Handlers still waiting go on on isolated-vm's threads once the host answers them, which
    // cannot happen before this returns (the host runs their calls on this thread): so they were
    // no reason to hold back the later batches above, and are marked only now.
    for (const invocation of waiting) invocation.offThread = true;
  };

  /** Enter the isolate once for a batch; returns the invocations still waiting on the host. */
  private enter(batch: Queued<I>[]): I[] {
    const { owner } = this;
    const invocations = batch.map((item) => item.invocation);
    // Whatever happened since they were queued (an event sent asynchronously meanwhile, say) may
    // have put guest code on another thread: then each goes in asynchronously.
    if (!owner.canEnterSynchronously()) {
      for (const item of batch) item.answer(owner.enterAlone(item.invocation, item.request, false));
      return [];
    }
    // A batch of one is a plain synchronous entry (one call instead of two).
    if (batch.length === 1) {
      batch[0].answer(owner.enterAlone(batch[0].invocation, batch[0].request, true));
      return [];
    }
    let json = '[';
    for (let i = 0; i < batch.length; i++) {
      const { invocation, request, answer } = batch[i];
      json += `${i ? ',' : ''}[${invocation.id},${JSON.stringify(request)}]`;
      this.awaiting.set(invocation.id, answer);
    }
    json += ']';
    owner.entries.batches++;
    owner.entries.batched += batch.length;
    // One handler may use up to the CPU limit; the others are light (they would not be batched
    // otherwise), each given a little headroom. A spinning handler ends the batch at this bound.
    const timeout = owner.syncTimeoutMs + (batch.length - 1) * BATCH_HEADROOM_MS;
    let settled: unknown;
    try {
      owner.dispatchBatch.applySync(undefined, [json], { timeout });
      settled = owner.takeSettled.applySync(undefined, [], { result: { copy: true } });
    } catch (error) {
      for (const item of batch) {
        this.awaiting.delete(item.invocation.id);
        item.fail(error);
      }
      return [];
    } finally {
      owner.chargeSync(invocations);
    }
    // The guest is untrusted: take only well-formed entries ([invocationId, answer]).
    const answers = typeof settled === 'string' ? parseJsonOrUndefined(settled) : settled;
    if (Array.isArray(answers)) {
      for (const entry of answers) if (Array.isArray(entry)) this.settled(Number(entry[0]), entry[1]);
    }
    return invocations.filter((invocation) => this.awaiting.has(invocation.id));
  }
}
