// What an op's arguments would cost the host, counted in the guest before isolated-vm copies them.
// The copy uses V8's serializer, which writes a string in full at every reference: an array of
// one 1 MB string repeated 2,000 times is 2 GB on the host from 1 MB of guest heap. The walk
// counts as the serializer writes, and more strictly where a host op could walk the value again
// (JSON.stringify of metadata): strings at every reference, objects at every reference (a cycle's
// back-reference once, as the serializer writes it), array buffers and typed arrays by the bytes
// of their buffer. It stops as soon as the count passes the budget, so a hostile value costs the
// guest at most one budget's worth of walking, in its own CPU time.
//
// It reads the guest's values with functions captured when this module was evaluated (user code
// cannot replace them), and nothing on the warm path throws: a brand check that throws costs ~7 µs
// in V8, more than an op's whole crossing. Where a guest can still be counted short
// (docs/security.md, "What crosses the wall"):
// - a getter or Proxy trap that runs during the walk and grows the value afterwards (a getter left
//   in the value makes an async or blocking call's copy fail, JavaScript being disallowed there; a
//   synchronous call or send copies with getters run, and a Proxy is never copied);
// - a Map or Set given a prototype chain without Map.prototype/Set.prototype is walked as an
//   empty object (the serializer still writes its entries); an ArrayBuffer given another prototype
//   is not counted, but is written once, as the guest holds it.
// None of these reaches the host: the copy itself stops at the same bound (the isolate's
// copyLimit, isolated-vm patch 13) and the bridge answers with this walk's error. The walk stays:
// it refuses before any copy is made, at no cost to the host, and it is what counts the bytes of
// calls still in flight, which no single copy sees.
import { intrinsics } from './api/brand.js';

const { bufferByteLength, typedArrayBuffer, dataViewBuffer, typedArrayName } = intrinsics;
const isArray = Array.isArray;
const isView = ArrayBuffer.isView;
const keysOf = Object.keys;
const getPrototypeOf = Object.getPrototypeOf;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const isPrototypeOf = Object.prototype.isPrototypeOf;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const isError = (Error as { isError?: (value: unknown) => boolean }).isError;
const ObjectPrototype = Object.prototype;
const ArrayBufferPrototype = ArrayBuffer.prototype;
const MapPrototype = Map.prototype;
const SetPrototype = Set.prototype;
const ErrorPrototype = Error.prototype;

/** What each value costs besides its contents (the serializer's tag and lengths, a host handle). */
const VALUE_BYTES = 8;
const OBJECT_BYTES = 16;

/** Thrown inside the walk when the budget is spent; never escapes this module. */
const OVER: unique symbol = Symbol('over');

let left = 0;
/** Objects on the path being walked; one set, reused by every walk that is not nested in another. */
const sharedAncestors = new Set<object>();
let ancestors = sharedAncestors;
let walking = false;

function spend(bytes: number): void {
  if ((left -= bytes) < 0) throw OVER;
}

/** Walks a Map's or Set's entries; false when it is not one after all (only its chain says so). */
function walkEntries(value: object, forEach: typeof mapForEach | typeof setForEach): boolean {
  try {
    (forEach as (this: object, fn: (v: unknown, k: unknown) => void) => void).call(value, (entryValue, key) => {
      walk(key);
      walk(entryValue);
    });
    return true;
  } catch (error) {
    if (error === OVER) throw error;
    return false;
  }
}

function byteLengthOf(value: object): number {
  try {
    return bufferByteLength.call(value) as number;
  } catch {
    return -1;
  }
}

function walkObject(value: object): void {
  if (isArray(value)) {
    const length = (value as unknown[]).length;
    spend(OBJECT_BYTES + length);
    for (let i = 0; i < length; i++) walk((value as unknown[])[i]);
    // Named properties of an array are written too (they come after its indices).
    const keys = keysOf(value);
    for (let i = length; i < keys.length; i++) walkProperty(value, keys[i]);
    return;
  }
  if (isView(value)) {
    const buffer = typedArrayName.call(value) !== undefined ? typedArrayBuffer.call(value) : dataViewBuffer.call(value);
    spend(OBJECT_BYTES + (bufferByteLength.call(buffer) as number));
    return;
  }
  spend(OBJECT_BYTES);
  const proto = getPrototypeOf(value);
  if (proto === ArrayBufferPrototype) {
    const length = byteLengthOf(value);
    if (length >= 0) return spend(length);
  }
  if (proto !== null && proto !== ObjectPrototype) {
    if ((proto === MapPrototype || isPrototypeOf.call(MapPrototype, value)) && walkEntries(value, mapForEach)) return;
    if ((proto === SetPrototype || isPrototypeOf.call(SetPrototype, value)) && walkEntries(value, setForEach)) return;
  }
  // An error's message is an own, non-enumerable property, written with its stack (which repeats it).
  if (isError ? isError(value) : isPrototypeOf.call(ErrorPrototype, value)) {
    const message = getOwnPropertyDescriptor(value, 'message');
    if (message && typeof message.value === 'string') spend(message.value.length * 2);
  }
  // A String object is written as its string; its own fixed length is what tells.
  const length = getOwnPropertyDescriptor(value, 'length');
  if (length && !length.enumerable && !length.writable && typeof length.value === 'number') spend(length.value);
  const keys = keysOf(value);
  for (let i = 0; i < keys.length; i++) walkProperty(value, keys[i]);
}

function walkProperty(value: object, key: string): void {
  spend(key.length + VALUE_BYTES);
  walk((value as Record<string, unknown>)[key]);
}

function walk(value: unknown): void {
  switch (typeof value) {
    case 'string':
      spend(value.length + VALUE_BYTES);
      return;
    case 'object':
      if (value === null) break;
      // A cycle is a back-reference in the copy. A value reached again by another path is counted
      // again: a host op that walks it (JSON.stringify of metadata) would meet it again.
      if (ancestors.has(value)) break;
      ancestors.add(value);
      walkObject(value);
      ancestors.delete(value);
      return;
    case 'bigint':
      spend(VALUE_BYTES + (value.toString(16).length >> 1));
      return;
  }
  // numbers, booleans, undefined; functions and symbols, which the copy refuses
  spend(VALUE_BYTES);
}

/**
 * The bytes `value` would cost the host, if at most `budget`; -1 as soon as it is over. Strings
 * count their length (a UTF-16 string writes twice that, which the budget leaves room for).
 */
export function wallBytes(value: unknown, budget: number): number {
  // A getter met on the way may call an op itself: its walk must not spend this one's budget.
  const outerLeft = left;
  const outerAncestors = ancestors;
  const outerWalking = walking;
  left = budget;
  ancestors = walking ? new Set() : sharedAncestors;
  walking = true;
  try {
    walk(value);
    return budget - left;
  } catch (error) {
    if (error === OVER) return -1;
    throw error;
  } finally {
    if (ancestors.size > 0) ancestors.clear();
    left = outerLeft;
    ancestors = outerAncestors;
    walking = outerWalking;
  }
}
