// The host's entry to Queues: the message store, producer ops and consumers.
export { QueueStore, type QueueBackend, type QueueRef, type StoredMessage } from './store.js';
export { installQueueProducers } from './host.js';
export { QueueConsumers, checkConsumer, type ConsumerConfig, type DispatchBatch, type QueueStats, type QueueConsumersOptions } from './consumers.js';
export { queueNameError, queueConsumerError, consumerConfig } from './names.js';
export { RedisQueueBackend } from './redis.js';
