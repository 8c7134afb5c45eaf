// The host half of a Queues producer binding: the queue.send op behind guest.ts. The queue comes
// only from the calling worker's own binding config (its queue name and the account the control
// plane resolved). Bodies are encoded and size-checked here; the send is answered once the
// messages are committed.
import { OpAllowance, type OpCall, type OpHandler } from '../../src/runtime/contract.js';
import { QUEUE_OPS } from '../../protocol/wall.js';
import { DEFAULT_ACCOUNT } from '../../src/model/accounts.js';
import { QUEUE_LIMITS, type QueueContentType } from './protocol.js';
import type { QueueBackend, QueueRef } from './store.js';
import { encodeBody } from './codec.js';

interface OpRegistry {
  registerOp(op: string, handler: OpHandler): void;
}

const CONTENT_TYPES = new Set(['json', 'text', 'bytes', 'v8']);

function queueFor(call: OpCall, binding: unknown): QueueRef {
  if (typeof binding !== 'string') throw new TypeError('Invalid queue binding');
  const config = call.binding(binding);
  if (!config || config.type !== 'queue' || typeof config.queue_name !== 'string') throw new TypeError(`env.${binding} is not a queue bound to this worker`);
  return { account: config.account ?? DEFAULT_ACCOUNT, queue: config.queue_name };
}

/** Register queue.send on a runtime; `onSend` hears of every committed send (consumers wake). */
export function installQueueProducers(registry: OpRegistry, store: QueueBackend, onSend: (ref: QueueRef) => void = () => {}): void {
  const allowance = new OpAllowance(QUEUE_LIMITS.maxSendsPerInvocation);
  registry.registerOp(QUEUE_OPS.send, async (call, [binding, raw]) => {
    const ref = queueFor(call, binding);
    if (!Array.isArray(raw) || raw.length === 0) throw new TypeError('sendBatch() needs at least one message');
    if (raw.length > QUEUE_LIMITS.maxBatchMessages) throw new Error(`Queue sendBatch failed: batch has ${raw.length} messages, more than ${QUEUE_LIMITS.maxBatchMessages}`);
    allowance.take(call);
    let bytes = 0;
    const messages = raw.map((item) => {
      const { body, contentType, delaySeconds } = (item ?? {}) as { body?: unknown; contentType?: unknown; delaySeconds?: unknown };
      if (typeof contentType !== 'string' || !CONTENT_TYPES.has(contentType)) throw new TypeError('contentType must be "json", "text", "bytes" or "v8"');
      const delay = delaySeconds === undefined ? 0 : Number(delaySeconds);
      if (!Number.isFinite(delay) || delay < 0 || delay > QUEUE_LIMITS.maxDelaySeconds) throw new RangeError(`delaySeconds must be from 0 to ${QUEUE_LIMITS.maxDelaySeconds}`);
      const encoded = encodeBody(body, contentType as QueueContentType);
      if (encoded.length > QUEUE_LIMITS.maxMessageBytes) throw new Error(`Queue send failed: message length of ${encoded.length} bytes exceeds limit of ${QUEUE_LIMITS.maxMessageBytes}`);
      bytes += encoded.length;
      return { body: encoded, contentType: contentType as QueueContentType, delayMs: delay * 1000 };
    });
    if (bytes > QUEUE_LIMITS.maxBatchBytes) throw new Error(`Queue sendBatch failed: total size of ${bytes} bytes exceeds limit of ${QUEUE_LIMITS.maxBatchBytes}`);
    await store.send(ref, messages);
    onSend(ref);
  });
}
