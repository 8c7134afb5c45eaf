// The contract of the isolate wall, imported by both halves: the host (src/runtime/, bindings/*/
// host.ts) and the guest (sandbox/, bindings/*/guest.ts). Names and plain-data shapes only: the
// sandbox bundle includes this file, so it must not touch Node or allocate anything beyond these
// constants, and it imports nothing. A binding's own argument and answer shapes live beside it, in
// bindings/<name>/protocol.ts.
//
// How a request crosses: the host calls the guest's entry points (GUEST_ENTRIES, References taken
// at boot) with a WireRequest; the guest answers with a DispatchResult holding a WireResponse.
// The guest reaches the host only through the three bridge functions handed to BOOT_GLOBAL, each
// naming an op from OPS (async calls), SYNC_OPS or SEND_OPS (fire and forget).

/** The one global the sandbox leaves for the host: called once with the bridge, then deleted. */
export const BOOT_GLOBAL = '__cinder_boot';

/** Where the host puts, before boot, the `{ get, set }` pair reaching V8's continuation-preserved
 *  embedder data (isolated-vm patch 11, scripts/patch-isolated-vm.mjs). The boot hook takes it and
 *  deletes it (sandbox/async-context.ts), as it does BOOT_GLOBAL. */
export const CONTINUATION_DATA_GLOBAL = '__cinder_continuation';

/** The guest's entry points for events and streams, as the boot hook returns them. */
export const GUEST_ENTRIES = ['installWorker', 'dispatchFetch', 'dispatchFetchBatch', 'awaitFetch', 'dispatchScheduled', 'dispatchQueue', 'dispatchSocketEvent', 'settle', 'pullStream', 'cancelStream', 'installAddon', 'prepareLoad', 'dispatchRpc', 'dispatchAddonEvent'] as const;
export type GuestEntryName = (typeof GUEST_ENTRIES)[number];

/**
 * Data and CompiledWasm modules of an upload: the loader hands their bytes to prepareLoad
 * (an ArrayBuffer, a WebAssembly.Module compiled there), which leaves a one-shot function on this
 * global; the loader's own internal module (MODULE_VALUES_SPECIFIER) takes it, and deletes the
 * global, before any of the worker's code runs. The synthesized module of each such upload module
 * imports `take` from it; the resolver answers that specifier to those modules only.
 */
export const MODULE_VALUES_GLOBAL = '__cinder_module_values';
export const MODULE_VALUES_SPECIFIER = 'cinder-internal:module-values';

/**
 * Names a service binding never sends as RPC calls, and a WorkerEntrypoint never answers to, as on
 * workerd: the binding's own methods (fetch, connect), what would make a stub look like a promise
 * (then), and the class machinery.
 */
export const RPC_RESERVED_METHODS: readonly string[] = ['fetch', 'connect', 'then', 'catch', 'finally', 'constructor', 'dup', 'queue', 'scheduled', 'tail', 'trace'];

/** What the service.rpc op answers: the method's result, or the error it threw (name, message). */
export type RpcAnswer = { value: unknown } | { error: { name: string; message: string } };

/** The largest arguments (and result) of one RPC call, serialized (Cloudflare's limit). Counted
 *  where the value is made, in the guest's wall count (sandbox/wall-bytes.ts: the caller's
 *  arguments, the callee's result), not measured again on the host. */
export const MAX_RPC_BYTES = 32 * 1024 * 1024;

/** What a caller is told for RPC arguments or a result over MAX_RPC_BYTES (`bytes` as counted). */
export function rpcTooLarge(call: string, what: 'arguments' | 'result', bytes: number): string {
  return `${call}: the ${what} ${what === 'arguments' ? 'are' : 'is'} ${bytes} bytes serialized, over the limit of ${MAX_RPC_BYTES} bytes`;
}

/** Also returned by the boot hook: the pool's warm-up entry, and when the bundle was evaluated. */
export const WARM_UP_ENTRY = 'warmUp';

/** Response headers a worker may send, names and values together (bytes; workerd/Cloudflare's bound). */
export const MAX_RESPONSE_HEADER_BYTES = 128 * 1024;

/** What a response over that bound fails with, on either side of the wall. */
export const OVERSIZED_HEADERS_MESSAGE = `Response headers exceed the limit of ${MAX_RESPONSE_HEADER_BYTES} bytes in total.`;
export const PRELUDE_EVALUATED_AT = 'preludeEvaluatedAt';

/** What the boot hook returns (the guest's side of GUEST_ENTRIES). */
export type BootAnswer = Record<GuestEntryName | typeof WARM_UP_ENTRY, Function> & { [PRELUDE_EVALUATED_AT]: number };

/** The KV binding's ops (bindings/kv): (bindingName, ...) as bindings/kv/protocol.ts describes. */
export const KV_OPS = {
  get: 'kv.get',
  getBulk: 'kv.getBulk',
  put: 'kv.put',
  delete: 'kv.delete',
  list: 'kv.list',
} as const;

/** Durable Object ops (bindings/durable-objects): shapes in bindings/durable-objects/protocol.ts. */
export const DO_OPS = {
  /** async (bindingName, idHex, name | null, ObjectCall) -> ObjectCallAnswer: stub.fetch() and RPC */
  call: 'do.call',
  /** async (StorageRequest) -> answer: the hosting object's own storage (key-value API, alarms) */
  storage: 'do.storage',
  /** async () -> undefined: answered in a later task, after the guest's microtasks ran (input gate) */
  tick: 'do.tick',
  /** (SqlRequest) -> SqlAnswer: ctx.storage.sql, ctx.storage.transactionSync; the guest waits for
   *  it synchronously on its own thread (hostCallBlocking) while the host runs it asynchronously */
  sql: 'do.sql',
  /** async (hibernatableId, messages) -> null once the host's buffer is under its bound: a send on
   *  a WebSocket the hosting object accepted with ctx.acceptWebSocket() */
  webSocketSend: 'do.ws.send',
  /** async (hibernatableId, code | null, reason) */
  webSocketClose: 'do.ws.close',
} as const;

/** Durable Object ops answered synchronously (SYNC_OPS convention: (op, invocationId, ...args)). */
export const DO_SYNC_OPS = {
  /** (invocationId, bindingName, name) -> idHex */
  idFromName: 'do.idFromName',
  /** (invocationId, bindingName, text) -> idHex (throws when not an id of that namespace) */
  idFromString: 'do.idFromString',
  /** (invocationId, bindingName) -> idHex */
  newUniqueId: 'do.newUniqueId',
  /** (invocationId, HibernationRequest) -> answer: the hosting object's hibernatable WebSockets
   *  (acceptWebSocket, getWebSockets, tags, attachments, auto-response; bindings/durable-objects/protocol.ts) */
  webSocket: 'do.ws',
} as const;

/** The D1 binding's ops (bindings/d1): (bindingName, ...) as bindings/d1/protocol.ts describes. */
export const D1_OPS = {
  /** (binding, WireD1Statement[]) -> WireD1QueryAnswer: statements in one transaction */
  query: 'd1.query',
  /** (binding, sql) -> WireD1ExecAnswer */
  exec: 'd1.exec',
  /** (binding) -> ArrayBuffer: the database file */
  dump: 'd1.dump',
} as const;

/** The R2 binding's ops (bindings/r2): (bindingName, key, ...) as bindings/r2/protocol.ts describes. */
export const R2_OPS = {
  head: 'r2.head',
  get: 'r2.get',
  put: 'r2.put',
  delete: 'r2.delete',
  list: 'r2.list',
  createMultipartUpload: 'r2.createMultipartUpload',
  uploadPart: 'r2.uploadPart',
  completeMultipartUpload: 'r2.completeMultipartUpload',
  abortMultipartUpload: 'r2.abortMultipartUpload',
} as const;

/** The Queues producer binding's ops (bindings/queues): (bindingName, WireQueueSend[]). */
export const QUEUE_OPS = {
  send: 'queue.send',
} as const;

/** A message as dispatchQueue delivers it to a consumer. */
export interface WireQueueMessage {
  id: string;
  /** ms since the epoch, when it was sent */
  timestamp: number;
  /** the body, already decoded for its content type (a structured-clone copy) */
  body: unknown;
  attempts: number;
}

/** What dispatchQueue answers: each message's fate. A message not named is retried when the
 *  handler threw, acknowledged otherwise. */
export interface QueueDispatchResult {
  acked: string[];
  /** [message id, delaySeconds or null] */
  retried: [string, number | null][];
}

/** The WebSocket ops (bindings/websocket): a guest end whose other end the host holds, by the
 *  guest's socket id (bindings/websocket/protocol.ts has the shapes). */
export const WEBSOCKET_OPS = {
  /** (socketId, messages: (string | ArrayBuffer)[]) -> null once the host's buffer for the socket
   *  is under its bound again: the guest sends its next batch only then */
  send: 'ws.send',
  /** (socketId, code, reason) */
  close: 'ws.close',
  /** (socketId): an outbound socket was accepted: its events may come in from now on */
  accept: 'ws.accept',
  /** (socketId, GuestFetchRequest-like { url, headers }) -> WebSocketConnectAnswer: outbound fetch with Upgrade: websocket */
  connect: 'ws.connect',
} as const;

/** Async host ops: hostCall(op, ...args) in the guest, an OpHandler (or the bridge) on the host. */
export const OPS = {
  /** (timerId, ms) -> fired: boolean */
  timer: 'timer',
  /** (hostStreamId) -> the next chunk (ArrayBuffer) or null at the end */
  bodyRead: 'body.read',
  /** (GuestFetchRequest) -> GuestFetchResponse: outbound fetch() */
  fetch: 'fetch',
  /** (fetchId) */
  fetchAbort: 'fetch.abort',
  /** (method, args, releasedHandles) -> CryptoReply: crypto.subtle */
  crypto: 'crypto',
  /** ('write' | 'end', id, mode, format, bytes?) -> ArrayBuffer[]: (De)CompressionStream */
  compression: 'compression',
  /** (bindingName, WireRequest) -> WireResponse: env.SERVICE.fetch() */
  serviceFetch: 'service.fetch',
  /** (bindingName, WireRequest) -> WireResponse: env.ASSETS.fetch() (bindings/assets) */
  assetsFetch: 'assets.fetch',
  /** (bindingName, method, args[]) -> RpcAnswer: a method of the bound worker's WorkerEntrypoint */
  serviceRpc: 'service.rpc',
  kv: KV_OPS,
  d1: D1_OPS,
  r2: R2_OPS,
  queue: QUEUE_OPS,
  webSocket: WEBSOCKET_OPS,
  /** (cacheName, ...) as bindings/cache/protocol.ts describes: the Cache API */
  cache: { match: 'cache.match', put: 'cache.put', delete: 'cache.delete' },
  durableObjects: DO_OPS,
} as const;

/** Sync host ops: hostCallSync(op, ...args), for cheap host facts. */
export const SYNC_OPS = {
  /** (byteCount) -> ArrayBuffer of random bytes */
  random: 'random',
  /** (parcelId) -> the async answer kept under that id (see PARCEL_KEY) */
  parcel: 'parcel',
} as const;

/** An async answer carrying bytes crosses as { [PARCEL_KEY]: id }, and the guest takes the
 *  answer itself with SYNC_OPS.parcel: isolated-vm's async copy into an isolate aborts the process
 *  when the isolate cannot allocate it, a sync copy throws a RangeError (src/runtime/host-bridge.ts). */
export const PARCEL_KEY = '__cinderParcel';

/** Fire-and-forget messages: hostSend(op, ...args). */
export const SEND_OPS = {
  /** (level, message, invocationId, fullLength?): fullLength when the guest cut a long line */
  log: 'log',
  /** (invocationId): every console line the invocation sent before its result is out */
  flush: 'flush',
  /** (invocationId, lines, chars): console lines the guest dropped over its budget, not sent */
  logDropped: 'logDropped',
  /** (timerId) */
  clearTimer: 'clearTimer',
  /** (invocationId): the isolate could not take a parcel; the host ends it at the memory limit */
  outOfMemory: 'outOfMemory',
} as const;

export type LogLevel = 'debug' | 'info' | 'log' | 'warn' | 'error';

/** A request as it crosses into the guest. */
export interface WireRequest {
  method: string;
  url: string;
  /** header pairs in arrival order; repeated names stay repeated */
  headers: [string, string][];
  /** the whole body when it is in hand (copied or transferred in); null when none or streamed */
  body: ArrayBuffer | null;
  /** set when the body is still arriving: the guest reads it by this id with OPS.bodyRead */
  bodyStream?: number;
  cf?: Record<string, unknown>;
  /** what `request.cf` is built from, in the guest and only when read (sandbox/api/cf.ts):
   *  [colo, httpProtocol, tlsVersion, tlsCipher, country] ("" when unknown); set by the ingress */
  cfFields?: string[];
  /** `url` was already parsed and serialized by the host (by Node's WHATWG URL parser, native and
   *  cheaper than the sandbox's in a fresh isolate): the guest takes it as it is */
  urlSerialized?: boolean;
}

/** A response as it crosses out of the guest (and, for service bindings, back into one). */
export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** strings cross as strings (the host encodes them natively); bytes as an ArrayBuffer */
  body: string | ArrayBuffer | null;
  /** set when the body is a guest ReadableStream: the host pulls it with the pullStream entry */
  stream?: number;
  /** set when the body is a host stream the guest passed on untouched: piped host to host */
  hostStream?: number;
  /** status 101: the guest's id of the WebSocket end (the pair's client) the host now holds */
  webSocket?: number;
  /** the length of a streamed body that was bytes in hand (Content-Length; untrusted: the host
   *  checks it before use) */
  bodyLength?: number;
}

/** An exception thrown in the guest, described for the host. */
export interface GuestException {
  name: string;
  message: string;
  stack: string;
}

/** What the dispatch entries answer (copied, or JSON-encoded). */
export interface DispatchResult<T> {
  result?: T;
  exception?: GuestException;
  /** waitUntil work, timers or a stream remain: the host calls the settle entry later */
  pending: boolean;
  /** a 'flush' message follows the console lines the invocation sent */
  flush?: boolean;
  /** the handler threw after calling ctx.passThroughOnException(): the host forwards the request
   *  to the origin, when there is one */
  passThrough?: boolean;
  /** bytes of WebAssembly memory the isolate holds (absent when none): counted against the
   *  memory limit with the JS heap (sandbox/wasm.ts) */
  wasmBytes?: number;
}

/** What the pullStream entry answers: a chunk, the end (null), or the stream's error. */
/** An event the host delivers to a guest WebSocket end (the dispatchSocketEvent entry). */
export type SocketEvent =
  | { type: 'open' }
  | { type: 'message'; data: string | ArrayBuffer }
  | { type: 'close'; code: number; reason: string; wasClean: boolean }
  | { type: 'error'; message: string };

/** Largest WebSocket message either way (Workers: 1 MiB); a larger one closes with 1009. */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 1024 * 1024;

export type PulledChunk = ArrayBuffer | string | null | { error: GuestException };

/** One env entry as installWorker receives it: plain values whole, host-backed bindings by their
 *  type only (the guest calls back by binding name; the host resolves the name). */
export type BindingDescriptor =
  | { type: 'plain_text' | 'secret_text'; text: string }
  | { type: 'json'; json: unknown }
  | { type: string; [key: string]: unknown };

export type EnvDescriptor = Record<string, BindingDescriptor>;

/** What one op's arguments may cost the host when copied across: above every payload a binding
 *  takes whole (KV values 25 MiB, RPC 32 MiB, D1 batches 50 MB) and at least the worker's memory
 *  limit, so a body the worker holds in full can always be handed over. The guest counts arguments
 *  against it before the copy (sandbox/wall-bytes.ts); the host makes it the isolate's copyLimit,
 *  which bounds every serialized copy out of the isolate inside isolated-vm (patch 13). */
export const MIN_CALL_BYTES = 128 * 1024 * 1024;
export function callBytesFor(memoryMb: number): number {
  return Math.max(MIN_CALL_BYTES, Math.floor(memoryMb * 1024 * 1024));
}

/** How isolated-vm's copy refuses a value past the isolate's copyLimit (patch 13): a RangeError
 *  whose message starts so, with a non-enumerable own property of this name holding the limit
 *  (which a relayed copy of the error does not keep). The bridge answers it with the same error as
 *  its own count. */
export const COPY_LIMIT_MESSAGE_PREFIX = 'copyLimit: ';
export const COPY_LIMIT_PROPERTY = 'copyLimit';
