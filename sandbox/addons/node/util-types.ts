// node:util/types: brand checks that do not trust Symbol.toStringTag (a getter or internal slot
// of the real class answers, as V8's own checks do in Node).
import { CryptoKey } from './web.js';
const toString = Object.prototype.toString;
const call = (fn: ((this: unknown) => unknown) | undefined, value: unknown): boolean => {
  if (!fn || typeof value !== 'object' || value === null) return false;
  try {
    fn.call(value);
    return true;
  } catch {
    return false;
  }
};
const getter = (proto: object, name: string | symbol) => Object.getOwnPropertyDescriptor(proto, name)?.get as ((this: unknown) => unknown) | undefined;
const TypedArray = Object.getPrototypeOf(Uint8Array);
const typedArrayTag = getter(TypedArray.prototype, Symbol.toStringTag)!;
const byteLength = getter(ArrayBuffer.prototype, 'byteLength');
const sharedByteLength = typeof SharedArrayBuffer === 'function' ? getter(SharedArrayBuffer.prototype, 'byteLength') : undefined;
const dataViewByteLength = getter(DataView.prototype, 'byteLength');
const mapSize = getter(Map.prototype, 'size');
const setSize = getter(Set.prototype, 'size');
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor;
const mapIteratorProto = Object.getPrototypeOf(new Map()[Symbol.iterator]());
const setIteratorProto = Object.getPrototypeOf(new Set()[Symbol.iterator]());
const generatorProto = Object.getPrototypeOf(Object.getPrototypeOf((function* () {})()));
const asyncGeneratorProto = Object.getPrototypeOf(Object.getPrototypeOf((async function* () {})()));

const taggedArray = (name: string) => (value: unknown): boolean => typedArrayTag.call(value) === name;

export const isArrayBuffer = (value: unknown): boolean => call(byteLength, value);
export const isSharedArrayBuffer = (value: unknown): boolean => call(sharedByteLength, value);
export const isAnyArrayBuffer = (value: unknown): boolean => isArrayBuffer(value) || isSharedArrayBuffer(value);
export const isArrayBufferView = (value: unknown): boolean => ArrayBuffer.isView(value);
export const isTypedArray = (value: unknown): boolean => typedArrayTag.call(value) !== undefined;
export const isDataView = (value: unknown): boolean => call(dataViewByteLength, value);
export const isUint8Array = taggedArray('Uint8Array');
export const isUint8ClampedArray = taggedArray('Uint8ClampedArray');
export const isUint16Array = taggedArray('Uint16Array');
export const isUint32Array = taggedArray('Uint32Array');
export const isInt8Array = taggedArray('Int8Array');
export const isInt16Array = taggedArray('Int16Array');
export const isInt32Array = taggedArray('Int32Array');
export const isFloat32Array = taggedArray('Float32Array');
export const isFloat64Array = taggedArray('Float64Array');
export const isBigInt64Array = taggedArray('BigInt64Array');
export const isBigUint64Array = taggedArray('BigUint64Array');
export const isMap = (value: unknown): boolean => call(mapSize, value);
export const isSet = (value: unknown): boolean => call(setSize, value);
export const isWeakMap = (value: unknown): boolean => call(WeakMap.prototype.has as never, value);
export const isWeakSet = (value: unknown): boolean => call(WeakSet.prototype.has as never, value);
export const isDate = (value: unknown): boolean => call(Date.prototype.getTime as never, value);
const regExpSource = getter(RegExp.prototype, 'source');
export const isRegExp = (value: unknown): boolean => value !== RegExp.prototype && call(regExpSource, value);
// No side-effect-free brand check exists for promises (then() would make a new one, unhandled if
// this one rejects): same realm, so instanceof is exact enough.
export const isPromise = (value: unknown): boolean => value instanceof Promise;
export const isNativeError = (value: unknown): boolean => typeof value === 'object' && value !== null && toString.call(value) === '[object Error]' && !(Symbol.toStringTag in value);
export const isNumberObject = (value: unknown): boolean => call(Number.prototype.valueOf as never, value);
export const isStringObject = (value: unknown): boolean => call(String.prototype.valueOf as never, value);
export const isBooleanObject = (value: unknown): boolean => call(Boolean.prototype.valueOf as never, value);
export const isBigIntObject = (value: unknown): boolean => call(BigInt.prototype.valueOf as never, value);
export const isSymbolObject = (value: unknown): boolean => call(Symbol.prototype.valueOf as never, value);
export const isBoxedPrimitive = (value: unknown): boolean =>
  isNumberObject(value) || isStringObject(value) || isBooleanObject(value) || isBigIntObject(value) || isSymbolObject(value);
export const isAsyncFunction = (value: unknown): boolean => value instanceof AsyncFunction || value instanceof AsyncGeneratorFunction;
export const isGeneratorFunction = (value: unknown): boolean => value instanceof GeneratorFunction || value instanceof AsyncGeneratorFunction;
export const isGeneratorObject = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && (generatorProto.isPrototypeOf(value) || asyncGeneratorProto.isPrototypeOf(value));
export const isMapIterator = (value: unknown): boolean => typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === mapIteratorProto;
export const isSetIterator = (value: unknown): boolean => typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === setIteratorProto;
export const isModuleNamespaceObject = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === null && (value as Record<symbol, unknown>)[Symbol.toStringTag] === 'Module' && !Object.isExtensible(value);
export const isArgumentsObject = (value: unknown): boolean => typeof value === 'object' && value !== null && toString.call(value) === '[object Arguments]';
export const isCryptoKey = (value: unknown): boolean => typeof CryptoKey === 'function' && value instanceof CryptoKey;
/** node:crypto's KeyObject prototype carries this brand (crypto-keys.ts; it is another add-on). */
export const isKeyObject = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[Symbol.for('cinder.node.keyObject')] === true;
/** Proxies and externals cannot be told apart from JavaScript; workerd reports them, V8 inside an isolate does not let us. */
export const isProxy = (_value: unknown): boolean => false;
export const isExternal = (_value: unknown): boolean => false;
