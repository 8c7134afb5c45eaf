// What crosses the isolate wall for a Queues producer binding (env.QUEUE.send/sendBatch), shared
// by guest.ts and host.ts; the op is QUEUE_OPS.send in protocol/wall.ts. Consumers receive
// messages through the dispatchQueue entry (protocol/wall.ts WireQueueMessage).

export const QUEUE_LIMITS = {
  /** bytes in one message, encoded */
  maxMessageBytes: 128 * 1024,
  /** messages in one sendBatch */
  maxBatchMessages: 100,
  /** bytes in one sendBatch, encoded */
  maxBatchBytes: 256 * 1024,
  /** longest delivery delay, seconds (12 h) */
  maxDelaySeconds: 43_200,
  /** send calls one invocation may make */
  maxSendsPerInvocation: 1000,
} as const;

export type QueueContentType = 'json' | 'text' | 'bytes' | 'v8';

/** One message as the producer sends it: json as its JSON text, text as a string, bytes as an
 *  ArrayBuffer, v8 as the value itself (copied across by structured clone). */
export interface WireQueueSend {
  body: unknown;
  contentType: QueueContentType;
  delaySeconds?: number;
}
