// Durable Object ids: 32 bytes as 64 hex digits, like Cloudflare's. The first 16 bytes name the
// object (derived from the name for idFromName, random for newUniqueId); the last 16 are a MAC of
// them under the namespace's key, so idFromString accepts only ids this namespace made: an id
// from another namespace (another class, script or account) is refused, whatever a guest sends.
// The namespace key derives from a secret kept in the data directory, so ids stay valid across
// restarts.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DO_LIMITS } from './protocol.js';
import { StorageError } from './errors.js';

export class IdFactory {
  private readonly key: Buffer;

  /** `secret`: this data directory's id secret; `namespace`: the namespace's storage identity. */
  constructor(secret: Buffer, namespace: string) {
    this.key = createHmac('sha256', secret).update(`durable-object-namespace\0${namespace}`).digest();
  }

  fromName(name: unknown): string {
    if (typeof name !== 'string') throw new StorageError('idFromName() needs a string', 'TypeError');
    if (Buffer.byteLength(name) > DO_LIMITS.maxNameBytes) throw new StorageError(`idFromName(): the name is longer than ${DO_LIMITS.maxNameBytes} bytes`, 'RangeError');
    const head = createHmac('sha256', this.key).update(`name\0${name}`).digest().subarray(0, 16);
    return this.sealed(head);
  }

  unique(): string {
    return this.sealed(randomBytes(16));
  }

  /** The id, checked: 64 hex digits, made by this namespace. */
  fromString(text: unknown): string {
    if (typeof text !== 'string' || !/^[0-9a-fA-F]{64}$/.test(text)) throw new StorageError('Invalid Durable Object ID: must be 64 hex digits', 'TypeError');
    const bytes = Buffer.from(text.toLowerCase(), 'hex');
    const expected = this.mac(bytes.subarray(0, 16));
    if (!timingSafeEqual(expected, bytes.subarray(16))) throw new StorageError('Durable Object ID is not valid for this namespace.', 'TypeError');
    return text.toLowerCase();
  }

  private sealed(head: Buffer): string {
    return Buffer.concat([head, this.mac(head)]).toString('hex');
  }

  private mac(head: Buffer): Buffer {
    return createHmac('sha256', this.key).update('id\0').update(head).digest().subarray(0, 16);
  }
}
