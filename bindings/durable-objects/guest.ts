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
import { registerBinding } from '../../sandbox/env.js';
import { hostCall, hostCallBlocking, hostCallSync } from '../../sandbox/bridge.js';
import { currentInvocation, invocation as invocationState } from '../../sandbox/invocation.js';
import { registerEventHandler, installedWorker } from '../../sandbox/addon-events.js';
import { Request } from '../../sandbox/api/request.js';
import { Response } from '../../sandbox/api/response.js';
import { structuredClone } from '../../sandbox/api/structured-clone.js';
import { DOMException } from '../../sandbox/api/dom-exception.js';
import { requestFromWire, requestToWire, responseFromWire, responseToWire } from '../../sandbox/wire.js';
import { hostByteStream } from '../../sandbox/host-stream.js';
import { DO_OPS, DO_SYNC_OPS, RPC_RESERVED_METHODS } from '../../protocol/wall.js';
import {
  DO_LIMITS,
  DURABLE_OBJECT_BINDING,
  DURABLE_OBJECT_EVENT,
  STORAGE_FAILED,
  type ListOptionsWire,
  type ObjectCall,
  type ObjectCallAnswer,
  type ObjectEventPayload,
  type ObjectEventResult,
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
    if ('response' in answer) return responseFromWire(answer.response, answer.response.stream !== undefined ? hostByteStream(answer.response.stream) : undefined);
    return answer.value;
  };
  const fetch = async (input: unknown, init?: unknown): Promise<unknown> => {
    const request = new Request(input as never, init as never);
    const response = (await call({ kind: 'fetch', request: await requestToWire(request) })) as Response;
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
        method = (...args: unknown[]) => call({ kind: 'rpc', method: property, args: structuredClone(args) });
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

  acceptWebSocket(): never {
    return notSupported('ctx.acceptWebSocket() (WebSocket hibernation)');
  }

  getWebSockets(): never {
    return notSupported('ctx.getWebSockets() (WebSocket hibernation)');
  }

  setWebSocketAutoResponse(): never {
    return notSupported('ctx.setWebSocketAutoResponse() (WebSocket hibernation)');
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
      return Promise.resolve(handler.apply(instance, event.args)).then((value) => ({ value: structuredClone(value) }));
    }
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
  const body = returned.body === null ? null : await returned.arrayBuffer();
  return { response: { status: returned.status, statusText: returned.statusText, headers, body } };
}

async function handleEvent(raw: unknown): Promise<object> {
  const payload = raw as ObjectEventPayload;
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
