// The host's entry to R2: the store (blobs and metadata under <data>/r2) and the op handlers.
export { R2Store, R2Error, bucketNameError, type R2StoreOptions, type BucketRef } from './store.js';
export { installR2, type R2HostOptions } from './host.js';
