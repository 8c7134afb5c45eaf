// How an event enters its isolate: always asynchronously, on one of isolated-vm's threads (DESIGN
// rule 2: guest code never runs on the thread that serves requests). This thread only queues the
// call and later receives the answer; a handler that spins, a V8 builtin that runs long, a first
// entry that compiles half the worker: none of it holds this thread, and the CPU limit is enforced
// by the watchdog on the isolate thread's CPU clock (cpu-meter.ts), not by a wall-time timeout.
//
// Earlier versions entered light handlers synchronously (applySync with a timeout equal to the
// CPU limit, in wall time) and batched light requests that arrived together. Both held this thread
// for the guest's run, and on a loaded machine the wall-time timeout fired on handlers that had
// used a fraction of a millisecond of CPU. bench/README.md has the A/B of the change. Requests that
// arrive together are batched again now (FetchBatch), but asynchronously like any entry: this
// thread still only queues the batch and takes its answer.
import type ivm from 'isolated-vm';

export interface EntryCounts {
  /** events entered (all of them asynchronously, on isolated-vm's threads) */
  async: number;
  /** crossings that carried several fetch events at once (FetchBatch), and the events they carried */
  batches: number;
  batched: number;
}

/** The same options object for every entry (isolated-vm reads it on each call; no allocation). */
const ENTRY_OPTIONS = { result: { promise: true, copy: true } } as const;

export class EntryPolicy {
  readonly entries: EntryCounts = { async: 0, batches: 0, batched: 0 };

  /** Enter the isolate for an event, on isolated-vm's threads; resolves to the entry's copied answer. */
  enter(entry: ivm.Reference<Function>, args: unknown[]): Promise<unknown> {
    this.entries.async++;
    return entry.apply(undefined, args, ENTRY_OPTIONS);
  }
}

/** Most requests one crossing carries: a batch answers when all of its requests have, so this
 *  bounds how long the first one's answer waits for the others'. */
const MAX_BATCH = 16;

interface BatchedFetch {
  id: number;
  request: string;
  resolve: (answer: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Bodyless fetch events for one isolate that arrive in the same turn of the event loop (under
 * load, one poll of the sockets parses several requests) enter it together: one task on the
 * isolate's thread, one wake-up of that thread, one answer copied back, instead of one of each per
 * request (sandbox/dispatch.ts dispatchFetchBatch). Each request is still its own invocation with
 * its own limits; one whose handler waits on the host is answered on its own (awaitFetch). A
 * request alone in its turn enters as before. bench/README.md (issue 24, round 5) has the A/B.
 */
export class FetchBatch {
  private waiting: BatchedFetch[] = [];

  constructor(
    private readonly entry: { dispatchFetch: ivm.Reference<Function>; dispatchFetchBatch: ivm.Reference<Function>; awaitFetch: ivm.Reference<Function> },
    private readonly policy: EntryPolicy,
  ) {}

  /** Queue a request (its WireRequest as JSON) for this turn's crossing; resolves to its answer. */
  add(id: number, request: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(this.flush);
      this.waiting.push({ id, request, resolve, reject });
    });
  }

  private readonly flush = (): void => {
    const waiting = this.waiting;
    this.waiting = [];
    for (let from = 0; from < waiting.length; from += MAX_BATCH) this.send(waiting.length <= MAX_BATCH ? waiting : waiting.slice(from, from + MAX_BATCH));
  };

  private send(batch: BatchedFetch[]): void {
    // (isolated-vm rejects for an isolate already gone; should an entry ever throw at once, here,
    // in setImmediate and not in the request's own code, that must become each request's failure,
    // never an uncaught error that ends the process)
    try {
      this.enterBatch(batch);
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  }

  private enterBatch(batch: BatchedFetch[]): void {
    if (batch.length === 1) {
      const only = batch[0];
      this.policy.enter(this.entry.dispatchFetch, [only.id, only.request]).then(only.resolve, only.reject);
      return;
    }
    // One string crosses (isolated-vm copies a string far cheaper than an array): the ids and the
    // requests' JSON, as {"ids":[...],"requests":[...]}.
    let ids = '';
    let requests = '';
    for (let i = 0; i < batch.length; i++) {
      ids += (i ? ',' : '') + batch[i].id;
      requests += (i ? ',' : '') + batch[i].request;
    }
    this.policy.entries.batches++;
    this.policy.entries.batched += batch.length;
    this.policy.entries.async += batch.length - 1; // (enter counts the crossing as one event)
    this.policy.enter(this.entry.dispatchFetchBatch, [`{"ids":[${ids}],"requests":[${requests}]}`]).then(
      (answer) => this.deliver(batch, answer),
      (error) => {
        for (const item of batch) item.reject(error);
      },
    );
  }

  /** Hand each request its answer from the batch's; one still running is asked for on its own. */
  private deliver(batch: BatchedFetch[], answer: unknown): void {
    let answers: unknown = answer;
    if (typeof answer === 'string') {
      try {
        answers = JSON.parse(answer);
      } catch {
        answers = undefined;
      }
    }
    // The guest is untrusted: an answer of the wrong shape is each request's malformed result
    // (decodeGuestResult makes that of anything that is not one).
    const list = Array.isArray(answers) && answers.length === batch.length ? answers : null;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const one = list ? list[i] : undefined;
      if (one !== null) {
        item.resolve(one);
        continue;
      }
      try {
        this.entry.awaitFetch.apply(undefined, [item.id], ENTRY_OPTIONS).then(item.resolve, item.reject);
      } catch (error) {
        item.reject(error);
      }
    }
  }
}
