// What every part of node:crypto (crypto.ts, crypto-keys.ts, crypto-dh.ts) takes and answers:
// inputs as bytes, Buffers out, Node's coded errors, and callbacks called on a later microtask.
import { Buffer } from './buffer.js';
import { queueMicrotask } from './web.js';
import { secretKeyBytes } from './crypto-key-bridge.js';

export type BufferLike = Uint8Array & { toString(encoding?: string): string };
export type Input = string | ArrayBuffer | ArrayBufferView;
export type Callback<T> = (error: Error | null, value?: T) => void;

export function codedError<T extends Error>(error: T, code: string): T {
  (error as T & { code: string }).code = code;
  return error;
}

export function argTypeError(name: string, expected: string): TypeError {
  return codedError(new TypeError(`The "${name}" argument must be ${expected}`), 'ERR_INVALID_ARG_TYPE');
}

/** Bytes of a string (in `encoding`, UTF-8 by default) or a BufferSource; where a key goes, also
 *  of a secret KeyObject, as in Node (jsonwebtoken hands createHmac one). */
export function toBytes(value: unknown, encoding: string | undefined, name: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, encoding ?? 'utf8') as Uint8Array;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const secret = name === 'key' || name === 'ikm' || name === 'password' ? secretKeyBytes(value) : undefined;
  if (secret) return secret;
  throw argTypeError(name, 'of type string or an instance of Buffer, TypedArray, DataView or ArrayBuffer');
}

export function output(bytes: Uint8Array, encoding?: string): BufferLike | string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as BufferLike;
  return encoding === undefined || encoding === 'buffer' ? buffer : buffer.toString(encoding);
}

/** Run `work` now (its CPU is the caller's either way) and call back with its outcome on a later
 *  microtask; `spread` calls back with the elements of an array result as separate arguments. */
export function later<T>(callback: unknown, work: () => T, spread = false): void {
  if (typeof callback !== 'function') throw argTypeError('callback', 'of type function');
  let result: T;
  try {
    result = work();
  } catch (error) {
    queueMicrotask(() => (callback as Callback<T>)(error as Error));
    return;
  }
  queueMicrotask(() => (spread ? (callback as (...args: unknown[]) => void)(null, ...(result as unknown[])) : (callback as Callback<T>)(null, result)));
}
