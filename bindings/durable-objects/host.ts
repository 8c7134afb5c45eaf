// The host half of Durable Objects: the do.* ops behind sandbox/addons/durable-objects.ts.
//
// A guest names only its own binding; the namespace comes from that binding's config and the
// calling worker's account: (account, script_name or this worker, class_name) looked up in the
// registry. Ids are sealed to their namespace (ids.ts), so an id made elsewhere is refused, and
// storage ops reach only the object the calling isolate hosts (set by the object host as op state
// before any guest code ran). Every argument is checked: the guest is untrusted.
import { newRequestId } from '../../src/model/request-id.js';
import { DEFAULT_ACCOUNT } from '../../src/model/accounts.js';
import { messagesOf, socketIdOf } from '../../src/model/websocket-messages.js';
import { MAX_INVOCATIONS_PER_REQUEST, MAX_SERVICE_DEPTH, RequestTree, chargeSubrequest, type InvocationPlace } from '../../src/model/request-tree.js';
import type { LimitExceededError } from '../../src/model/limits.js';
import type { WorkerDefinition } from '../../src/model/worker-definition.js';
import type { OpCall, OpRegistry, SocketOwner, SyncOpRegistry } from '../../src/runtime/contract.js';
import { DO_OPS, DO_SYNC_OPS, MAX_WEBSOCKET_MESSAGE_BYTES, type GuestException, type SocketEvent, type WireRequest, type WireResponse } from '../../protocol/wall.js';
import { outsideRequestMessage } from '../../protocol/outside-request.js';
import { DO_LIMITS, DURABLE_OBJECT_BINDING, DURABLE_OBJECT_EVENT, HIBERNATION_LIMITS, type ObjectEventPayload, type ObjectEventResult } from './protocol.js';
import { HibernatableSockets, type ObjectRef, type ObjectSockets } from './hibernation.js';
import { HandOff } from './hand-off.js';
import { IdFactory } from './ids.js';
import { StorageError } from './errors.js';
import { ObjectStorageClient, StorageCallEnded } from './storage-client.js';
import { ExecutorProcesses, childEntry } from '../../src/store/executor-processes.js';
import type { DurableObjectRegistry, NamespaceRecord } from './registry.js';
import type { AlarmScheduler } from './alarms.js';
import { NOT_HELD, type DeliveryOutcome, type Fence, type ForwardedEvent, type ObjectPlacement, type RelayedSocket } from './placement.js';

/** What the ops need of the runtime (src/runtime/durable-objects/object-host.ts provides deliver). */
export interface DurableObjectRuntime extends OpRegistry, SyncOpRegistry {
  definition(name: string): WorkerDefinition | undefined;
  objects(): ObjectDelivery;
}

export interface ObjectDelivery {
  deliver(
    target: { key: string; generation?: string; account: string; script: string; family: string; open(): { state: unknown; close(): void } },
    kind: string,
    payload: unknown,
    requestId: string,
    place: InvocationPlace | undefined,
    trigger: { method: string; url: string; status?: number },
    /** a wall limit shorter than the worker's for this event; bytes that came in for it */
    options?: { wallMs?: number; bytesIn?: number },
  ): Promise<{ owner?: SocketOwner; result?: unknown; stream?: AsyncGenerator<Uint8Array | string, void, undefined>; exception?: GuestException; limit?: LimitExceededError; loadError?: string }>;
  isLive(key: string): boolean;
  /** told when an object's instance goes (reason: 'evicted', 'redeployed', 'failed', 'shutdown') */
  onRetired(listener: (key: string, reason: string) => void): void;
  /** told when a worker is redeployed or removed (its objects, live or hibernated) */
  onWorkerRetired(listener: (script: string) => void): void;
}

/** One event's outcome in this process: with the object's socket owner (WebSockets it answered with). */
type LocalOutcome = DeliveryOutcome & { owner?: SocketOwner; stream?: AsyncGenerator<Uint8Array | string, void, undefined>; socket?: RelayedSocket };

/** An upgrade forwarded over the holder's socket endpoint, as the holder answers it: `join` names
 *  the object's socket the endpoint's connection is to be joined to. */
export type SocketReceipt = DeliveryOutcome & { join?: { owner: SocketOwner; socketId: number }; stream?: AsyncGenerator<Uint8Array | string, void, undefined> };

function isWebSocketUpgrade(request: WireRequest): boolean {
  return request.headers.some(([name, value]) => name.toLowerCase() === 'upgrade' && value.trim().toLowerCase() === 'websocket');
}

/** A streamed answer forwarded to another process is sent whole, up to this many bytes. */
const MAX_FORWARDED_STREAM_BYTES = 32 * 1024 * 1024;

/** The op-state family under which an object's isolate holds its HostedState. */
export const HOSTED_FAMILY = 'durable-object';

/** What the host keeps for the object an isolate hosts. */
export interface HostedState {
  namespace: NamespaceRecord;
  id: string;
  name: string | null;
  storage: ObjectStorageClient;
  /** with placement across processes: this process's hold on the object (checked by every
   *  storage operation, so a holder whose lease lapsed cannot write) */
  fence: Fence | null;
}

export interface DurableObjectOptions {
  /** bytes one object's database may grow to (default 1 GiB; Cloudflare allows up to 10 GB) */
  maxDatabaseBytes?: number;
  /** where objects live when several processes or nodes share the platform (--redis); absent,
   *  every object lives in this process */
  placement?: ObjectPlacement;
  /** storage processes the objects are sharded over (default 2) */
  storageProcesses?: number;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const RPC_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,255}$/;

/** What the ops have in common: the registry, id factories by namespace, and where objects go. */
export class DurableObjects {
  private readonly factories = new Map<string, IdFactory>();
  private readonly maxDatabaseBytes: number;
  private readonly placement: ObjectPlacement | null;
  /** where every object's storage calls run (storage-process.ts) */
  readonly storageProcesses: ExecutorProcesses;
  /** the hibernatable WebSockets of every object (hibernation.ts) */
  readonly hibernation: HibernatableSockets;

  constructor(
    readonly registry: DurableObjectRegistry,
    private readonly runtime: DurableObjectRuntime,
    private readonly alarms: AlarmScheduler,
    options: DurableObjectOptions = {},
  ) {
    this.maxDatabaseBytes = options.maxDatabaseBytes ?? 1024 * 1024 * 1024;
    this.placement = options.placement ?? null;
    this.storageProcesses = new ExecutorProcesses(childEntry(import.meta.url, 'storage-process.js'), {
      processes: options.storageProcesses,
      ended: (reason, cpuMs, cap) => new StorageCallEnded(reason, cpuMs, cap),
    });
    this.hibernation = new HibernatableSockets({
      wake: (ref, socketId, event, bytes, timeoutMs) => this.wake(ref, socketId, event, bytes, timeoutMs),
      isLive: (key) => this.runtime.objects().isLive(key),
      version: (script) => this.runtime.definition(script)?.version,
    });
    this.runtime.objects().onRetired((key, reason) => this.hibernation.retired(key, reason));
    // Cloudflare disconnects an object's WebSockets when its code is updated: hibernated ones too.
    this.runtime.objects().onWorkerRetired((script) => this.hibernation.retiredWorker(script));
  }

  /** One hibernatable WebSocket event into its object, as an event of its own (re-creating the
   *  object if it hibernated). A handler that throws is logged with its invocation; the socket stays. */
  private async wake(ref: ObjectRef, socketId: number, event: SocketEvent, bytes: number, timeoutMs: number | null): Promise<void> {
    const trigger = { method: 'WEBSOCKET', url: `durable-object://${ref.namespace.className}/${event.type}` };
    const out = await this.deliver(ref.namespace, ref.id, ref.name, { kind: 'websocket', socketId, event }, undefined, trigger, { wallMs: timeoutMs ?? undefined, bytesIn: bytes });
    if (out.failure !== undefined) throw new Error(out.failure);
    if (out.error) this.onHandlerError?.(ref, `${out.error.name}: ${out.error.message}`);
  }

  /** where a hibernation handler's exception is reported (the server's log) */
  onHandlerError: ((ref: ObjectRef, message: string) => void) | undefined;

  /** The hibernatable sockets of the object the calling isolate hosts. */
  socketsOf(call: OpCall, create: boolean): ObjectSockets | undefined {
    const hosted = this.hosted(call);
    return this.hibernation.table({ key: `${hosted.namespace.dir}/${hosted.id}`, namespace: hosted.namespace, id: hosted.id, name: hosted.name }, create);
  }

  ids(namespace: NamespaceRecord): IdFactory {
    let factory = this.factories.get(namespace.dir);
    if (!factory) this.factories.set(namespace.dir, (factory = new IdFactory(this.registry.secret, namespace.dir)));
    return factory;
  }

  /** The namespace a binding of the calling worker names (its own account only). */
  namespaceOf(call: OpCall, binding: unknown): NamespaceRecord {
    if (typeof binding !== 'string') throw new TypeError('Invalid Durable Object binding');
    const config = call.binding(binding);
    if (!config || config.type !== DURABLE_OBJECT_BINDING) throw new TypeError(`env.${binding} is not a Durable Object namespace bound to this worker`);
    const account = call.worker.account ?? '';
    const script = config.script_name ?? call.worker.name;
    const namespace = this.registry.namespace(account, script, config.class_name);
    if (!namespace) throw new Error(`env.${binding}: worker "${script}" has no Durable Object class ${config.class_name} (it needs a migration that creates it)`);
    return namespace;
  }

  /** Deliver one event to an object, wherever it lives, and answer the calling guest. */
  async deliver(namespace: NamespaceRecord, id: string, name: string | null, event: ObjectEventPayload['event'], place: InvocationPlace | undefined, trigger: { method: string; url: string }, options?: { wallMs?: number; bytesIn?: number }): Promise<LocalOutcome> {
    if (!this.placement) return this.deliverHere(namespace, id, name, event, place, trigger, null, options);
    const key = `${namespace.dir}/${id}`;
    let unreachable = '';
    // A holder that moved or went away is located again; a few times at most.
    for (let attempt = 0; attempt < 3; attempt++) {
      const where = await this.placement.locate(key, namespace.className);
      if ('unavailable' in where) return { failure: where.unavailable };
      if ('here' in where) return this.deliverHere(namespace, id, name, event, place, trigger, where.here, options);
      // A hibernated WebSocket's event belongs to the sockets this process holds: not forwarded.
      if (event.kind === 'websocket') return { failure: `Durable Object ${namespace.className} ${id} is now held by another process (node "${where.remote.node}"); its WebSockets here are closed` };
      const forwarded: ForwardedEvent = {
        account: namespace.account,
        script: namespace.script,
        className: namespace.className,
        dir: namespace.dir,
        id,
        name,
        // A WebSocket id is the calling isolate's: meaningless elsewhere (the holder's answer says
        // whether the object answered with a socket; forwardSocket carries it).
        event: event.kind === 'fetch' && event.socketId !== undefined ? { kind: 'fetch', request: event.request } : event,
        depth: place?.depth ?? 0,
        subrequestsLeft: place ? Math.max(0, place.tree.subrequestLimit - place.tree.subrequests) : 50,
        invocationsLeft: place ? Math.max(0, MAX_INVOCATIONS_PER_REQUEST - place.tree.invocations) : MAX_INVOCATIONS_PER_REQUEST - 1,
        trigger,
      };
      // An upgrade from a caller that can carry a WebSocket goes over a WebSocket of its own, which
      // the holder joins to the object's socket if the object answers with one.
      const relayed = event.kind === 'fetch' && event.socketId !== undefined && this.placement.forwardSocket !== undefined && isWebSocketUpgrade(event.request);
      let out: LocalOutcome | typeof NOT_HELD;
      try {
        out = relayed ? await this.placement.forwardSocket!(where.remote, forwarded) : await this.placement.forward(where.remote, forwarded);
      } catch (error) {
        this.placement.forget(key);
        unreachable = `node "${where.remote.node}" (${(error as Error).message})`;
        // Refused before anything was sent: safe to try again. Cut mid-way: the event may have run.
        if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') continue;
        return { failure: `Durable Object ${namespace.className} ${id}: the call to ${unreachable} failed; it may or may not have run` };
      }
      if (out === NOT_HELD) {
        this.placement.forget(key);
        continue;
      }
      // One request tree across processes: what the object spent there counts here too.
      if (place && out.spent) {
        place.tree.subrequests += Math.max(0, Math.floor(Number(out.spent.subrequests)) || 0);
        place.tree.invocations += Math.max(0, Math.floor(Number(out.spent.invocations)) || 0);
      }
      return out;
    }
    return { failure: `Durable Object ${namespace.className} ${id} is unavailable: ${unreachable ? `cannot reach ${unreachable}` : 'it keeps moving between processes'}; try again shortly` };
  }

  /** Whether another live process holds the object (placement); claims it here when unheld. */
  async heldElsewhere(namespace: NamespaceRecord, id: string): Promise<boolean> {
    if (!this.placement) return false;
    return 'remote' in (await this.placement.locate(`${namespace.dir}/${id}`, namespace.className));
  }

  /** An event forwarded by another process: delivered here if this process holds the object.
   *  `socket`: it came over the socket endpoint, which can carry the object's WebSocket (`join`). */
  async receive(forwarded: ForwardedEvent, socket = false): Promise<SocketReceipt | typeof NOT_HELD> {
    const namespace = this.registry.namespace(forwarded.account, forwarded.script, forwarded.className);
    if (!namespace || namespace.dir !== forwarded.dir) return { failure: `worker "${forwarded.script}" has no Durable Object class ${forwarded.className} on this node (yet): its deploy has not reached it` };
    const id = this.ids(namespace).fromString(forwarded.id);
    const name = typeof forwarded.name === 'string' && this.ids(namespace).fromName(forwarded.name) === id ? forwarded.name : null;
    if (!this.placement) return NOT_HELD;
    const where = await this.placement.locate(`${namespace.dir}/${id}`, namespace.className);
    if ('unavailable' in where) return { failure: where.unavailable };
    if (!('here' in where)) return NOT_HELD;
    if (forwarded.event.kind === 'websocket') return { failure: 'a WebSocket event is not forwarded between processes' };
    // The caller's request tree, continued: its budgets as they stand, what is spent here reported back.
    const tree = new RequestTree(forwarded.subrequestsLeft);
    // (a caller from before invocationsLeft was forwarded: its budget is unknown, as it was then)
    const left = typeof forwarded.invocationsLeft === 'number' ? Math.max(0, Math.min(MAX_INVOCATIONS_PER_REQUEST - 1, Math.floor(forwarded.invocationsLeft) || 0)) : MAX_INVOCATIONS_PER_REQUEST - 1;
    const startInvocations = MAX_INVOCATIONS_PER_REQUEST - left;
    tree.invocations = startInvocations;
    const delivered = await this.deliverHere(namespace, id, name, forwarded.event, { tree, depth: forwarded.depth }, forwarded.trigger, where.here);
    const out: LocalOutcome = { ...delivered, spent: { subrequests: tree.subrequests, invocations: tree.invocations - startInvocations } };
    const response = out.result && 'response' in out.result ? (out.result.response as { webSocket?: unknown }) : null;
    if (response?.webSocket !== undefined) {
      // The socket stays with the object in this process; the caller's end is a connection from
      // its process to this one's socket endpoint, joined to the object's socket by the endpoint.
      const objectSocket = Number(response.webSocket);
      const isolateSocket = out.result !== undefined && 'isolateSocket' in out.result && out.result.isolateSocket === true;
      const table = isolateSocket ? undefined : this.hibernation.table({ key: `${namespace.dir}/${id}`, namespace, id, name }, false);
      const owner = isolateSocket ? out.owner : table;
      const joinable = socket && Number.isSafeInteger(objectSocket) && (isolateSocket ? out.owner?.offer?.(objectSocket) === true : table?.pendingHandOff(objectSocket) === true);
      if (!joinable || !owner) {
        owner?.drop(objectSocket);
        if (socket) return { failure: `Durable Object ${namespace.className} answered with an unknown WebSocket` };
        return { failure: `Durable Object ${namespace.className} answered with a WebSocket to a request without an "Upgrade: websocket" header; the object is held by another process, and only an upgrade request (from a worker with WebSocket support) is relayed there as a WebSocket: pass the client's upgrade request to the stub` };
      }
      const { owner: _inProcess, stream: _none, ...outcome } = out;
      return { ...outcome, join: { owner, socketId: objectSocket } };
    }
    const { owner: _inProcess, stream, ...outcome } = out;
    // Over the event endpoint the streamed body goes as the forward's own body, as it is written.
    if (stream && !socket && outcome.result && 'response' in outcome.result) return { ...outcome, stream };
    if (stream && outcome.result && 'response' in outcome.result) {
      // The caller is in another process: the streamed body goes across whole (bounded).
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        size += bytes.length;
        if (size > MAX_FORWARDED_STREAM_BYTES) {
          await stream.return();
          return { failure: `Durable Object ${namespace.className} streamed a response over ${MAX_FORWARDED_STREAM_BYTES} bytes to a caller in another process; such a response is sent whole across processes, up to that size` };
        }
        chunks.push(Buffer.from(bytes));
      }
      const body = Buffer.concat(chunks);
      outcome.result = { ...outcome.result, response: { ...outcome.result.response, body: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer } };
    }
    return outcome;
  }

  private async deliverHere(namespace: NamespaceRecord, id: string, name: string | null, event: ObjectEventPayload['event'], place: InvocationPlace | undefined, trigger: { method: string; url: string }, fence: Fence | null, options?: { wallMs?: number; bytesIn?: number }): Promise<LocalOutcome> {
    const payload: ObjectEventPayload = { className: namespace.className, id, name, sqlite: namespace.sqlite, event };
    const target = {
      key: `${namespace.dir}/${id}`,
      // Held under a new identity after a lapse: a new instance, never the one from before.
      generation: fence?.holder,
      account: namespace.account,
      script: namespace.script,
      family: HOSTED_FAMILY,
      open: () => {
        fence?.check();
        const key = `${namespace.dir}/${id}`;
        const storage = new ObjectStorageClient(this.storageProcesses, { key, file: this.registry.objectFile(namespace.dir, id), sqlite: namespace.sqlite, maxDatabaseBytes: this.maxDatabaseBytes }, fence);
        storage.open({ account: namespace.account || DEFAULT_ACCOUNT, worker: namespace.script });
        const state: HostedState = { namespace, id, name, storage, fence };
        return { state, close: () => storage.close() };
      },
    };
    const out = await this.runtime.objects().deliver(target, DURABLE_OBJECT_EVENT, payload, newRequestId(), place, trigger, options);
    if (out.loadError !== undefined) return { failure: `worker "${namespace.script}" failed to load: ${out.loadError}` };
    if (out.limit) return { failure: `Durable Object ${namespace.className} ${out.limit.message}` };
    // The output gate, across processes: no answer leaves a holder that lost the object meanwhile.
    try {
      fence?.check();
    } catch (error) {
      return { failure: (error as Error).message };
    }
    if (out.exception) return { error: { name: out.exception.name, message: out.exception.message } };
    return { result: out.result as ObjectEventResult, owner: out.owner, stream: out.stream };
  }

  /** The object the calling isolate hosts (storage ops come only from there). */
  hosted(call: OpCall): HostedState {
    const state = call.isolateState<HostedState | null>(HOSTED_FAMILY, () => null);
    if (!state) throw new Error('ctx.storage is only available inside a Durable Object');
    state.fence?.check();
    return state;
  }

  alarmsFor(): AlarmScheduler {
    return this.alarms;
  }
}

/** The guest is untrusted: check the request it handed over field by field. */
function checkRequest(raw: unknown): WireRequest {
  const value = raw as Partial<WireRequest> | null;
  if (!value || typeof value !== 'object') throw new TypeError('Durable Object fetch: invalid request');
  if (typeof value.method !== 'string' || !METHOD.test(value.method)) throw new TypeError('Durable Object fetch: invalid request method');
  if (typeof value.url !== 'string' || !/^https?:\/\//i.test(value.url)) throw new TypeError('Durable Object fetch: the request URL must be an absolute http(s) URL');
  if (!Array.isArray(value.headers) || !value.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw new TypeError('Durable Object fetch: invalid request headers');
  }
  if (value.body !== null && value.body !== undefined && !(value.body instanceof ArrayBuffer)) throw new TypeError('Durable Object fetch: invalid request body');
  return { method: value.method, url: value.url, headers: value.headers, body: value.body ?? null };
}

function checkResponse(raw: unknown): WireResponse {
  const value = raw as Partial<WireResponse> | null;
  if (!value || typeof value !== 'object' || typeof value.status !== 'number' || !Array.isArray(value.headers)) throw new TypeError('Durable Object fetch: the object answered with an invalid response');
  const body = value.body;
  if (body !== null && typeof body !== 'string' && !(body instanceof ArrayBuffer)) throw new TypeError('Durable Object fetch: the object answered with an invalid body');
  return { status: value.status, statusText: typeof value.statusText === 'string' ? value.statusText : '', headers: value.headers as [string, string][], body: body ?? null };
}

export function registerDurableObjectOps(objects: DurableObjects, runtime: DurableObjectRuntime): void {
  runtime.registerSyncOp(DO_SYNC_OPS.idFromName, (call, [binding, name]) => objects.ids(objects.namespaceOf(call, binding)).fromName(name));
  runtime.registerSyncOp(DO_SYNC_OPS.idFromString, (call, [binding, text]) => objects.ids(objects.namespaceOf(call, binding)).fromString(text));
  runtime.registerSyncOp(DO_SYNC_OPS.newUniqueId, (call, [binding]) => objects.ids(objects.namespaceOf(call, binding)).unique());

  runtime.registerOp(DO_OPS.tick, async () => undefined);

  runtime.registerOp(DO_OPS.call, async (call, [binding, rawId, rawName, rawCall]) => {
    const namespace = objects.namespaceOf(call, binding);
    const id = objects.ids(namespace).fromString(rawId);
    let name: string | null = null;
    if (typeof rawName === 'string' && Buffer.byteLength(rawName) <= DO_LIMITS.maxNameBytes && objects.ids(namespace).fromName(rawName) === id) name = rawName;
    const { invocation } = call;
    // (the worker instance refuses such a call before it gets here, in these words)
    if (!invocation) throw new Error(outsideRequestMessage(DO_OPS.call));
    const request = rawCall as { kind?: unknown; request?: unknown; method?: unknown; args?: unknown; socketId?: unknown } | null;
    let event: ObjectEventPayload['event'];
    let trigger: { method: string; url: string };
    if (request?.kind === 'fetch') {
      const wire = checkRequest(request.request);
      event = request.socketId === undefined ? { kind: 'fetch', request: wire } : { kind: 'fetch', request: wire, socketId: socketIdOf(request.socketId) };
      trigger = { method: wire.method, url: wire.url };
    } else if (request?.kind === 'rpc' && typeof request.method === 'string' && RPC_NAME.test(request.method) && Array.isArray(request.args)) {
      event = { kind: 'rpc', method: request.method, args: request.args };
      trigger = { method: 'RPC', url: `durable-object://${namespace.className}/${request.method}` };
    } else {
      throw new TypeError('Durable Object call: invalid request');
    }
    // Each call is an invocation of the request tree it serves and a subrequest of the caller; the
    // invocation cap first, as for service calls (a call refused there changes no count).
    const depth = invocation.place.depth + 1;
    if (depth > MAX_SERVICE_DEPTH) throw new Error(`env.${String(binding)}: a chain of calls deeper than ${MAX_SERVICE_DEPTH} workers and objects`);
    invocation.place.tree.chargeInvocation();
    chargeSubrequest(invocation, call.limits.subrequests);
    const out = await objects.deliver(namespace, id, name, event, { tree: invocation.place.tree, depth }, trigger);
    if (out.failure !== undefined) throw new Error(`env.${String(binding)}: ${out.failure}`);
    if (out.error) return { error: out.error };
    const result = out.result;
    if (event.kind === 'fetch') {
      if (!result || !('response' in result)) {
        out.socket?.close();
        await out.stream?.return();
        throw new TypeError('Durable Object fetch: the object answered without a response');
      }
      const response = checkResponse(result.response);
      // A streamed body stays a stream: the caller reads it chunk by chunk (body.read), pulling the
      // object's stream as it goes; if the caller's invocation ends first, both are cancelled.
      if (out.stream) response.stream = call.openStream(out.stream);
      if (out.socket) {
        // The object is held by another process, which joined its WebSocket to a connection from
        // this one: the calling isolate gets that connection, as an outbound fetch's socket.
        if ((result.response as { webSocket?: unknown }).webSocket === undefined || event.socketId === undefined || !out.socket.attach(call.sockets, event.socketId)) {
          out.socket.close();
          throw new TypeError('Durable Object fetch: the WebSocket of the object in another process could not be given to this worker');
        }
        response.status = 101;
        response.webSocket = event.socketId;
        return { response };
      }
      const socket = Number((result.response as { webSocket?: unknown }).webSocket);
      if ((result.response as { webSocket?: unknown }).webSocket !== undefined) {
        // The object's 101 carries a socket it keeps: one of its hibernatable sockets (its table
        // holds it), or one it accept()ed (its isolate holds it). This isolate holds a stand-in
        // under the id it reserved, until it returns the response and the client connects.
        let owner: SocketOwner;
        if ((result as { isolateSocket?: unknown }).isolateSocket === true) {
          if (!out.owner?.offer || !Number.isSafeInteger(socket) || !out.owner.offer(socket)) throw new TypeError('Durable Object fetch: the object answered with an unknown WebSocket');
          owner = out.owner;
        } else {
          const table = objects.hibernation.table({ key: `${namespace.dir}/${id}`, namespace, id, name }, false);
          if (!table || !Number.isSafeInteger(socket) || !table.pendingHandOff(socket)) throw new TypeError('Durable Object fetch: the object answered with an unknown WebSocket');
          owner = table;
        }
        if (event.socketId === undefined) {
          owner.drop(socket);
          throw new TypeError(`env.${String(binding)}: the Durable Object answered with a WebSocket, but this worker has no WebSocket support loaded (it is loaded in workers whose code mentions WebSocketPair, WebSocket or webSocket)`);
        }
        const standIn = new HandOff({ owner, socketId: socket }, call.sockets, event.socketId);
        if (!call.sockets.attach(event.socketId, standIn, false)) {
          // (the id is another socket's: that one is left alone)
          standIn.cancel();
          owner.drop(socket);
          throw new TypeError('Durable Object fetch: this WebSocket id is already in use');
        }
        if (owner !== out.owner) (owner as ObjectSockets).handedOff(socket, standIn);
        response.status = 101;
        response.webSocket = event.socketId;
      }
      return { response };
    }
    return { value: result && 'value' in result ? result.value : undefined };
  });

  registerHibernationOps(objects, runtime);

  runtime.registerOp(DO_OPS.storage, async (call, [request]) => {
    const hosted = objects.hosted(call);
    if (!Array.isArray(request) || typeof request[0] !== 'string') throw new TypeError('ctx.storage: invalid request');
    // Sent to the object's storage process as they come: ops are applied in the order the guest made them.
    return storageOp(objects, hosted, request as unknown[], call);
  });

  // Synchronous for the guest (it waits on its own thread, applySyncPromise), asynchronous here:
  // the statement runs in the object's storage process while this thread serves others.
  runtime.registerOp(DO_OPS.sql, async (call, [request]) => {
    const hosted = objects.hosted(call);
    if (!Array.isArray(request) || typeof request[0] !== 'string') throw new TypeError('ctx.storage.sql: invalid request');
    if (request[0] === 'begin' && !hosted.namespace.sqlite) throw new StorageError('transactionSync() is only available to SQLite-backed Durable Objects');
    return hosted.storage.call('sql', request, call);
  });
}

async function storageOp(objects: DurableObjects, hosted: HostedState, request: unknown[], call: OpCall): Promise<unknown> {
  const { storage, namespace, id, name } = hosted;
  switch (request[0]) {
    case 'deleteAll':
      await storage.call('kv', request, call);
      objects.alarmsFor().delete(namespace, id);
      return undefined;
    case 'getAlarm':
      return objects.alarmsFor().get(namespace, id);
    case 'setAlarm': {
      const at = request[1];
      if (typeof at !== 'number' || !Number.isFinite(at)) throw new StorageError('setAlarm() requires a time', 'TypeError');
      objects.alarmsFor().set(namespace, id, name, at);
      return undefined;
    }
    case 'deleteAlarm':
      objects.alarmsFor().delete(namespace, id);
      return undefined;
    default:
      return storage.call('kv', request, call);
  }
}

function tagsOf(value: unknown): string[] {
  if (!Array.isArray(value)) throw new TypeError('acceptWebSocket(): tags must be an array of strings');
  const tags: string[] = [];
  for (const tag of value) {
    if (typeof tag !== 'string') throw new TypeError('acceptWebSocket(): tags must be an array of strings');
    if (tags.length >= HIBERNATION_LIMITS.maxTags) throw new Error(`a Hibernatable WebSocket cannot have more than ${HIBERNATION_LIMITS.maxTags} tags`);
    if (Buffer.byteLength(tag) > HIBERNATION_LIMITS.maxTagLength) throw new Error(`a tag is longer than the max tag length (${HIBERNATION_LIMITS.maxTagLength} characters).`);
    if (!tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

function autoResponseText(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`WebSocketRequestResponsePair: the ${what} must be a string`);
  if (Buffer.byteLength(value) > HIBERNATION_LIMITS.maxAutoResponseBytes) throw new RangeError(`WebSocketRequestResponsePair: the ${what} is larger than ${HIBERNATION_LIMITS.maxAutoResponseBytes} bytes`);
  return value;
}

/** ctx's hibernation API (the do.ws sync op) and the sends and closes of hibernatable sockets. */
function registerHibernationOps(objects: DurableObjects, runtime: DurableObjectRuntime): void {
  runtime.registerSyncOp(DO_SYNC_OPS.webSocket, (call, [request]) => {
    if (!Array.isArray(request) || typeof request[0] !== 'string') throw new TypeError('ctx: invalid WebSocket request');
    switch (request[0]) {
      case 'accept':
        return objects.socketsOf(call, true)!.accept(tagsOf(request[1]), call.worker.version);
      case 'list': {
        const tag = request[1];
        if (tag !== null && typeof tag !== 'string') throw new TypeError('getWebSockets(): the tag must be a string');
        return objects.socketsOf(call, false)?.list(tag) ?? [];
      }
      case 'tags':
        return objects.socketsOf(call, true)!.tagsOf(socketIdOf(request[1]));
      case 'serialize':
        return objects.socketsOf(call, true)!.serializeAttachment(socketIdOf(request[1]), request[2]);
      case 'deserialize':
        return objects.socketsOf(call, false)?.deserializeAttachment(socketIdOf(request[1])) ?? null;
      case 'setAutoResponse': {
        const table = objects.socketsOf(call, true)!;
        table.autoResponse = { request: autoResponseText(request[1], 'request'), response: autoResponseText(request[2], 'response') };
        return null;
      }
      case 'clearAutoResponse': {
        const table = objects.socketsOf(call, false);
        if (table) {
          table.autoResponse = null;
          table.maybeForget();
        }
        return null;
      }
      case 'getAutoResponse': {
        const pair = objects.socketsOf(call, false)?.autoResponse;
        return pair ? [pair.request, pair.response] : null;
      }
      case 'autoResponseTimestamp':
        return objects.socketsOf(call, false)?.autoResponseTimestamp(socketIdOf(request[1])) ?? null;
      case 'setEventTimeout': {
        const ms = request[1];
        if (ms !== null && (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > HIBERNATION_LIMITS.maxEventTimeoutMs)) {
          throw new Error(`Event timeout should not exceed ${HIBERNATION_LIMITS.maxEventTimeoutMs} ms.`);
        }
        objects.socketsOf(call, true)!.eventTimeoutMs = ms === 0 ? null : (ms as number | null);
        return null;
      }
      case 'getEventTimeout':
        return objects.socketsOf(call, false)?.eventTimeoutMs ?? null;
      default:
        throw new TypeError('ctx: invalid WebSocket request');
    }
  });

  runtime.registerOp(DO_OPS.webSocketSend, async (call, [id, batch]) => {
    const messages = messagesOf(batch, MAX_WEBSOCKET_MESSAGE_BYTES);
    if (call.invocation) for (const m of messages) call.invocation.bytesOut += typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength;
    await objects.socketsOf(call, false)?.send(socketIdOf(id), messages);
    return null;
  });

  runtime.registerOp(DO_OPS.webSocketClose, async (call, [id, rawCode, rawReason]) => {
    const code = rawCode === null || rawCode === undefined ? null : Number(rawCode);
    if (code !== null && !(code === 1000 || (Number.isInteger(code) && code >= 3000 && code <= 4999))) throw new TypeError(`Invalid WebSocket close code: ${String(rawCode)}.`);
    const reason = String(rawReason ?? '');
    if (Buffer.byteLength(reason) > 123) throw new TypeError('WebSocket close reason too long: at most 123 bytes.');
    objects.socketsOf(call, false)?.close(socketIdOf(id), code, reason);
    return null;
  });
}
