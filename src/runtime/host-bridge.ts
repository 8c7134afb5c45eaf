// The host half of the isolate wall: three functions handed to the guest at boot (see
// sandbox/bridge.ts). They are created per isolate before the isolate is given to a worker, so
// the worker that owns the isolate is attached later (`owner`). Every op checks its arguments:
// the guest is untrusted and may call these with anything.
import ivm from './ivm.js';
import { randomFillSync } from 'node:crypto';
import { OPS, PARCEL_KEY, SEND_OPS, SYNC_OPS, type LogLevel } from '../../protocol/wall.js';

/** What the bridge asks of the worker that owns the isolate. */
export interface BridgeOwner {
  /** `fullLength`: the line's length before the guest cut it (log-budget.ts) */
  log(level: LogLevel, message: string, invocationId: number, fullLength?: number): void;
  /** console lines the guest counted and dropped over its invocation's budget (not sent) */
  logDropped(invocationId: number, lines: number, chars: number): void;
  /** async binding ops (fetch, kv, service calls, crypto): resolved by the owner */
  callOp(op: string, invocationId: number, args: unknown[]): Promise<unknown>;
  /** the isolate touched the host: evidence it is not stuck in a loop */
  activity(): void;
  /** a call, sync call or message of the guest's: serving-thread work its worker is charged for */
  crossed(): void;
  /** a timer fired: its callback runs in the isolate next, perhaps with no request in flight */
  timerFired(): void;
  /** every console line the invocation sent before its result has been delivered */
  flushed(invocationId: number): void;
  /** the isolate could not take an answer from the host: end what runs in it at the memory limit */
  outOfMemory(invocationId: number): void;
  /** sync binding ops (SyncOpHandler): (op, [invocationId, ...args]); throws what the guest sees */
  callSyncOp(op: string, args: unknown[]): unknown;
}

/** Strings up to this length (in all) still cross in an async answer: they live on V8's heap,
 *  whose limit ends the isolate rather than the process; past it they go by parcel too. */
const INLINE_STRING_CHARS = 64 * 1024;

/** Whether an answer holds bytes (or much text) that the isolate might not have room for. */
function carriesBytes(value: unknown, depth: number, budget = { chars: INLINE_STRING_CHARS }): boolean {
  if (typeof value === 'string') return (budget.chars -= value.length) < 0;
  if (typeof value !== 'object' || value === null) return false;
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value) || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) return true;
  // Answers are host-made plain data a few levels deep; deeper ones are parcelled to be safe.
  if (depth > 4) return true;
  for (const item of Array.isArray(value) ? value : Object.values(value)) if (carriesBytes(item, depth + 1, budget)) return true;
  return false;
}

const LOG_LEVELS = new Set<LogLevel>(['debug', 'info', 'log', 'warn', 'error']);
const MAX_RANDOM_BYTES = 65_536;
const MAX_TIMER_MS = 2_147_483_647;

interface PendingTimer {
  timeout: NodeJS.Timeout;
  resolve: (fired: boolean) => void;
}

/**
 * An op's error as the guest gets it: its name and message, none of the host's stack (the host's
 * file paths are not the guest's business). Set before isolated-vm copies the error, so the
 * host's stack is never formatted either: a refused call (a fetch to a private address, a service
 * call past the cap) cost ~10 µs of the serving thread for that formatting alone (bench/README.md,
 * issue 22: fan-out and SSRF).
 */
function withoutHostStack(error: unknown): unknown {
  if (error instanceof Error) {
    try {
      error.stack = `${error.name}: ${error.message}`;
    } catch {
      // a frozen error keeps its stack
    }
  }
  return error;
}

export class HostBridge {
  owner: BridgeOwner | null = null;
  readonly call: ivm.Reference<(op: string, invocationId: number, args: unknown[], blocking?: boolean) => Promise<unknown>>;
  readonly callSync: ivm.Callback;
  readonly send: ivm.Callback;
  private readonly timers = new Map<number, PendingTimer>();
  /** async answers carrying bytes, until the guest takes them (see parcelled) */
  private readonly parcels = new Map<number, unknown>();
  private nextParcel = 1;
  private disposed = false;

  constructor() {
    this.call = new ivm.Reference((op: string, invocationId: number, args: unknown[], blocking?: boolean) => (blocking === true ? this.onBlockingCall(op, invocationId, args) : this.onCall(op, invocationId, args)));
    this.callSync = new ivm.Callback((op: string, args: unknown[]) => this.onCallSync(op, args));
    this.send = new ivm.Callback((op: string, args: unknown[]) => this.onSend(op, args), { ignored: true });
  }

  private async onCall(op: unknown, invocationId: unknown, args: unknown): Promise<unknown> {
    this.guestCalled();
    if (typeof op !== 'string' || !Array.isArray(args)) throw new TypeError('invalid host call');
    if (op === OPS.timer) return this.startTimer(args[0], args[1]);
    // No owner: the isolate was disposed (a limit, a redeploy) while this call was on its way.
    // Nobody can receive an answer; rejecting would only surface as an unhandled rejection here.
    if (!this.owner) return undefined;
    try {
      return this.parcelled(await this.owner.callOp(op, Number(invocationId) || 0, args));
    } catch (error) {
      throw withoutHostStack(error);
    }
  }

  /** An async op the guest waits for on its own thread (applySyncPromise, sandbox/bridge.ts
   *  hostCallBlocking): its answer is copied in on that thread, as a synchronous one is, so an
   *  isolate without room for it fails with a RangeError it sees. */
  private async onBlockingCall(op: unknown, invocationId: unknown, args: unknown): Promise<unknown> {
    this.guestCalled();
    if (typeof op !== 'string' || !Array.isArray(args)) throw new TypeError('invalid host call');
    if (!this.owner) throw new Error('the isolate is going away');
    const answer = await this.owner.callOp(op, Number(invocationId) || 0, args);
    return answer === undefined || answer === null || typeof answer !== 'object' ? answer : new ivm.ExternalCopy(answer).copyInto({ release: true });
  }

  /**
   * An async answer that carries bytes is kept here and the guest takes it with a synchronous
   * call (SYNC_OPS.parcel). isolated-vm copies an async answer into the isolate in a task that does not
   * catch a failed ArrayBuffer allocation: an isolate too full to take the bytes would abort the
   * whole process. A synchronous answer is copied on the guest's own call, where the same
   * failure is a RangeError the guest sees (and the invocation ends at the memory limit).
   */
  private parcelled(answer: unknown): unknown {
    if (!carriesBytes(answer, 0)) return answer;
    const id = this.nextParcel++;
    this.parcels.set(id, answer);
    return { [PARCEL_KEY]: id };
  }

  private takeParcel(rawId: unknown): unknown {
    const id = Number(rawId);
    const answer = this.parcels.get(id);
    this.parcels.delete(id);
    if (answer === undefined) throw new TypeError('parcel: no such answer');
    return new ivm.ExternalCopy(answer).copyInto({ release: true });
  }

  private onCallSync(op: unknown, args: unknown): unknown {
    this.guestCalled();
    if (!Array.isArray(args)) throw new TypeError('invalid host call');
    switch (op) {
      case SYNC_OPS.random: {
        const n = Number(args[0]);
        if (!Number.isInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) throw new RangeError('random: byte count out of range');
        const bytes = new Uint8Array(n);
        randomFillSync(bytes);
        return new ivm.ExternalCopy(bytes.buffer).copyInto({ release: true });
      }
      case SYNC_OPS.parcel:
        return this.takeParcel(args[0]);
      default: {
        if (typeof op !== 'string' || !this.owner) throw new TypeError(`unknown host op ${String(op)}`);
        const answer = this.owner.callSyncOp(op, args);
        // Copied here, so that an isolate without room for it fails with a RangeError it sees.
        return answer === undefined || answer === null || typeof answer !== 'object' ? answer : new ivm.ExternalCopy(answer).copyInto({ release: true });
      }
    }
  }

  /** Each call or message from the guest: evidence it is not stuck in a loop, and serving-thread
   *  work its worker is charged for. */
  private guestCalled(): void {
    this.owner?.activity();
    this.owner?.crossed();
  }

  private onSend(op: unknown, args: unknown): void {
    this.guestCalled();
    if (!Array.isArray(args)) return;
    if (op === SEND_OPS.log) {
      const level = LOG_LEVELS.has(args[0] as LogLevel) ? (args[0] as LogLevel) : 'log';
      const fullLength = Number(args[3]);
      this.owner?.log(level, String(args[1]), Number(args[2]) || 0, Number.isSafeInteger(fullLength) && fullLength > 0 ? fullLength : undefined);
    } else if (op === SEND_OPS.logDropped) {
      this.owner?.logDropped(Number(args[0]) || 0, Number(args[1]), Number(args[2]));
    } else if (op === SEND_OPS.flush) {
      this.owner?.flushed(Number(args[0]) || 0);
    } else if (op === SEND_OPS.outOfMemory) {
      this.owner?.outOfMemory(Number(args[0]) || 0);
    } else if (op === SEND_OPS.clearTimer) {
      const timer = this.timers.get(Number(args[0]));
      if (timer) {
        clearTimeout(timer.timeout);
        this.timers.delete(Number(args[0]));
        timer.resolve(false);
      }
    }
  }

  private startTimer(rawId: unknown, rawMs: unknown): Promise<boolean> {
    const id = Number(rawId);
    const ms = Math.min(Math.max(0, Number(rawMs) || 0), MAX_TIMER_MS);
    if (this.disposed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timeout = setTimeout(() => {
        this.timers.delete(id);
        this.owner?.timerFired();
        resolve(true);
      }, ms);
      this.timers.get(id)?.resolve(false);
      this.timers.set(id, { timeout, resolve });
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const timer of this.timers.values()) clearTimeout(timer.timeout);
    this.timers.clear();
    this.parcels.clear();
    this.owner = null;
    this.call.release();
  }
}
