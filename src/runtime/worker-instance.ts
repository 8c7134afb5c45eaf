// One worker loaded into one isolate: compiles its modules (with V8 code cache), runs its top
// level, installs its env, then serves invocations concurrently. Owns the per-invocation limits:
// CPU (via the watchdog), wall time, memory (isolate disposal), and turns a breach into a clear
// error for exactly the invocations it affects.
import ivm from './ivm.js';
import type { Logger } from 'pino';
import { LimitExceededError, resolveLimits, type LimitKind, type Limits } from './limits.js';
import type { BridgeOwner, LogLevel } from './host-bridge.js';
import type { ReadyIsolate } from './ready-isolate.js';
import type { IsolateReaper } from './isolate-reaper.js';
import type { Watchdog, Watched } from './watchdog.js';
import { FetchBatcher } from './fetch-batch.js';
import { decodeGuestResult, serializedUrl, wireArgument, type GuestResult } from './guest-wire.js';
import { responseProblem } from './crossing.js';
import { packageRoot } from './paths.js';
import type { BindingConfig, WorkerDefinition } from './worker-definition.js';
import type { GuestException, GuestWireRequest, PulledChunk, WireRequest, WireResponse } from './wire.js';

export type { GuestException, WireRequest, WireResponse } from './wire.js';

export type Outcome = 'ok' | 'exception' | 'exceededCpu' | 'exceededWall' | 'exceededMemory' | 'canceled';

/** What one invocation used: the metering record (DESIGN: pay-per-use). */
export interface InvocationRecord {
  worker: string;
  version: string;
  requestId: string;
  kind: 'fetch' | 'scheduled';
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
  /** what the guest threw, when outcome is "exception" (live tail shows it with its stack) */
  exception?: GuestException;
  /** what started it: the request (and the status answered) or the cron */
  trigger?: InvocationTrigger;
}

export type InvocationTrigger = { method: string; url: string; status?: number } | { cron: string; scheduledTime: number };

export interface FetchResult {
  response?: WireResponse;
  /** the response body, when the guest answered with a stream; pull it to the end or return() */
  stream?: AsyncGenerator<Uint8Array | string, void, undefined>;
  exception?: GuestException;
  limit?: LimitExceededError;
}

/** A binding op handler: runs on the host for a guest call such as KV get or fetch. */
export type OpHandler = (call: OpCall, args: unknown[]) => Promise<unknown>;

export interface OpCall {
  worker: WorkerDefinition;
  limits: Limits;
  invocation: Invocation | undefined;
  /** resolve an env binding by name, as configured for this worker */
  binding(name: string): BindingConfig | undefined;
  /** hand the guest a host-side byte stream; it reads it with the `body.read` op by this id */
  openStream(source: AsyncIterable<Uint8Array>): number;
  /** a guest ReadableStream the guest offered by id (e.g. an outbound request body), read from the host */
  guestStream(id: number): AsyncIterable<Uint8Array>;
  /** a host stream (see openStream) the guest passed on untouched; the caller now owns it */
  takeHostStream(id: number): AsyncIterable<Uint8Array>;
  /** host-side state that lives as long as this isolate (e.g. crypto keys by handle), per op family */
  isolateState<T>(family: string, create: () => T): T;
}

export interface InstanceHost {
  logger: Logger;
  watchdog: Watchdog;
  ops: Map<string, OpHandler>;
  onInvocationEnd(record: InvocationRecord): void;
  onConsole?(worker: string, requestId: string, level: LogLevel, message: string): void;
  /** the logger for a worker's console lines (a child with the worker's own level) */
  consoleLogger?(worker: string): Logger;
  /** frees retired isolates between requests (without one, retiring disposes at once) */
  reaper?: IsolateReaper;
}

export class WorkerLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerLoadError';
  }
}

const NS_PER_MS = 1_000_000n;
const HEAP_SAMPLE_MS = 200;

export class Invocation {
  cpuNs = 0n;
  subrequests = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly startedAt = performance.now();
  private abortWith!: (error: LimitExceededError) => void;
  /** rejects when a limit ends this invocation early */
  readonly aborted: Promise<never>;
  limit: LimitExceededError | null = null;
  wallTimer: NodeJS.Timeout | null = null;
  exception?: GuestException;
  trigger?: InvocationTrigger;
  /** Whether guest code of this invocation may run on one of isolated-vm's threads, now or later:
   *  it was entered asynchronously, or it waits on the host (an op, a timer, a stream, waitUntil).
   *  While none in flight does, nothing but this thread enters the isolate (see dispatch). */
  offThread = false;

  private markFlushed: (() => void) | null = null;
  private flushedAlready = false;

  constructor(
    readonly id: number,
    readonly requestId: string,
    readonly kind: 'fetch' | 'scheduled',
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
  }

  get cpuMs(): number {
    return Number(this.cpuNs) / 1e6;
  }
}

let nextInvocationId = 1;

function guestEnv(bindings: Record<string, BindingConfig>): Record<string, unknown> {
  const env: Record<string, unknown> = {};
  for (const [name, binding] of Object.entries(bindings)) {
    switch (binding.type) {
      case 'plain_text':
      case 'secret_text':
        env[name] = { type: binding.type, text: binding.text };
        break;
      case 'json':
        env[name] = { type: 'json', json: binding.json };
        break;
      default:
        // Host-backed bindings reach the guest as their type only; the guest calls back by
        // binding name and the host resolves the name against this worker's own config.
        env[name] = { type: binding.type };
    }
  }
  return env;
}

function isMemoryError(message: string): boolean {
  return /memory limit|Array buffer allocation failed|allocation failed - JavaScript heap/i.test(message);
}

/** The chunks of a host stream, counted as the invocation's bytes out, until its end or a limit;
 *  the source is returned (closed) when reading stops early. */
async function* hostChunks(invocation: Invocation, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), invocation.aborted]);
      if (next.done) {
        done = true;
        return;
      }
      invocation.bytesOut += next.value.byteLength;
      yield next.value;
    }
  } finally {
    if (!done) void iterator.return?.();
  }
}

/** Invocations using less CPU than this (on average, recently) are light enough to enter their
 *  isolate synchronously (see WorkerInstance.dispatch). */
const LIGHT_INVOCATION_CPU_MS = 1;

export class WorkerInstance implements BridgeOwner, Watched {
  readonly limits: Limits;
  /** the CPU limit per invocation, and the wall-time bound of a synchronous entry (see dispatch) */
  private readonly cpuLimitNs: bigint;
  private readonly syncTimeoutMs: number;
  readonly inFlight = new Map<number, Invocation>();
  format: 'modules' | 'service-worker' = 'modules';
  handlers: string[] = [];
  loadMs = 0;
  /** requests served since load: lets the runtime recycle or report */
  served = 0;
  lastUsed = Date.now();
  private lastCpu = 0n;
  private lastSampleAt = 0;
  private cpuAtProgress = 0n;
  /** share of wall time the isolate's thread spent on CPU recently (EWMA, 0..1) */
  utilization = 0;
  private retired = false;
  /** request ids of the last invocations to end, by invocation id (see log) */
  private readonly recentlyEnded = new Map<number, string>();
  /** whether an event has entered this isolate yet (see dispatch) */
  private entered = false;
  /** CPU ms of recent invocations (EWMA): light workers are entered synchronously (see dispatch) */
  private recentCpuMs = 0;
  /** a host call arrived for no invocation in flight (a stray continuation): guest code may run on
   *  isolated-vm's threads until nothing is in flight (see dispatch) */
  private strayHostCalls = false;
  /** how events entered this isolate: one at a time on this thread, in batches (events / batches),
   *  or asynchronously on isolated-vm's threads */
  readonly entries = { sync: 0, batched: 0, batches: 0, async: 0 };
  /** light fetch events that arrive together enter in batches (see dispatchFetch) */
  private readonly batcher: FetchBatcher<Invocation>;
  /** per-isolate host state of op families (dropped with the isolate) */
  private readonly opState = new Map<string, unknown>();
  // Heap statistics are read asynchronously (a sync read would wait for the isolate's lock) and at
  // most every HEAP_SAMPLE_MS; records carry the latest reading.
  private heapBytes = 0;
  private peakHeapBytes = 0;
  private heapSampledAt = 0;
  private heapSampling = false;
  /** the compiled modules, kept from load until their code cache is made again after a first request */
  private modulesToCache: Map<string, ivm.Module> | undefined;

  constructor(
    readonly def: WorkerDefinition,
    readonly ready: ReadyIsolate,
    private readonly host: InstanceHost,
  ) {
    this.limits = resolveLimits(def.limits);
    ready.bridge.owner = this;
    this.cpuLimitNs = BigInt(Math.round(this.limits.cpuMs)) * NS_PER_MS;
    this.syncTimeoutMs = Math.max(1, Math.round(this.limits.cpuMs));
    this.batcher = new FetchBatcher<Invocation>({
      dispatchBatch: ready.entry.dispatchBatch,
      takeSettled: ready.entry.takeSettled,
      canEnterSynchronously: () => this.alive && this.onlyThisThread(),
      enterAlone: (invocation, request, mayEnterSync) => this.dispatch(invocation, ready.entry.dispatchFetch, [invocation.id, wireArgument(request)], mayEnterSync),
      chargeSync: (invocations) => this.chargeSync(invocations),
      syncTimeoutMs: this.syncTimeoutMs,
      entries: this.entries,
    });
  }

  get isolate(): ivm.Isolate {
    return this.ready.isolate;
  }

  get alive(): boolean {
    return !this.ready.isDisposed;
  }

  /** Compile the modules, run the top level and install env. Throws WorkerLoadError. */
  load(): void {
    const started = performance.now();
    const { def, ready } = this;
    const main = def.modules.find((m) => m.name === def.main);
    if (!main) throw new WorkerLoadError(`main module "${def.main}" is not among the uploaded modules`);
    const timeout = this.limits.startupMs;
    let namespace: ivm.Reference | undefined;
    let renewed = false;
    try {
      if (main.type === 'esm') {
        const compiled = new Map<string, ivm.Module>();
        const names = new Map<ivm.Module, string>();
        for (const source of def.modules) {
          if (source.type !== 'esm') continue;
          const module = ready.isolate.compileModuleSync(source.code, { filename: `file:///${source.name}`, ...this.cacheOptions(source.name) });
          renewed = this.keepCache(source.name, module) || renewed;
          compiled.set(source.name, module);
          names.set(module, source.name);
        }
        const entry = compiled.get(main.name)!;
        entry.instantiateSync(ready.context, (specifier, referrer) => {
          const resolved = resolveSpecifier(specifier, names.get(referrer) ?? main.name);
          const target = compiled.get(resolved);
          if (!target) throw new Error(`No such module "${specifier}" (imported from ${names.get(referrer) ?? main.name})`);
          return target;
        });
        // An entry V8 refused was just replaced by a compile-time one: the cache as a whole is
        // no longer the after-first-request kind, and is made again after this isolate's first.
        if (renewed) def.codeCacheAfterRun = false;
        entry.evaluateSync({ timeout });
        namespace = entry.namespace;
        if (def.codeCache && !def.codeCacheAfterRun) this.modulesToCache = compiled;
      } else {
        const script = ready.isolate.compileScriptSync(main.code, { filename: `file:///${main.name}`, ...this.cacheOptions(main.name) });
        renewed = this.keepCache(main.name, script);
        script.runSync(ready.context, { timeout, release: true });
      }
      const installed = ready.entry.installWorker.applySync(undefined, [namespace ? namespace.derefInto() : undefined, JSON.stringify(guestEnv(def.bindings))], { timeout });
      this.takeInstalled(installed);
      // As on workerd: eval() and new Function() work while the worker starts, not in its handlers.
      ready.disallowCodeGeneration();
    } catch (error) {
      throw new WorkerLoadError(describeLoadError(error, ready.isDisposed));
    } finally {
      namespace?.release();
    }
    if (renewed) def.onCodeCacheUpdated?.(def.codeCache!, 'rejected');
    this.loadMs = performance.now() - started;
    this.lastCpu = this.cpuAtProgress = this.readCpu();
    this.sampleHeap();
  }

  /** The guest's answer to installWorker: its format, then the handlers it found ("modules fetch"). */
  private takeInstalled(answer: unknown): void {
    const [format, ...handlers] = String(answer).split(' ');
    if (format !== 'modules' && format !== 'service-worker') throw new Error(`the sandbox answered installWorker with ${JSON.stringify(answer)}`);
    this.format = format;
    this.handlers = handlers.filter((name) => name === 'fetch' || name === 'scheduled');
  }

  // With both options isolated-vm produces a cache only when none was given or V8 rejected the
  // one given, so a rejected entry is replaced in the same load instead of the next one.
  private cacheOptions(moduleName: string): { cachedData?: ivm.ExternalCopy<ArrayBuffer>; produceCachedData?: boolean } {
    if (!this.def.codeCache) return {};
    const cached = this.def.codeCache.get(moduleName);
    if (!cached) return { produceCachedData: true };
    return { cachedData: new ivm.ExternalCopy(cached.buffer.slice(cached.byteOffset, cached.byteOffset + cached.byteLength) as ArrayBuffer), produceCachedData: true };
  }

  /** Keep what V8 produced; true when it replaced an entry V8 rejected. */
  private keepCache(moduleName: string, compiled: object): boolean {
    const cache = this.def.codeCache;
    if (!cache) return false;
    const { cachedData, cachedDataRejected } = compiled as { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };
    if (cachedDataRejected) cache.delete(moduleName);
    if (cache.has(moduleName) || !cachedData) return false;
    cache.set(moduleName, Buffer.from(cachedData.copy()));
    return cachedDataRejected === true;
  }

  /**
   * Replace the code cache made at compile time with one made now. V8 compiles most functions on
   * their first call, and a cache made at compile time holds only the top level; one made after
   * the top level and a first request also holds every function they called, which a later cold
   * start then need not compile (measured on the 1.2 MB Hono bench worker: its top level ran in
   * 12 ms instead of 33, for 6 ms more deserializing the larger cache). Once per version and
   * process, when the isolate is idle, so no invocation is charged for it; it holds this thread
   * for as long as V8 takes to serialize (about 10 ms for that bundle, well under 1 ms for a small
   * worker).
   */
  private cacheAfterRun(): void {
    const modules = this.modulesToCache;
    if (!modules || this.inFlight.size > 0) return;
    this.modulesToCache = undefined;
    const { def } = this;
    if (!this.alive || this.retired || def.codeCacheAfterRun || !def.codeCache) return;
    def.codeCacheAfterRun = true;
    try {
      for (const [name, module] of modules) {
        const made = (module as unknown as { createCachedDataSync(): ivm.ExternalCopy<ArrayBuffer> }).createCachedDataSync();
        def.codeCache.set(name, Buffer.from(made.copy({ release: true })));
      }
    } catch (error) {
      // The compile-time cache stays (entries made before the failure are as good), and a later
      // isolate tries again; an isolate disposed meanwhile is the usual cause and not worth a line.
      def.codeCacheAfterRun = false;
      if (this.alive) this.host.logger.warn({ worker: def.name, err: (error as Error).message }, 'could not make the code cache after the first request');
      return;
    }
    def.onCodeCacheUpdated?.(def.codeCache, 'after-run');
  }

  // --- invocations ----------------------------------------------------------------------------

  private begin(requestId: string, kind: 'fetch' | 'scheduled'): Invocation {
    const invocation = new Invocation(nextInvocationId++, requestId, kind);
    if (this.inFlight.size === 0) {
      this.lastCpu = this.cpuAtProgress = this.readCpu();
      this.lastSampleAt = performance.now();
      this.host.watchdog.watch(this);
    }
    this.inFlight.set(invocation.id, invocation);
    invocation.wallTimer = setTimeout(() => invocation.abort('wall'), this.limits.wallMs);
    invocation.wallTimer.unref();
    this.lastUsed = Date.now();
    return invocation;
  }

  private end(invocation: Invocation, outcome: Outcome): void {
    if (!this.inFlight.has(invocation.id)) return;
    this.sampleCpu();
    this.inFlight.delete(invocation.id);
    this.batcher.forget(invocation.id);
    this.recentlyEnded.set(invocation.id, invocation.requestId);
    if (this.recentlyEnded.size > 256) this.recentlyEnded.delete(this.recentlyEnded.keys().next().value!);
    if (this.inFlight.size === 0) {
      this.utilization = 0;
      this.strayHostCalls = false;
    }
    if (invocation.wallTimer) clearTimeout(invocation.wallTimer);
    this.served++;
    this.recentCpuMs = this.served === 1 ? invocation.cpuMs : 0.8 * this.recentCpuMs + 0.2 * invocation.cpuMs;
    this.lastUsed = Date.now();
    this.sampleHeap();
    const wallMs = performance.now() - invocation.startedAt;
    // The CPU clock is the isolate thread's own (patched isolated-vm), so the last sample is final.
    this.emitRecord(invocation, outcome, wallMs);
    if (this.modulesToCache && this.inFlight.size === 0) setImmediate(() => this.cacheAfterRun());
  }

  private emitRecord(invocation: Invocation, outcome: Outcome, wallMs: number): void {
    this.host.onInvocationEnd({
      worker: this.def.name,
      version: this.def.version,
      requestId: invocation.requestId,
      kind: invocation.kind,
      outcome,
      cpuMs: invocation.cpuMs,
      wallMs,
      subrequests: invocation.subrequests,
      bytesIn: invocation.bytesIn,
      bytesOut: invocation.bytesOut,
      memoryBytes: this.heapBytes,
      peakMemoryBytes: this.peakHeapBytes,
      exception: invocation.exception,
      trigger: invocation.trigger,
    });
  }

  private sampleHeap(): void {
    const now = performance.now();
    if (this.heapSampling || now - this.heapSampledAt < HEAP_SAMPLE_MS || !this.alive) return;
    this.heapSampledAt = now;
    // With no guest code on another thread, nothing holds the isolate's lock: read it here (a few
    // microseconds). An asynchronous read would take the lock on another thread just when the
    // next request wants to enter, and that entry would wait for it.
    if (this.onlyThisThread()) {
      try {
        this.recordHeap(this.ready.isolate.getHeapStatisticsSync());
      } catch {
        // disposed meanwhile
      }
      return;
    }
    this.heapSampling = true;
    this.ready.isolate.getHeapStatistics().then(
      (heap) => {
        this.heapSampling = false;
        this.recordHeap(heap);
      },
      () => {
        this.heapSampling = false;
      },
    );
  }

  private recordHeap(heap: ivm.HeapStatistics): void {
    this.heapBytes = heap.used_heap_size + heap.externally_allocated_size;
    this.peakHeapBytes = Math.max(this.peakHeapBytes, this.heapBytes);
  }

  /** Latest heap reading for this isolate: { used, peak } in bytes. */
  heap(): { used: number; peak: number } {
    return { used: this.heapBytes, peak: this.peakHeapBytes };
  }

  async fetch(request: WireRequest, requestId: string): Promise<FetchResult & { invocation: Invocation }> {
    const invocation = this.begin(requestId, 'fetch');
    invocation.bytesIn = request.body ? request.body.byteLength : 0;
    const trigger: { method: string; url: string; status?: number } = { method: request.method, url: request.url };
    invocation.trigger = trigger;
    const guestRequest: GuestWireRequest = { method: request.method, ...serializedUrl(request.url), headers: request.headers, body: request.body, cf: request.cf };
    if (request.bodyStream) guestRequest.bodyStream = this.openHostStream(invocation, request.bodyStream);
    let streaming = false;
    try {
      const call = this.dispatchFetch(invocation, guestRequest);
      let out = await this.outcome<WireResponse>(invocation, call);
      const problem = out.result ? responseProblem(out.result) : null;
      if (problem) out = this.refuseResponse(invocation, out, problem);
      this.activity();
      if (out.exception && isMemoryError(out.exception.message)) {
        // A failed big allocation leaves the isolate alive but near its limit: recycle it.
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      const outcome: Outcome = out.exception ? 'exception' : 'ok';
      invocation.exception = out.exception;
      if (out.result) trigger.status = out.result.status;
      if (out.result?.stream != null) {
        streaming = true;
        invocation.offThread = true;
        return { response: out.result, stream: this.pullResponseStream(invocation, out.result.stream), invocation };
      }
      if (out.result?.hostStream != null) {
        streaming = true;
        invocation.offThread = true;
        return { response: out.result, stream: this.pipeHostStream(invocation, this.takeHostStream(out.result.hostStream)), invocation };
      }
      const body = out.result?.body;
      invocation.bytesOut = body == null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      if (out.pending) this.finishLater(invocation, outcome);
      else this.end(invocation, outcome);
      return { response: out.result, exception: out.exception, invocation };
    } catch (error) {
      try {
        const limit = this.limitFor(invocation, error);
        this.end(invocation, outcomeOf(limit.limit));
        return { limit, invocation };
      } catch (unexpected) {
        this.end(invocation, 'exception');
        throw unexpected;
      }
    } finally {
      if (!streaming) this.closeRequestStreams(invocation);
    }
  }

  /** A response the host cannot send (see crossing.ts): the invocation ends with an exception that
   *  names the bad value, and a body stream it offered is cancelled. */
  private refuseResponse(invocation: Invocation, out: GuestResult<WireResponse>, problem: string): GuestResult<WireResponse> {
    const { stream, hostStream } = out.result!;
    if (Number.isInteger(stream) && this.alive) this.ready.entry.cancelStream.applyIgnored(undefined, [stream]);
    if (Number.isInteger(hostStream) && this.requestStreams.has(hostStream!)) void this.takeHostStream(hostStream!)[Symbol.asyncIterator]().return?.();
    const message = `The worker answered with a response the host cannot send: ${problem}`;
    this.host.logger.warn({ worker: this.def.name, version: this.def.version, requestId: invocation.requestId, err: message }, 'response refused at the crossing');
    return { exception: { name: 'TypeError', message, stack: `TypeError: ${message}` }, pending: out.pending };
  }

  // --- streamed bodies ----------------------------------------------------------------------------

  // Host-side byte streams the guest reads by id: uploads still arriving, outbound fetch bodies.
  // Each belongs to an invocation and is closed when that invocation ends.
  private readonly requestStreams = new Map<number, { owner: Invocation | undefined; iterator: AsyncIterator<Uint8Array> }>();
  private nextStreamId = 1;

  private openHostStream(invocation: Invocation | undefined, body: AsyncIterable<Uint8Array>): number {
    const id = this.nextStreamId++;
    this.requestStreams.set(id, { owner: invocation, iterator: body[Symbol.asyncIterator]() });
    return id;
  }

  /** Hand a host stream over whole (the guest passed it on unread): it leaves the registry, so
   *  ending the invocation no longer closes it; whoever takes it reads it to the end. */
  private takeHostStream(id: number): AsyncIterable<Uint8Array> {
    const stream = this.requestStreams.get(id);
    if (!stream) throw new TypeError('body stream is closed or already used');
    this.requestStreams.delete(id);
    const iterator = stream.iterator;
    const owner = stream.owner;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const result = await iterator.next();
          if (!result.done && owner) owner.bytesIn += result.value.byteLength;
          return result;
        },
        return: async () => (await iterator.return?.()) ?? { value: undefined, done: true },
      }),
    };
  }

  private async readRequestStream(id: unknown): Promise<ArrayBuffer | null> {
    const stream = this.requestStreams.get(Number(id));
    if (!stream) throw new TypeError('request body stream is closed');
    const { value, done } = await stream.iterator.next();
    if (done) {
      this.requestStreams.delete(Number(id));
      return null;
    }
    if (stream.owner) stream.owner.bytesIn += value.byteLength;
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
  }

  private closeRequestStreams(invocation: Invocation): void {
    for (const [id, stream] of this.requestStreams) {
      if (stream.owner !== invocation) continue;
      this.requestStreams.delete(id);
      // Unread upload: let the source drain or close it (keeps the connection usable).
      void stream.iterator.return?.();
    }
  }

  /** Pull a guest ReadableStream body to the host, chunk by chunk, as the client takes it. */
  private pullResponseStream(invocation: Invocation, streamId: number): AsyncGenerator<Uint8Array | string, void, undefined> {
    return this.streamed(
      invocation,
      this.guestChunks(invocation, streamId),
      (error) => {
        const guest = (error as { guest?: GuestException }).guest;
        if (guest) {
          invocation.exception = guest;
          this.settleNow(invocation, 'exception');
          return error;
        }
        const limit = invocation.limit ?? (this.ready.disposedReason ? this.limitFor(invocation, error) : null);
        this.end(invocation, limit ? outcomeOf(limit.limit) : 'exception');
        return limit ?? error;
      },
      () => {
        if (this.alive) this.ready.entry.cancelStream.applyIgnored(undefined, [streamId]);
      },
    );
  }

  /** A response body that is a host stream passed through untouched (e.g. `return fetch(url)`):
   *  piped straight to the client, never entering the isolate. */
  private pipeHostStream(invocation: Invocation, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
    return this.streamed(
      invocation,
      hostChunks(invocation, source),
      (error) => {
        this.settleNow(invocation, invocation.limit ? outcomeOf(invocation.limit.limit) : 'exception');
        return invocation.limit ?? error;
      },
      () => {}, // hostChunks returns its source when stopped early
    );
  }

  /**
   * The invocation's side of a streamed response body: it stays open while the client reads. At
   * the end it settles (waiting for any waitUntil work); if the source fails, `fail` ends it and
   * returns what to throw; if the client goes away first, `cancel` stops the source and the
   * invocation ends as canceled.
   */
  private async *streamed<T>(invocation: Invocation, source: AsyncGenerator<T, void, undefined>, fail: (error: unknown) => unknown, cancel: () => void): AsyncGenerator<T, void, undefined> {
    let finished = false;
    try {
      yield* source;
      finished = true;
      this.closeRequestStreams(invocation);
      // The guest kept the invocation open while its stream was read (timers included).
      this.finishLater(invocation, 'ok');
    } catch (error) {
      finished = true;
      this.closeRequestStreams(invocation);
      throw fail(error);
    } finally {
      if (!finished) {
        this.closeRequestStreams(invocation);
        cancel();
        this.settleNow(invocation, 'canceled');
      }
    }
  }

  /** The chunks of a guest stream, counted as the invocation's bytes out; a guest error is thrown
   *  with its description as `guest`. */
  private async *guestChunks(invocation: Invocation, streamId: number): AsyncGenerator<Uint8Array | string, void, undefined> {
    for (;;) {
      const pull = this.ready.entry.pullStream.apply(undefined, [streamId], { result: { promise: true, copy: true } }) as Promise<PulledChunk>;
      const chunk = await Promise.race([pull, invocation.aborted]);
      this.activity();
      if (chunk === null) return;
      if (typeof chunk === 'object' && !(chunk instanceof ArrayBuffer)) {
        throw Object.assign(new Error(chunk.error.message), { guest: chunk.error });
      }
      if (typeof chunk === 'string') {
        invocation.bytesOut += Buffer.byteLength(chunk);
        yield chunk;
      } else {
        invocation.bytesOut += chunk.byteLength;
        yield new Uint8Array(chunk);
      }
    }
  }

  /** Read a guest stream from the host; stopping early cancels it in the guest. */
  private async *pullGuestStream(id: number): AsyncGenerator<Uint8Array, void, undefined> {
    let finished = false;
    try {
      for (;;) {
        const chunk = (await this.ready.entry.pullStream.apply(undefined, [id], { result: { promise: true, copy: true } })) as PulledChunk;
        this.activity();
        if (chunk === null) {
          finished = true;
          return;
        }
        if (typeof chunk === 'object' && !(chunk instanceof ArrayBuffer)) {
          finished = true;
          throw new Error(chunk.error.message);
        }
        yield typeof chunk === 'string' ? Buffer.from(chunk) : new Uint8Array(chunk);
      }
    } finally {
      if (!finished && this.alive) this.ready.entry.cancelStream.applyIgnored(undefined, [id]);
    }
  }

  /** End an invocation whose guest side may still hold state: let the guest close it too. */
  private settleNow(invocation: Invocation, outcome: Outcome): void {
    if (this.alive) this.ready.entry.settle.applyIgnored(undefined, [invocation.id]);
    this.end(invocation, outcome);
  }

  async scheduled(cron: string, scheduledTime: number, requestId: string): Promise<{ exception?: GuestException; limit?: LimitExceededError; noRetry: boolean; invocation: Invocation }> {
    const invocation = this.begin(requestId, 'scheduled');
    invocation.trigger = { cron, scheduledTime };
    try {
      const call = this.dispatch(invocation, this.ready.entry.dispatchScheduled, [invocation.id, cron, scheduledTime]);
      const out = await this.outcome<{ noRetry: boolean }>(invocation, call);
      this.activity();
      invocation.exception = out.exception;
      this.end(invocation, out.exception ? 'exception' : 'ok');
      return { exception: out.exception, noRetry: out.result?.noRetry ?? false, invocation };
    } catch (error) {
      const limit = this.limitFor(invocation, error);
      this.end(invocation, outcomeOf(limit.limit));
      return { limit, noRetry: false, invocation };
    }
  }

  /**
   * Enter the isolate for an event: synchronously (on this thread) or asynchronously (on one of
   * isolated-vm's threads).
   *
   * - The first entry into a fresh isolate goes in synchronously: isolated-vm's first *async* call
   *   into an isolate waits ~15 ms before it runs (measured here: 17 ms of wall for 1 ms of CPU),
   *   which would be the whole cold start.
   * - Later events go in synchronously too when the worker's recent invocations were light (under
   *   LIGHT_INVOCATION_CPU_MS) and no guest code can be running on another thread: every other
   *   invocation in flight was entered synchronously, finished its synchronous part, and waits on
   *   nothing of the host (`offThread`), only for its answer to reach this thread. Then no other
   *   thread holds the isolate's lock, so this thread never waits behind guest code it cannot
   *   limit. An async entry costs two thread hand-offs (~30 us more of this thread's CPU than a
   *   sync one, and a wake-up of a second thread): under load it was most of a hello world's cost.
   * - Everything else goes in asynchronously, so heavy workers run in parallel on isolated-vm's
   *   threads and never stall this one.
   * A synchronous entry is bounded by isolated-vm's timeout at the CPU limit (it blocks this thread
   * meanwhile) and is charged exactly the CPU it used; what the handler does after its first await
   * runs on isolated-vm's threads as usual (its host call marks the invocation `offThread`).
   */
  private dispatch(invocation: Invocation, entry: ivm.Reference<Function>, args: unknown[], mayEnterSync = true): Promise<unknown> {
    // With an inspector attached, always asynchronously: a debugger pause or a limit breach while
    // this thread is inside a synchronous call is what the inspector cannot survive.
    const first = !this.entered;
    const sync = mayEnterSync && !this.ready.inspectable && (first || (this.light && this.onlyThisThread()));
    this.entered = true;
    if (!sync) {
      invocation.offThread = true;
      this.entries.async++;
      return entry.apply(undefined, args, { result: { promise: true, copy: true } });
    }
    this.entries.sync++;
    try {
      // isolated-vm's timeout is wall time. The first entry into a fresh isolate compiles much of
      // the worker lazily while the pool refills on the other core, so its wall time can run well
      // past its CPU time (a ~26 ms first request of a 1.2 MB app was cut at 50 ms of wall): it
      // gets twice the limit, and the CPU it really used is checked right after (chargeSync).
      const timeout = first ? 2 * this.syncTimeoutMs : this.syncTimeoutMs;
      return entry.applySync(undefined, args, { result: { promise: true, copy: true }, timeout }) as unknown as Promise<unknown>;
    } catch (error) {
      // Out of memory: say so before the CPU it used is charged (a bomb uses both).
      if (this.diedOfMemory(error)) this.breach('memory', invocation);
      return Promise.reject(error);
    } finally {
      // Nothing else ran in the isolate meanwhile (see onlyThisThread): what the clock moved by
      // is this invocation's. Later samples (watchdog, end) share out only what comes after.
      this.chargeSync([invocation]);
    }
  }

  private get light(): boolean {
    return this.recentCpuMs < LIGHT_INVOCATION_CPU_MS;
  }


  /** After a synchronous entry: the CPU the isolate's clock moved by, shared by what ran in it. */
  private chargeSync(invocations: Invocation[]): void {
    const cpu = this.readCpu();
    if (cpu > this.lastCpu && invocations.length) {
      const share = (cpu - this.lastCpu) / BigInt(invocations.length);
      for (const invocation of invocations) invocation.cpuNs += share;
    }
    this.lastCpu = this.cpuAtProgress = cpu;
    for (const invocation of invocations) {
      if (invocation.cpuNs > this.cpuLimitNs) {
        this.breach('cpu', invocation);
        return;
      }
    }
  }

  /**
   * A fetch event. Light requests without a body in hand that could enter synchronously (see
   * dispatch) are batched instead once requests arrive together (see fetch-batch.ts): the
   * crossing's fixed cost is paid once per batch rather than once per request.
   */
  private dispatchFetch(invocation: Invocation, request: GuestWireRequest): Promise<unknown> {
    const together = this.batcher.arrive();
    if (!together || request.body != null || !this.entered || this.ready.inspectable || !this.light || !this.onlyThisThread()) {
      return this.dispatch(invocation, this.ready.entry.dispatchFetch, [invocation.id, wireArgument(request)]);
    }
    return this.batcher.enqueue(invocation, request);
  }

  /** BridgeOwner: the isolate could not take bytes the host answered with (see host-bridge.ts). */
  outOfMemory(invocationId: number): void {
    this.breach('memory', this.inFlight.get(invocationId));
  }

  /** BridgeOwner: a batched fetch event's answer, sent after its batch (see fetch-batch.ts). */
  settled(invocationId: number, answer: unknown): void {
    this.batcher.settled(invocationId, answer);
  }

  /** True when no guest code can be running in the isolate on another thread, now or before this
   *  thread's next entry returns. (An invocation about to enter was never entered, so it is never
   *  `offThread` yet.) */
  private onlyThisThread(): boolean {
    if (this.strayHostCalls) return false;
    for (const invocation of this.inFlight.values()) if (invocation.offThread) return false;
    return true;
  }

  /** BridgeOwner: the guest called the host asynchronously for an invocation; its continuation
   *  will run on isolated-vm's threads. */
  awaitsHost(invocationId: number): void {
    const invocation = this.inFlight.get(invocationId);
    if (invocation) invocation.offThread = true;
    else this.strayHostCalls = true;
  }

  /** The guest's answer to an event, once every console line it sent before answering is in
   *  (see finish in sandbox/dispatch.ts); rejects when a limit ends the invocation first. */
  private async outcome<T>(invocation: Invocation, call: Promise<unknown>): Promise<GuestResult<T>> {
    const out = decodeGuestResult<T>(await Promise.race([call, invocation.aborted]));
    // A synchronous entry can finish with its answer and still be over the CPU limit (chargeSync).
    if (invocation.limit) throw invocation.limit;
    if (out.flush) await Promise.race([invocation.flushed(), invocation.aborted]);
    return out;
  }

  /** BridgeOwner: the guest's 'flush' message for an invocation (see outcome). */
  flushed(invocationId: number): void {
    this.inFlight.get(invocationId)?.flush();
  }

  /** The response is out; keep the invocation (and its limits) alive until waitUntil settles. */
  private finishLater(invocation: Invocation, outcome: Outcome): void {
    invocation.offThread = true;
    const settle = this.ready.entry.settle.apply(undefined, [invocation.id], { result: { promise: true } }) as Promise<void>;
    Promise.race([settle, invocation.aborted]).then(
      () => {
        this.activity();
        this.end(invocation, outcome);
      },
      (error) => this.end(invocation, outcomeOf(this.limitFor(invocation, error).limit)),
    );
  }

  private limitFor(invocation: Invocation, error: unknown): LimitExceededError {
    if (invocation.limit) return invocation.limit;
    if (this.diedOfMemory(error)) {
      this.breach('memory');
      return invocation.limit ?? new LimitExceededError('memory');
    }
    if (/execution timed out/i.test(String((error as Error)?.message ?? error))) {
      // isolated-vm's timeout on a synchronous entry (see dispatch): a handler spinning on CPU.
      this.breach('cpu');
      return invocation.limit ?? new LimitExceededError('cpu');
    }
    if (this.ready.disposedReason) {
      // Disposed under us for another reason (CPU breach by a sibling invocation, recycle).
      invocation.abort(this.ready.disposedReason === 'cpu' ? 'cpu' : 'memory');
      return invocation.limit!;
    }
    throw error;
  }

  /**
   * Whether an error from the isolate means it ran out of memory: the error says so, or the
   * isolate is gone without Cinder having ended it. isolated-vm disposes an isolate by itself only
   * at its memory limit, and the calls in flight then fail with whatever they were doing
   * ("Isolated is disposed", "Promise was abandoned").
   */
  private diedOfMemory(error: unknown): boolean {
    const message = String((error as Error)?.message ?? error);
    if (isMemoryError(message) || this.ready.disposedReason === 'memory') return true;
    return this.ready.disposedReason === null && this.ready.isolate.isDisposed;
  }

  // --- limits ------------------------------------------------------------------------------------

  private readCpu(): bigint {
    try {
      return this.ready.isolate.cpuTime;
    } catch {
      return this.lastCpu;
    }
  }

  /** BridgeOwner: the guest called the host, so whatever runs is not one endless slice. */
  activity(): void {
    if (this.inFlight.size) this.cpuAtProgress = this.readCpu();
  }

  sampleCpu(): boolean {
    if (this.inFlight.size === 0 || !this.alive) return false;
    const cpu = this.readCpu();
    const delta = cpu - this.lastCpu;
    this.lastCpu = cpu;
    const now = performance.now();
    const wallNs = (now - this.lastSampleAt) * 1e6;
    if (wallNs > 0) {
      this.utilization = 0.8 * this.utilization + 0.2 * Math.max(0, Math.min(1, Number(delta) / wallNs));
      this.lastSampleAt = now;
    }
    const limitNs = this.cpuLimitNs;
    if (delta !== 0n) {
      // Concurrent invocations share the isolate's thread; split what it burned between them.
      // With scripts/patch-isolated-vm.mjs the clock is the thread's CPU clock even mid-slice, so
      // deltas are not expected to go negative; should one (an unpatched build reads the running
      // slice as wall time, then drops back), applying it keeps each total telescoping to true CPU.
      const share = delta / BigInt(this.inFlight.size);
      for (const invocation of this.inFlight.values()) {
        invocation.cpuNs += share;
        if (invocation.cpuNs < 0n) invocation.cpuNs = 0n;
        if (invocation.cpuNs > limitNs) {
          this.breach('cpu', invocation);
          return false;
        }
      }
    }
    // One uninterrupted slice longer than the limit: some invocation is spinning.
    if (cpu - this.cpuAtProgress > limitNs) {
      this.breach('cpu');
      return false;
    }
    return true;
  }

  /** End the isolate: every invocation in it fails with the limit that was hit. */
  breach(limit: 'cpu' | 'memory', culprit?: Invocation): void {
    // Once per isolate; one isolated-vm disposed by itself (its memory limit) is still ended here.
    if (this.ready.disposedReason !== null) return;
    culprit?.abort(limit);
    for (const invocation of this.inFlight.values()) invocation.abort(limit);
    this.host.logger.warn({ worker: this.def.name, version: this.def.version, limit }, `worker ${this.def.name} ${new LimitExceededError(limit).message}; isolate recycled`);
    this.ready.dispose(limit);
  }

  // --- BridgeOwner ----------------------------------------------------------------------------------

  log(level: LogLevel, message: string, invocationId: number): void {
    // The guest names the invocation exactly for synchronous code and timers. A line can arrive
    // just after its invocation ended (isolated-vm delivers fire-and-forget calls asynchronously):
    // recently ended invocations are remembered. Otherwise, with one invocation in flight, it is
    // that one.
    const only = this.inFlight.size === 1 ? this.inFlight.values().next().value : undefined;
    const requestId = this.inFlight.get(invocationId)?.requestId ?? this.recentlyEnded.get(invocationId) ?? only?.requestId ?? '';
    const pinoLevel = level === 'log' ? 'info' : level;
    (this.host.consoleLogger?.(this.def.name) ?? this.host.logger)[pinoLevel]({ worker: this.def.name, version: this.def.version, requestId, console: level }, message);
    this.host.onConsole?.(this.def.name, requestId, level, message);
  }

  async callOp(op: string, invocationId: number, args: unknown[]): Promise<unknown> {
    if (op === 'body.read') return this.readRequestStream(args[0]);
    const handler = this.host.ops.get(op);
    if (!handler) throw new TypeError(`unsupported operation "${op}"`);
    const invocation = this.inFlight.get(invocationId);
    return handler(
      {
        worker: this.def,
        limits: this.limits,
        invocation,
        binding: (name) => (Object.hasOwn(this.def.bindings, name) ? this.def.bindings[name] : undefined),
        openStream: (source) => this.openHostStream(invocation, source),
        guestStream: (id) => this.pullGuestStream(Number(id)),
        takeHostStream: (id) => this.takeHostStream(Number(id)),
        isolateState: <T,>(family: string, create: () => T): T => {
          if (!this.opState.has(family)) this.opState.set(family, create());
          return this.opState.get(family) as T;
        },
      },
      args,
    );
  }

  /** Dispose once nothing is in flight (after a redeploy or eviction). */
  retire(reason: string): void {
    if (this.retired) return;
    this.retired = true;
    const tryDispose = () => {
      if (this.inFlight.size === 0) this.ready.dispose(reason, this.host.reaper);
      else setTimeout(tryDispose, 50).unref();
    };
    tryDispose();
  }
}

function outcomeOf(limit: LimitKind): Outcome {
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

/** Resolve an import specifier against the importing module's name ("./a.js" from "lib/b.js"). */
export function resolveSpecifier(specifier: string, referrer: string): string {
  if (!specifier.startsWith('./') && !specifier.startsWith('../') && !specifier.startsWith('/')) return specifier;
  const base = referrer.split('/').slice(0, -1);
  const parts = specifier.startsWith('/') ? [] : base;
  for (const part of specifier.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

function describeLoadError(error: unknown, disposed: boolean): string {
  const e = error as Error;
  const message = String(e?.message ?? error);
  if (disposed || /memory limit/i.test(message)) return 'Uncaught Error: exceeded memory limit while loading the worker';
  if (/timed out/i.test(message)) return 'Uncaught Error: the worker\'s top-level code exceeded the startup time limit';
  const stack = String(e?.stack ?? '');
  // isolated-vm appends "[file:///name:line:col]" to compile errors; keep it, it names the line.
  // Frames from the host (a resolver error thrown in Node) name nothing the user wrote: skip them.
  const firstFrame = stack.split('\n').find((line) => /file:\/\/\//.test(line) && !line.includes(packageRoot) && !line.includes('node_modules'));
  const name = e?.name && !message.startsWith(e.name) ? `${e.name}: ` : '';
  return firstFrame && !message.includes('file:///') ? `${name}${message}\n${firstFrame.trim()}` : `${name}${message}`;
}
