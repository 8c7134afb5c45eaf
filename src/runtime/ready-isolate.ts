// A blank isolate ready to become any worker: Web platform loaded (from the snapshot, or by
// running the bundle), host bridge booted, dispatch entry points held as References. Creating
// one costs 1-2 ms, which is why the pool makes them ahead of demand.
import ivm from 'isolated-vm';
import { HostBridge } from './host-bridge.js';
import type { IsolateSource } from './isolate-source.js';

export interface GuestEntry {
  installWorker: ivm.Reference<Function>;
  dispatchFetch: ivm.Reference<Function>;
  dispatchScheduled: ivm.Reference<Function>;
  settle: ivm.Reference<Function>;
  pullStream: ivm.Reference<Function>;
  cancelStream: ivm.Reference<Function>;
}

let nextIsolateId = 1;

// Exercises what nearly every request touches, so V8 compiles it before a cold start needs it.
// Side-effect free: it creates and drops objects, and never calls the host.
const WARMUP = `(() => {
  const request = new Request('https://warm.example/path?query=1', { method: 'POST', headers: [['content-type', 'text/plain'], ['x-a', '1']], body: 'x' });
  request.headers.get('x-a'); new URL(request.url).searchParams.get('query');
  const response = new Response('hello', { status: 200, headers: { 'content-type': 'text/plain' } });
  for (const pair of response.headers) void pair;
  Response.json({ a: 1 });
  new TextDecoder().decode(new TextEncoder().encode('warm'));
})()`;

export class ReadyIsolate {
  readonly id = nextIsolateId++;
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly bridge: HostBridge;
  readonly entry: GuestEntry;
  readonly memoryMb: number;
  readonly createdAt = Date.now();
  /** Date.now() when the sandbox prelude ran: the snapshot's build time for snapshot isolates */
  readonly preludeEvaluatedAt: number;
  /** why the isolate ended, if it did (memory limit, CPU breach, recycle) */
  disposedReason: string | null = null;
  private onDisposed: ((reason: string) => void) | null = null;
  /** run just before the isolate is disposed (an inspector session must end first: dispose hangs otherwise) */
  private readonly beforeDispose: (() => void | Promise<void>)[] = [];

  /** `inspector`: V8 inspector support (cinder dev --inspect only: not safe for untrusted code) */
  /** whether this isolate was made for the inspector (cinder dev --inspect) */
  readonly inspectable: boolean;

  constructor(source: IsolateSource, memoryMb: number, options: { inspector?: boolean } = {}) {
    this.inspectable = options.inspector === true;
    this.memoryMb = memoryMb;
    this.isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      inspector: options.inspector === true,
      snapshot: source.kind === 'snapshot' ? source.snapshot : undefined,
      onCatastrophicError: (message) => {
        // V8 lost control of this isolate. Nothing in it can be trusted; the supervisor (cli.ts)
        // restarts the process.
        process.emitWarning(`isolated-vm catastrophic error: ${message}`);
        process.exitCode = 70;
        setImmediate(() => process.exit(70));
      },
    });
    try {
      this.context = this.isolate.createContextSync({ inspector: options.inspector === true });
      if (source.kind === 'code-cache') {
        const script = this.isolate.compileScriptSync(source.code, { filename: 'cinder:sandbox.js', cachedData: source.cachedData });
        script.runSync(this.context);
        script.release();
      }
      this.bridge = new HostBridge();
      const boot = this.context.global.getSync('__cinder_boot', { reference: true }) as ivm.Reference<Function>;
      const entry = boot.applySync(undefined, [this.bridge.call, this.bridge.callSync, this.bridge.send], {
        result: { reference: true },
      }) as ivm.Reference<Record<string, Function>>;
      boot.release();
      this.entry = {
        installWorker: entry.getSync('installWorker', { reference: true }) as ivm.Reference<Function>,
        dispatchFetch: entry.getSync('dispatchFetch', { reference: true }) as ivm.Reference<Function>,
        dispatchScheduled: entry.getSync('dispatchScheduled', { reference: true }) as ivm.Reference<Function>,
        settle: entry.getSync('settle', { reference: true }) as ivm.Reference<Function>,
        pullStream: entry.getSync('pullStream', { reference: true }) as ivm.Reference<Function>,
        cancelStream: entry.getSync('cancelStream', { reference: true }) as ivm.Reference<Function>,
      };
      this.preludeEvaluatedAt = entry.getSync('preludeEvaluatedAt') as unknown as number;
      entry.release();
    } catch (error) {
      this.isolate.dispose();
      throw error;
    }
  }

  /** Compile the common request path in this isolate (runs on isolated-vm's threads). */
  async warm(): Promise<void> {
    try {
      await this.context.eval(WARMUP, { timeout: 1000 });
    } catch {
      // A warm-up that fails costs nothing but speed; the isolate is still good.
    }
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

  dispose(reason: string): void {
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
    if (pending.length) {
      void Promise.allSettled(pending).then(() => {
        if (!this.isolate.isDisposed) this.isolate.dispose();
      });
    } else if (!this.isolate.isDisposed) this.isolate.dispose();
    this.onDisposed?.(reason);
  }
}
