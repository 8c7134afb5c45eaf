// The host half of R2 bindings: the op handlers behind guest.ts. The bucket comes only from the
// calling worker's own binding config for the name the guest gives (its bucket name and the
// account the control plane resolved). Every argument is checked here; bodies stream both ways
// (a put reads the guest's stream, or the request body it passed on, straight to disk; a get
// hands the guest a host stream over the stored file), never whole in memory.
import { OpAllowance, type OpCall, type OpHandler } from '../../src/runtime/contract.js';
import { R2_OPS } from '../../protocol/wall.js';
import { DEFAULT_ACCOUNT } from '../../src/model/accounts.js';
import { R2_LIMITS, type WireChecksums, type WireConditional, type WireHttpMetadata, type WireListOptions, type WirePutBody, type WireRange } from './protocol.js';
import { R2Error, type BucketRef, type R2Store } from './store.js';

export interface R2HostOptions {
  /** R2 operations one invocation may make (default 1,000) */
  maxOpsPerInvocation?: number;
}

interface OpRegistry {
  registerOp(op: string, handler: OpHandler): void;
}

const HTTP_FIELDS = ['contentType', 'contentLanguage', 'contentDisposition', 'contentEncoding', 'cacheControl'] as const;
const CHECKSUMS: Record<string, number> = { md5: 32, sha1: 40, sha256: 64, sha384: 96, sha512: 128 };
const LIST_INCLUDE = new Set(['httpMetadata', 'customMetadata']);

function bucketFor(call: OpCall, binding: unknown): BucketRef {
  if (typeof binding !== 'string') throw new TypeError('Invalid R2 binding');
  const config = call.binding(binding);
  if (!config || config.type !== 'r2_bucket' || typeof config.bucket_name !== 'string') throw new TypeError(`env.${binding} is not an R2 bucket bound to this worker`);
  return { account: config.account ?? DEFAULT_ACCOUNT, bucket: config.bucket_name };
}

function keyOf(operation: string, key: unknown): string {
  if (typeof key !== 'string') throw new TypeError(`${operation}: the key must be a string`);
  if (Buffer.byteLength(key) > R2_LIMITS.maxKeyBytes) throw new R2Error(operation, `The specified object name is not valid (more than ${R2_LIMITS.maxKeyBytes} bytes).`, 10020);
  return key;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function httpMetadataOf(raw: unknown): WireHttpMetadata | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new TypeError('httpMetadata must be an object');
  const out: WireHttpMetadata = {};
  for (const field of HTTP_FIELDS) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new TypeError(`httpMetadata.${field} must be a string`);
    out[field] = value;
  }
  if (raw.cacheExpiry !== undefined) {
    if (typeof raw.cacheExpiry !== 'number' || !Number.isFinite(raw.cacheExpiry)) throw new TypeError('httpMetadata.cacheExpiry must be a date');
    out.cacheExpiry = raw.cacheExpiry;
  }
  return out;
}

function customMetadataOf(operation: string, raw: unknown): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new TypeError('customMetadata must be an object of strings');
  let bytes = 0;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== 'string') throw new TypeError(`customMetadata.${name} must be a string`);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  if (bytes > R2_LIMITS.maxCustomMetadataBytes) throw new R2Error(operation, `Your metadata headers exceed the maximum allowed metadata size (${R2_LIMITS.maxCustomMetadataBytes} bytes).`, 10012);
  return out;
}

function conditionOf(raw: unknown): WireConditional | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new TypeError('onlyIf must be an object');
  const out: WireConditional = {};
  for (const field of ['etagMatches', 'etagDoesNotMatch'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (!Array.isArray(value) || value.some((e) => typeof e !== 'string') || value.length > 100) throw new TypeError(`onlyIf.${field} must be etags`);
    out[field] = value as string[];
  }
  for (const field of ['uploadedBefore', 'uploadedAfter'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`onlyIf.${field} must be a date`);
    out[field] = value;
  }
  if (raw.secondsGranularity === true) out.secondsGranularity = true;
  return out;
}

function rangeOf(raw: unknown): WireRange | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new TypeError('range must be an object');
  const out: WireRange = {};
  for (const field of ['offset', 'length', 'suffix'] as const) {
    const value = raw[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new R2Error('get', `range.${field} must be a non-negative integer.`, 10039);
    out[field] = value;
  }
  if (out.suffix !== undefined && (out.offset !== undefined || out.length !== undefined)) throw new R2Error('get', 'A suffix range cannot have an offset or a length.', 10039);
  return out;
}

function checksumsOf(raw: unknown): WireChecksums | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new TypeError('checksums must be an object');
  const out: WireChecksums = {};
  for (const [algorithm, value] of Object.entries(raw)) {
    const hexLength = CHECKSUMS[algorithm];
    if (!hexLength || typeof value !== 'string' || value.length !== hexLength || !/^[0-9a-f]+$/.test(value)) throw new TypeError(`${algorithm} must be a ${hexLength ? hexLength / 2 + '-byte digest' : 'known checksum'}`);
    out[algorithm as keyof WireChecksums] = value;
  }
  return Object.keys(out).length > 1 ? tooMany() : out;
}

function tooMany(): never {
  throw new TypeError('You cannot specify multiple hashing algorithms.');
}

/** A put or part body: bytes in hand, or a stream read straight to disk. */
function bodyOf(call: OpCall, raw: unknown): AsyncIterable<Uint8Array> | Uint8Array {
  if (!isObject(raw)) throw new TypeError('put: invalid value');
  if (raw.bytes instanceof ArrayBuffer) return new Uint8Array(raw.bytes);
  if (typeof raw.stream === 'number') return call.guestStream(raw.stream);
  if (typeof raw.hostStream === 'number') return call.takeHostStream(raw.hostStream);
  if (raw.empty === true) return new Uint8Array(0);
  throw new TypeError('put: invalid value');
}

/** Register the r2.* ops on a runtime; all of them go through `store`. */
export function installR2(registry: OpRegistry, store: R2Store, options: R2HostOptions = {}): void {
  const maxOps = options.maxOpsPerInvocation ?? R2_LIMITS.maxOpsPerInvocation;
  const allowance = new OpAllowance(maxOps);
  const meter = (call: OpCall) => allowance.take(call);
  // R2's errors reach the guest as plain Errors with R2's words; TypeErrors stay TypeErrors.
  const register = (op: string, handler: OpHandler) =>
    registry.registerOp(op, async (call, args) => {
      try {
        return await handler(call, args);
      } catch (error) {
        throw error instanceof R2Error ? new Error(error.message) : error;
      }
    });

  register(R2_OPS.head, async (call, [binding, key]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    return store.head(bucket, keyOf('head', key));
  });

  register(R2_OPS.get, async (call, [binding, key, rawOptions]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    const raw = isObject(rawOptions) ? rawOptions : {};
    const found = store.get(bucket, keyOf('get', key), { onlyIf: conditionOf(raw.onlyIf), range: rangeOf(raw.range) });
    if (!found) return null;
    return found.body ? { object: found.object, body: call.openStream(found.body) } : { object: found.object };
  });

  register(R2_OPS.put, async (call, [binding, key, rawBody, rawOptions]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    const name = keyOf('put', key);
    const raw = isObject(rawOptions) ? rawOptions : {};
    const putOptions = {
      httpMetadata: httpMetadataOf(raw.httpMetadata),
      customMetadata: customMetadataOf('put', raw.customMetadata),
      onlyIf: conditionOf(raw.onlyIf),
      checksums: checksumsOf(raw.checksums),
      storageClass: raw.storageClass === undefined ? undefined : storageClassOf(raw.storageClass),
    };
    return store.put(bucket, name, bodyOf(call, rawBody as WirePutBody), putOptions);
  });

  register(R2_OPS.delete, async (call, [binding, keys]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    if (!Array.isArray(keys)) throw new TypeError('delete: keys must be an array');
    if (keys.length > R2_LIMITS.maxDeleteKeys) throw new R2Error('delete', `At most ${R2_LIMITS.maxDeleteKeys} keys can be deleted at once.`, 10020);
    store.delete(bucket, keys.map((k) => keyOf('delete', k)));
  });

  register(R2_OPS.list, async (call, [binding, rawOptions]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    const raw = isObject(rawOptions) ? rawOptions : {};
    const options: WireListOptions = {};
    if (raw.limit !== undefined) {
      if (typeof raw.limit !== 'number' || !Number.isInteger(raw.limit) || raw.limit < 1 || raw.limit > R2_LIMITS.maxListLimit) throw new R2Error('list', `MaxKeys params must be positive integer <= ${R2_LIMITS.maxListLimit}.`, 10022);
      options.limit = raw.limit;
    }
    for (const field of ['prefix', 'cursor', 'delimiter', 'startAfter'] as const) {
      if (raw[field] === undefined) continue;
      if (typeof raw[field] !== 'string') throw new TypeError(`list: ${field} must be a string`);
      options[field] = raw[field] as string;
    }
    if (raw.include !== undefined) {
      if (!Array.isArray(raw.include) || raw.include.some((i) => !LIST_INCLUDE.has(i as string))) throw new TypeError('list: include holds "httpMetadata" and/or "customMetadata"');
      options.include = raw.include as WireListOptions['include'];
    }
    return store.list(bucket, options);
  });

  register(R2_OPS.createMultipartUpload, async (call, [binding, key, rawOptions]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    const raw = isObject(rawOptions) ? rawOptions : {};
    return store.createMultipartUpload(bucket, keyOf('createMultipartUpload', key), {
      httpMetadata: httpMetadataOf(raw.httpMetadata),
      customMetadata: customMetadataOf('createMultipartUpload', raw.customMetadata),
      storageClass: raw.storageClass === undefined ? undefined : storageClassOf(raw.storageClass),
    });
  });

  register(R2_OPS.uploadPart, async (call, [binding, key, uploadId, partNumber, rawBody]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    if (typeof uploadId !== 'string') throw new TypeError('uploadPart: invalid upload id');
    return store.uploadPart(bucket, keyOf('uploadPart', key), uploadId, Number(partNumber), bodyOf(call, rawBody));
  });

  register(R2_OPS.completeMultipartUpload, async (call, [binding, key, uploadId, parts]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    if (typeof uploadId !== 'string') throw new TypeError('completeMultipartUpload: invalid upload id');
    if (!Array.isArray(parts) || parts.length > R2_LIMITS.maxParts) throw new TypeError('completeMultipartUpload: parts must be an array of {partNumber, etag}');
    const checked = parts.map((part) => {
      const { partNumber, etag } = (isObject(part) ? part : {}) as { partNumber?: unknown; etag?: unknown };
      if (typeof partNumber !== 'number' || typeof etag !== 'string') throw new TypeError('completeMultipartUpload: parts must be an array of {partNumber, etag}');
      return { partNumber, etag };
    });
    return store.completeMultipartUpload(bucket, keyOf('completeMultipartUpload', key), uploadId, checked);
  });

  register(R2_OPS.abortMultipartUpload, async (call, [binding, key, uploadId]) => {
    const bucket = bucketFor(call, binding);
    meter(call);
    if (typeof uploadId !== 'string') throw new TypeError('abortMultipartUpload: invalid upload id');
    store.abortMultipartUpload(bucket, keyOf('abortMultipartUpload', key), uploadId);
  });
}

function storageClassOf(value: unknown): string {
  if (value === 'Standard' || value === 'InfrequentAccess') return value;
  throw new TypeError(`storageClass must be "Standard" or "InfrequentAccess"`);
}
