// The guest half of Durable Objects (installed as the durable-objects add-on, only in isolates of
// workers with a durable_object_namespace binding or hosting an object). Two parts:
//
// - The binding: env.NS is a DurableObjectNamespace. Ids come from the host (synchronous ops, as
//   idFromName is synchronous on Workers), which seals them to the namespace; a stub sends fetch()
//   and RPC calls to the host by binding name, and the host finds the object.
// - The object: in the isolate that hosts one object (src/runtime/durable-objects/object-host.ts)
//   the host delivers its events here. The class is constructed on the first event with
//   (ctx, env); events then run with Workers' gates:
//   input gate: while a storage operation is in flight no other event is delivered; an event that
//     arrives waits, and waiting events are let in one at a time, each only after the microtasks
//     of what ran before it (so `v = await get(); await put(v + 1)` never interleaves);
//   output gate: an event's answer leaves only once every write it made is durable (the host
//     answers a write after its SQLite commit, synchronous=FULL).
//   WebSockets: ctx.acceptWebSocket() hands a socket to the host (bindings/durable-objects/
//     hibernation.ts), whose events come back as events of their own (webSocketMessage, ...),
//     re-creating the object if it was evicted; a socket the object accept()s stays in this
//     isolate, its listeners run behind the input gate too.
import { registerBinding } from '../../sandbox/env.js';
import { hostCall, hostCallBlocking, hostCallSync } from '../../sandbox/bridge.js';
import { currentInvocation, invocation as invocationState } from '../../sandbox/invocation.js';
import { registerEventHandler, installedWorker } from '../../sandbox/addon-events.js';
import { Request } from '../../sandbox/api/request.js';
import { Response } from '../../sandbox/api/response.js';
import { structuredCloneForHost } from '../../sandbox/api/structured-clone.js';
import { DOMException } from '../../sandbox/api/dom-exception.js';
import { requestFromWire, requestToWire, responseFromWire, responseToWire } from '../../sandbox/wire.js';
import { hostByteStream } from '../../sandbox/host-stream.js';
import { createIncomingResponse } from '../../sandbox/api/response.js';
import { webSocketHooks, type WebSocketHooks } from '../../sandbox/websocket-hooks.js';
import { DO_OPS, DO_SYNC_OPS, RPC_RESERVED_METHODS, type SocketEvent } from '../../protocol/wall.js';
import {
  DO_LIMITS,
  HIBERNATION_LIMITS,
  DURABLE_OBJECT_BINDING,
  DURABLE_OBJECT_EVENT,
  STORAGE_FAILED,
  type ListOptionsWire,
  type ObjectCall,
  type ObjectCallAnswer,
  type ObjectEventPayload,
  type ObjectEventResult,
  type HibernationRequest,
  type SqlAnswer,
  type StorageRequest,
} from './protocol.js';


const ERRORS: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError, ReferenceError, Error };

function rebuildError(error: { name: string; message: string }): Error {
  const Ctor = Object.hasOwn(ERRORS, error.name) ? ERRORS[error.name] : Error;
  const out = new Ctor(error.message);
  if (!Object.hasOwn(ERRORS, error.name)) out.name = String(error.name);
  return out;
}

function syncOp<T>(op: string, ...args: unknown[]): T {
  return hostCallSync<T>(op, currentInvocation(), ...args);
}

// --- ids and stubs ------------------------------------------------------------------------------

class DurableObjectId {
  readonly #hex: string;
  readonly #name: string | undefined;

  constructor(hex: string, name: string | undefined) {
    this.#hex = hex;
    this.#name = name;
  }

  get name(): string | undefined {
    return this.#name;
  }

  toString(): string {
    return this.#hex;
  }

  equals(other: unknown): boolean {
    return other instanceof DurableObjectId && other.#hex === this.#hex;
  }

  get [Symbol.toStringTag]() {
    return 'DurableObjectId';
  }
}

/** Names a stub never forwards as RPC: promise adoption, and what Cloudflare reserves. */
const NOT_RPC = new Set(['then', 'catch', 'finally', 'constructor', 'toJSON', 'valueOf', 'toString']);

function makeStub(binding: string, id: DurableObjectId): object {
  const call = async (request: ObjectCall): Promise<unknown> => {
    const answer = await hostCall<ObjectCallAnswer>(DO_OPS.call, binding, id.toString(), id.name ?? null, request);
    if ('error' in answer) throw rebuildError(answer.error);
    if ('response' in answer) return responseFromWire(answer.response);
    return answer.value;
  };
  const fetch = async (input: unknown, init?: unknown): Promise<unknown> => {
    const request = new Request(input as never, init as never);
    // The object may answer with one of its hibernatable WebSockets: it comes under an id reserved here.
    const hooks = webSocketHooks();
    const socketId = hooks ? hooks.reserveId() : undefined;
    const wire = await requestToWire(request);
    const answer = await hostCall<ObjectCallAnswer>(DO_OPS.call, binding, id.toString(), id.name ?? null, socketId === undefined ? { kind: 'fetch', request: wire } : { kind: 'fetch', request: wire, socketId });
    if ('error' in answer) throw rebuildError(answer.error);
    if (!('response' in answer)) throw new TypeError('Durable Object fetch: no response');
    const r = answer.response;
    if (r.webSocket !== undefined && hooks) {
      return createIncomingResponse({ status: 101, statusText: r.statusText, headers: r.headers, body: null, url: '', redirected: false, webSocket: hooks.foreignEnd(r.webSocket) });
    }
    // A streamed body arrives as a host stream, read as the caller reads it.
    const response = responseFromWire(r, r.stream !== undefined ? hostByteStream(r.stream) : undefined);
    return request.method === 'HEAD' ? new Response(null, response) : response;
  };
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const target = Object.freeze({ id, name: id.name, fetch });
  return new Proxy(target, {
    get(t, property) {
      if (property === 'fetch' || property === 'id' || property === 'name') return t[property];
      if (typeof property !== 'string' || NOT_RPC.has(property)) return undefined;
      let method = methods.get(property);
      if (!method) {
        // Arguments are structured-cloned here, so a value that cannot cross fails in the caller.
        method = (...args: unknown[]) => call({ kind: 'rpc', method: property, args: structuredCloneForHost(args) });
        methods.set(property, method);
      }
      return method;
    },
    set() {
      return false;
    },
    has(t, property) {
      return property in t;
    },
  });
}

class DurableObjectNamespace {
  readonly #binding: string;

  constructor(binding: string) {
    this.#binding = binding;
  }

  idFromName(name: unknown): DurableObjectId {
    if (typeof name !== 'string') throw new TypeError('idFromName() requires a string name');
    return new DurableObjectId(syncOp<string>(DO_SYNC_OPS.idFromName, this.#binding, name), name);
  }

  idFromString(text: unknown): DurableObjectId {
    return new DurableObjectId(syncOp<string>(DO_SYNC_OPS.idFromString, this.#binding, String(text)), undefined);
  }

  /** `jurisdiction` is accepted: a Cinder server keeps every object in one place. */
  newUniqueId(_options?: { jurisdiction?: string }): DurableObjectId {
    return new DurableObjectId(syncOp<string>(DO_SYNC_OPS.newUniqueId, this.#binding), undefined);
  }

  get(id: unknown, _options?: unknown): object {
    if (!(id instanceof DurableObjectId)) throw new TypeError('get() requires a DurableObjectId (from idFromName, idFromString or newUniqueId)');
    return makeStub(this.#binding, id);
  }

  getByName(name: unknown, options?: unknown): object {
    return this.get(this.idFromName(name), options);
  }

  jurisdiction(_name: string): DurableObjectNamespace {
    return this;
  }

  get [Symbol.toStringTag]() {
    return 'DurableObjectNamespace';
  }
}

// --- the input gate -----------------------------------------------------------------------------

let locks = 0;
const waiting: (() => void)[] = [];
let waking = false;

function lock(): void {
  locks++;
}

function unlock(): void {
  locks--;
  if (locks === 0 && waiting.length) wakeNext();
}

// The next event goes in only after a round trip to the host: its answer arrives as a new task,
// so every microtask of what ran before (the code after an `await storage.get()`) has run, and a
// storage call it made holds the gate again.
function wakeNext(): void {
  if (waking) return;
  waking = true;
  hostCall(DO_OPS.tick).then(
    () => {
      waking = false;
      if (locks === 0 && waiting.length) {
        locks++;
        waiting.shift()!();
      }
    },
    () => {
      waking = false;
    },
  );
}

/** Wait for the gate; the caller then holds one lock (its turn) and must unlock. */
function enterGate(): Promise<void> | undefined {
  if (locks === 0 && waiting.length === 0) {
    locks++;
    return undefined;
  }
  return new Promise<void>((resolve) => waiting.push(resolve));
}

// --- the output gate ----------------------------------------------------------------------------

const pendingWrites = new Set<Promise<unknown>>();
let failedWrite: unknown = null;

async function outputGate(): Promise<void> {
  while (pendingWrites.size) await Promise.allSettled([...pendingWrites]);
  if (failedWrite !== null) {
    const error = failedWrite;
    failedWrite = null;
    throw error;
  }
}

function storageOp<T>(request: StorageRequest, write: boolean): Promise<T> {
  // The bridge copies arguments with V8's serializer: a value it cannot copy is a DataCloneError.
  const answer = hostCall<T>(DO_OPS.storage, request).catch((error: unknown) => {
    if (error instanceof TypeError && / could not be cloned\.$/.test(error.message)) throw new DOMException(error.message, 'DataCloneError');
    throw error;
  });
  lock();
  const done = answer.finally(unlock);
  if (write) {
    pendingWrites.add(done);
    done.then(
      () => pendingWrites.delete(done),
      (error) => {
        pendingWrites.delete(done);
        // A write the storage refused (bad key, value too large) was never made: the caller
        // sees that error. One that failed in the storage itself breaks the output gate.
        if (String((error as Error)?.message).startsWith(STORAGE_FAILED)) failedWrite = error;
      },
    );
  }
  return done;
}

// --- storage ------------------------------------------------------------------------------------

function keyOf(key: unknown): string {
  if (typeof key !== 'string') throw new TypeError('Durable Object storage keys must be strings');
  return key;
}

function tooMany(count: number): RangeError {
  return new RangeError(`Maximum number of key value pairs is ${DO_LIMITS.maxBatchKeys}. ${count} pairs were provided.`);
}

function keysOf(keys: unknown[]): string[] {
  if (keys.length > DO_LIMITS.maxBatchKeys) throw tooMany(keys.length);
  return keys.map(keyOf);
}

function listOptions(options: unknown): ListOptionsWire {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError('list() options must be an object');
  const o = options as Record<string, unknown>;
  const out: ListOptionsWire = {};
  for (const name of ['start', 'startAfter', 'end', 'prefix'] as const) if (o[name] !== undefined) out[name] = String(o[name]);
  if (o.reverse !== undefined) out.reverse = Boolean(o.reverse);
  if (o.limit !== undefined) out.limit = Number(o.limit);
  return out;
}

function notSupported(what: string): never {
  throw new Error(`${what} is not supported by Cinder yet (see docs/compat.md)`);
}

class DurableObjectStorage {
  readonly #sql = new SqlStorage();
  readonly #sqlite: boolean;

  constructor(sqlite: boolean) {
    this.#sqlite = sqlite;
  }

  /** Always there, as in workerd; on a class that is not SQLite-backed its exec() throws. */
  get sql(): SqlStorage {
    return this.#sql;
  }

  async get(keys: unknown, _options?: unknown): Promise<unknown> {
    if (Array.isArray(keys)) {
      const found = await storageOp<[string, unknown][]>(['get', keysOf(keys)], false);
      return new Map(found);
    }
    const found = await storageOp<[string, unknown][]>(['get', [keyOf(keys)]], false);
    return found.length ? found[0][1] : undefined;
  }

  put(keyOrEntries: unknown, value?: unknown, _options?: unknown): Promise<void> {
    let entries: [string, unknown][];
    if (typeof keyOrEntries === 'string') {
      if (value === undefined) throw new TypeError('put() called with undefined value.');
      entries = [[keyOrEntries, value]];
    } else if (keyOrEntries && typeof keyOrEntries === 'object') {
      entries = Object.entries(keyOrEntries);
      if (entries.length > DO_LIMITS.maxBatchKeys) throw tooMany(entries.length);
    } else {
      throw new TypeError('put() requires a string key and a value, or an object of entries');
    }
    return storageOp<void>(['put', entries], true);
  }

  async delete(keys: unknown, _options?: unknown): Promise<unknown> {
    if (Array.isArray(keys)) return storageOp<number>(['delete', keysOf(keys)], true);
    return (await storageOp<number>(['delete', [keyOf(keys)]], true)) > 0;
  }

  async list(options?: unknown): Promise<Map<string, unknown>> {
    return new Map(await storageOp<[string, unknown][]>(['list', listOptions(options)], false));
  }

  deleteAll(_options?: unknown): Promise<void> {
    return storageOp<void>(['deleteAll'], true);
  }

  /** Atomic: the closure's writes commit together, or not at all if it throws (or calls
   *  txn.rollback()). No other event is delivered to the object while it runs. */
  async transaction<T>(closure: (txn: DurableObjectTransaction) => Promise<T> | T): Promise<T> {
    if (typeof closure !== 'function') throw new TypeError('transaction() requires a function');
    lock();
    try {
      await storageOp(['begin'], true);
      const txn = new DurableObjectTransaction(this);
      let result: T;
      try {
        result = await closure(txn);
        // Writes the closure did not await are part of it.
        while (pendingWrites.size) await Promise.allSettled([...pendingWrites]);
        if (failedWrite !== null) {
          const error = failedWrite;
          failedWrite = null;
          throw error;
        }
      } catch (error) {
        await storageOp(['rollback'], true);
        throw error;
      }
      await storageOp(txn.rolledBack ? ['rollback'] : ['commit'], true);
      return result;
    } finally {
      unlock();
    }
  }

  /** SQLite-backed classes: run `fn` synchronously in a transaction; it rolls back if fn throws. */
  transactionSync<T>(fn: () => T): T {
    if (typeof fn !== 'function') throw new TypeError('transactionSync() requires a function');
    if (!this.#sqlite) throw new Error('Durable Object is not backed by SQL.');
    hostCallBlocking(DO_OPS.sql, ['begin']);
    let result: T;
    try {
      result = fn();
      if (result && typeof (result as { then?: unknown }).then === 'function') throw new TypeError('transactionSync() callback must not return a promise; use transaction() for async work');
    } catch (error) {
      hostCallBlocking(DO_OPS.sql, ['rollback']);
      throw error;
    }
    hostCallBlocking(DO_OPS.sql, ['commit']);
    return result;
  }

  async getAlarm(_options?: unknown): Promise<number | null> {
    return storageOp<number | null>(['getAlarm'], false);
  }

  setAlarm(time: unknown, _options?: unknown): Promise<void> {
    const at = time instanceof Date ? time.getTime() : typeof time === 'number' ? time : NaN;
    if (!Number.isFinite(at)) throw new TypeError('setAlarm() requires a Date or a number of milliseconds since the epoch');
    if (hostedClass && typeof (hostedClass.prototype as Record<string, unknown> | undefined)?.alarm !== 'function') {
      throw new TypeError('Your Durable Object class must have an alarm() handler in order to call setAlarm()');
    }
    return storageOp<void>(['setAlarm', at], true);
  }

  deleteAlarm(_options?: unknown): Promise<void> {
    return storageOp<void>(['deleteAlarm'], true);
  }

  /** Resolves once every write made so far is durable. */
  async sync(): Promise<void> {
    while (pendingWrites.size) await Promise.allSettled([...pendingWrites]);
  }

  getCurrentBookmark(): never {
    return notSupported('ctx.storage.getCurrentBookmark() (point-in-time recovery)');
  }

  getBookmarkForTime(): never {
    return notSupported('ctx.storage.getBookmarkForTime() (point-in-time recovery)');
  }

  onNextSessionRestoreBookmark(): never {
    return notSupported('ctx.storage.onNextSessionRestoreBookmark() (point-in-time recovery)');
  }

  get [Symbol.toStringTag]() {
    return 'DurableObjectStorage';
  }
}

class DurableObjectTransaction {
  readonly #storage: DurableObjectStorage;
  rolledBack = false;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  get(keys: unknown, options?: unknown) {
    return this.#storage.get(keys, options);
  }
  put(keyOrEntries: unknown, value?: unknown, options?: unknown) {
    return this.#storage.put(keyOrEntries, value, options);
  }
  delete(keys: unknown, options?: unknown) {
    return this.#storage.delete(keys, options);
  }
  list(options?: unknown) {
    return this.#storage.list(options);
  }
  deleteAll(options?: unknown) {
    return this.#storage.deleteAll(options);
  }
  getAlarm(options?: unknown) {
    return this.#storage.getAlarm(options);
  }
  setAlarm(time: unknown, options?: unknown) {
    return this.#storage.setAlarm(time, options);
  }
  deleteAlarm(options?: unknown) {
    return this.#storage.deleteAlarm(options);
  }
  /** The transaction's writes are discarded when the closure returns. */
  rollback(): void {
    this.rolledBack = true;
  }
}

// --- SQL ----------------------------------------------------------------------------------------

class SqlStorage {
  exec(query: unknown, ...bindings: unknown[]): SqlStorageCursor {
    if (typeof query !== 'string') throw new TypeError('sql.exec() requires a query string');
    return new SqlStorageCursor(hostCallBlocking<SqlAnswer>(DO_OPS.sql, ['exec', query, bindings]));
  }

  get databaseSize(): number {
    return hostCallBlocking<number>(DO_OPS.sql, ['size']);
  }

  get [Symbol.toStringTag]() {
    return 'SqlStorage';
  }
}

class SqlStorageCursor {
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
  readonly #rows: unknown[][];
  #next = 0;

  constructor(answer: SqlAnswer) {
    this.columnNames = answer.columnNames;
    this.rowsRead = answer.rowsRead;
    this.rowsWritten = answer.rowsWritten;
    this.#rows = answer.rows;
  }

  #object(row: unknown[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < this.columnNames.length; i++) out[this.columnNames[i]] = row[i];
    return out;
  }

  next(): IteratorResult<Record<string, unknown>> {
    if (this.#next >= this.#rows.length) return { done: true, value: undefined };
    return { done: false, value: this.#object(this.#rows[this.#next++]) };
  }

  toArray(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    while (this.#next < this.#rows.length) out.push(this.#object(this.#rows[this.#next++]));
    return out;
  }

  one(): Record<string, unknown> {
    const rest = this.toArray();
    if (rest.length === 0) throw new Error('Expected exactly one result from SQL query, but got no results.');
    if (rest.length > 1) throw new Error('Expected exactly one result from SQL query, but got multiple results.');
    return rest[0];
  }

  *raw(): IterableIterator<unknown[]> {
    while (this.#next < this.#rows.length) yield this.#rows[this.#next++];
  }

  [Symbol.iterator](): SqlStorageCursor {
    return this;
  }

  get [Symbol.toStringTag]() {
    return 'SqlStorageCursor';
  }
}

// --- WebSocket hibernation -----------------------------------------------------------------------

/** ctx.setWebSocketAutoResponse()'s argument: a message the host answers without waking the object. */
export class WebSocketRequestResponsePair {
  readonly #request: string;
  readonly #response: string;

  constructor(request: unknown, response: unknown) {
    if (arguments.length < 2) throw new TypeError("Failed to construct 'WebSocketRequestResponsePair': 2 arguments required.");
    this.#request = String(request);
    this.#response = String(response);
  }

  get request(): string {
    return this.#request;
  }

  get response(): string {
    return this.#response;
  }

  get [Symbol.toStringTag]() {
    return 'WebSocketRequestResponsePair';
  }
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function hibernationOp<T = unknown>(request: HibernationRequest): T {
  return syncOp<T>(DO_SYNC_OPS.webSocket, request);
}

function socketHooks(what: string): WebSocketHooks {
  const hooks = webSocketHooks();
  if (!hooks) throw new TypeError(`${what} requires a WebSocket (from new WebSocketPair())`);
  return hooks;
}

function hibernatableIdOf(ws: unknown, what: string): number {
  const id = webSocketHooks()?.hibernatableId(ws) ?? null;
  if (id === null) throw new TypeError(`${what} requires a WebSocket accepted with acceptWebSocket()`);
  return id;
}

/** Tags as workerd takes them: strings, duplicates ignored, at most 10 of 256 characters. */
function tagList(tags: unknown): string[] {
  if (tags === undefined || tags === null) return [];
  if (typeof tags !== 'object' || typeof (tags as Iterable<unknown>)[Symbol.iterator] !== 'function') throw new TypeError("Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter 2 is not a sequence of strings.");
  const out: string[] = [];
  // (checked in workerd's order: the count of distinct tags so far, then the length, then duplicates)
  for (const tag of tags as Iterable<unknown>) {
    const text = String(tag);
    if (out.length >= HIBERNATION_LIMITS.maxTags) throw new Error(`a Hibernatable WebSocket cannot have more than ${HIBERNATION_LIMITS.maxTags} tags`);
    if (utf8Length(text) > HIBERNATION_LIMITS.maxTagLength) throw new Error(`"${text}" is longer than the max tag length (${HIBERNATION_LIMITS.maxTagLength} characters).`);
    if (!out.includes(text)) out.push(text);
  }
  return out;
}

/** A hibernatable WebSocket's event, to the object's handler method. */
function socketEvent(instance: ObjectInstance, socketId: number, event: SocketEvent): Promise<ObjectEventResult> {
  const hooks = socketHooks('a WebSocket event');
  const ws = hooks.revive(socketId);
  const done = () => ({ websocket: true as const });
  switch (event.type) {
    case 'message': {
      const handler = instance.webSocketMessage;
      if (typeof handler !== 'function') throw new TypeError('Durable Object has no webSocketMessage() handler, but one of its hibernatable WebSockets received a message.');
      return Promise.resolve(handler.call(instance, ws, event.data)).then(done);
    }
    case 'close': {
      hooks.hibernatedEvent(socketId, event);
      const handler = instance.webSocketClose;
      if (typeof handler !== 'function') return Promise.resolve(done());
      return Promise.resolve(handler.call(instance, ws, event.code, event.reason, event.wasClean)).then(done);
    }
    case 'error': {
      hooks.hibernatedEvent(socketId, event);
      const handler = instance.webSocketError;
      if (typeof handler !== 'function') return Promise.resolve(done());
      return Promise.resolve(handler.call(instance, ws, new Error(event.message))).then(done);
    }
    default:
      return Promise.resolve(done());
  }
}

// --- the hosted object --------------------------------------------------------------------------

class DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;

  constructor(id: DurableObjectId, sqlite: boolean) {
    this.id = id;
    this.storage = new DurableObjectStorage(sqlite);
  }

  /** No event is delivered to the object until `fn` settles. */
  async blockConcurrencyWhile<T>(fn: () => Promise<T> | T): Promise<T> {
    lock();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  waitUntil(promise: unknown): void {
    invocationState(currentInvocation())?.waitUntil.push(Promise.resolve(promise));
  }

  /** The WebSocket hibernation API: the host keeps `ws` open while the object may be evicted; its
   *  events come to webSocketMessage/webSocketClose/webSocketError. */
  acceptWebSocket(ws: unknown, tags?: unknown): void {
    const hooks = socketHooks('acceptWebSocket()');
    if (!hooks.isWebSocket(ws)) throw new TypeError("Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter 1 is not of type 'WebSocket'.");
    const list = tagList(tags);
    hooks.hibernate(ws, () => hibernationOp<number>(['accept', list]));
  }

  getWebSockets(tag?: unknown): unknown[] {
    const hooks = webSocketHooks();
    if (!hooks) return [];
    const ids = hibernationOp<number[]>(['list', tag === undefined || tag === null ? null : String(tag)]);
    return ids.map((id) => hooks.revive(id));
  }

  getTags(ws: unknown): string[] {
    return hibernationOp<string[]>(['tags', hibernatableIdOf(ws, 'getTags()')]);
  }

  setWebSocketAutoResponse(pair?: unknown): void {
    if (pair === undefined || pair === null) {
      hibernationOp(['clearAutoResponse']);
      return;
    }
    if (!(pair instanceof WebSocketRequestResponsePair)) throw new TypeError("Failed to execute 'setWebSocketAutoResponse' on 'DurableObjectState': parameter 1 is not of type 'WebSocketRequestResponsePair'.");
    const max = HIBERNATION_LIMITS.maxAutoResponseBytes;
    const [requestBytes, responseBytes] = [utf8Length(pair.request), utf8Length(pair.response)];
    if (requestBytes > max) throw new RangeError(`Request cannot be larger than ${max} bytes. A request of size ${requestBytes} was provided.`);
    if (responseBytes > max) throw new RangeError(`Response cannot be larger than ${max} bytes. A response of size ${responseBytes} was provided.`);
    hibernationOp(['setAutoResponse', pair.request, pair.response]);
  }

  getWebSocketAutoResponse(): WebSocketRequestResponsePair | null {
    const pair = hibernationOp<[string, string] | null>(['getAutoResponse']);
    return pair ? new WebSocketRequestResponsePair(pair[0], pair[1]) : null;
  }

  getWebSocketAutoResponseTimestamp(ws: unknown): Date | null {
    const at = hibernationOp<number | null>(['autoResponseTimestamp', hibernatableIdOf(ws, 'getWebSocketAutoResponseTimestamp()')]);
    return at === null ? null : new Date(at);
  }

  setHibernatableWebSocketEventTimeout(timeoutMs?: unknown): void {
    const ms = timeoutMs === undefined || timeoutMs === null ? null : Number(timeoutMs);
    if (ms !== null && !(ms >= 0)) throw new TypeError('setHibernatableWebSocketEventTimeout() requires a number of milliseconds');
    if (ms !== null && ms > HIBERNATION_LIMITS.maxEventTimeoutMs) throw new Error(`Event timeout should not exceed ${HIBERNATION_LIMITS.maxEventTimeoutMs} ms.`);
    hibernationOp(['setEventTimeout', ms]);
  }

  getHibernatableWebSocketEventTimeout(): number | null {
    return hibernationOp<number | null>(['getEventTimeout']);
  }

  abort(): never {
    return notSupported('ctx.abort()');
  }

  get [Symbol.toStringTag]() {
    return 'DurableObjectState';
  }
}

type ObjectInstance = Record<string, unknown>;
let hosted: { instance: ObjectInstance; className: string; id: string } | null = null;
/** The hosted object's class, known from just before its constructor runs. */
let hostedClass: { prototype?: unknown } | null = null;

/** Names an RPC call may not reach: the object's event handlers and Object.prototype's. */
const RESERVED_METHODS = new Set([...RPC_RESERVED_METHODS, 'alarm', 'webSocketMessage', 'webSocketClose', 'webSocketError']);

function construct(payload: ObjectEventPayload): ObjectInstance {
  const { namespace, env } = installedWorker();
  const Class = namespace ? namespace[payload.className] : undefined;
  if (typeof Class !== 'function') throw new TypeError(`Durable Object class ${payload.className} is not exported by this worker`);
  const state = new DurableObjectState(new DurableObjectId(payload.id, payload.name ?? undefined), payload.sqlite);
  hostedClass = Class as { prototype?: unknown };
  return new (Class as new (ctx: unknown, env: unknown) => ObjectInstance)(state, env);
}

/** The event's synchronous start; its promise settles with the answer. */
function start(instance: ObjectInstance, event: ObjectEventPayload['event']): Promise<ObjectEventResult> {
  switch (event.kind) {
    case 'fetch': {
      const handler = instance.fetch;
      if (typeof handler !== 'function') throw new TypeError('Handler does not export a fetch() function.');
      const returned = handler.call(instance, requestFromWire(event.request));
      return Promise.resolve(returned).then(objectResponse);
    }
    case 'rpc': {
      const method = event.method;
      const handler = instance[method];
      if (RESERVED_METHODS.has(method) || typeof handler !== 'function' || handler === (Object.prototype as Record<string, unknown>)[method]) {
        throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
      }
      return Promise.resolve(handler.apply(instance, event.args)).then((value) => ({ value: structuredCloneForHost(value) }));
    }
    case 'websocket':
      return socketEvent(instance, event.socketId, event.event);
    case 'alarm': {
      const handler = instance.alarm;
      if (typeof handler !== 'function') throw new TypeError('Durable Object has no alarm() handler, but an alarm was set for it.');
      return Promise.resolve(handler.call(instance, { retryCount: event.retryCount, isRetry: event.retryCount > 0 })).then(() => ({ alarm: true as const }));
    }
    default:
      throw new TypeError('unknown Durable Object event');
  }
}

/** A Durable Object's response crosses as a worker's does: a streamed body stays a stream, which
 *  the host pulls as the client reads (the event stays open until then, as a fetch does). */
async function objectResponse(returned: unknown): Promise<ObjectEventResult> {
  if (!(returned instanceof Response)) throw new TypeError("Incorrect type for the 'fetch' handler's result: it did not resolve to a 'Response'.");
  if (returned.webSocket) return bufferedResponse(returned);
  const response = await responseToWire(returned);
  if (response.stream !== undefined) return { response, stream: response.stream };
  if (response.hostStream !== undefined) return { response, hostStream: response.hostStream };
  return { response };
}

/** A response with a WebSocket crosses whole (its body is read here). */
async function bufferedResponse(returned: Response): Promise<ObjectEventResult> {
  const headers: [string, string][] = [];
  for (const [name, value] of returned.headers) headers.push([name, value]);
  const ws = returned.webSocket;
  if (ws !== null && ws !== undefined) {
    // The client end of a pair whose server end was accepted with acceptWebSocket(): the host
    // carries it to the caller, and the socket stays with this object (hibernatable).
    const hooks = socketHooks('a 101 response');
    const id = hooks.foreignId(ws);
    if (id !== null) {
      hooks.transfer(ws);
      return { response: { status: 101, statusText: returned.statusText, headers, body: null, webSocket: id } };
    }
    // A pair's client end whose server end this object accept()ed (or will): the socket lives in
    // this isolate, which the host keeps while it is open.
    return { response: { status: 101, statusText: returned.statusText, headers, body: null, webSocket: hooks.transfer(ws) }, isolateSocket: true };
  }
  const body = returned.body === null ? null : await returned.arrayBuffer();
  return { response: { status: returned.status, statusText: returned.statusText, headers, body } };
}

/** Listeners of WebSockets the object accept()ed run behind the input gate too, one event at a time. */
function gatedSocketEvent(run: () => Promise<unknown>[]): Promise<unknown>[] {
  return [
    (async () => {
      const entered = enterGate();
      if (entered) await entered;
      let work: Promise<unknown>[];
      try {
        work = run();
      } finally {
        unlock();
      }
      await Promise.all(work);
    })(),
  ];
}

let gateInstalled = false;

async function handleEvent(raw: unknown): Promise<object> {
  const payload = raw as ObjectEventPayload;
  if (!gateInstalled) {
    const hooks = webSocketHooks();
    if (hooks) {
      hooks.setEventGate(gatedSocketEvent);
      gateInstalled = true;
    }
  }
  const entered = enterGate();
  if (entered) await entered;
  let answer: Promise<ObjectEventResult>;
  try {
    if (!hosted) {
      const instance = construct(payload);
      hosted = { instance, className: payload.className, id: payload.id };
      // A constructor's blockConcurrencyWhile() holds its first event back too: wait our turn again.
      unlock();
      const again = enterGate();
      if (again) await again;
    } else if (hosted.id !== payload.id || hosted.className !== payload.className) {
      throw new Error('cinder: this isolate hosts another Durable Object');
    }
    answer = start(hosted.instance, payload.event);
  } finally {
    unlock();
  }
  const result = await answer;
  await outputGate();
  return result;
}

/** Register the binding type and the object event handler (sandbox/addons/durable-objects.ts). */
export function installDurableObjects(): void {
  registerBinding(DURABLE_OBJECT_BINDING, (name) => Object.freeze(new DurableObjectNamespace(name)));
  registerEventHandler(DURABLE_OBJECT_EVENT, handleEvent);
}
