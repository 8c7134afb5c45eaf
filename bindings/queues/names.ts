// What names a queue and what a consumer entry may say, checked where configs come in (upload
// metadata, wrangler config) so a bad one is refused by name before anything is deployed.
import type { QueueConsumerSpec } from '../../src/model/worker-definition.js';

const QUEUE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;

export function queueNameError(name: unknown): string | null {
  if (typeof name === 'string' && QUEUE_NAME.test(name)) return null;
  return 'a queue name is 1-63 letters, digits, "-" and "_", starting with a letter or digit';
}

const BOUNDS: Record<string, [number, number]> = { max_batch_size: [1, 100], max_batch_timeout: [0, 60], max_retries: [0, 100], retry_delay: [0, 43_200] };
const KNOWN = new Set(['queue', 'max_batch_size', 'max_batch_timeout', 'max_retries', 'dead_letter_queue', 'retry_delay', 'max_concurrency', 'type']);

/** Why a consumer entry is wrong ("field: reason"), or null. */
export function queueConsumerError(raw: Record<string, unknown>): string | null {
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) return `${key}: not a consumer setting Cinder knows (queue, max_batch_size, max_batch_timeout, max_retries, dead_letter_queue, retry_delay)`;
  const queueError = queueNameError(raw.queue);
  if (queueError) return `queue: ${queueError}`;
  for (const [key, [min, max]] of Object.entries(BOUNDS)) {
    const value = raw[key];
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)) return `${key}: must be an integer from ${min} to ${max}`;
  }
  if (raw.dead_letter_queue !== undefined) {
    const dlqError = queueNameError(raw.dead_letter_queue);
    if (dlqError) return `dead_letter_queue: ${dlqError}`;
    if (raw.dead_letter_queue === raw.queue) return 'dead_letter_queue: cannot be the queue itself';
  }
  // Accepted as Cloudflare's: one batch at a time here (max_concurrency 1); "worker" is the only type.
  if (raw.type !== undefined && raw.type !== 'worker') return 'type: only "worker" consumers exist here';
  return null;
}

/** A stored spec in the consumers' own terms. */
export function consumerConfig(spec: QueueConsumerSpec): { queue: string; maxBatchSize?: number; maxBatchTimeout?: number; maxRetries?: number; deadLetterQueue?: string; retryDelay?: number } {
  return { queue: spec.queue, maxBatchSize: spec.max_batch_size, maxBatchTimeout: spec.max_batch_timeout, maxRetries: spec.max_retries, deadLetterQueue: spec.dead_letter_queue, retryDelay: spec.retry_delay };
}
