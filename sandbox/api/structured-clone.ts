// structuredClone (HTML §2.7): StructuredSerializeWithTransfer and StructuredDeserialize folded
// into one deep copy, since both ends are this same isolate. What may be cloned is what the HTML
// spec and V8's serializer (which workerd uses) accept: primitives, boxed primitives, Date,
// RegExp, ArrayBuffer and views, Map, Set, Error types, DOMException, arrays and plain objects,
// with shared and circular references preserved. Functions, symbols, promises, weak collections
// and the sandbox's other platform objects throw a DataCloneError.
//
// @ungap/structured-clone (installed) was not used: it detects types by toString tag (spoofable),
// throws TypeError rather than DataCloneError, and drops ArrayBuffer identity and transfer.
import { DOMException, isDOMException } from './dom-exception.js';
import { platformInterfaceName, requireArgs, toDictionary } from './idl.js';
import { intrinsics, kindOf, typedArrayName } from './brand.js';

type Memory = Map<object, unknown>;

const objectToString = Object.prototype.toString;
const { getTime, regexpSource, regexpFlags, typedArrayBuffer, dataViewBuffer } = intrinsics;

const NATIVE_ERRORS: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

type TypedArrayConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;
let typedArrays: Record<string, TypedArrayConstructor> | null = null;
function typedArrayConstructor(name: string): TypedArrayConstructor {
  typedArrays ??= Object.fromEntries(
    ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
      'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']
      .filter((n) => typeof (globalThis as Record<string, unknown>)[n] === 'function')
      .map((n) => [n, (globalThis as Record<string, unknown>)[n] as TypedArrayConstructor]),
  );
  return typedArrays[name];
}

function cannotClone(what: string): DOMException {
  return new DOMException(`${what} could not be cloned.`, 'DataCloneError');
}

function describe(value: unknown): string {
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') {
    const source = Function.prototype.toString.call(value);
    return source.length > 100 ? source.slice(0, 100) + '...' : source;
  }
  return `#<${platformInterfaceName(value as object) ?? (objectToString.call(value) as string).slice(8, -1)}>`;
}

/** Define rather than assign, so keys like "__proto__" become plain data properties. */
function put(target: object, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else (target as Record<string, unknown>)[key] = value;
}

function copyProperties(source: object, target: object, memory: Memory): void {
  for (const key of Object.keys(source)) {
    // A getter run earlier may have deleted a later key; the spec skips those.
    if (!Object.prototype.hasOwnProperty.call(source, key)) continue;
    put(target, key, clone((source as Record<string, unknown>)[key], memory));
  }
}

/** Set while cloning a value that goes straight to the host (structuredCloneForHost): its buffers
 *  are not copied here, since the crossing copies them anyway. */
let sharingBuffers = false;

function cloneBuffer(buffer: ArrayBuffer, memory: Memory): ArrayBuffer {
  const known = memory.get(buffer);
  if (known !== undefined) return known as ArrayBuffer;
  if (sharingBuffers) {
    memory.set(buffer, buffer);
    return buffer;
  }
  let copy: ArrayBuffer;
  const resizable = buffer as ArrayBuffer & { resizable?: boolean; maxByteLength?: number };
  if (resizable.resizable) {
    copy = new (ArrayBuffer as new (n: number, o: object) => ArrayBuffer)(buffer.byteLength, { maxByteLength: resizable.maxByteLength });
    new Uint8Array(copy).set(new Uint8Array(buffer));
  } else {
    copy = buffer.slice(0);
  }
  memory.set(buffer, copy);
  return copy;
}

/** The original's stack string replaces the one the copy captured here (V8 keeps `stack` as an
 *  own property, data or accessor depending on the version, so it is read with a plain Get). */
function copyStack(from: object, to: object): void {
  if (!Object.prototype.hasOwnProperty.call(from, 'stack')) return;
  const stack = (from as { stack?: unknown }).stack;
  if (typeof stack === 'string') Object.defineProperty(to, 'stack', { value: stack, writable: true, enumerable: false, configurable: true });
}

function cloneError(value: Error, memory: Memory): Error {
  const name = value.name;
  const Ctor = typeof name === 'string' && Object.prototype.hasOwnProperty.call(NATIVE_ERRORS, name) ? NATIVE_ERRORS[name] : Error;
  const messageDesc = Object.getOwnPropertyDescriptor(value, 'message');
  const message = messageDesc && 'value' in messageDesc ? String(messageDesc.value) : undefined;
  const out = message === undefined ? new Ctor() : new Ctor(message);
  memory.set(value, out);
  // V8's serializer, and so browsers and workerd, also carry the stack and the cause.
  copyStack(value, out);
  const cause = Object.getOwnPropertyDescriptor(value, 'cause');
  if (cause && 'value' in cause) {
    Object.defineProperty(out, 'cause', { value: clone(cause.value, memory), writable: true, enumerable: false, configurable: true });
  }
  return out;
}

function clone(value: unknown, memory: Memory): unknown {
  if (typeof value !== 'object' || value === null) {
    if (typeof value === 'function' || typeof value === 'symbol') throw cannotClone(describe(value));
    return value;
  }
  const known = memory.get(value);
  if (known !== undefined) return known;

  if (Array.isArray(value)) {
    const out = new Array(value.length);
    memory.set(value, out);
    copyProperties(value, out, memory);
    return out;
  }

  if (isDOMException(value)) {
    const copy = new DOMException(value.message, value.name);
    copyStack(value, copy);
    memory.set(value, copy);
    return copy;
  }

  const kind = kindOf(value);
  let out: unknown;
  switch (kind) {
    case 'Date':
      out = new Date(getTime.call(value));
      break;
    case 'RegExp':
      out = new RegExp(regexpSource.call(value) as string, regexpFlags.call(value) as string);
      break;
    case 'Map': {
      const map = new Map();
      memory.set(value, map);
      // Entries are listed before any is cloned, as the spec's copiedList does.
      for (const [k, v] of [...Map.prototype.entries.call(value)]) map.set(clone(k, memory), clone(v, memory));
      return map;
    }
    case 'Set': {
      const set = new Set();
      memory.set(value, set);
      for (const v of [...Set.prototype.values.call(value)]) set.add(clone(v, memory));
      return set;
    }
    case 'ArrayBuffer':
      return cloneBuffer(value as ArrayBuffer, memory);
    case 'SharedArrayBuffer':
      // Workers are never cross-origin isolated, so shared memory cannot be cloned (as in Chrome).
      throw cannotClone('SharedArrayBuffer');
    case 'DataView': {
      const view = value as DataView;
      out = new DataView(cloneBuffer(dataViewBuffer.call(view), memory), view.byteOffset, view.byteLength);
      break;
    }
    case 'TypedArray': {
      const view = value as Uint8Array;
      const buffer = cloneBuffer(typedArrayBuffer.call(view), memory);
      out = new (typedArrayConstructor(typedArrayName(view)!))(buffer, view.byteOffset, view.length);
      break;
    }
    case 'Boolean':
      out = Object(Boolean.prototype.valueOf.call(value));
      break;
    case 'Number':
      out = Object(Number.prototype.valueOf.call(value));
      break;
    case 'String':
      out = Object(String.prototype.valueOf.call(value));
      break;
    case 'BigInt':
      out = Object(BigInt.prototype.valueOf.call(value));
      break;
    case 'Error':
      return cloneError(value as Error, memory);
    case 'Object':
    case 'Arguments':
      break;
    default:
      // Anything else with internal state cannot be serialized: symbol wrappers, promises, weak
      // collections, iterators.
      throw cannotClone(describe(value));
  }
  if (out !== undefined) {
    memory.set(value, out);
    return out;
  }

  // Platform objects (Request, Headers, AbortSignal, ...) are not serializable, and neither is
  // a FinalizationRegistry (its toString tag is not a brand).
  if (platformInterfaceName(value) !== null || value instanceof FinalizationRegistry) throw cannotClone(describe(value));

  // An ordinary object: own enumerable string keys, prototype not preserved.
  const plain = {};
  memory.set(value, plain);
  copyProperties(value, plain, memory);
  return plain;
}

function transferList(options: Record<string, unknown>): ArrayBuffer[] {
  const transfer = options.transfer;
  if (transfer === undefined) return [];
  if (transfer === null || typeof transfer !== 'object' || typeof (transfer as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError("Failed to execute 'structuredClone': The provided value cannot be converted to a sequence.");
  }
  const list: ArrayBuffer[] = [];
  for (const item of transfer as Iterable<unknown>) {
    if (item === null || (typeof item !== 'object' && typeof item !== 'function')) {
      throw new TypeError("Failed to execute 'structuredClone': Value in the transfer list is not an object.");
    }
    // ArrayBuffer is the only transferable type here (no MessagePort, streams, ...).
    if (kindOf(item as object) !== 'ArrayBuffer') {
      throw new DOMException('Value not transferable', 'DataCloneError');
    }
    if (list.includes(item as ArrayBuffer)) {
      throw new DOMException('ArrayBuffer at index ' + list.indexOf(item as ArrayBuffer) + ' is a duplicate of an earlier ArrayBuffer.', 'DataCloneError');
    }
    if ((item as { detached?: boolean }).detached === true) {
      throw new DOMException('An ArrayBuffer is detached and could not be cloned.', 'DataCloneError');
    }
    list.push(item as ArrayBuffer);
  }
  return list;
}

export function structuredClone<T>(value: T, options: unknown = undefined): T {
  requireArgs(arguments.length, 1, "Failed to execute 'structuredClone'");
  const transfer = transferList(toDictionary(options, "Failed to execute 'structuredClone'"));
  const memory: Memory = new Map();
  // A getter run by a clone for the host may call structuredClone: that one copies as always.
  const outerSharing = sharingBuffers;
  sharingBuffers = false;
  let result: T;
  try {
    result = clone(value, memory) as T;
  } finally {
    sharingBuffers = outerSharing;
  }
  // Transferred buffers were copied like the rest; now detach the originals, which is what makes
  // transfer observable. V8 gained ArrayBuffer.prototype.transfer in 11.4: on older V8 (Node 20's
  // 11.3) an ArrayBuffer cannot be detached from JavaScript, so the originals stay usable there.
  const detach = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer, length?: number) => ArrayBuffer }).transfer;
  if (typeof detach === 'function') for (const buffer of transfer) detach.call(buffer, 0);
  return result;
}

/**
 * The copy of `value` that crosses to the host in its place (RPC arguments and results): a
 * DataCloneError naming what cannot be cloned, as structuredClone's, before anything crosses, and
 * what crosses is only what the clone made (no getter, Proxy or odd prototype left in it). Its
 * array buffers are the originals, not copies: the crossing copies them, and a second copy here
 * cost a 33 MB argument ~20 ms of the caller's CPU (bench/README.md, issue 22, round 6).
 */
export function structuredCloneForHost<T>(value: T): T {
  const outerSharing = sharingBuffers;
  sharingBuffers = true;
  try {
    return clone(value, new Map()) as T;
  } finally {
    sharingBuffers = outerSharing;
  }
}
