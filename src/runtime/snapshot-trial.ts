// The deployment-snapshot builder's trial (scripts/build-deployment-snapshot.mjs runs it before
// createSnapshot): the same scripts, evaluated first in an isolate with isolation, under the
// worker's own limits, as a plain cold start and a request to that worker would be. isolated-vm's
// createSnapshot runs its scripts with no limit at all (no timeout, no heap limit but the process's,
// nothing can stop it), so without the trial a worker whose top level or handler spins cost the
// builder its whole RLIMIT_CPU on every deploy: a cheap way for a tenant to make the host burn CPU.
//
//   - the top level, and installing the worker, under the startup limit (wall time, isolated-vm's
//     timeout: as worker-loader.ts runs them);
//   - the warm-up request (GET /) under the CPU limit (the isolate's thread CPU clock, read every few
//     ms as the watchdog does), the wall limit and the memory limit (the isolate's heap limit);
//     and the builder's own cap on waiting (waitMs: wall time the isolate spends not running, a
//     never-settling promise or Atomics.wait), shorter than a worker's wall limit may be (up to the
//     120 s ceiling): the builder makes one version's snapshot at a time, and a request it cannot
//     answer (there is no host in the builder) has no reason to wait.
//
// A breach ends the trial with a reason naming the limit, and no snapshot is made. Anything else
// the worker does wrong (it throws, it draws Math.random at the top level) is left to the
// builder's own checks, which say it in their words. The trial costs one more evaluation of the
// sandbox and the worker (+30-40 ms of builder CPU: bench/README.md); createSnapshot then runs what
// the trial ran, under a CPU budget derived from it (enforced by deployment-snapshot.ts, the
// parent), for a worker that behaves differently the second time.
import ivm from './ivm.js';

export interface TrialScript {
  code: string;
  filename: string;
}

export interface TrialLimits {
  cpuMs: number;
  wallMs: number;
  memoryMb: number;
  startupMs: number;
  /** the longest the warm-up request may spend waiting (ms of wall time its isolate is not
   *  running); absent: only the wall limit */
  waitMs?: number;
}

export interface SnapshotTrial {
  /** Cinder's own scripts before the worker's: the sandbox, the add-ons it needs, the prologue */
  platform: TrialScript[];
  /** the worker's code as the snapshot's script (its top level) */
  worker: TrialScript;
  /** Cinder's script after it (the builder's epilogue) */
  epilogue: TrialScript;
  bootGlobal: string;
  namespaceGlobal: string;
  /** as the builder's job.warmUp: the request is tried only for 'request' */
  warmUp: 'request' | 'sandbox' | 'none';
  /** the warm-up request, as JSON (a WireRequest) */
  request: string;
  limits: TrialLimits;
}

export type TrialLimit = 'startup' | 'cpu' | 'wall' | 'memory' | 'wait';

export type TrialOutcome =
  /** within every limit; cpuMs: what the trial's isolate used (its thread's CPU clock) */
  | { ok: true; cpuMs: number }
  | { ok: false; limit: TrialLimit; reason: string; cpuMs: number };

/** Cinder's own steps (the sandbox, its warm-up) are not the worker's: only a backstop bounds them. */
const PLATFORM_TIMEOUT_MS = 60_000;
/** How often the request's CPU is read (the runtime's watchdog reads as often, bench/README). */
const CPU_POLL_MS = 2;
const NO_HOST = `() => { throw new Error('no host in the snapshot builder'); }`;

/** A step of Cinder's own ended by a limit the worker's state breached (see platform()). */
class OverLimit extends Error {}

/** Errors of Cinder's own steps: not the worker's to answer for (the builder reports them as they are). */
export class TrialPlatformError extends Error {}

export function trialReason(limit: TrialLimit, limits: TrialLimits, during: 'top level' | 'request'): string {
  switch (limit) {
    case 'startup':
      return `the worker's top-level code exceeded the startup time limit (startup_ms ${limits.startupMs})`;
    case 'cpu':
      return `the warm-up request (GET /) exceeded the CPU time limit (cpu_ms ${limits.cpuMs})`;
    case 'wall':
      return `the warm-up request (GET /) exceeded the wall time limit (wall_ms ${limits.wallMs})`;
    case 'memory':
      return `${during === 'request' ? 'the warm-up request (GET /)' : "the worker's top-level code"} exceeded the memory limit (memory_mb ${limits.memoryMb})`;
    case 'wait':
      return `the warm-up request (GET /) was still waiting after ${limits.waitMs} ms, the longest the snapshot builder waits for one (it has no host to answer what a request waits for)`;
  }
}

const isTimeout = (error: unknown) => /timed out/i.test(String((error as Error)?.message ?? error));
const isMemory = (error: unknown) => /memory limit|Array buffer allocation failed|allocation failed - JavaScript heap/i.test(String((error as Error)?.message ?? error));

/**
 * Run `trial` under its limits. Resolves with the limit it breached, if any; rejects with the
 * worker's own error (its top level threw, the epilogue refused) for the builder to report, or
 * with a TrialPlatformError.
 */
export async function runTrial(trial: SnapshotTrial): Promise<TrialOutcome> {
  const { limits } = trial;
  const isolate = new ivm.Isolate({ memoryLimit: limits.memoryMb });
  let breached: TrialLimit | null = null;
  let during: 'top level' | 'request' = 'top level';
  const cpuNow = () => {
    try {
      return isolate.cpuTime;
    } catch {
      return lastCpu; // disposed
    }
  };
  let lastCpu = 0n;
  const cpuMs = () => Number((lastCpu = cpuNow())) / 1e6;
  const over = (limit: TrialLimit): TrialOutcome => {
    breached ??= limit;
    const used = cpuMs();
    if (!isolate.isDisposed) isolate.dispose();
    return { ok: false, limit: breached, reason: trialReason(breached, limits, during), cpuMs: used };
  };
  /** A step's failure: a limit it breached, or the error itself (rethrown). */
  const failed = (error: unknown, timeoutIs: TrialLimit | null): TrialOutcome => {
    if (breached) return over(breached);
    if (timeoutIs && isTimeout(error)) return over(timeoutIs);
    if (isolate.isDisposed || isMemory(error)) return over('memory');
    throw error;
  };
  /** Cinder's own step: a memory breach is the worker's (what it holds counts), any other failure is not. */
  const platform = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      if (breached || isolate.isDisposed || isMemory(error)) throw new OverLimit();
      throw new TrialPlatformError(`the trial's own step failed: ${String((error as Error)?.message ?? error).split('\n')[0]}`);
    }
  };
  try {
    let context: ivm.Context;
    try {
      context = await isolate.createContext();
      for (const script of trial.platform) await (await isolate.compileScript(script.code, { filename: script.filename })).run(context, { timeout: PLATFORM_TIMEOUT_MS, release: true });
    } catch (error) {
      // The sandbox does not fit in the worker's memory limit: no plain load would either.
      if (isolate.isDisposed || isMemory(error)) return over('memory');
      throw new TrialPlatformError(`the trial could not set up the sandbox: ${String((error as Error)?.message ?? error).split('\n')[0]}`);
    }
    // The top level, under the startup limit (a plain load's compile is not timed either).
    const worker = await isolate.compileScript(trial.worker.code, { filename: trial.worker.filename }).catch((error) => failed(error, null));
    if (!(worker instanceof ivm.Script)) return worker;
    try {
      await worker.run(context, { timeout: limits.startupMs, release: true });
    } catch (error) {
      return failed(error, 'startup');
    }
    try {
      await (await isolate.compileScript(trial.epilogue.code, { filename: trial.epilogue.filename })).run(context, { timeout: PLATFORM_TIMEOUT_MS, release: true });
    } catch (error) {
      return failed(error, null);
    }
    if (trial.warmUp === 'none') return { ok: true, cpuMs: cpuMs() };

    // The sandbox booted without a host and warmed, as the builder's warm-up script does: its
    // own code, not charged to the worker (an isolate from the pool comes warm).
    const entry = (await platform(() => context.eval(`globalThis[${JSON.stringify(trial.bootGlobal)}](${NO_HOST}, ${NO_HOST}, () => {}, ${limits.memoryMb})`, { reference: true, timeout: PLATFORM_TIMEOUT_MS }))) as ivm.Reference<Record<string, unknown>>;
    const entryFunction = (name: string) => platform(() => entry.get(name, { reference: true }) as Promise<ivm.Reference<(...args: unknown[]) => unknown>>);
    await platform(async () => (await entryFunction('warmUp')).apply(undefined, [32], { result: { promise: true }, timeout: PLATFORM_TIMEOUT_MS }));
    if (trial.warmUp !== 'request') return { ok: true, cpuMs: cpuMs() };

    // Installing the worker is part of its load: the startup limit. If it fails (no handler), the
    // builder's own checks say so.
    const namespace = (await platform(() => context.global.get(trial.namespaceGlobal, { reference: true }))) as ivm.Reference;
    try {
      await (await entryFunction('installWorker')).apply(undefined, [namespace.typeof === 'undefined' ? undefined : namespace.derefInto(), '{}'], { timeout: limits.startupMs });
    } catch (error) {
      if (breached || isolate.isDisposed || isMemory(error) || isTimeout(error)) return failed(error, 'startup');
      return { ok: true, cpuMs: cpuMs() };
    }

    // The request, under the worker's CPU, wall and memory limits.
    during = 'request';
    const dispatchFetch = await entryFunction('dispatchFetch');
    const cpuLimitNs = BigInt(Math.round(limits.cpuMs * 1e6));
    const cpuAtStart = cpuNow();
    const overCpu = () => cpuNow() - cpuAtStart > cpuLimitNs;
    // Waiting: wall time since the request began less the CPU its isolate used in it.
    const waitLimitMs = limits.waitMs !== undefined && limits.waitMs < limits.wallMs ? limits.waitMs : Infinity;
    const startedAt = performance.now();
    const overWait = () => performance.now() - startedAt - Number(cpuNow() - cpuAtStart) / 1e6 > waitLimitMs;
    const cpuTimer = setInterval(() => {
      if (overCpu()) over('cpu');
      else if (overWait()) over('wait');
    }, CPU_POLL_MS);
    const wallTimer = setTimeout(() => over('wall'), limits.wallMs);
    try {
      const answer = await dispatchFetch.apply(undefined, [1, trial.request], { result: { promise: true, reference: true } });
      (answer as ivm.Reference | undefined)?.release?.();
    } catch (error) {
      // The handler's own errors are answered inside dispatchFetch; what reaches here is a limit.
      if (breached || isolate.isDisposed || isMemory(error)) return failed(error, null);
      throw new TrialPlatformError(`the trial's warm-up request failed: ${String((error as Error)?.message ?? error).split('\n')[0]}`);
    } finally {
      clearInterval(cpuTimer);
      clearTimeout(wallTimer);
    }
    if (breached) return over(breached);
    if (overCpu()) return over('cpu');
    return { ok: true, cpuMs: cpuMs() };
  } catch (error) {
    if (error instanceof OverLimit) return over(breached ?? 'memory');
    throw error;
  } finally {
    if (!isolate.isDisposed) isolate.dispose();
  }
}
