// What kind of built-in object a value is, decided by its internal slots as far as plain
// JavaScript can tell (there is no util.types in an isolate). The Object.prototype.toString tag
// is read first as a cheap hint; since Symbol.toStringTag can lie, each hint is then confirmed
// with a brand check: an intrinsic getter or method that throws for anything else.

export type Kind =
  | 'Array' | 'Function' | 'Date' | 'RegExp' | 'Map' | 'Set' | 'ArrayBuffer' | 'SharedArrayBuffer'
  | 'DataView' | 'TypedArray' | 'Boolean' | 'Number' | 'String' | 'BigInt' | 'Symbol' | 'Error'
  | 'Promise' | 'WeakMap' | 'WeakSet' | 'WeakRef' | 'Arguments' | 'MapIterator' | 'SetIterator' | 'Object';

const objectToString = Object.prototype.toString;
const getter = (proto: object, key: PropertyKey) => Object.getOwnPropertyDescriptor(proto, key)!.get as (this: unknown) => unknown;
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);

export const intrinsics = {
  getTime: Date.prototype.getTime,
  regexpSource: getter(RegExp.prototype, 'source'),
  regexpFlags: getter(RegExp.prototype, 'flags'),
  mapSize: getter(Map.prototype, 'size'),
  setSize: getter(Set.prototype, 'size'),
  bufferByteLength: getter(ArrayBuffer.prototype, 'byteLength'),
  sharedBufferByteLength: typeof SharedArrayBuffer === 'function' ? getter(SharedArrayBuffer.prototype, 'byteLength') : null,
  typedArrayName: getter(TypedArrayPrototype, Symbol.toStringTag) as (this: unknown) => string | undefined,
  typedArrayBuffer: getter(TypedArrayPrototype, 'buffer') as (this: unknown) => ArrayBuffer,
  dataViewBuffer: getter(DataView.prototype, 'buffer') as (this: unknown) => ArrayBuffer,
};

/** Runs a throwing brand check without letting it throw. */
export function passes(check: ((this: unknown) => unknown) | null, value: unknown): boolean {
  if (!check) return false;
  try {
    check.call(value);
    return true;
  } catch {
    return false;
  }
}

/** The tag Object.prototype.toString derives from internal slots, when no Symbol.toStringTag
 *  overrides it (then the object's own claim is all there is). */
function hasBuiltinTag(value: object): boolean {
  return typeof (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] !== 'string';
}

let mapIteratorProto: object | null = null;
let setIteratorProto: object | null = null;

export function typedArrayName(value: unknown): string | undefined {
  return intrinsics.typedArrayName.call(value);
}

export function kindOf(value: object): Kind {
  if (Array.isArray(value)) return 'Array';
  if (typeof value === 'function') return 'Function';
  if (typedArrayName(value) !== undefined) return 'TypedArray';
  const hint = (objectToString.call(value) as string).slice(8, -1);
  switch (hint) {
    case 'Object':
      break;
    case 'Date':
      if (passes(intrinsics.getTime, value)) return 'Date';
      break;
    case 'RegExp':
      if (value !== RegExp.prototype && passes(intrinsics.regexpSource, value)) return 'RegExp';
      break;
    case 'Map':
      if (passes(intrinsics.mapSize, value)) return 'Map';
      break;
    case 'Set':
      if (passes(intrinsics.setSize, value)) return 'Set';
      break;
    case 'ArrayBuffer':
      if (passes(intrinsics.bufferByteLength, value)) return 'ArrayBuffer';
      break;
    case 'SharedArrayBuffer':
      if (passes(intrinsics.sharedBufferByteLength, value)) return 'SharedArrayBuffer';
      break;
    case 'DataView':
      if (passes(intrinsics.dataViewBuffer, value)) return 'DataView';
      break;
    case 'Boolean':
      if (passes(Boolean.prototype.valueOf, value)) return 'Boolean';
      break;
    case 'Number':
      if (passes(Number.prototype.valueOf, value)) return 'Number';
      break;
    case 'String':
      if (passes(String.prototype.valueOf, value)) return 'String';
      break;
    case 'BigInt':
      if (passes(BigInt.prototype.valueOf, value)) return 'BigInt';
      break;
    case 'Symbol':
      if (passes(Symbol.prototype.valueOf, value)) return 'Symbol';
      break;
    case 'Error':
      if (hasBuiltinTag(value)) return 'Error';
      break;
    case 'Arguments':
      if (hasBuiltinTag(value)) return 'Arguments';
      break;
    case 'Promise':
      if (value instanceof Promise) return 'Promise';
      break;
    case 'WeakMap':
      if (value instanceof WeakMap) return 'WeakMap';
      break;
    case 'WeakSet':
      if (value instanceof WeakSet) return 'WeakSet';
      break;
    case 'WeakRef':
      if (value instanceof WeakRef) return 'WeakRef';
      break;
    case 'Map Iterator':
      mapIteratorProto ??= Object.getPrototypeOf(new Map().entries());
      if (Object.getPrototypeOf(value) === mapIteratorProto) return 'MapIterator';
      break;
    case 'Set Iterator':
      setIteratorProto ??= Object.getPrototypeOf(new Set().values());
      if (Object.getPrototypeOf(value) === setIteratorProto) return 'SetIterator';
      break;
  }
  // Error subclasses that define their own Symbol.toStringTag.
  if (value instanceof Error) return 'Error';
  return 'Object';
}
