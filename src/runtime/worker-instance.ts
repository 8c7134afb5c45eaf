// One worker loaded into one isolate (worker-loader.ts), serving fetch and scheduled invocations
// concurrently: it enters the isolate for each event, always on isolated-vm's threads
// (entry-policy.ts), meters them
// (cpu-meter.ts), streams their bodies (body-streams.ts), and owns their limits: CPU (via the
// watchdog), wall time, memory (isolate disposal), turning a breach into a clear error for exactly
// the invocations it affects. It is the isolate bridge's owner: guest calls to host ops land here.
import ivm from './ivm.js';
import type { Logger } from 'pino';
import { LimitExceededError, resolveLimits, type Limits } from '../model/limits.js';
import type { WorkerDefinition } from '../model/worker-definition.js';
import { COPY_LIMIT_MESSAGE_PREFIX, OPS, callBytesFor, type DispatchResult, type GuestException, type LogLevel, type QueueDispatchResult, type SocketEvent, type WireQueueMessage, type WireRequest, type WireResponse } from '../../protocol/wall.js';
import type { OpHandler, RuntimeRequest, SocketLink, SocketOwner, SyncOpHandler } from './contract.js';
import type { BridgeOwner } from './host-bridge.js';
import type { ReadyIsolate } from './ready-isolate.js';
import type { IsolateReaper } from './isolate-reaper.js';
import type { Watchdog, Watched } from './watchdog.js';
import { copiedArgument, decodeGuestResult, oversizedHeaders, serializedUrl, socketEventArgument, wireArgument } from './guest-wire.js';
import { newRequestId } from '../model/request-id.js';
import { OVERSIZED_HEADERS, responseProblem } from './crossing.js';
import { Invocation, outcomeOf, type InvocationKind, type InvocationRecord, type Outcome } from './invocation.js';
import { cacheAfterRun, loadWorker } from './worker-loader.js';
import { InstanceOpCall, type OpCallOwner } from './op-call.js';
import { defaultAddons, type AddonCatalog } from './addons.js';
import { CpuMeter, HeapSampler } from './cpu-meter.js';
import type { BackgroundClass } from './background-class.js';
import { EntryPolicy, FetchBatch } from './entry-policy.js';
import { HostStreams, guestChunks, hostChunks, pullGuestStream, type GuestStreamOwner } from './body-streams.js';
import { RequestTree, type InvocationPlace } from '../model/request-tree.js';
import { LogBudget, MAX_LOG_CHARS_PER_INVOCATION, type LogRate } from './log-budget.js';
import { logLineCost } from '../../protocol/console-limits.js';
import type { ServingShare, ShareAccount } from './serving-share.js';
import { refusalOutsideInvocation } from './outside-invocation.js';

/** What the first invocation of a request is handed beside its event: nothing (see allowance). */
const NO_ARGUMENTS: [] = [];

export interface FetchResult {
  response?: WireResponse;
  /** the response body, when the guest answered with a stream; pull it to the end or return() */
  stream?: AsyncGenerator<Uint8Array | string, void, undefined>;
  exception?: GuestException;
  /** the exception came after ctx.passThroughOnException() */
  passThrough?: boolean;
  limit?: LimitExceededError;
  /** status 101: the guest socket id of the WebSocket end the response carries */
  webSocket?: number;
}

export interface InstanceHost {
  logger: Logger;
  watchdog: Watchdog;
  ops: Map<string, OpHandler>;
  /** synchronous ops (SyncOpHandler), by name */
  syncOps?: Map<string, SyncOpHandler>;
  onInvocationEnd(record: InvocationRecord): void;
  /** an invocation began (its end is onInvocationEnd): what a draining server waits for */
  onInvocationBegin?(): void;
  onConsole?(worker: string, requestId: string, level: LogLevel, message: string): void;
  /** the logger for a worker's console lines (a child with the worker's own level) */
  consoleLogger?(worker: string): Logger;
  /** what a worker's invocations together may still write to the log (log-budget.ts) */
  consoleRate?(worker: string): LogRate;
  /** frees retired isolates between requests (without one, retiring disposes at once) */
  reaper?: IsolateReaper;
  /** the add-ons workers may need (protocol/addons.ts); the built ones by default */
  addons?: AddonCatalog;
  /** the instance's last open WebSocket closed (an idle instance kept for its sockets may go) */
  socketsClosed?(instance: WorkerInstance): void;
  /** an event that does not come through Runtime.fetch (a WebSocket message) begins: the
   *  supervisor's view of what runs (see Runtime.inFlightWorkers) */
  eventStarted?(worker: string): { done(): void };
  /** each worker's share of the serving thread: its op calls are charged to it */
  share?: ServingShare;
  /** which workers' isolates run in the background class of threads (background-class.ts) */
  background?: BackgroundClass;
}

/** What an add-on event may set beyond the worker's own limits and metering. */
export interface AddonEventOptions {
  wallMs?: number;
  bytesIn?: number;
}

/** What an add-on event's caller asked for, named for an error about it (an RPC method's result,
 *  else the event's answer). */
function answerOf(trigger: Invocation['trigger']): string {
  const { method, url } = (trigger ?? {}) as { method?: unknown; url?: unknown };
  if (method === 'RPC' && typeof url === 'string') return `${url.slice(url.lastIndexOf('/') + 1)}: the RPC result`;
  return typeof method === 'string' && typeof url === 'string' ? `${method} ${url}: the answer` : 'the answer';
}

/** How the host's end of each WebSocket is closed when the isolate goes, by the reason it goes. */
function socketCloseFor(reason: string): { code: number; reason: string } {
  if (reason === 'cpu') return { code: 1011, reason: 'worker exceeded its CPU time limit' };
  if (reason === 'memory') return { code: 1011, reason: 'worker exceeded its memory limit' };
  if (reason === 'redeployed') return { code: 1012, reason: 'worker redeployed' };
  return { code: 1001, reason: 'worker going away' };
}

/** An isolate with nothing in flight for longer than this counts as not busy (see begin). */
const IDLE_RESETS_UTILIZATION_MS = 20;
/** An idle isolate's CPU clock is read this often while watched (a reading costs a syscall)... */
const IDLE_SAMPLE_EVERY_MS = 20;
/** The longest entries are held for platform work in the isolate (a code cache made again: ~13 ms
 *  for a worker of 8,000 functions here, test/integration/platform-work-cpu.test.ts). It is also
 *  the most CPU that guest code outliving its request could run unmetered by racing that work,
 *  once per version (or add-on) per process. */
const PLATFORM_WORK_HOLD_MS = 250;
/** ...and left unwatched once unchanged this long: a spinning thread a busy machine runs part-time
 *  (isolate threads are niced) can go a few slices without CPU, never this long. */
const IDLE_QUIET_MS = 250;
/** The longest the idle watch leaves a code cache's compile uncounted: code of the worker's own
 *  that holds the compile up (the isolate runs one task at a time) is counted after this. */
const PLATFORM_WORK_MAX_MS = 1_000;

function isMemoryError(message: string): boolean {
  return /memory limit|Array buffer allocation failed|allocation failed - JavaScript heap/i.test(message);
}

export class WorkerInstance implements BridgeOwner, Watched, SocketOwner, OpCallOwner {
  readonly limits: Limits;
  readonly inFlight = new Map<number, Invocation>();
  /** requests served since load: lets the runtime recycle or report */
  served = 0;
  private retired = false;
  /** WebAssembly memory the isolate held at its last answer (not in the heap statistics) */
  private wasmBytes = 0;
  /** when the last invocation in flight ended (see begin) */
  private idleSince = 0;
  /** request ids of the last invocations to end, by invocation id (see log) */
  private readonly recentlyEnded = new Map<number, string>();
  private readonly cpu: CpuMeter;
  private readonly heap: HeapSampler;
  /** what this worker's op calls are charged to (serving-share.ts) */
  private readonly shareAccount: ShareAccount | undefined;
  private readonly policy = new EntryPolicy();
  /** console budget for lines no invocation in flight can be charged with (see log) */
  private strayLogBudget = new LogBudget();
  private readonly streams = new HostStreams();
  /** per-isolate host state of op families (dropped with the isolate) */
  private readonly opState = new Map<string, unknown>();
  /** the compiled modules, kept from load until their code cache is made again after a first request */
  private modulesToCache: Map<string, ivm.Module> | undefined;
  /** whether this isolate's tasks go to the background class of threads now (see syncClass) */
  private inBackground = false;
  /** WebSockets whose guest end lives here, by guest socket id: the host's end once linked, null
   *  while a 101 response's socket waits for the handshake */
  private readonly sockets = new Map<number, SocketLink | null>();

  constructor(
    readonly def: WorkerDefinition,
    readonly ready: ReadyIsolate,
    private readonly host: InstanceHost,
  ) {
    this.limits = resolveLimits(def.limits);
    ready.bridge.owner = this;
    // The isolate is going (a limit, a recycle, a redeploy): its sockets cannot be served any more.
    ready.onBeforeDispose(() => {
      const close = socketCloseFor(this.ready.disposedReason ?? 'shutdown');
      const links = [...this.sockets.values()];
      this.sockets.clear();
      for (const link of links) link?.terminate(close.code, close.reason);
    });
    this.cpu = new CpuMeter(() => this.ready.isolate, this.limits.cpuMs);
    this.shareAccount = host.share?.account(def.name, def.account ?? '');
    this.heap = new HeapSampler(() => this.ready.isolate);
    this.syncClass();
  }

  /** whether this isolate's next tasks go to the background class of isolate threads */
  get inBackgroundClass(): boolean {
    return this.inBackground;
  }

  /** Send this isolate's next tasks to the class of threads its worker is in now (a worker that
   *  breached its CPU limit runs in the background class until calm; background-class.ts). */
  private syncClass(): void {
    const background = this.host.background?.has(this.def.name) === true;
    if (background === this.inBackground) return;
    this.inBackground = background;
    this.ready.setBackground(background);
  }

  get isolate(): ivm.Isolate {
    return this.ready.isolate;
  }

  get alive(): boolean {
    return !this.ready.isDisposed;
  }

  /** alive and not retired: it may take new work */
  get accepting(): boolean {
    return !this.retired && this.alive;
  }

  private readonly isAlive = () => this.alive;
  /** a body chunk pulled out of the isolate */
  private readonly pulled = () => {
    this.crossed();
    this.activity();
  };
  /** pulls of outbound request bodies the guest has not answered yet (see guestStreamOwner) */
  private hostPulls = 0;
  /**
   * An outbound request body is pulled by the host, and a fetch outlives the invocation that made
   * it: each pull (and the cancel) runs guest code, perhaps with nothing in flight and long after
   * the idle watch stopped (the upstream held the body back). No timer, op answer or invocation's
   * end restarts the watch then, so the pull does, and the watch keeps on while a pull is pending.
   */
  private readonly guestStreamOwner: GuestStreamOwner = {
    // (watchIdle does nothing while an invocation is in flight, or once the isolate has ended)
    pulling: () => {
      this.hostPulls++;
      this.watchIdle();
    },
    pulled: () => {
      this.hostPulls--;
      this.pulled();
    },
    cancel: (id) => {
      this.watchIdle();
      this.cancelGuestStream(id);
    },
  };

  /** Cancel a stream the guest offered (its source may stop), while the isolate lives. */
  private cancelGuestStream(id: number): void {
    if (this.alive) this.ready.entry.cancelStream.applyIgnored(undefined, [id]);
  }

  /** how events entered this isolate (see entry-policy.ts) */
  get entries(): EntryPolicy['entries'] {
    return this.policy.entries;
  }

  /** share of wall time the isolate's thread spent on CPU recently (EWMA, 0..1) */
  get utilization(): number {
    return this.cpu.utilization;
  }

  /** Compile the modules, run the top level and install env, on isolated-vm's threads. Throws
   *  WorkerLoadError. */
  async load(exportsOut?: string[]): Promise<void> {
    this.loading = true;
    try {
      this.modulesToCache = await loadWorker(this.def, this.ready, this.limits, this.host.addons, exportsOut, this.loadHostWork);
    } finally {
      this.loading = false;
    }
    this.cpu.reset();
    this.sampleHeap();
    this.watchIdle();
  }

  /** the worker's top level runs (see outside-invocation.ts) */
  private loading = false;
  /** the isolate's CPU clock when it was last seen with nothing in flight, while watched so */
  private idleCpuFrom: bigint | null = null;
  private idleCpuLast = 0n;
  private idleSampledAt = 0;
  private idleChangedAt = 0;

  /**
   * Watch the isolate's CPU while nothing of it is in flight: code that outlived its request (a
   * callback after the response, a chain the top level did not await, an answer the host gave
   * late) runs there charged to no invocation. More than one invocation's CPU limit of it, counted
   * since the last invocation ended, ends the isolate, as a breach would (the worker is moved to
   * the background class too). The watch stops once the clock has stood still a while and no pull
   * of the host's into the isolate is pending; a timer, an op's answer, an invocation's end or
   * such a pull starts it again.
   */
  private watchIdle(): void {
    // (a load has its own deadline: worker-loader.ts)
    if (this.inFlight.size > 0 || this.loading || !this.alive) return;
    // From the meter's last reading (an invocation's end reads the clock): no extra read per request.
    if (this.idleCpuFrom === null) this.idleCpuFrom = this.idleCpuLast = this.cpu.lastReading;
    this.idleSampledAt = this.idleChangedAt = performance.now();
    this.host.watchdog.watch(this);
  }

  private sampleIdle(): boolean {
    const from = this.idleCpuFrom;
    if (from === null) return false;
    const now = performance.now();
    if (now - this.idleSampledAt < IDLE_SAMPLE_EVERY_MS) return true;
    this.idleSampledAt = now;
    let cpu: bigint;
    try {
      cpu = this.ready.isolate.cpuTime;
    } catch {
      this.idleCpuFrom = null;
      return false;
    }
    if (now < this.platformUntil) {
      // the platform's compile, not the worker's code: counted from when it ends (or, should the
      // worker's code hold it up, from PLATFORM_WORK_MAX_MS on)
      this.idleCpuFrom = this.idleCpuLast = cpu;
      this.idleChangedAt = now;
      return true;
    }
    if (cpu - from > this.cpu.limitNs) {
      this.idleCpuFrom = null;
      const message = `worker ${this.def.name} ran code outside any request for more than its CPU limit (cpu_ms ${this.limits.cpuMs}); isolate recycled`;
      this.host.logger.warn({ worker: this.def.name, version: this.def.version, limit: 'cpu' }, message);
      this.host.onConsole?.(this.def.name, '', 'warn', message);
      // spinning only once the request is answered earns what a breach in one does
      this.toBackgroundClass();
      this.ready.dispose('cpu');
      return false;
    }
    if (cpu !== this.idleCpuLast) {
      this.idleCpuLast = cpu;
      this.idleChangedAt = now;
    }
    if (now - this.idleChangedAt < IDLE_QUIET_MS || this.hostPulls > 0) return true;
    this.idleCpuFrom = null;
    return false;
  }

  private cacheAfterRun(): void {
    const modules = this.modulesToCache;
    if (!modules || !this.quietForPlatformWork()) return;
    this.modulesToCache = undefined;
    const { def } = this;
    if (!this.alive || this.retired || def.codeCacheAfterRun || !def.codeCache) return;
    this.platformWork(cacheAfterRun(def, this.ready, modules, () => this.alive, this.host.logger));
  }

  /** The add-ons' code cache made again after a first Durable Object event (addons.ts). */
  private cacheAddonsAfterEvent(): void {
    if (!this.addonsToCacheAfterEvent || !this.quietForPlatformWork() || !this.alive) return;
    this.addonsToCacheAfterEvent = false;
    const addons = this.host.addons ?? defaultAddons;
    this.platformWork(addons.cacheAfterEvent(this.ready, addons.forWorker(this.def)));
  }

  /** Nothing in flight and no WebSocket open (a socket's events must reach the guest in the order
   *  they came, with the host's other calls for it; not held back): platform work may start. */
  private quietForPlatformWork(): boolean {
    return this.inFlight.size === 0;
  }

  /**
   * Platform work in this isolate (a code cache made again: it compiles there, on its thread),
   * started only while no invocation is in flight. It is not the worker's code running outside a
   * request: the idle watch does not count it (sampleIdle). An event that enters meanwhile is
   * still charged the compile's CPU (the meter reads the isolate's clock); holding events until
   * it ends was measured and not kept (bench/README.md, r9-builder).
   */
  private platformWork(work: Promise<unknown>): void {
    this.platformUntil = performance.now() + PLATFORM_WORK_MAX_MS;
    void work.finally(() => {
      this.platformUntil = 0;
      if (this.idleCpuFrom === null) return;
      try {
        this.idleCpuFrom = this.idleCpuLast = this.ready.isolate.cpuTime; // counted again from here
      } catch {
        this.idleCpuFrom = null; // disposed
      }
    });
  }

  /** while platform work runs in the isolate (a code cache made again), until this time (ms) */
  private platformUntil = 0;


  // --- invocations ----------------------------------------------------------------------------

  /** The serving thread's CPU this isolate's load used for the worker (worker-loader.ts: the inline
   *  compile, the link), metered as host work in its first invocation's record. */
  private readonly loadHostWork = { ms: 0 };

  private begin(requestId: string, kind: InvocationKind, place?: InvocationPlace): Invocation {
    const invocation = new Invocation(requestId, kind, place ?? { tree: new RequestTree(this.limits.subrequests), depth: 0 });
    if (this.loadHostWork.ms > 0) {
      invocation.hostWorkMs += this.loadHostWork.ms;
      this.loadHostWork.ms = 0;
    }
    if (this.inFlight.size === 0) {
      // Requests entered together (FetchBatch) all end together, and the next ones come at once:
      // a moment without work is no sign the isolate is less busy. An isolate idle for longer is.
      if (performance.now() - this.idleSince > IDLE_RESETS_UTILIZATION_MS) this.cpu.utilization = 0;
      this.cpu.reset();
      this.host.watchdog.watch(this);
    }
    this.inFlight.set(invocation.id, invocation);
    this.syncClass();
    this.host.onInvocationBegin?.();
    // (an untouched budget is as good as a fresh one)
    if (this.strayLogBudget.used || this.strayLogBudget.droppedLines) this.strayLogBudget = new LogBudget();
    if (!this.wallTimer) this.armWallTimer(this.limits.wallMs);
    return invocation;
  }

  /**
   * The wall-time limit: one timer per isolate, not one per invocation. Every invocation here has
   * the same limit and inFlight keeps them in the order they began, so the timer is set for the
   * oldest one's deadline; when it fires it ends those past theirs and is set for the next.
   */
  private wallTimer: NodeJS.Timeout | null = null;

  private armWallTimer(delayMs: number): void {
    this.wallTimer = setTimeout(() => this.wallTick(), Math.max(0, delayMs));
    this.wallTimer.unref();
  }

  private wallTick(): void {
    this.wallTimer = null;
    const now = performance.now();
    for (const invocation of this.inFlight.values()) {
      const deadline = invocation.startedAt + this.limits.wallMs;
      // setTimeout may fire up to a millisecond early by performance.now()'s reckoning.
      if (deadline > now + 1) {
        this.armWallTimer(deadline - now);
        return;
      }
      invocation.abort('wall');
    }
  }

  /** `sampled`: the CPU clock was read for it just now (see fetch), no need to read it again. */
  private end(invocation: Invocation, outcome: Outcome, sampled = false): void {
    if (!this.inFlight.has(invocation.id)) return;
    if (!sampled) this.sampleCpu();
    this.inFlight.delete(invocation.id);
    this.recentlyEnded.set(invocation.id, invocation.requestId);
    if (this.recentlyEnded.size > 256) this.recentlyEnded.delete(this.recentlyEnded.keys().next().value!);
    if (this.inFlight.size === 0) {
      this.idleSince = performance.now();
      if (this.wallTimer) clearTimeout(this.wallTimer);
      this.wallTimer = null;
      this.watchIdle();
    }
    this.served++;
    this.sampleHeap();
    const wallMs = performance.now() - invocation.startedAt;
    const { droppedLines, droppedChars } = invocation.logBudget;
    if (droppedLines > 0) this.host.logger.warn({ worker: this.def.name, version: this.def.version, requestId: invocation.requestId, droppedLines, droppedChars }, `${droppedLines} console lines dropped over the log limit`);
    // The CPU clock is the isolate thread's own (patched isolated-vm), so the last sample is final.
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
      memoryBytes: this.heap.bytes + this.wasmBytes,
      peakMemoryBytes: this.heap.peakBytes,
      logLinesDropped: invocation.logBudget.droppedLines,
      hostWorkMs: invocation.hostWorkMs,
      exception: invocation.exception,
      trigger: invocation.trigger,
    });
    if (this.modulesToCache && this.inFlight.size === 0) setImmediate(() => this.cacheAfterRun());
    if (invocation.kind === 'durable-object' && !this.addonsCachedAfterEvent && outcome === 'ok') {
      this.addonsCachedAfterEvent = true;
      this.addonsToCacheAfterEvent = true;
    }
    if (this.addonsToCacheAfterEvent && this.inFlight.size === 0) setImmediate(() => this.cacheAddonsAfterEvent());
  }

  private addonsCachedAfterEvent = false;
  /** made again once no invocation is in flight (platformWork) */
  private addonsToCacheAfterEvent = false;

  /** The guest's report of its WebAssembly memory (sandbox/wasm.ts) with the last heap reading:
   *  over the memory limit? (A guest can only misreport against itself.) */
  private overMemory(out: { wasmBytes?: unknown }): boolean {
    const wasm = out.wasmBytes;
    this.wasmBytes = typeof wasm === 'number' && wasm > 0 && Number.isFinite(wasm) ? wasm : 0;
    return this.wasmBytes > 0 && this.heap.bytes + this.wasmBytes > this.limits.memoryMb * 1024 * 1024;
  }

  private sampleHeap(): void {
    this.heap.sample(this.isAlive);
  }

  /** `place`: set when a service call made this request (the caller's tree, one level deeper). */
  async fetch(request: RuntimeRequest, requestId: string, place?: InvocationPlace): Promise<FetchResult & { invocation: Invocation }> {
    const invocation = this.begin(requestId, 'fetch', place);
    invocation.bytesIn = request.body ? request.body.byteLength : 0;
    const trigger: { method: string; url: string; status?: number } = { method: request.method, url: request.url };
    invocation.trigger = trigger;
    const guestRequest: WireRequest = { method: request.method, ...serializedUrl(request.url), headers: request.headers, body: request.body, cf: request.cf };
    if (request.cfFields) guestRequest.cfFields = request.cfFields;
    if (request.bodyStream) guestRequest.bodyStream = this.streams.open(invocation, request.bodyStream);
    let streaming = false;
    try {
      const call = this.dispatchFetch(invocation, guestRequest);
      let out = await this.outcome<WireResponse>(invocation, call);
      // outcome() read the CPU clock as the answer came in (unless it then waited for console
      // lines): that reading is the guest's last call to the host, and the invocation's final CPU.
      const sampled = !out.flush;
      const problem = out.result ? responseProblem(out.result) : null;
      if (problem === OVERSIZED_HEADERS) out = oversizedHeaders<WireResponse>();
      else if (problem) out = this.refuseResponse(invocation, out, problem);
      if (sampled && this.inFlight.size) this.cpu.progressAtLastSample();
      else this.activity();
      if (this.overMemory(out)) {
        // JS heap plus WebAssembly memory (which the isolate's own limit does not see) over the limit.
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
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
        return { response: out.result, stream: this.pullResponseStream(invocation, out.result.stream), invocation };
      }
      if (out.result?.hostStream != null) {
        streaming = true;
        return { response: out.result, stream: this.pipeHostStream(invocation, this.streams.take(out.result.hostStream)), invocation };
      }
      const body = out.result?.body;
      invocation.bytesOut = body == null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      let webSocket: number | undefined;
      if (out.result?.webSocket !== undefined) {
        webSocket = out.result.webSocket;
        // An id not seen yet is a pair's client end, offered for the handshake; a linked one is an
        // outbound socket the worker passes through (WebSocketHost.upgrade splices the two).
        if (!this.sockets.has(webSocket)) this.sockets.set(webSocket, null);
      }
      if (out.pending) this.finishLater(invocation, outcome);
      else this.end(invocation, outcome, sampled);
      return { response: out.result, exception: out.exception, passThrough: out.exception ? out.passThrough === true : undefined, invocation, webSocket: out.exception ? undefined : webSocket };
    } catch (error) {
      return { limit: this.failed(invocation, error, 'the response'), invocation };
    } finally {
      if (!streaming) this.streams.closeOf(invocation);
    }
  }

  async scheduled(cron: string, scheduledTime: number, requestId: string): Promise<{ exception?: GuestException; limit?: LimitExceededError; noRetry: boolean; invocation: Invocation }> {
    const invocation = this.begin(requestId, 'scheduled');
    invocation.trigger = { cron, scheduledTime };
    try {
      const call = this.policy.enter(this.ready.entry.dispatchScheduled, [invocation.id, cron, scheduledTime]);
      const out = await this.outcome<{ noRetry: boolean }>(invocation, call);
      this.activity();
      if (this.overMemory(out)) {
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      invocation.exception = out.exception;
      this.end(invocation, out.exception ? 'exception' : 'ok');
      return { exception: out.exception, noRetry: out.result?.noRetry ?? false, invocation };
    } catch (error) {
      return { limit: this.failed(invocation, error, 'the scheduled handler\'s answer'), noRetry: false, invocation };
    }
  }

  /** A batch of queue messages for the worker's queue() handler: what it decided for each. */
  async queue(queue: string, messages: WireQueueMessage[], requestId: string): Promise<{ result?: QueueDispatchResult; exception?: GuestException; limit?: LimitExceededError; invocation: Invocation }> {
    const invocation = this.begin(requestId, 'queue');
    invocation.trigger = { queue, messages: messages.length };
    try {
      const call = this.policy.enter(this.ready.entry.dispatchQueue, [invocation.id, queue, copiedArgument(messages)]);
      const out = await this.outcome<QueueDispatchResult>(invocation, call);
      this.activity();
      if (this.overMemory(out)) {
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      invocation.exception = out.exception;
      this.end(invocation, out.exception ? 'exception' : 'ok');
      return { result: out.result, exception: out.exception, invocation };
    } catch (error) {
      return { limit: this.failed(invocation, error, 'the queue handler\'s answer'), invocation };
    }
  }

  /**
   * An event an add-on handles in the guest (sandbox/addon-events.ts), such as a Durable Object's
   * fetch, RPC call or alarm: one invocation under the same limits and metering as a fetch. The
   * payload is copied in; the answer comes back copied, its shape the add-on's to check.
   */
  /** `options.wallMs`: a shorter wall limit for this event (a Durable Object's WebSocket event
   *  timeout); `options.bytesIn`: bytes that came in for it (a WebSocket message). */
  async addonEvent(kind: string, payload: unknown, requestId: string, place: InvocationPlace | undefined, trigger: Invocation['trigger'], options: AddonEventOptions = {}): Promise<{ result?: unknown; stream?: AsyncGenerator<Uint8Array | string, void, undefined>; exception?: GuestException; limit?: LimitExceededError; invocation: Invocation }> {
    const invocation = this.begin(requestId, 'durable-object', place);
    invocation.trigger = trigger;
    invocation.bytesIn = options.bytesIn ?? 0;
    const { wallMs } = options;
    // (the isolate's wall timer serves the common limit; a shorter one gets a timer of its own)
    const shorter = wallMs !== undefined && wallMs < this.limits.wallMs ? setTimeout(() => invocation.abort('wall'), wallMs) : null;
    shorter?.unref();
    try {
      const call = this.policy.enter(this.ready.entry.dispatchAddonEvent, [invocation.id, kind, copiedArgument(payload), ...this.allowance(invocation)]);
      const out = await this.outcome<unknown>(invocation, call);
      this.activity();
      if (this.overMemory(out) || (out.exception && isMemoryError(out.exception.message))) {
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      invocation.exception = out.exception;
      // A response body streamed as a fetch's is (the add-on names it at the top of its answer):
      // the invocation stays open, under its limits, while the host reads it.
      const streamed = out.result as { stream?: unknown; hostStream?: unknown } | undefined;
      if (!out.exception && typeof streamed?.stream === 'number') return { result: out.result, stream: this.pullResponseStream(invocation, streamed.stream), invocation };
      if (!out.exception && typeof streamed?.hostStream === 'number') return { result: out.result, stream: this.pipeHostStream(invocation, this.streams.take(streamed.hostStream)), invocation };
      const outcome: Outcome = out.exception ? 'exception' : 'ok';
      if (out.pending) this.finishLater(invocation, outcome);
      else this.end(invocation, outcome);
      return { result: out.result, exception: out.exception, invocation };
    } catch (error) {
      return { limit: this.failed(invocation, error, answerOf(trigger)), invocation };
    } finally {
      if (shorter) clearTimeout(shorter);
    }
  }

  /** Host state of an op family for this isolate, set before any guest code asks for it (e.g. the
   *  Durable Object an isolate hosts: its storage ops then reach that object only). */
  setOpState(family: string, value: unknown): void {
    this.opState.set(family, value);
  }

  /**
   * An RPC call from another worker's service binding: a method of one of this worker's
   * WorkerEntrypoint classes (sandbox/dispatch.ts dispatchRpc). Metered and limited as a request
   * (its trigger reads "RPC rpc://<entrypoint>/<method>"); `args` are copied in, the answer out.
   */
  async rpc(entrypoint: string | null, method: string, args: unknown[], requestId: string, place?: InvocationPlace): Promise<{ value?: unknown; oversize?: number; exception?: GuestException; limit?: LimitExceededError; invocation: Invocation }> {
    const invocation = this.begin(requestId, 'rpc', place);
    invocation.trigger = { method: 'RPC', url: `rpc://${entrypoint ?? 'default'}/${method}` };
    try {
      const copied = new ivm.ExternalCopy(args).copyInto({ release: true });
      const call = this.policy.enter(this.ready.entry.dispatchRpc, [invocation.id, entrypoint, method, copied, ...this.allowance(invocation)]);
      const out = await this.outcome<{ value?: unknown; oversize?: number }>(invocation, call);
      this.activity();
      if (this.overMemory(out)) {
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      invocation.exception = out.exception;
      const outcome: Outcome = out.exception ? 'exception' : 'ok';
      if (out.pending) this.finishLater(invocation, outcome);
      else this.end(invocation, outcome);
      return { value: out.result?.value, oversize: out.result?.oversize, exception: out.exception, invocation };
    } catch (error) {
      return { limit: this.failed(invocation, error, `${method}: the RPC result`), invocation };
    }
  }

  /** A fetch event, entered on isolated-vm's threads (see entry-policy.ts). A bodyless request
   *  waits for the end of this turn of the event loop and goes in with the others that came in it,
   *  in one crossing (see FetchBatch). */
  private dispatchFetch(invocation: Invocation, request: WireRequest): Promise<unknown> {
    const argument = wireArgument(request);
    // A service or object call's invocation carries its request's allowance and enters alone.
    const allowance = this.allowance(invocation);
    if (allowance !== NO_ARGUMENTS) return this.policy.enter(this.ready.entry.dispatchFetch, [invocation.id, argument, ...allowance]);
    if (typeof argument !== 'string') return this.policy.enter(this.ready.entry.dispatchFetch, [invocation.id, argument]);
    this.fetchBatch ??= new FetchBatch(this.ready.entry, this.policy);
    return this.fetchBatch.add(invocation.id, argument);
  }

  /** Each request's number in this isolate (numbered here, not process-wide: a guest learns
   *  nothing of other tenants' requests from it). */
  private readonly requestKeys = new WeakMap<RequestTree, number>();
  private nextRequestKey = 1;

  /** The request's invocation allowance as this invocation starts, and which request it is, for an
   *  invocation a service call or an object call started: its guest refuses service calls past it
   *  without crossing (protocol/request-tree.ts). A request's first invocation is given nothing:
   *  its guest knows what a new request may start, and counts alone until it has callees (so the
   *  warm path copies no more arguments and makes no WeakMap entry per request). */
  private allowance(invocation: Invocation): [] | [number, number] {
    const { tree, depth } = invocation.place;
    if (depth === 0 && tree.invocations === 1) return NO_ARGUMENTS;
    let key = this.requestKeys.get(tree);
    if (key === undefined) this.requestKeys.set(tree, (key = this.nextRequestKey++));
    return [tree.invocationsLeft(), key];
  }

  private fetchBatch: FetchBatch | null = null;

  /** The guest's answer to an event, once every console line it sent before answering is in
   *  (see finish in sandbox/dispatch.ts); rejects when a limit ends the invocation first. */
  private async outcome<T>(invocation: Invocation, call: Promise<unknown>): Promise<DispatchResult<T>> {
    const out = decodeGuestResult<T>(await Promise.race([call, invocation.aborted]));
    // The answer can come back from an entry that went over the CPU limit in its last slice, before
    // the watchdog's next reading: read the clock once more now.
    this.sampleCpu();
    if (invocation.limit) throw invocation.limit;
    if (out.flush) await Promise.race([invocation.flushed(), invocation.aborted]);
    return out;
  }

  /** The response is out; keep the invocation (and its limits) alive until waitUntil settles. */
  private finishLater(invocation: Invocation, outcome: Outcome): void {
    const settle = this.ready.entry.settle.apply(undefined, [invocation.id], { result: { promise: true } }) as Promise<void>;
    Promise.race([settle, invocation.aborted]).then(
      () => {
        this.activity();
        this.end(invocation, outcome);
      },
      (error) => this.end(invocation, outcomeOf(this.limitFor(invocation, error).limit)),
    );
  }

  /** End an invocation whose guest side may still hold state: let the guest close it too. */
  private settleNow(invocation: Invocation, outcome: Outcome): void {
    if (this.alive) this.ready.entry.settle.applyIgnored(undefined, [invocation.id]);
    this.end(invocation, outcome);
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

  /** A response the host cannot send (see crossing.ts): the invocation ends with an exception that
   *  names the bad value, and a body stream it offered is cancelled. */
  private refuseResponse(invocation: Invocation, out: DispatchResult<WireResponse>, problem: string): DispatchResult<WireResponse> {
    const { stream, hostStream } = out.result!;
    if (Number.isInteger(stream)) this.cancelGuestStream(stream!);
    if (Number.isInteger(hostStream)) {
      try {
        void this.streams.take(hostStream!)[Symbol.asyncIterator]().return?.();
      } catch {
        // not a stream of this invocation's: nothing to close
      }
    }
    const message = `The worker answered with a response the host cannot send: ${problem}`;
    this.host.logger.warn({ worker: this.def.name, version: this.def.version, requestId: invocation.requestId, err: message }, 'response refused at the crossing');
    return { exception: { name: 'TypeError', message, stack: `TypeError: ${message}` }, pending: out.pending };
  }

  /**
   * An entry that ended without the guest's answer: a limit is returned; anything else is thrown
   * after the invocation is ended (logged and metered, never left in flight). `answer` names what
   * the caller asked for: when isolated-vm refused to copy it out of the isolate, past its
   * copyLimit (patch 13), the caller is told that in words of its own, not the copy's.
   */
  private failed(invocation: Invocation, error: unknown, answer: string): LimitExceededError {
    if (!invocation.limit && String((error as Error)?.message).startsWith(COPY_LIMIT_MESSAGE_PREFIX)) {
      const message = `${answer} would be more than ${callBytesFor(this.limits.memoryMb)} bytes when copied out of the worker (a string counts each time it is referenced); that is the limit for one call`;
      invocation.exception = { name: 'RangeError', message, stack: `RangeError: ${message}` };
      this.end(invocation, 'exception');
      // The guest was never told its invocation ended: its timers and waitUntil work would run
      // on, charged to nobody. The isolate takes no more work and ends once the rest is done.
      this.retire('copy limit');
      throw new RangeError(message);
    }
    let limit: LimitExceededError;
    try {
      limit = this.limitFor(invocation, error);
    } catch (unexpected) {
      this.end(invocation, 'exception');
      throw unexpected;
    }
    this.end(invocation, outcomeOf(limit.limit));
    return limit;
  }

  private limitFor(invocation: Invocation, error: unknown): LimitExceededError {
    if (invocation.limit) return invocation.limit;
    const message = String((error as Error)?.message ?? error);
    if (this.diedOfMemory(error)) {
      this.breach('memory');
      return invocation.limit ?? new LimitExceededError('memory');
    }
    if (this.ready.disposedReason) {
      // Disposed under us for another reason (CPU breach by a sibling invocation, recycle).
      invocation.abort(this.ready.disposedReason === 'cpu' ? 'cpu' : 'memory');
      return invocation.limit!;
    }
    throw error;
  }

  // --- streamed response bodies -------------------------------------------------------------------

  /** Pull a guest ReadableStream body to the host, chunk by chunk, as the client takes it. */
  private pullResponseStream(invocation: Invocation, streamId: number): AsyncGenerator<Uint8Array | string, void, undefined> {
    return this.streamed(
      invocation,
      guestChunks(this.ready.entry, invocation, streamId, this.pulled),
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
        this.cancelGuestStream(streamId);
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
      this.streams.closeOf(invocation);
      // The guest kept the invocation open while its stream was read (timers included).
      this.finishLater(invocation, 'ok');
    } catch (error) {
      finished = true;
      this.streams.closeOf(invocation);
      throw fail(error);
    } finally {
      if (!finished) {
        this.streams.closeOf(invocation);
        cancel();
        this.settleNow(invocation, 'canceled');
      }
    }
  }

  // --- limits ------------------------------------------------------------------------------------

  /** Watched: the watchdog's periodic CPU reading; false when there is nothing left to watch. */
  sampleCpu(): boolean {
    if (!this.alive) return false;
    if (this.inFlight.size === 0) return this.sampleIdle();
    this.idleCpuFrom = null;
    const over = this.cpu.sample(this.inFlight);
    if (!over) return true;
    this.breach('cpu', over.culprit);
    return false;
  }

  /** End the isolate: every invocation in it fails with the limit that was hit. */
  breach(limit: 'cpu' | 'memory', culprit?: Invocation): void {
    // Once per isolate; one isolated-vm disposed by itself (its memory limit) is still ended here.
    if (this.ready.disposedReason !== null) return;
    culprit?.abort(limit);
    for (const invocation of this.inFlight.values()) invocation.abort(limit);
    this.host.logger.warn({ worker: this.def.name, version: this.def.version, limit }, `worker ${this.def.name} ${new LimitExceededError(limit).message}; isolate recycled`);
    if (limit === 'cpu') this.toBackgroundClass();
    this.ready.dispose(limit);
  }

  /** A CPU breach, in a request or outside any (sampleIdle): the worker's isolates run in the
   *  background class of threads until calm (background-class.ts); logged when it moves there. */
  private toBackgroundClass(): void {
    if (!this.host.background?.breached(this.def.name)) return;
    const calmS = this.host.background.options.calmMs / 1000;
    this.host.logger.warn({ worker: this.def.name, background: true }, `worker ${this.def.name} runs in the background class of isolate threads until it has not breached its CPU limit for ${calmS} s`);
  }

  // --- BridgeOwner ----------------------------------------------------------------------------------

  /** A timer's callback is about to run in the isolate, perhaps with nothing in flight. */
  timerFired(): void {
    if (this.inFlight.size === 0) this.watchIdle();
  }

  /** Each crossing the guest makes (an op, a sync op, a console line, a timer, a body chunk
   *  pulled) is serving-thread work charged to its worker's share (serving-share.ts). */
  crossed(): void {
    if (this.shareAccount) this.host.share!.charge(this.shareAccount);
  }

  /** The guest called the host, so whatever runs is not one endless slice. */
  activity(): void {
    if (this.inFlight.size) this.cpu.progress();
  }

  /** The isolate could not take bytes the host answered with (see host-bridge.ts). */
  outOfMemory(invocationId: number): void {
    this.breach('memory', this.inFlight.get(invocationId));
  }

  /** The guest's 'flush' message for an invocation (see outcome). */
  flushed(invocationId: number): void {
    this.inFlight.get(invocationId)?.flush();
  }

  log(level: LogLevel, message: string, invocationId: number, fullLength?: number): void {
    // The guest names the invocation exactly for synchronous code and timers. A line can arrive
    // just after its invocation ended (isolated-vm delivers fire-and-forget calls asynchronously):
    // recently ended invocations are remembered. Otherwise, with one invocation in flight, it is
    // that one.
    const only = this.inFlight.size === 1 ? this.inFlight.values().next().value : undefined;
    const invocation = this.inFlight.get(invocationId) ?? only;
    const requestId = this.inFlight.get(invocationId)?.requestId ?? this.recentlyEnded.get(invocationId) ?? only?.requestId ?? '';
    // Lines no invocation in flight can be charged with (the top level, a late line) share the
    // isolate's own budget, renewed with each invocation that begins.
    const budget = invocation?.logBudget ?? this.strayLogBudget;
    const kept = budget.take(message, fullLength);
    if (!kept) return;
    const fields = { worker: this.def.name, version: this.def.version, requestId };
    if (kept.first) return this.noteConsoleLimit(fields);
    const rate = this.host.consoleRate?.(this.def.name);
    const length = Math.max(fullLength ?? 0, message.length);
    if (rate && !rate.take(logLineCost(length))) {
      budget.dropped(1, length);
      if (rate.shouldNotice()) {
        const notice = `console output rate limit reached (${rate.charsPerSecond} characters a second for this worker): lines are dropped`;
        this.host.logger.warn({ ...fields, limit: 'console-rate' }, notice);
        this.host.onConsole?.(this.def.name, requestId, 'warn', notice);
      }
      return;
    }
    const logger = this.host.consoleLogger?.(this.def.name) ?? this.host.logger;
    const pinoLevel = level === 'log' ? 'info' : level;
    logger[pinoLevel]({ ...fields, console: level }, kept.line);
    this.host.onConsole?.(this.def.name, requestId, level, kept.line);
  }

  /** The guest's count of console lines it dropped over its invocation's budget (see console.ts). */
  logDropped(invocationId: number, lines: number, chars: number): void {
    const invocation = this.inFlight.get(invocationId);
    if (!invocation || !Number.isSafeInteger(lines) || lines <= 0) return;
    const first = invocation.logBudget.dropped(lines, Number.isSafeInteger(chars) && chars > 0 ? chars : 0);
    if (first) this.noteConsoleLimit({ worker: this.def.name, version: this.def.version, requestId: invocation.requestId });
  }

  private noteConsoleLimit(fields: { worker: string; version: string; requestId: string }): void {
    const notice = `console output limit reached (${MAX_LOG_CHARS_PER_INVOCATION} characters per invocation): further lines of this invocation are dropped`;
    this.host.logger.warn({ ...fields, limit: 'console' }, notice);
    this.host.onConsole?.(this.def.name, fields.requestId, 'warn', notice);
  }

  async callOp(op: string, invocationId: number, args: unknown[]): Promise<unknown> {
    try {
      if (op === OPS.bodyRead) return await this.streams.read(args[0]);
      const handler = this.host.ops.get(op);
      if (!handler) throw new TypeError(`unsupported operation "${op}"`);
      return await handler(new InstanceOpCall(this, this.invocationFor(op, invocationId)), args);
    } finally {
      // the answer goes into an isolate that may have nothing in flight any more
      if (this.inFlight.size === 0) this.watchIdle();
    }
  }

  callSyncOp(op: string, args: unknown[]): unknown {
    const handler = this.host.syncOps?.get(op);
    if (!handler) throw new TypeError(`unsupported operation "${op}"`);
    return handler(new InstanceOpCall(this, this.invocationFor(op, Number(args[0]) || 0)), args.slice(1));
  }

  /** The live invocation an op names; none: refused unless the op may be made without one. */
  private invocationFor(op: string, invocationId: number): Invocation | undefined {
    const invocation = this.inFlight.get(invocationId);
    if (invocation) return invocation;
    const refusal = refusalOutsideInvocation(op, this.loading);
    if (refusal !== null) throw new Error(refusal);
    return undefined;
  }

  // --- what an op call reaches (op-call.ts) ---

  openStream(invocation: Invocation | undefined, source: AsyncIterable<Uint8Array | string>): number {
    return this.streams.open(invocation, source);
  }

  guestStream(id: number): AsyncIterable<Uint8Array> {
    return pullGuestStream(this.ready.entry, id, this.guestStreamOwner);
  }

  takeHostStream(id: number): AsyncIterable<Uint8Array> {
    return this.streams.take(id);
  }

  isolateState<T>(family: string, create: () => T): T {
    if (!this.opState.has(family)) this.opState.set(family, create());
    return this.opState.get(family) as T;
  }

  // --- SocketOwner: WebSockets whose guest end lives in this isolate -----------------------------

  get worker(): string {
    return this.def.name;
  }

  /** (op-call.ts: an op reaches the isolate's sockets through this) */
  get socketOwner(): SocketOwner {
    return this;
  }

  /** WebSockets open (or offered in a 101 and awaiting the handshake) in this isolate. */
  get openSockets(): number {
    return this.sockets.size;
  }

  attach(socketId: number, link: SocketLink, offered: boolean): boolean {
    if (!this.alive || !Number.isSafeInteger(socketId) || socketId <= 0) return false;
    if (offered ? this.sockets.get(socketId) !== null : this.sockets.has(socketId)) return false;
    this.sockets.set(socketId, link);
    return true;
  }

  link(socketId: number): SocketLink | undefined {
    return this.sockets.get(Number(socketId)) ?? undefined;
  }

  offer(socketId: number): boolean {
    if (!this.alive || !Number.isSafeInteger(socketId) || socketId <= 0 || this.sockets.has(socketId)) return false;
    this.sockets.set(socketId, null);
    return true;
  }

  detach(socketId: number): void {
    if (!this.sockets.delete(socketId)) return;
    if (this.sockets.size === 0) this.host.socketsClosed?.(this);
  }

  drop(socketId: number): void {
    const link = this.sockets.get(socketId);
    if (link) {
      // an outbound socket passed through to a request that was no upgrade
      link.terminate(1001, 'no client to pass the WebSocket to');
      this.detach(socketId);
      return;
    }
    if (link !== null) return;
    this.deliver(socketId, { type: 'close', code: 1006, reason: '', wasClean: false }, 0)
      .catch(() => {})
      .finally(() => this.detach(socketId));
  }

  /** One WebSocket event into the guest, as an invocation of its own: the CPU, wall and memory
   *  limits apply to it and it is metered like a request (see SocketOwner.deliver). */
  async deliver(socketId: number, event: SocketEvent, bytes: number): Promise<void> {
    if (!this.alive || !this.sockets.has(socketId)) throw new Error('the WebSocket has no owner any more');
    // Its turn on the serving thread, as a request's (serving-share.ts): a socket's messages come
    // one after another (the next once this one is delivered), so a deferred one keeps its place.
    // A full queue throws ShareOverflowError, naming the worker: the socket is closed with 1011.
    const share = this.shareAccount && this.host.share!;
    const turn = share ? share.admit(this.shareAccount!, 1) : null;
    try {
      if (turn) await turn;
      await this.deliverNow(socketId, event, bytes);
    } finally {
      if (share) share.finished(this.shareAccount!);
    }
  }

  private async deliverNow(socketId: number, event: SocketEvent, bytes: number): Promise<void> {
    if (!this.alive || !this.sockets.has(socketId)) throw new Error('the WebSocket has no owner any more');
    const invocation = this.begin(newRequestId(), 'websocket');
    invocation.bytesIn = bytes;
    const running = this.host.eventStarted?.(this.def.name);
    try {
      const call = this.policy.enter(this.ready.entry.dispatchSocketEvent, [invocation.id, socketId, socketEventArgument(event)]);
      const out = await this.outcome<{ delivered: true }>(invocation, call);
      this.activity();
      if (this.overMemory(out) || (out.exception && isMemoryError(out.exception.message))) {
        this.breach('memory');
        throw invocation.limit ?? new LimitExceededError('memory');
      }
      invocation.exception = out.exception;
      const outcome: Outcome = out.exception ? 'exception' : 'ok';
      // Promises its listeners returned keep the invocation open; the next event need not wait.
      if (out.pending) this.finishLater(invocation, outcome);
      else this.end(invocation, outcome);
    } catch (error) {
      const limit = this.limitFor(invocation, error);
      this.end(invocation, outcomeOf(limit.limit));
      throw limit;
    } finally {
      running?.done();
    }
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
