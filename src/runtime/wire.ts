// The plain-data shapes in which requests and responses cross the isolate wall (the guest's
// mirror is sandbox/wire.ts). Bodies cross whole when small or already complete, and as streams
// otherwise: the guest pulls request chunks with the `body.read` op, and the host pulls response
// chunks with the guest's `pullStream` entry.

/** A request as the host hands it to the runtime. */
export interface WireRequest {
  method: string;
  url: string;
  /** header pairs in arrival order; repeated names stay repeated */
  headers: [string, string][];
  /** the whole body when it is already in hand; null when none or when streamed */
  body: ArrayBuffer | null;
  /** the body as it arrives (large or chunked uploads); never crosses the wall itself */
  bodyStream?: AsyncIterable<Uint8Array>;
  cf?: Record<string, unknown>;
}

/** The request as the guest receives it: a stream becomes an id the guest reads by. */
export interface GuestWireRequest extends Omit<WireRequest, 'bodyStream'> {
  bodyStream?: number;
  /** `url` is already parsed and serialized (by Node's WHATWG URL parser, native and far cheaper
   *  than the sandbox's in a fresh isolate): the guest takes it as it is */
  urlSerialized?: boolean;
}

export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** strings cross as strings (the host encodes them natively); bytes as an ArrayBuffer */
  body: string | ArrayBuffer | null;
  /** set when the body is a guest ReadableStream: the host pulls it chunk by chunk */
  stream?: number;
  /** set when the body is a host stream the guest passed on untouched: piped host to host */
  hostStream?: number;
  /** the length of a streamed body that was bytes in hand (untrusted: checked before use) */
  bodyLength?: number;
}

export interface GuestException {
  name: string;
  message: string;
  stack: string;
}

/** What the guest's pullStream entry returns: a chunk, the end (null), or the stream's error. */
export type PulledChunk = ArrayBuffer | string | null | { error: GuestException };
