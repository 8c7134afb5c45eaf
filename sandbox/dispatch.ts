// Event dispatch inside the isolate: the host calls these (through References it took at boot)
// to install a worker and to deliver fetch and scheduled events to it. Requests and responses
// cross the wall as plain data (see wire.ts); nothing here is reachable from guest code.
import { beginInvocation, endInvocation, enter, invocation, type InvocationState } from './invocation.js';
import { cancelTimersOf } from './timers.js';
import { describeError, reportError } from './report-error.js';
import { fillWorkerEnv, workerEnv } from './env.js';
import { crossingBytes, hostSend, sentCount } from './bridge.js';
import { Response } from './api/response.js';
import { URL } from './api/url.js';
import { requestFromWire, responseToWire } from './wire.js';
import { disallowWasmCodeGeneration, wasmMemoryBytes } from './wasm.js';
import { leaveGlobalScope } from './global-scope.js';
import { webSocketHooks } from './websocket-hooks.js';
import { closeBuiltinModules } from './addons.js';
import { reportDroppedLines } from './console.js';
import { structuredCloneForHost } from './api/structured-clone.js';
import { MAX_RPC_BYTES, RPC_RESERVED_METHODS } from '../protocol/wall.js';
import { eventHandler, rememberWorker } from './addon-events.js';
import { resetFrame } from './async-context.js';
import { SEND_OPS, type SocketEvent, type DispatchResult, type EnvDescriptor, type GuestException, type QueueDispatchResult, type WireQueueMessage, type WireRequest, type WireResponse } from '../protocol/wall.js';

type Listener = (event: unknown) => unknown;
interface WorkerModule {
  fetch?: (request: unknown, env?: unknown, ctx?: unknown) => unknown;
  scheduled?: (controller: unknown, env?: unknown, ctx?: unknown) => unknown;
  queue?: (batch: unknown, env?: unknown, ctx?: unknown) => unknown;
}

// The default export: an object of handlers, or a class (extends WorkerEntrypoint from
// cloudflare:workers) instantiated per event with (ctx, env), whose methods are the handlers.
let workerModule: WorkerModule | EntrypointClass | null = null;
/** the worker's module namespace (named entrypoints for RPC) */
let workerNamespace: Record<string, unknown> | null = null;
type EntrypointClass = new (ctx: unknown, env: unknown) => WorkerModule;
const listeners = new Map<string, Listener[]>();

// --- service-worker syntax: global addEventListener ------------------------------------------

export function addEventListener(type: unknown, listener: unknown): void {
  if (typeof listener !== 'function' && !(listener && typeof (listener as { handleEvent?: unknown }).handleEvent === 'function')) return;
  const key = String(type);
  const list = listeners.get(key) ?? [];
  const fn = typeof listener === 'function' ? (listener as Listener) : (e: unknown) => (listener as { handleEvent: Listener }).handleEvent(e);
  if (!list.includes(fn)) list.push(fn);
  listeners.set(key, list);
}

export function removeEventListener(type: unknown, listener: unknown): void {
  const list = listeners.get(String(type));
  if (!list) return;
  const index = list.indexOf(listener as Listener);
  if (index >= 0) list.splice(index, 1);
}

// --- the ExecutionContext handed to module handlers ------------------------------------------

class ExecutionContext {
  #state: InvocationState;
  constructor(state: InvocationState) {
    this.#state = state;
  }
  waitUntil(promise: unknown): void {
    this.#state.waitUntil.push(Promise.resolve(promise));
  }
  passThroughOnException(): void {
    this.#state.passThrough = true;
  }
  get props(): Record<string, never> {
    return {};
  }
  get [Symbol.toStringTag]() {
    return 'ExecutionContext';
  }
}

class ExtendableEvent {
  readonly type: string;
  #state: InvocationState;
  constructor(type: string, state: InvocationState) {
    this.type = type;
    this.#state = state;
  }
  waitUntil(promise: unknown): void {
    this.#state.waitUntil.push(Promise.resolve(promise));
  }
  passThroughOnException(): void {
    this.#state.passThrough = true;
  }
}

class FetchEvent extends ExtendableEvent {
  readonly request: unknown;
  #response: Promise<unknown> | null = null;
  constructor(request: unknown, state: InvocationState) {
    super('fetch', state);
    this.request = request;
  }
  respondWith(response: unknown): void {
    if (this.#response) throw new DOMExceptionLike('respondWith() has already been called', 'InvalidStateError');
    this.#response = Promise.resolve(response);
  }
  get responsePromise(): Promise<unknown> | null {
    return this.#response;
  }
}

class ScheduledEvent extends ExtendableEvent {
  readonly cron: string;
  readonly scheduledTime: number;
  #controller: ScheduledController;
  constructor(controller: ScheduledController, state: InvocationState) {
    super('scheduled', state);
    this.cron = controller.cron;
    this.scheduledTime = controller.scheduledTime;
    this.#controller = controller;
  }
  noRetry(): void {
    this.#controller.noRetry();
  }
}

class ScheduledController {
  readonly type = 'scheduled';
  readonly cron: string;
  readonly scheduledTime: number;
  #noRetry = false;
  constructor(cron: string, scheduledTime: number) {
    this.cron = cron;
    this.scheduledTime = scheduledTime;
  }
  noRetry(): void {
    this.#noRetry = true;
  }
  get retryDisabled(): boolean {
    return this.#noRetry;
  }
}

class DOMExceptionLike extends Error {
  constructor(message: string, name: string) {
    super(message);
    this.name = name;
  }
}

// --- host entry points ------------------------------------------------------------------------

/**
 * Called once after the worker's code has been evaluated. `namespace` is its module namespace
 * (undefined for service-worker scripts, which registered listeners while evaluating); `env` the
 * bindings' descriptors as JSON. Both directions are strings, not structured copies: this call is
 * on every cold start, where a copy costs tens of microseconds more. The answer is the format then
 * the handlers found, space-separated ("modules fetch scheduled"), built without prototype methods
 * the worker's top level could have replaced.
 */
export function installWorker(namespace: unknown, env: string): string {
  closeBuiltinModules();
  fillWorkerEnv(env);
  rememberWorker(namespace, workerEnv);
  workerModule = null;
  workerNamespace = namespace && typeof namespace === 'object' ? (namespace as Record<string, unknown>) : null;
  const candidate = workerNamespace ? workerNamespace.default : undefined;
  if (candidate && (typeof candidate === 'object' || typeof candidate === 'function')) {
    workerModule = candidate as WorkerModule | EntrypointClass;
    // A class's handlers are its prototype's methods (a class with static handlers is an object).
    const handlers = (isEntrypointClass(candidate) && !hasStaticHandlers(candidate) ? candidate.prototype : candidate) as Record<string, unknown>;
    let answer = 'modules';
    if (typeof handlers.fetch === 'function') answer += ' fetch';
    if (typeof handlers.scheduled === 'function') answer += ' scheduled';
    if (typeof (handlers as Record<string, unknown>).queue === 'function') answer += ' queue';
    return answer;
  }
  let answer = 'service-worker';
  if ((listeners.get('fetch')?.length ?? 0) > 0) answer += ' fetch';
  if ((listeners.get('scheduled')?.length ?? 0) > 0) answer += ' scheduled';
  if ((listeners.get('queue')?.length ?? 0) > 0) answer += ' queue';
  return answer;
}

/** The host's installWorker entry: the worker's top level has run, so from now on WebAssembly is
 *  not compiled from bytes (as on workerd; the pool's warm-up installs without this). */
export function installWorkerEntry(namespace: unknown, env: string): string {
  const answer = installWorker(namespace, env);
  disallowWasmCodeGeneration();
  leaveGlobalScope();
  return answer;
}

function isEntrypointClass(value: unknown): value is EntrypointClass & { prototype: object } {
  return typeof value === 'function' && typeof (value as { prototype?: unknown }).prototype === 'object' && (value as { prototype?: unknown }).prototype !== null;
}

function hasStaticHandlers(value: object): boolean {
  return typeof (value as WorkerModule).fetch === 'function' || typeof (value as WorkerModule).scheduled === 'function';
}

/** The handlers for one event: the default export object, or a new instance of its class. */
function handlersFor(ctx: ExecutionContext): { handlers: WorkerModule; classForm: boolean } {
  const module = workerModule!;
  if (isEntrypointClass(module) && !hasStaticHandlers(module)) return { handlers: new module(ctx, workerEnv), classForm: true };
  return { handlers: module as WorkerModule, classForm: false };
}

function finish<T>(state: InvocationState, body: { result?: T; exception?: GuestException }): DispatchResult<T> {
  state.responded = true;
  reportDroppedLines(state);
  // Fire-and-forget messages (console lines) reach the host through a queue, and the entry's result
  // can overtake them. When this invocation may have sent some, a last message marks the end of
  // them, and the host waits for it before it reports the invocation.
  let flush = false;
  if (sentCount() !== state.sentAtStart) {
    hostSend(SEND_OPS.flush, state.id);
    flush = true;
  }
  // A streamed body is still being produced (maybe by timers): the host settles the invocation
  // once it has read the stream to the end.
  const streaming = (body.result as { stream?: number } | undefined)?.stream !== undefined;
  const pending = streaming || state.waitUntil.length > 0;
  if (!pending) close(state.id);
  const out: DispatchResult<T> = flush ? { ...body, pending, flush } : { ...body, pending };
  if (body.exception && state.passThrough) out.passThrough = true;
  // WebAssembly memory the isolate holds: the host adds the JS heap and checks the memory limit.
  const wasm = wasmMemoryBytes();
  if (wasm > 0) out.wasmBytes = wasm;
  return out;
}

function close(id: number): void {
  cancelTimersOf(id);
  const state = endInvocation(id);
  if (state) reportDroppedLines(state);
}

// JSON as it was when the sandbox was evaluated: guest code may replace the globals.
const jsonParse = JSON.parse;
const jsonStringify = JSON.stringify;
const hasOwn = Object.prototype.hasOwnProperty;
const objectPrototype = Object.prototype;
const arrayPrototype = Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;

/**
 * The dispatch result as a JSON string when it holds no bytes (the host parses it): one string
 * crosses the wall far cheaper than isolated-vm's structured copy of the nested objects (~10 us
 * less per request). Not when guest code gave Object.prototype or Array.prototype a toJSON (or
 * re-parented Array.prototype): JSON.stringify would call it.
 */
function encodeResult(out: DispatchResult<WireResponse>): DispatchResult<WireResponse> | string {
  if (out.result && out.result.body !== null && typeof out.result.body !== 'string') return out;
  if (hasOwn.call(objectPrototype, 'toJSON') || hasOwn.call(arrayPrototype, 'toJSON') || getPrototypeOf(arrayPrototype) !== objectPrototype) return out;
  return jsonStringify(out);
}

/** Host entry: a fetch event. The request comes as a JSON string when it has no body in hand
 *  (see wireArgument on the host), as copied data otherwise. `invocationsLeft` and `request` (here
 *  and in the other entries that take them): the request's invocation allowance, and the request
 *  as this isolate numbers them (protocol/request-tree.ts). */
export async function dispatchFetch(id: number, wire: WireRequest | string, invocationsLeft?: number, request?: number): Promise<DispatchResult<WireResponse> | string> {
  return encodeResult(await dispatchFetchEvent(id, typeof wire === 'string' ? (jsonParse(wire) as WireRequest) : wire, invocationsLeft, request));
}

// --- fetch events in batches ---------------------------------------------------------------------

/**
 * How many microtask turns a batch waits for its requests to answer before it returns: a handler
 * that answers without reaching the host (hello, a router answering from memory) is done within a
 * few; one that waits on the host (a subrequest, KV) is not, and is answered through awaitFetch.
 */
const BATCH_TICKS = 64;
/** Answers of batched requests that finished after their batch returned, until the host asks. */
const lateAnswers = new Map<number, DispatchResult<WireResponse> | string>();
/** The host's awaitFetch calls waiting for such an answer. */
const lateWaiters = new Map<number, (answer: DispatchResult<WireResponse> | string) => void>();

/**
 * Host entry: several bodyless fetch events that arrived together, in one crossing (one task on
 * the isolate's thread, one answer back) instead of one each. `batch` is JSON:
 * {"ids": [...], "requests": [...]}, one WireRequest per invocation id. Each request is its own
 * invocation as in dispatchFetch; the batch returns once every one has answered or after
 * BATCH_TICKS microtask turns, whichever comes first. The answer is a
 * JSON array (or, when an answer holds bytes, an array) with each request's DispatchResult at its
 * index, or null for one still running: the host then takes that one's answer with awaitFetch.
 */
export async function dispatchFetchBatch(batch: string): Promise<string | unknown[]> {
  const { ids, requests } = jsonParse(batch) as { ids: number[]; requests: WireRequest[] };
  const count = ids.length;
  const answers: (DispatchResult<WireResponse> | string | null)[] = [];
  let waiting = count;
  let returned = false;
  for (let i = 0; i < count; i++) {
    answers[i] = null;
    const id = ids[i];
    const run = async () => {
      let answer: DispatchResult<WireResponse> | string;
      try {
        answer = encodeResult(await dispatchFetchEvent(id, requests[i], undefined, undefined));
      } catch (error) {
        // (dispatchFetchEvent answers every error of the worker's; this is the batch's own)
        answer = { exception: describeError(error), pending: false };
      }
      if (!returned) {
        answers[i] = answer;
        waiting--;
        return;
      }
      const waiter = lateWaiters.get(id);
      if (waiter) {
        lateWaiters.delete(id);
        waiter(answer);
      } else lateAnswers.set(id, answer);
    };
    void run();
  }
  resetFrame();
  for (let tick = 0; waiting > 0 && tick < BATCH_TICKS; tick++) await undefined;
  returned = true;
  let json = '[';
  for (let i = 0; i < count; i++) {
    const answer = answers[i];
    if (answer !== null && typeof answer !== 'string') return answers;
    json += (i ? ',' : '') + (answer === null ? 'null' : answer);
  }
  return json + ']';
}

/** Host entry: the answer of a batched fetch event that was still running when its batch returned. */
export function awaitFetch(id: number): DispatchResult<WireResponse> | string | Promise<DispatchResult<WireResponse> | string> {
  const answer = lateAnswers.get(id);
  if (answer !== undefined) {
    lateAnswers.delete(id);
    return answer;
  }
  return new Promise((resolve) => lateWaiters.set(id, resolve));
}

async function dispatchFetchEvent(id: number, wire: WireRequest, invocationsLeft: number | undefined, requestKey: number | undefined): Promise<DispatchResult<WireResponse>> {
  const state = beginInvocation(id, invocationsLeft, requestKey);
  enter(id);
  try {
    const request = requestFromWire(wire);
    let returned: unknown;
    if (workerModule) {
      const ctx = new ExecutionContext(state);
      const { handlers, classForm } = handlersFor(ctx);
      if (typeof handlers.fetch !== 'function') throw new Error('Handler does not export a fetch() function.');
      // A WorkerEntrypoint's fetch takes the request only: env and ctx are on `this`.
      returned = await (classForm ? handlers.fetch(request) : handlers.fetch(request, workerEnv, ctx));
    } else {
      const fetchListeners = listeners.get('fetch') ?? [];
      if (!fetchListeners.length) throw new Error('No fetch handler: the script neither exports default { fetch } nor calls addEventListener("fetch", ...).');
      const event = new FetchEvent(request, state);
      for (const listener of fetchListeners) listener(event);
      if (!event.responsePromise) throw new Error('No response: no "fetch" event listener called event.respondWith().');
      returned = await event.responsePromise;
    }
    if (!(returned instanceof Response)) {
      throw new TypeError("Incorrect type for the 'fetch' handler's result: it did not resolve to a 'Response'.");
    }
    return finish(state, { result: await responseToWire(returned) });
  } catch (error) {
    return finish(state, { exception: describeError(error) });
  }
}

/** Host entry: an event an add-on handles (addon-events.ts), e.g. a Durable Object's. */
export async function dispatchAddonEvent(id: number, kind: string, payload: unknown, invocationsLeft?: number, request?: number): Promise<DispatchResult<object>> {
  const state = beginInvocation(id, invocationsLeft, request);
  enter(id);
  try {
    const handler = eventHandler(kind);
    if (!handler) throw new Error(`cinder: no handler for ${kind} events in this isolate`);
    return finish(state, { result: await handler(payload) });
  } catch (error) {
    return finish(state, { exception: describeError(error) });
  }
}

/** Host entry: an event for a WebSocket end the host holds the other end of (a message, the
 *  close, an error). It runs as an invocation: the promises its listeners return are waited for
 *  as waitUntil work is. */
export async function dispatchSocketEvent(id: number, socketId: number, event: SocketEvent): Promise<DispatchResult<{ delivered: true }>> {
  const state = beginInvocation(id);
  enter(id);
  try {
    const hooks = webSocketHooks();
    if (!hooks) throw new TypeError('A WebSocket event arrived but this worker did not load WebSocket support.');
    const work = hooks.deliver(socketId, event);
    for (let i = 0; i < work.length; i++) state.waitUntil.push(work[i]);
    return finish(state, { result: { delivered: true } });
  } catch (error) {
    return finish(state, { exception: describeError(error) });
  }
}

export interface ScheduledResult {
  noRetry: boolean;
}

export async function dispatchScheduled(id: number, cron: string, scheduledTime: number): Promise<DispatchResult<ScheduledResult>> {
  const state = beginInvocation(id);
  enter(id);
  const controller = new ScheduledController(cron, scheduledTime);
  try {
    if (workerModule) {
      const ctx = new ExecutionContext(state);
      const { handlers, classForm } = handlersFor(ctx);
      if (typeof handlers.scheduled !== 'function') throw new Error('Handler does not export a scheduled() function.');
      await (classForm ? handlers.scheduled(controller) : handlers.scheduled(controller, workerEnv, ctx));
    } else {
      const scheduledListeners = listeners.get('scheduled') ?? [];
      if (!scheduledListeners.length) throw new Error('No scheduled handler.');
      const event = new ScheduledEvent(controller, state);
      for (const listener of scheduledListeners) listener(event);
    }
    // Workers awaits waitUntil promises before reporting a scheduled run as done.
    await settleWaitUntil(state, true);
    return finish(state, { result: { noRetry: controller.retryDisabled } });
  } catch (error) {
    return finish(state, { result: { noRetry: controller.retryDisabled }, exception: describeError(error) });
  }
}

// --- queue consumers ----------------------------------------------------------------------------

/** Each message's fate, first decision wins: a message's own ack()/retry() before the batch's
 *  ackAll()/retryAll(), and either before what the handler's outcome implies. */
type Fate = { ack: true } | { ack: false; delaySeconds: number | null };

function delayOf(options: unknown): number | null {
  if (options === undefined || options === null) return null;
  const delay = (options as { delaySeconds?: unknown }).delaySeconds;
  if (delay === undefined) return null;
  if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0 || delay > 43200) throw new RangeError('delaySeconds must be a number of seconds from 0 to 43200');
  return delay;
}

class Message {
  readonly id: string;
  readonly timestamp: Date;
  readonly body: unknown;
  readonly attempts: number;
  readonly #fates: Map<string, Fate>;
  constructor(wire: WireQueueMessage, fates: Map<string, Fate>) {
    this.id = wire.id;
    this.timestamp = new Date(wire.timestamp);
    this.body = wire.body;
    this.attempts = wire.attempts;
    this.#fates = fates;
  }
  ack(): void {
    if (!this.#fates.has(this.id)) this.#fates.set(this.id, { ack: true });
  }
  retry(options?: unknown): void {
    const delaySeconds = delayOf(options);
    if (!this.#fates.has(this.id)) this.#fates.set(this.id, { ack: false, delaySeconds });
  }
  get [Symbol.toStringTag]() {
    return 'Message';
  }
}

class MessageBatch {
  readonly queue: string;
  readonly messages: readonly Message[];
  readonly #fates: Map<string, Fate>;
  constructor(queue: string, messages: WireQueueMessage[], fates: Map<string, Fate>) {
    this.queue = queue;
    this.#fates = fates;
    this.messages = Object.freeze(messages.map((m) => new Message(m, fates)));
  }
  ackAll(): void {
    for (const message of this.messages) if (!this.#fates.has(message.id)) this.#fates.set(message.id, { ack: true });
  }
  retryAll(options?: unknown): void {
    const delaySeconds = delayOf(options);
    for (const message of this.messages) if (!this.#fates.has(message.id)) this.#fates.set(message.id, { ack: false, delaySeconds });
  }
  get [Symbol.toStringTag]() {
    return 'MessageBatch';
  }
}

export async function dispatchQueue(id: number, queue: string, messages: WireQueueMessage[]): Promise<DispatchResult<QueueDispatchResult>> {
  const state = beginInvocation(id);
  enter(id);
  const fates = new Map<string, Fate>();
  const batch = new MessageBatch(queue, messages, fates);
  const answer = (threw: boolean): QueueDispatchResult => {
    const acked: string[] = [];
    const retried: [string, number | null][] = [];
    for (const message of messages) {
      const fate = fates.get(message.id) ?? (threw ? { ack: false, delaySeconds: null } : { ack: true });
      if (fate.ack) acked.push(message.id);
      else retried.push([message.id, fate.delaySeconds]);
    }
    return { acked, retried };
  };
  try {
    if (workerModule) {
      const ctx = new ExecutionContext(state);
      const { handlers, classForm } = handlersFor(ctx);
      if (typeof handlers.queue !== 'function') throw new Error('Handler does not export a queue() function.');
      await (classForm ? handlers.queue(batch) : handlers.queue(batch, workerEnv, ctx));
    } else {
      const queueListeners = listeners.get('queue') ?? [];
      if (!queueListeners.length) throw new Error('No queue handler.');
      const event = Object.assign(new ExtendableEvent('queue', state), { queue, messages: batch.messages, ackAll: () => batch.ackAll(), retryAll: (o?: unknown) => batch.retryAll(o) });
      for (const listener of queueListeners) listener(event);
    }
    await settleWaitUntil(state, true);
    return finish(state, { result: answer(false) });
  } catch (error) {
    return finish(state, { result: answer(true), exception: describeError(error) });
  }
}

/** The method's value; or, when it counts past Cloudflare's 32 MiB for an RPC result (and within
 *  one call's bound), only its size in bytes, for the host to refuse in the caller's words. */
export type RpcResult = { value: unknown } | { oversize: number };

/**
 * Host entry: a call of a public method of one of the worker's WorkerEntrypoint classes (the
 * default export, or the named export `entrypoint`), made by another worker through a service
 * binding (`env.SERVICE.method(...args)`). `args` were structured-cloned in by the host; the
 * method runs on a new instance (ctx, env), as workerd makes one per call; its awaited result must
 * be structured-cloneable, and is cloned out by the host.
 */
export async function dispatchRpc(id: number, entrypoint: string | null, method: string, args: unknown[], invocationsLeft?: number, request?: number): Promise<DispatchResult<RpcResult>> {
  const state = beginInvocation(id, invocationsLeft, request);
  enter(id);
  try {
    const target = entrypoint === null ? workerModule : workerNamespace?.[entrypoint];
    if (!isEntrypointClass(target)) {
      throw new TypeError(
        entrypoint === null
          ? 'The receiving worker does not support RPC: its default export is not a class extending WorkerEntrypoint (from "cloudflare:workers").'
          : `The receiving worker has no entrypoint named "${entrypoint}" that is a class extending WorkerEntrypoint.`,
      );
    }
    if (RPC_RESERVED_METHODS.includes(method) || method in objectPrototype) throw new TypeError(`"${method}" cannot be called over RPC: it is a reserved name.`);
    const instance = new target(new ExecutionContext(state), workerEnv) as unknown as Record<string, unknown>;
    const fn = instance[method];
    // Methods of the class (its prototype chain), as workerd exposes them; not instance fields.
    if (typeof fn !== 'function' || hasOwn.call(instance, method)) throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
    const value = await (fn as (...a: unknown[]) => unknown).apply(instance, args);
    // A value the host cannot copy fails here, with the caller told why; the clone crosses, counted
    // here against the RPC limit (the host does not measure it again). Past one call's bound the
    // copy itself refuses it, at the isolate's copyLimit, as for any answer (worker-instance.ts).
    const clone = structuredCloneForHost(value);
    const bytes = crossingBytes(clone);
    if (bytes > MAX_RPC_BYTES) return finish(state, { result: { oversize: bytes } });
    return finish(state, { result: { value: clone } });
  } catch (error) {
    return finish(state, { exception: describeError(error) });
  }
}

async function settleWaitUntil(state: InvocationState, rethrow: boolean): Promise<void> {
  while (state.waitUntil.length) {
    const batch = state.waitUntil.splice(0);
    const results = await Promise.allSettled(batch);
    for (const outcome of results) {
      if (outcome.status === 'rejected') {
        if (rethrow) throw outcome.reason;
        reportError(outcome.reason);
      }
    }
  }
}

/** Wait for an invocation's waitUntil work after its response was sent, then end it. */
export async function settle(id: number): Promise<void> {
  const state = invocation(id);
  if (!state) return;
  try {
    await settleWaitUntil(state, false);
  } finally {
    close(id);
  }
}

// --- warming a pooled isolate -----------------------------------------------------------------

// A fresh isolate runs the dispatch path in V8's interpreter with cold inline caches and no
// feedback vectors (V8 allocates them only after a function has run a few times): the first
// request into it took ~0.8 ms against ~0.03 ms warm. The pool calls warmUp before an isolate is
// handed to a worker, so that cost is paid off the request path.

// Requests as the host sends them (a JSON string, the URL already serialized), in both kinds of
// URL a worker is commonly asked for, so the paths a real first request takes are the warm ones.
const WARM_REQUESTS: string[] = [
  {
    method: 'GET',
    url: 'https://warm.cinder.internal/path?query=1',
    urlSerialized: true,
    headers: [['accept', '*/*'], ['host', 'warm.cinder.internal'], ['user-agent', 'cinder-warm-up']],
    body: null,
  },
  { method: 'GET', url: 'http://warm.cinder.internal:8787/', urlSerialized: true, headers: [['host', 'warm.cinder.internal:8787']], body: null },
].map((request) => jsonStringify(request));

const warmModule = {
  default: {
    fetch(request: { url: string; headers: { get(name: string): string | null } }) {
      request.headers.get('user-agent');
      return new Response(`Hello from ${new URL(request.url).pathname}\n`, { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    },
  },
};

/**
 * Install a built-in worker and serve it `rounds` requests through the real dispatch path, then
 * forget it. Leaves no trace guest code can see: no globals, listeners, timers or invocations
 * (ids are negative, the host's are positive) remain, and no host call is made.
 */
export async function warmUp(rounds: number): Promise<void> {
  if (workerModule || listeners.size) return; // too late: a worker is installed
  try {
    for (let i = 1; i <= rounds; i++) {
      installWorker(warmModule, '{}');
      await dispatchFetch(-i, WARM_REQUESTS[i % WARM_REQUESTS.length]);
    }
  } finally {
    workerModule = null;
    workerNamespace = null;
    rememberWorker(undefined, {});
  }
}
