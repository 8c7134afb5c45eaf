// The host half of the isolate wall: three functions handed to the guest at boot (see
// sandbox/bridge.ts). They are created per isolate before the isolate is given to a worker, so
// the worker that owns the isolate is attached later (`owner`). Every op checks its arguments:
// the guest is untrusted and may call these with anything.
import ivm from './ivm.js';
import { randomFillSync } from 'node:crypto';
import { OPS, SEND_OPS, SYNC_OPS, type LogLevel } from '../../protocol/wall.js';

/** What the bridge asks of the worker that owns the isolate. */
export interface BridgeOwner {
  /** `fullLength`: the line's length before the guest cut it (log-budget.ts) */
  log(level: LogLevel, message: string, invocationId: number, fullLength?: number): void;
  /** async binding ops (fetch, kv, service calls, crypto): resolved by the owner */
  callOp(op: string, invocationId: number, args: unknown[]): Promise<unknown>;
  /** the isolate touched the host: evidence it is not stuck in a loop */
  activity(): void;
  /** every console line the invocation sent before its result has been delivered */
  flushed(invocationId: number): void;
  /** the guest awaits an async host call (an op or a timer) for this invocation: its continuation
   *  runs on isolated-vm's threads */
  awaitsHost(invocationId: number): void;
  /** a batched fetch event's answer, sent when it settled after its batch (see fetch-batch.ts) */
  settled(invocationId: number, answer: unknown): void;
}

const LOG_LEVELS = new Set<LogLevel>(['debug', 'info', 'log', 'warn', 'error']);
const MAX_RANDOM_BYTES = 65_536;
const MAX_TIMER_MS = 2_147_483_647;

interface PendingTimer {
  timeout: NodeJS.Timeout;
  resolve: (fired: boolean) => void;
}

export class HostBridge {
  owner: BridgeOwner | null = null;
  readonly call: ivm.Reference<(op: string, invocationId: number, args: unknown[]) => Promise<unknown>>;
  readonly callSync: ivm.Callback;
  readonly send: ivm.Callback;
  private readonly timers = new Map<number, PendingTimer>();
  private disposed = false;

  constructor() {
    this.call = new ivm.Reference((op: string, invocationId: number, args: unknown[]) => this.onCall(op, invocationId, args));
    this.callSync = new ivm.Callback((op: string, args: unknown[]) => this.onCallSync(op, args));
    this.send = new ivm.Callback((op: string, args: unknown[]) => this.onSend(op, args), { ignored: true });
  }

  private async onCall(op: unknown, invocationId: unknown, args: unknown): Promise<unknown> {
    this.owner?.activity();
    this.owner?.awaitsHost(Number(invocationId) || 0);
    if (typeof op !== 'string' || !Array.isArray(args)) throw new TypeError('invalid host call');
    if (op === OPS.timer) return this.startTimer(args[0], args[1]);
    // No owner: the isolate was disposed (a limit, a redeploy) while this call was on its way.
    // Nobody can receive an answer; rejecting would only surface as an unhandled rejection here.
    if (!this.owner) return undefined;
    return this.owner.callOp(op, Number(invocationId) || 0, args);
  }

  private onCallSync(op: unknown, args: unknown): unknown {
    this.owner?.activity();
    if (!Array.isArray(args)) throw new TypeError('invalid host call');
    switch (op) {
      case SYNC_OPS.random: {
        const n = Number(args[0]);
        if (!Number.isInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) throw new RangeError('random: byte count out of range');
        const bytes = new Uint8Array(n);
        randomFillSync(bytes);
        return new ivm.ExternalCopy(bytes.buffer).copyInto({ release: true });
      }
      default:
        throw new TypeError(`unknown host op ${String(op)}`);
    }
  }

  private onSend(op: unknown, args: unknown): void {
    this.owner?.activity();
    if (!Array.isArray(args)) return;
    if (op === SEND_OPS.log) {
      const level = LOG_LEVELS.has(args[0] as LogLevel) ? (args[0] as LogLevel) : 'log';
      const fullLength = Number(args[3]);
      this.owner?.log(level, String(args[1]), Number(args[2]) || 0, Number.isSafeInteger(fullLength) && fullLength > 0 ? fullLength : undefined);
    } else if (op === SEND_OPS.flush) {
      this.owner?.flushed(Number(args[0]) || 0);
    } else if (op === SEND_OPS.settled) {
      this.owner?.settled(Number(args[0]) || 0, args[1]);
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
    this.owner = null;
    this.call.release();
  }
}
