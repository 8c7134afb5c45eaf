// The host half of KV bindings: the op handlers behind guest.ts. The guest names a binding; the
// namespace comes only from the calling worker's own binding config for that name, so a worker
// reaches exactly the namespaces bound to it, whatever it sends. Every argument is checked
// (the KV service validates keys, options and sizes); results are built for the wire: text for
// text/json reads, bytes for arrayBuffer/stream, metadata as JSON text.
import { OpAllowance, type OpCall, type OpHandler } from '../../src/runtime/contract.js';
import { KV_OPS } from '../../protocol/wall.js';
import { type WireListResult, type WirePutOptions, type WireValue } from './protocol.js';
import type { KVRead, KVService } from './service.js';
import { KVError } from './validate.js';
import { countingKvOps } from '../../src/observability/counters.js';

export interface KVHostOptions {
  /** KV operations one invocation may make (Workers: 1,000) */
  maxOpsPerInvocation?: number;
}

interface OpRegistry {
  registerOp(op: string, handler: OpHandler): void;
}

const GET_TYPES = new Set(['text', 'json', 'arrayBuffer', 'stream']);

function namespaceFor(call: OpCall, binding: unknown): string {
  if (typeof binding !== 'string') throw new TypeError('Invalid KV binding');
  const config = call.binding(binding);
  if (!config || config.type !== 'kv_namespace' || typeof config.namespace_id !== 'string') {
    throw new TypeError(`env.${binding} is not a KV namespace bound to this worker`);
  }
  return config.namespace_id;
}

/** Bytes for the wire as an ArrayBuffer of exactly the value (the bridge copies it across). */
function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function wireValue(read: KVRead, asText: boolean): WireValue {
  return { value: asText ? read.value.toString('utf8') : arrayBufferOf(read.value), metadata: read.metadata, cacheStatus: read.cacheStatus };
}

/** Register the kv.* ops on a runtime; all of them go through `service`. */
export function installKV(registry: OpRegistry, service: KVService, options: KVHostOptions = {}): void {
  const runtime = countingKvOps(registry); // counts every op for cinder_kv_operations_total
  const maxOps = options.maxOpsPerInvocation ?? 1000;
  const allowance = new OpAllowance(maxOps);
  const meter = (call: OpCall) => allowance.take(call);

  runtime.registerOp(KV_OPS.get, async (call, [binding, key, type, cacheTtl]) => {
    const namespace = namespaceFor(call, binding);
    meter(call);
    if (typeof type !== 'string' || !GET_TYPES.has(type)) {
      throw new TypeError('Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".');
    }
    const read = await service.get(namespace, key, { cacheTtl });
    return read ? wireValue(read, type === 'text' || type === 'json') : null;
  });

  runtime.registerOp(KV_OPS.getBulk, async (call, [binding, keys, type, cacheTtl]) => {
    const namespace = namespaceFor(call, binding);
    meter(call);
    const kind = type === undefined ? 'text' : type;
    if (kind !== 'text' && kind !== 'json') throw new KVError('GET_BULK', 400, `"${String(kind)}" is not a valid type. Use "json" or "text"`);
    const reads = await service.getBulk(namespace, keys, { cacheTtl });
    return reads.map(([name, read]) => [name, read ? wireValue(read, true) : null]);
  });

  runtime.registerOp(KV_OPS.put, async (call, [binding, key, value, rawOptions]) => {
    const namespace = namespaceFor(call, binding);
    meter(call);
    let bytes: string | Buffer;
    if (typeof value === 'string') bytes = value;
    else if (value instanceof ArrayBuffer) bytes = Buffer.from(value);
    else throw new TypeError('KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.');
    const options = (rawOptions && typeof rawOptions === 'object' ? rawOptions : {}) as WirePutOptions;
    await service.put(namespace, key, bytes, { expiration: options.expiration, expirationTtl: options.expirationTtl, metadata: options.metadata });
  });

  runtime.registerOp(KV_OPS.delete, async (call, [binding, key]) => {
    const namespace = namespaceFor(call, binding);
    meter(call);
    await service.delete(namespace, key);
  });

  runtime.registerOp(KV_OPS.list, async (call, [binding, rawOptions]): Promise<WireListResult> => {
    const namespace = namespaceFor(call, binding);
    meter(call);
    const options = (rawOptions && typeof rawOptions === 'object' ? rawOptions : {}) as { prefix?: unknown; limit?: unknown; cursor?: unknown };
    // workerd sends a limit only when it is positive; 0 or less means the default.
    const limit = typeof options.limit === 'number' && options.limit > 0 ? options.limit : undefined;
    return service.list(namespace, { prefix: options.prefix, limit, cursor: options.cursor });
  });
}
