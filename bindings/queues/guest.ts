// The guest half of a Queues producer binding: env.NAME.send(body, {contentType, delaySeconds})
// and sendBatch([{body, contentType, delaySeconds}], {delaySeconds}), as Cloudflare documents
// them. The body is shaped for its content type here (JSON text, a string, bytes, or the value
// itself for "v8", copied across by structured clone); the host checks sizes and stores it.
import { hostCall } from '../../sandbox/bridge.js';
import { QUEUE_OPS } from '../../protocol/wall.js';
import type { QueueContentType, WireQueueSend } from './protocol.js';

const constructToken = Symbol('WorkerQueue');
const CONTENT_TYPES: readonly string[] = ['json', 'text', 'bytes', 'v8'];

function rethrow(error: unknown): never {
  const message = error && typeof (error as Error).message === 'string' ? (error as Error).message : String(error);
  const name = (error as Error)?.name;
  throw name === 'TypeError' ? new TypeError(message) : name === 'RangeError' ? new RangeError(message) : new Error(message);
}

function wireMessage(body: unknown, options: unknown, batchDelay?: unknown): WireQueueSend {
  const o = (options && typeof options === 'object' ? options : {}) as { contentType?: unknown; delaySeconds?: unknown };
  const contentType = (o.contentType === undefined ? 'v8' : String(o.contentType)) as QueueContentType;
  if (!CONTENT_TYPES.includes(contentType)) throw new TypeError(`Unknown content type "${contentType}"; use "json", "text", "bytes" or "v8"`);
  let wireBody: unknown = body;
  if (contentType === 'json') {
    wireBody = JSON.stringify(body);
    if (wireBody === undefined) throw new TypeError('The message body cannot be serialized as JSON');
  } else if (contentType === 'text') {
    if (typeof body !== 'string') throw new TypeError('A "text" message body must be a string');
  } else if (contentType === 'bytes') {
    if (body instanceof ArrayBuffer) wireBody = body.slice(0);
    else if (ArrayBuffer.isView(body)) wireBody = new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice().buffer;
    else throw new TypeError('A "bytes" message body must be an ArrayBuffer or ArrayBufferView');
  }
  const delay = o.delaySeconds ?? batchDelay;
  return delay === undefined ? { body: wireBody, contentType } : { body: wireBody, contentType, delaySeconds: Number(delay) };
}

export class WorkerQueue {
  readonly #binding: string;

  constructor(token: unknown, binding: string) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    this.#binding = binding;
  }

  async send(body: unknown, options?: unknown): Promise<void> {
    await hostCall(QUEUE_OPS.send, this.#binding, [wireMessage(body, options)]).catch(rethrow);
  }

  async sendBatch(messages: unknown, options?: unknown): Promise<void> {
    if (messages === null || typeof messages !== 'object' || typeof (messages as Iterable<unknown>)[Symbol.iterator] !== 'function') throw new TypeError('sendBatch() takes an iterable of messages');
    const batchDelay = options && typeof options === 'object' ? (options as { delaySeconds?: unknown }).delaySeconds : undefined;
    const wire = Array.from(messages as Iterable<unknown>, (m) => {
      if (!m || typeof m !== 'object') throw new TypeError('each message is { body, contentType?, delaySeconds? }');
      const { body, ...rest } = m as { body?: unknown };
      return wireMessage(body, rest, batchDelay);
    });
    await hostCall(QUEUE_OPS.send, this.#binding, wire).catch(rethrow);
  }

  get [Symbol.toStringTag](): string {
    return 'WorkerQueue';
  }
}

export function makeQueueBinding(name: string): WorkerQueue {
  return new WorkerQueue(constructToken, name);
}
