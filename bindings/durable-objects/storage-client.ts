// One Durable Object's storage as the server reaches it: every call runs in the storage process
// the object is sharded to (storage-process.ts, on src/store/executor-processes.ts), one at a time
// and in order, so the serving thread is free while SQL runs. A call is bounded by its
// invocation: the CPU it may still use (past it the process is killed, the CPU is charged and the
// invocation ends at the CPU limit), and the invocation's end (a wall-time limit, a recycle) kills
// a call still running. The CPU a call took is charged to the invocation that made it.
import { serialize } from 'node:v8';
import { isDeepStrictEqual } from 'node:util';
import type { ExecutorProcesses } from '../../src/store/executor-processes.js';
import type { OpCall } from '../../src/runtime/contract.js';
import { DEFAULT_ACCOUNT } from '../../src/model/accounts.js';
import { STORAGE_FAILED } from './protocol.js';
import { StorageError } from './errors.js';
import type { Fence } from './placement.js';
import { TRANSACTION_LOST, type StorageReply, type StorageTarget } from './storage-messages.js';

const ENDED: Record<string, string> = {
  cpu: 'a storage call ran past the CPU limit and was ended; it was not committed',
  abandoned: 'the invocation ended while a storage call ran; the call was ended and not committed',
  busy: 'too many storage calls are waiting on this server; try again',
  'worker-busy': "too many of this worker's storage calls are waiting; await some before making more",
  'account-busy': "too many of this account's storage calls are waiting; await some before making more",
  closed: 'the server is shutting down',
};

/** A storage call ended before it answered (the shared executor's `ended`). */
export class StorageCallEnded extends Error {
  constructor(
    readonly reason: string,
    readonly cpuMs: number,
    cap?: number,
  ) {
    super(`${ENDED[reason] ?? 'the storage process stopped while running this call; it was not committed'}${cap === undefined ? '' : ` (at most ${cap} waiting)`}`);
  }
}

/** A transaction kept for replay may hold this much (calls, and bytes of requests and answers);
 *  past it a restart loses it, as before there was replay. */
const REPLAY_MAX_CALLS = 1000;
const REPLAY_MAX_BYTES = 8 * 1024 * 1024;
/** ... and all the journals of the server together (many objects' open transactions at once). */
const REPLAY_MAX_TOTAL_BYTES = 256 * 1024 * 1024;
let journalsTotalBytes = 0;

/** One call made inside the open transaction, and what it answered (its ok value or its error). */
interface Replayable {
  op: 'kv' | 'sql';
  request: unknown[];
  outcome: unknown;
}

type Bound = NonNullable<Parameters<ExecutorProcesses['run']>[2]>;

/** What a reply says, without what differs between two runs of the same call (its id, its CPU). */
function outcomeOf(reply: StorageReply): unknown {
  return 'error' in reply ? { error: reply.error } : { ok: reply.ok };
}

export class ObjectStorageClient {
  /** open transaction levels, as the storage process should have them (see call) */
  private depth = 0;
  /** transaction levels a restart took away, still to be ended by the guest's commit or rollback */
  private lostLevels = 0;
  /** the calls of the open transaction, in the order they ran (null: too large to keep, or none open) */
  private journal: Replayable[] | null = null;
  private journalBytes = 0;
  /** calls sent and not yet answered */
  private inFlight = 0;
  /** CPU the storage process spent opening the object's file (open), not yet in a record */
  private openCpuMs = 0;

  constructor(
    private readonly processes: ExecutorProcesses,
    readonly target: StorageTarget,
    /** the object's placement lease (--redis / --processes): each call is checked against it when it starts */
    private readonly fence: Fence | null = null,
  ) {}

  async call(op: 'kv' | 'sql', request: unknown[], call: OpCall): Promise<unknown> {
    if (this.lostLevels > 0 && (request[0] === 'commit' || request[0] === 'rollback')) {
      // The transaction is already gone: its rollback has happened, its commit cannot.
      this.lostLevels--;
      if (request[0] === 'rollback') return undefined;
      throw new StorageError(`${STORAGE_FAILED}: the storage restarted during this transaction, which was rolled back`);
    }
    const invocation = call.invocation;
    if (invocation && this.openCpuMs > 0) {
      // The object's start-up, metered in its first call's record as host work (not its CPU limit).
      invocation.hostWorkMs += this.openCpuMs;
      this.openCpuMs = 0;
    }
    // (a call made outside any invocation in flight still gets the worker's whole CPU limit)
    const fence = this.fence ?? undefined;
    // Turns and waiting caps are per tenant: the worker whose code made the call, in its account.
    const tenant = { account: call.worker.account ?? DEFAULT_ACCOUNT, worker: call.worker.name };
    // The CPU a call took is charged as it settles, whatever ended it (its answer, a limit, a lapsed lease).
    const charge = (cpuMs: number) => {
      if (invocation) invocation.cpuNs += BigInt(Math.round(cpuMs * 1e6));
    };
    const bound: Bound = invocation ? { cpuMs: Math.max(1, call.limits.cpuMs - Number(invocation.cpuNs) / 1e6), abandon: invocation.signal, fence, tenant, charge } : { cpuMs: call.limits.cpuMs, fence, tenant };
    this.inFlight++;
    try {
      return await this.send(op, request, call, bound, true);
    } finally {
      this.inFlight--;
    }
  }

  private async send(op: 'kv' | 'sql', request: unknown[], call: OpCall, bound: Bound, mayReplay: boolean): Promise<unknown> {
    // The process checks that the object's open transactions are what this side expects: after a
    // restart (a neighbour's call was ended) they are gone, and a write must not then commit alone.
    let result: Awaited<ReturnType<ExecutorProcesses['run']>>;
    try {
      result = await this.processes.run<StorageReply>(this.target.key, { op, target: this.target, depth: this.depth, request }, bound);
    } catch (error) {
      if (!(error instanceof StorageCallEnded)) throw error;
      this.lose();
      if (error.reason === 'cpu') call.exceeded('cpu');
      throw new StorageError(`${STORAGE_FAILED}: ${error.message}`);
    }
    const reply = result.reply as StorageReply;
    if ('error' in reply && reply.error.name === TRANSACTION_LOST) {
      // The process was restarted under the open transaction (another object's call was ended):
      // done again in the fresh process, answering exactly as it did, the transaction is as the
      // guest saw it, and this call goes on inside it. Only when this is the object's one call in
      // flight (the journal's order is then the order they ran in).
      if (mayReplay && this.inFlight === 1 && (await this.replay(bound))) return this.send(op, request, call, bound, false);
      this.lose();
    }
    const before = this.depth;
    if (!('error' in reply)) {
      if (request[0] === 'begin') this.depth++;
      else if ((request[0] === 'commit' || request[0] === 'rollback') && this.depth > 0) this.depth--;
    }
    this.record(op, request, reply, before);
    if ('error' in reply) {
      if (reply.error.refused) throw new StorageError(reply.error.message, reply.error.name);
      throw new StorageError(op === 'kv' ? `${STORAGE_FAILED}: ${reply.error.message}` : reply.error.message);
    }
    return reply.ok;
  }

  /** Keep a call of the open transaction for replay (a begin at depth 0 opens the journal; depth 0 again closes it). */
  private record(op: 'kv' | 'sql', request: unknown[], reply: StorageReply, depthBefore: number): void {
    if (this.depth === 0) return this.dropJournal();
    if (depthBefore === 0) {
      this.dropJournal();
      this.journal = [];
    }
    if (!this.journal) return;
    const outcome = outcomeOf(reply);
    const bytes = serialize(request).byteLength + serialize(outcome).byteLength;
    this.journalBytes += bytes;
    journalsTotalBytes += bytes;
    if (this.journal.length >= REPLAY_MAX_CALLS || this.journalBytes > REPLAY_MAX_BYTES || journalsTotalBytes > REPLAY_MAX_TOTAL_BYTES) return this.dropJournal();
    this.journal.push({ op, request, outcome });
  }

  private dropJournal(): void {
    journalsTotalBytes -= this.journalBytes;
    this.journal = null;
    this.journalBytes = 0;
  }

  /** Run the open transaction's calls again in the fresh process; true when every one answered as
   *  before. Otherwise (a call whose answer depends on more than the data, such as random(), or
   *  another restart) what was redone is rolled back and the transaction is lost as it was. The
   *  CPU it takes is not charged: the object did not cause it. */
  private async replay(bound: Bound): Promise<boolean> {
    const journal = this.journal;
    if (!journal || journal.length === 0) return false;
    let depth = 0;
    const replayBound: Bound = { ...bound, charge: undefined };
    for (const entry of journal) {
      let reply: StorageReply;
      try {
        reply = (await this.processes.run<StorageReply>(this.target.key, { op: entry.op, target: this.target, depth, request: entry.request }, replayBound)).reply as StorageReply;
      } catch {
        depth = -1;
        break;
      }
      if (!isDeepStrictEqual(outcomeOf(reply), entry.outcome)) {
        depth = -1;
        break;
      }
      if (!('error' in reply)) {
        if (entry.request[0] === 'begin') depth++;
        else if ((entry.request[0] === 'commit' || entry.request[0] === 'rollback') && depth > 0) depth--;
      }
    }
    if (depth === this.depth) return true;
    // (closing the object's file in its process rolls back whatever was redone)
    await this.processes.run(this.target.key, { op: 'close', key: this.target.key }).catch(() => {});
    return false;
  }

  private lose(): void {
    this.lostLevels += this.depth;
    this.depth = 0;
    this.dropJournal();
  }

  /**
   * The object is starting: its process opens the file now, as part of the object's start-up, so
   * its first event's first call does not pay for the open out of the event's CPU limit (the
   * call waits behind the open: one call per object at a time, in order within the tenant). The
   * CPU it took is metered as host work in the record of the object's first call. A failure is
   * not reported here: the first call meets it again and says so.
   */
  open(tenant: { account: string; worker: string }): void {
    const bound: Bound = { fence: this.fence ?? undefined, tenant, charge: (cpuMs) => (this.openCpuMs += cpuMs) };
    this.processes.run(this.target.key, { op: 'open', target: this.target }, bound).catch(() => {});
  }

  /** The object is done: its process closes the file (a transaction left open is not kept). */
  close(): void {
    this.depth = this.lostLevels = 0;
    this.dropJournal();
    this.processes.run(this.target.key, { op: 'close', key: this.target.key }).catch(() => {});
  }
}
