// A blank isolate ready to become any worker: Web platform loaded (from the snapshot, or by
// running the bundle), host bridge booted, dispatch entry points held as References. Creating
// one takes milliseconds (V8 deserializing the snapshot, and the kernel faulting in a fresh heap;
// figures in bench/README.md), which is why the pool makes them ahead of demand, off this thread.
import ivm from './ivm.js';
import { HostBridge } from './host-bridge.js';
import type { IsolateSource } from './isolate-source.js';
import type { IsolateReaper } from './isolate-reaper.js';
import { BOOT_GLOBAL, CONTINUATION_DATA_GLOBAL, GUEST_ENTRIES, PRELUDE_EVALUATED_AT, WARM_UP_ENTRY, callBytesFor, type GuestEntryName } from '../../protocol/wall.js';

/** The guest's entry points (protocol/wall.ts GUEST_ENTRIES), held as References. */
export type GuestEntry = Record<GuestEntryName, ivm.Reference<Function>>;

let nextIsolateId = 1;

/** What the boot hook returned, as References: every entry point, the warm-up, and the time. */
/** isolated-vm's Context as patched (scripts/patch-isolated-vm.mjs, 11). */
type ContinuationContext = ivm.Context & { exposeContinuationData(name: string): Promise<void> };

const BOOT_NAMES = [...GUEST_ENTRIES, WARM_UP_ENTRY] as const;

function booted(context: ivm.Context, bridge: HostBridge, refs: ivm.Reference<Function>[], preludeEvaluatedAt: unknown): Booted {
  const byName = new Map<string, ivm.Reference<Function>>(BOOT_NAMES.map((name, i) => [name, refs[i]]));
  const entry = Object.fromEntries(GUEST_ENTRIES.map((name) => [name, byName.get(name)!])) as GuestEntry;
  return { context, bridge, entry, warmUp: byName.get(WARM_UP_ENTRY)!, preludeEvaluatedAt: preludeEvaluatedAt as number };
}

function bridgeArguments(bridge: HostBridge, memoryMb: number): unknown[] {
  return [bridge.call, bridge.callSync, bridge.send, memoryMb];
}

/** isolated-vm's options as patched (scripts/patch-isolated-vm.mjs, 13): `copyLimit` bounds every
 *  serialized copy out of the isolate (op arguments, answers to the host's calls), in bytes. */
type IsolateOptions = ivm.IsolateOptions & { copyLimit?: number; background?: boolean };

/** isolated-vm's Isolate as patched (scripts/patch-isolated-vm.mjs, 14): `setBackground(true)`
 *  sends its next tasks to the background class of threads (niced CINDER_BACKGROUND_THREAD_NICE
 *  below the others), false back to the normal class; a task already running keeps its thread. */
export type ClassedIsolate = ivm.Isolate & { setBackground(background: boolean): void };

function isolateOptions(source: IsolateSource, memoryMb: number, background = false): IsolateOptions {
  return {
    memoryLimit: memoryMb,
    background,
    // the bound the guest counts op arguments against (sandbox/bridge.ts), held inside the copy too
    copyLimit: callBytesFor(memoryMb),
    snapshot: source.kind === 'snapshot' ? source.snapshot : undefined,
    onCatastrophicError: (message) => {
      // V8 lost control of this isolate. Nothing in it can be trusted: end the process, and the
      // supervisor (src/app/supervisor.ts) starts it again. If this thread is the one stuck,
      // the exit never runs; the supervisor sees the heartbeat stop and kills the process.
      process.emitWarning(`isolated-vm catastrophic error: ${message}`);
      process.exitCode = 70;
      setImmediate(() => process.exit(70));
    },
  };
}

function newIsolate(source: IsolateSource, memoryMb: number, inspector: boolean): ivm.Isolate {
  return new ivm.Isolate({ ...isolateOptions(source, memoryMb), inspector });
}

/** isolated-vm as patched by scripts/patch-isolated-vm.mjs (4): an isolate that builds others on
 *  isolated-vm's threads. */
interface Spawner extends ivm.Isolate {
  spawnIsolate(options: IsolateOptions): Promise<ivm.Isolate>;
}
/** One small isolate per thread class, on whose tasks the others are built: the task tells the
 *  new isolate which Node thread owns it, and the spawner's class is where the deserializing runs
 *  (patch 14). Null: the addon has no spawnIsolate. */
const spawners = new Map<boolean, Spawner | null>();

function spawnerFor(background: boolean): Spawner | null {
  let spawner = spawners.get(background);
  if (spawner === undefined) {
    const candidate = new ivm.Isolate({ memoryLimit: 8, background } as IsolateOptions) as Spawner;
    if (typeof candidate.spawnIsolate === 'function') spawner = candidate;
    else {
      candidate.dispose();
      spawner = null;
    }
    spawners.set(background, spawner);
  }
  return spawner;
}

/** A new isolate without holding this thread for its construction (milliseconds, see above),
 *  where isolated-vm is patched for it; otherwise `new Isolate`. `background`: built, and its own
 *  tasks run, in the background class of threads until setBackground(false). */
function spawnIsolate(source: IsolateSource, memoryMb: number, background: boolean): Promise<ivm.Isolate> {
  const spawner = spawnerFor(background);
  if (spawner === null || spawner.isDisposed) return Promise.resolve(new ivm.Isolate(isolateOptions(source, memoryMb, background)));
  return spawner.spawnIsolate(isolateOptions(source, memoryMb, background));
}

/** Requests the pool runs through a fresh isolate's dispatch path before handing it out (see
 *  warmUp in sandbox/dispatch.ts). V8 allocates feedback vectors after a function's 8th call, so
 *  fewer than ~10 rounds leave the inline caches cold; past that, V8's baseline compiler keeps
 *  paying off up to a few dozen rounds and no further. The base snapshot already holds the
 *  bytecode of the functions a first request runs (scripts/build-snapshot.mjs warms a throwaway
 *  context before snapshotting), so 16 rounds here give the first request what 32 gave without
 *  it, for ~1.1 ms of the isolate's CPU instead of ~2.9 (bench/README.md, issue 23 round 5). */
export const WARM_UP_ROUNDS = 16;

/** What booting a fresh isolate's sandbox yields (see create). */
interface Booted {
  context: ivm.Context;
  bridge: HostBridge;
  entry: GuestEntry;
  warmUp: ivm.Reference<Function>;
  preludeEvaluatedAt: number;
}

const PRELUDE_FILENAME = 'cinder:sandbox.js';

export class ReadyIsolate {
  readonly id = nextIsolateId++;
  readonly context: ivm.Context;
  readonly bridge: HostBridge;
  readonly entry: GuestEntry;
  readonly createdAt = Date.now();
  /** Date.now() when the sandbox prelude ran: the snapshot's build time for snapshot isolates */
  readonly preludeEvaluatedAt: number;
  /** why the isolate ended, if it did (memory limit, CPU breach, recycle) */
  disposedReason: string | null = null;
  private onDisposed: ((reason: string) => void) | null = null;
  /** run just before the isolate is disposed (an inspector session must end first: dispose hangs otherwise) */
  private readonly beforeDispose: (() => void | Promise<void>)[] = [];
  private readonly warmUpEntry: ivm.Reference<Function>;

  private constructor(
    readonly isolate: ivm.Isolate,
    booted: Booted,
    readonly memoryMb: number,
    /** whether this isolate was made for the inspector (cinder dev --inspect) */
    readonly inspectable: boolean,
  ) {
    this.context = booted.context;
    this.bridge = booted.bridge;
    this.entry = booted.entry;
    this.preludeEvaluatedAt = booted.preludeEvaluatedAt;
    this.warmUpEntry = booted.warmUp;
  }

  /**
   * Make one on isolated-vm's threads: the isolate itself (spawnIsolate), the context, the prelude
   * (without a snapshot) and the boot, so neither a pool refill nor a pool miss holds the thread
   * that serves requests. `inspector`: V8 inspector support (cinder dev --inspect only: not safe
   * for untrusted code); spawnIsolate cannot make one, so its isolate is constructed here (no
   * guest code runs in a constructor) and everything after that still goes off-thread.
   */
  static async create(source: IsolateSource, memoryMb: number, options: { inspector?: boolean; background?: boolean } = {}): Promise<ReadyIsolate> {
    const inspector = options.inspector === true;
    const isolate = inspector ? newIsolate(source, memoryMb, true) : await spawnIsolate(source, memoryMb, options.background === true);
    try {
      const context = await isolate.createContext({ inspector });
      if (source.kind === 'code-cache') {
        const script = await isolate.compileScript(source.code, { filename: PRELUDE_FILENAME, cachedData: source.cachedData });
        await script.run(context);
        script.release();
      }
      // AsyncLocalStorage's native pair (isolated-vm patch 11); boot takes it off the global.
      await (context as ContinuationContext).exposeContinuationData(CONTINUATION_DATA_GLOBAL);
      const bridge = new HostBridge();
      const boot = (await context.global.get(BOOT_GLOBAL, { reference: true })) as ivm.Reference<Function>;
      const entry = (await boot.apply(undefined, bridgeArguments(bridge, memoryMb), { result: { reference: true } })) as ivm.Reference<Record<string, Function>>;
      boot.release();
      // Read here, not on isolated-vm's threads: boot's answer is an object literal of the
      // sandbox's (own data properties only), so reading it runs no JavaScript, and this new
      // isolate is idle (its lock free). Fifteen async reads cost ~0.17 ms on the path of a
      // cold start from a deployment snapshot; these ~0.06 ms (bench/README.md, round 5).
      const refs = BOOT_NAMES.map((name) => entry.getSync(name, { reference: true }) as ivm.Reference<Function>);
      const ready = booted(context, bridge, refs, entry.getSync(PRELUDE_EVALUATED_AT));
      entry.release();
      return new ReadyIsolate(isolate, ready, memoryMb, inspector);
    } catch (error) {
      if (!isolate.isDisposed) isolate.dispose();
      throw error;
    }
  }

  /** Run the sandbox's install and dispatch path in this isolate a few times (on isolated-vm's
   *  threads), so the cold start that takes it does not pay for V8's first runs. Returns false if
   *  the warm-up did not complete (cut by its timeout, say): the caller must not hand the isolate
   *  to a worker then, since guest state may not have been reset. */
  async warm(rounds = WARM_UP_ROUNDS): Promise<boolean> {
    if (rounds <= 0) return true;
    try {
      await this.warmUpEntry.apply(undefined, [rounds], { result: { promise: true }, timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  }

  /** Which class of isolated-vm's threads runs this isolate's next tasks (patch 14): the
   *  background class (below the normal one by CINDER_BACKGROUND_THREAD_NICE) or the normal one. */
  setBackground(background: boolean): void {
    if (this.isolate.isDisposed) return;
    try {
      (this.isolate as ClassedIsolate).setBackground(background);
    } catch {
      // disposed under us (its memory limit): no more tasks to send anywhere
    }
  }

  /** From now on eval() and new Function() throw an EvalError in this isolate (isolated-vm as
   *  patched by scripts/patch-isolated-vm.mjs, 8; without the patch they stay allowed). */
  disallowCodeGeneration(): void {
    (this.isolate as ivm.Isolate & { disallowCodeGeneration?(): void }).disallowCodeGeneration?.();
  }

  get isDisposed(): boolean {
    return this.isolate.isDisposed || this.disposedReason !== null;
  }

  /** Called once, with the reason, when the isolate is disposed for any cause. */
  whenDisposed(listener: (reason: string) => void): void {
    this.onDisposed = listener;
  }

  /** Call `hook` right before the isolate is disposed, for any cause. If it returns a promise, the
   *  V8 isolate itself is disposed once that settles (the ReadyIsolate counts as disposed at once). */
  onBeforeDispose(hook: () => void | Promise<void>): void {
    this.beforeDispose.push(hook);
  }

  /** End this isolate: it counts as disposed at once and its bridge to the host is cut. The V8
   *  isolate is freed now, or, given a `reaper`, between requests (a retired isolate with nothing
   *  in flight: see isolate-reaper.ts). A limit breach or shutdown must not pass one. */
  dispose(reason: string, reaper?: IsolateReaper): void {
    if (this.disposedReason !== null) return;
    this.disposedReason = reason;
    const pending: Promise<void>[] = [];
    for (const hook of this.beforeDispose.splice(0)) {
      try {
        const result = hook();
        if (result) pending.push(result);
      } catch {
        // a hook's failure must not keep the isolate alive
      }
    }
    this.bridge.dispose();
    const free = () => {
      if (this.isolate.isDisposed) return;
      if (reaper) reaper.dispose(this.isolate);
      else this.isolate.dispose();
    };
    if (pending.length) void Promise.allSettled(pending).then(free);
    else free();
    this.onDisposed?.(reason);
  }
}
