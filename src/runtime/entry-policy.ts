// How an event enters its isolate: always asynchronously, on one of isolated-vm's threads (DESIGN
// rule 2: guest code never runs on the thread that serves requests). This thread only queues the
// call and later receives the answer; a handler that spins, a V8 builtin that runs long, a first
// entry that compiles half the worker: none of it holds this thread, and the CPU limit is enforced
// by the watchdog on the isolate thread's CPU clock (cpu-meter.ts), not by a wall-time timeout.
//
// Earlier versions entered light handlers synchronously (applySync with a timeout equal to the
// CPU limit, in wall time) and batched light requests that arrived together. Both held this thread
// for the guest's run, and on a loaded machine the wall-time timeout fired on handlers that had
// used a fraction of a millisecond of CPU. bench/README.md has the A/B of the change.
import type ivm from 'isolated-vm';

export interface EntryCounts {
  /** events entered (all of them asynchronously, on isolated-vm's threads) */
  async: number;
}

/** The same options object for every entry (isolated-vm reads it on each call; no allocation). */
const ENTRY_OPTIONS = { result: { promise: true, copy: true } } as const;

export class EntryPolicy {
  readonly entries: EntryCounts = { async: 0 };

  /** Enter the isolate for an event, on isolated-vm's threads; resolves to the entry's copied answer. */
  enter(entry: ivm.Reference<Function>, args: unknown[]): Promise<unknown> {
    this.entries.async++;
    return entry.apply(undefined, args, ENTRY_OPTIONS);
  }
}
