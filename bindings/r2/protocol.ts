// What crosses the isolate wall for R2, shared by the guest half (guest.ts) and the host half
// (host.ts); the op names are R2_OPS in protocol/wall.ts. Pure data and constants only.

export const R2_LIMITS = {
  /** bytes in one key */
  maxKeyBytes: 1024,
  /** bytes of custom metadata (names and values) */
  maxCustomMetadataBytes: 2048,
  /** objects one list() answers at most (and by default) */
  maxListLimit: 1000,
  /** keys one delete([...]) takes */
  maxDeleteKeys: 1000,
  /** parts of one multipart upload */
  maxParts: 10_000,
  /** a part other than the last must be at least this large */
  minPartBytes: 5 * 1024 * 1024,
  /** R2 operations one invocation may make */
  maxOpsPerInvocation: 1000,
} as const;

export interface WireHttpMetadata {
  contentType?: string;
  contentLanguage?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  cacheControl?: string;
  /** ms since the epoch */
  cacheExpiry?: number;
}

/** Checksums as lower-case hex. */
export type WireChecksums = Partial<Record<'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512', string>>;

export interface WireR2Object {
  key: string;
  version: string;
  size: number;
  etag: string;
  /** ms since the epoch */
  uploaded: number;
  httpMetadata: WireHttpMetadata;
  customMetadata: Record<string, string>;
  checksums: WireChecksums;
  storageClass: string;
  /** the part of the object a ranged get answers */
  range?: { offset: number; length: number };
}

/** onlyIf, as plain data: etags without quotes ('*' matches any), times in ms. */
export interface WireConditional {
  etagMatches?: string[];
  etagDoesNotMatch?: string[];
  uploadedBefore?: number;
  uploadedAfter?: number;
  secondsGranularity?: boolean;
}

export type WireRange = { offset?: number; length?: number; suffix?: number };

export interface WireGetAnswer {
  object: WireR2Object;
  /** host stream id of the body; absent when a condition failed (R2 then answers the object alone) */
  body?: number;
}

export interface WirePutOptions {
  httpMetadata?: WireHttpMetadata;
  customMetadata?: Record<string, string>;
  onlyIf?: WireConditional;
  checksums?: WireChecksums;
  storageClass?: string;
}

/** The value of a put: bytes in hand, a guest stream by id, or a host stream passed on. */
export type WirePutBody = { bytes: ArrayBuffer } | { stream: number } | { hostStream: number } | { empty: true };

export interface WireListOptions {
  limit?: number;
  prefix?: string;
  cursor?: string;
  delimiter?: string;
  startAfter?: string;
  include?: ('httpMetadata' | 'customMetadata')[];
}

export interface WireListResult {
  objects: WireR2Object[];
  truncated: boolean;
  cursor?: string;
  delimitedPrefixes: string[];
}
