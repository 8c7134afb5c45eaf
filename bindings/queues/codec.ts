// A message body between the producer's send() and the consumer's batch: stored as bytes with its
// content type, decoded back into the value the consumer sees (v8: structured clone, as Workers).
import { deserialize, serialize } from 'node:v8';
import type { QueueContentType } from './protocol.js';

export function encodeBody(body: unknown, contentType: QueueContentType): Buffer {
  switch (contentType) {
    case 'json':
    case 'text':
      if (typeof body !== 'string') throw new TypeError(`a "${contentType}" message body crosses as text`);
      return Buffer.from(body, 'utf8');
    case 'bytes':
      if (!(body instanceof ArrayBuffer)) throw new TypeError('a "bytes" message body must be an ArrayBuffer or a view of one');
      return Buffer.from(body);
    case 'v8':
      return serialize(body);
  }
}

export function decodeBody(bytes: Buffer, contentType: QueueContentType): unknown {
  switch (contentType) {
    case 'json':
      return JSON.parse(bytes.toString('utf8'));
    case 'text':
      return bytes.toString('utf8');
    case 'bytes':
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    case 'v8':
      return deserialize(bytes);
  }
}
