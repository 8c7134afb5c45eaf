// The guest's only door to the host. The host hands three functions in once, at boot, before any
// worker code exists; they are kept in this module's closure and never put on globalThis, so
// guest code cannot reach them (or the isolated-vm objects behind them).

/** An isolated-vm Reference to an async host function, as seen from inside the isolate. */
interface HostReference {
  apply(receiver: undefined, args: unknown[], options: object): Promise<unknown>;
  applySyncPromise(receiver: undefined, args: unknown[], options: object): unknown;
}

export interface HostBridge {
  /** async: (op, invocationId, args) -> Promise<result>; results are structured-cloned in */
  call: HostReference;
  /** sync: (op, args) -> result; for cheap host facts (random bytes, clocks) */
  callSync: (op: string, args: unknown[]) => unknown;
  /** fire and forget: (op, args) -> void; for logs and cancellations */
  send: (op: string, args: unknown[]) => void;
}

import { currentInvocation } from './invocation.js';
import { COPY_LIMIT_MESSAGE_PREFIX, COPY_LIMIT_PROPERTY, MIN_CALL_BYTES, PARCEL_KEY, SEND_OPS, SYNC_OPS, callBytesFor } from '../protocol/wall.js';
import { advanceClock } from './clock.js';
import { wallBytes } from './wall-bytes.js';

let bridge: HostBridge | null = null;

// isolated-vm copies an error the host threw as a plain Error that only carries the name (a
// TypeError arrives as an Error named 'TypeError'), so `e instanceof TypeError` would be false
// where Workers' is true (a refused fetch, a bad argument). The built-in classes are made again
// here, with the message, the stack as it crossed (the host's name and message only) and any
// other fields the host set.
const BUILT_IN_ERRORS: Record<string, new (message?: string) => Error> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

function asGuestError(error: unknown): unknown {
  if (!(error instanceof Error) || Object.getPrototypeOf(error) !== Error.prototype) return error;
  const Class = BUILT_IN_ERRORS[error.name];
  if (!Class) return error;
  const rebuilt = new Class(error.message);
  for (const key of Object.keys(error)) if (key !== 'name' && key !== 'message') (rebuilt as unknown as Record<string, unknown>)[key] = (error as unknown as Record<string, unknown>)[key];
  if (typeof error.stack === 'string') Object.defineProperty(rebuilt, 'stack', { value: error.stack, writable: true, configurable: true });
  return rebuilt;
}

const CALL_OPTIONS = Object.freeze({
  arguments: Object.freeze({ copy: true }),
  result: Object.freeze({ copy: true, promise: true }),
});

/** What one op's arguments may cost the host (protocol/wall.ts callBytesFor). Two walls hold it: the
 *  guest's count before the copy (wall-bytes.ts), which refuses early and cheaply and is what counts
 *  bytes in flight across calls; and the isolate's copyLimit inside isolated-vm's serializer (patch
 *  13, set by the host to the same bound), which refuses what the count was shown short of (a getter
 *  or Proxy trap that grows a value after it was counted) before the host allocates it. */
let callBytes = MIN_CALL_BYTES;
/** Bytes of async calls' arguments the host has not answered yet, and their bound (twice a call's):
 *  without it, a thousand unawaited calls with one string would each be a copy. */
let inFlight = 0;

export function installBridge(host: HostBridge, memoryMb = 128): void {
  if (bridge) throw new Error('cinder: bridge already installed');
  bridge = { call: host.call, callSync: host.callSync, send: host.send };
  callBytes = callBytesFor(memoryMb);
}

function tooLarge(op: string): RangeError {
  return new RangeError(`${op}: the arguments would be more than ${callBytes} bytes when copied to the host (a string or object counts each time it is referenced); that is the limit for one call`);
}

/** The bytes `args` would cost the host, or the RangeError that refuses them before the copy. */
function argumentBytes(op: string, args: unknown[]): number {
  const bytes = wallBytes(args, callBytes);
  if (bytes < 0) throw tooLarge(op);
  return bytes;
}

const RangeErrorPrototype = RangeError.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;

/** An error raised while this call's arguments were copied, in this isolate (thrown by a synchronous
 *  call, the rejection of an async one): the copy's own refusal at the copyLimit (isolated-vm patch
 *  13) becomes the same error as the count's. Only that refusal has the own `copyLimit` number: a
 *  refusal relayed by the host (another isolate's answer that did not fit, say) keeps its message
 *  and name but not the property, and is left as it is. */
function isCopyRefusal(error: unknown): boolean {
  if (getPrototypeOf(error) !== RangeErrorPrototype) return false;
  const mark = getOwnPropertyDescriptor(error, COPY_LIMIT_PROPERTY);
  return mark !== undefined && typeof mark.value === 'number' && (error as RangeError).message.startsWith(COPY_LIMIT_MESSAGE_PREFIX);
}

function copyError(op: string, error: unknown): unknown {
  return isCopyRefusal(error) ? tooLarge(op) : asGuestError(error);
}

function ready(): HostBridge {
  if (!bridge) throw new Error('cinder: host bridge not installed');
  return bridge;
}

// Every call names the invocation it is made for, so the host can count subrequests, meter and
// refuse calls from an invocation that already ended.
// Its answer is I/O: the guest's clock moves before the code awaiting it goes on (clock.ts).
// Its arguments are counted before they are copied (argumentBytes), and stay counted until the
// host answers.
export function hostCall<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
  const invocationId = currentInvocation();
  let bytes: number;
  try {
    bytes = argumentBytes(op, args);
  } catch (error) {
    return Promise.reject(error);
  }
  return countedCall<T>(op, invocationId, args, bytes);
}

/** The bytes `value` would cost when copied across, counted as the wall counts arguments (the
 *  serializer's way, every reference): -1 past one call's bound (overCallBytes says it). */
export function crossingBytes(value: unknown): number {
  return wallBytes(value, callBytes);
}

/** The error for arguments of `op` counted past one call's bound (crossingBytes answered -1). */
export function overCallBytes(op: string): RangeError {
  return tooLarge(op);
}

/** hostCall for arguments the caller counted already (crossingBytes, `bytes` >= 0), to hold them
 *  to a bound of its own below one call's as well (a service binding's RPC: Cloudflare's 32 MiB),
 *  with one walk. */
export function hostCallCounted<T = unknown>(op: string, bytes: number, ...args: unknown[]): Promise<T> {
  return countedCall<T>(op, currentInvocation(), args, bytes);
}

function countedCall<T>(op: string, invocationId: number, args: unknown[], bytes: number): Promise<T> {
  try {
    if (inFlight + bytes > 2 * callBytes) {
      throw new RangeError(`${op}: ${inFlight} bytes of arguments of earlier calls are still on their way to the host, and this call's ${bytes} would take them past the limit of ${2 * callBytes} bytes; await earlier calls first`);
    }
  } catch (error) {
    return Promise.reject(error);
  }
  let call: Promise<unknown>;
  try {
    call = ready().call.apply(undefined, [op, invocationId, args], CALL_OPTIONS);
  } catch (error) {
    throw asGuestError(error);
  }
  inFlight += bytes;
  return answerOf(call, op, invocationId, bytes) as Promise<T>;
}

// An async answer that carries bytes arrives as a parcel (see src/runtime/host-bridge.ts):
// isolated-vm copies an async answer into the isolate where an allocation failure ends the
// process, while a synchronous one fails as a RangeError here. So the bytes are taken synchronously.
async function answerOf(call: Promise<unknown>, op: string, invocationId: number, bytes: number): Promise<unknown> {
  let answer: unknown;
  try {
    answer = await call;
  } catch (error) {
    // (isolated-vm rejects the call when its arguments' copy fails)
    throw copyError(op, error);
  } finally {
    inFlight -= bytes;
    advanceClock();
  }
  if (typeof answer !== 'object' || answer === null || typeof (answer as Record<string, unknown>)[PARCEL_KEY] !== 'number') return answer;
  try {
    return ready().callSync(SYNC_OPS.parcel, [(answer as Record<string, number>)[PARCEL_KEY]]);
  } catch (error) {
    // The isolate cannot hold the answer: the host ends the invocation at the memory limit (a
    // guest catching this error must not turn it into a success).
    ready().send(SEND_OPS.outOfMemory, [invocationId]);
    throw error;
  }
}

const BLOCKING_OPTIONS = Object.freeze({ arguments: Object.freeze({ copy: true }) });

/**
 * An async host op the guest waits for synchronously, for APIs that are synchronous on Workers
 * but whose work must not run on the serving thread (Durable Object SQL): this isolate's thread
 * blocks until the host's promise settles, while the host's own thread goes on serving.
 */
export function hostCallBlocking<T = unknown>(op: string, ...args: unknown[]): T {
  const invocationId = currentInvocation();
  // The clock stands still: this is synchronous code to the guest, as on Workers.
  // (the host copies the answer in itself: applySyncPromise takes no result options)
  argumentBytes(op, args);
  try {
    return ready().call.applySyncPromise(undefined, [op, invocationId, args, true], BLOCKING_OPTIONS) as T;
  } catch (error) {
    throw copyError(op, error);
  }
}

export function hostCallSync<T = unknown>(op: string, ...args: unknown[]): T {
  argumentBytes(op, args);
  try {
    return ready().callSync(op, args) as T;
  } catch (error) {
    throw copyError(op, error);
  }
}

let sends = 0;

export function hostSend(op: string, ...args: unknown[]): void {
  argumentBytes(op, args);
  sends++;
  try {
    ready().send(op, args);
  } catch (error) {
    throw copyError(op, error);
  }
}

/** How many fire-and-forget messages have been sent so far (see dispatch's flush). */
export function sentCount(): number {
  return sends;
}
