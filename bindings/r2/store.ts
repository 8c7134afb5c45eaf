// R2 storage on the filesystem: object bytes as content-addressed blobs (<root>/blobs/ab/<sha256>)
// and everything else (keys, metadata, multipart uploads, bucket usage, blob reference counts)
// in one SQLite file. A put streams its body into a temp file while hashing it, fsyncs it, renames
// it into place and fsyncs the directory, and only then commits the metadata (synchronous=FULL):
// an answered put survives kill -9 and power loss, and a crash before the commit leaves at most an
// unreferenced blob (removed at the next start). Objects made by multipart uploads point at their
// parts' blobs in order: completing an upload copies nothing. Buckets belong to accounts: every
// row is keyed by (account, bucket), so one tenant's bucket name reaches nothing of another's.
import type Database from 'better-sqlite3';
import { createHash, randomBytes, randomUUID, type Hash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/open-sqlite.js';
import { R2_LIMITS, type WireChecksums, type WireConditional, type WireHttpMetadata, type WireListOptions, type WireListResult, type WireR2Object, type WireRange } from './protocol.js';

export class R2Error extends Error {
  constructor(
    readonly operation: string,
    message: string,
    readonly code: number,
  ) {
    super(`${operation}: ${message} (${code})`);
    this.name = 'R2Error';
  }
}

export interface R2StoreOptions {
  /** directory for the blobs and the metadata file */
  root: string;
  /** bytes one bucket may hold, objects and pending upload parts together (default 10 GiB) */
  maxBucketBytes?: number;
  /** bytes in one object put at once (R2: 5 GiB - 5 MiB) */
  maxPutBytes?: number;
}

export interface BucketRef {
  account: string;
  bucket: string;
}

interface ObjectRow {
  key: string;
  version: string;
  size: number;
  etag: string;
  uploaded: number;
  http: string;
  custom: string;
  checksums: string;
  storage_class: string;
  blobs: string;
}

/** A stored blob, as written: its sha256 (its name), size and digests. */
interface WrittenBlob {
  sha256: string;
  size: number;
  digests: WireChecksums;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Why `name` cannot name an R2 bucket, or null (R2's rule: 3-63 lowercase letters, digits, dashes). */
export function bucketNameError(name: unknown): string | null {
  if (typeof name === 'string' && BUCKET_NAME.test(name)) return null;
  return 'an R2 bucket name is 3-63 lowercase letters, digits and "-", starting and ending with a letter or digit';
}

function toObject(row: ObjectRow, range?: { offset: number; length: number }): WireR2Object {
  const object: WireR2Object = {
    key: row.key,
    version: row.version,
    size: row.size,
    etag: row.etag,
    uploaded: row.uploaded,
    httpMetadata: JSON.parse(row.http) as WireHttpMetadata,
    customMetadata: JSON.parse(row.custom) as Record<string, string>,
    checksums: JSON.parse(row.checksums) as WireChecksums,
    storageClass: row.storage_class,
  };
  if (range) object.range = range;
  return object;
}

function etagMatches(list: string[], etag: string): boolean {
  return list.some((candidate) => candidate === '*' || candidate === etag);
}

/** Whether R2's onlyIf holds for an object (or for none): If-Match before If-Unmodified-Since,
 *  If-None-Match before If-Modified-Since, as HTTP orders them. */
export function conditionHolds(condition: WireConditional | undefined, row: { etag: string; uploaded: number } | null): boolean {
  if (!condition) return true;
  const uploaded = row ? (condition.secondsGranularity ? Math.floor(row.uploaded / 1000) * 1000 : row.uploaded) : 0;
  if (condition.etagMatches?.length) {
    if (!row || !etagMatches(condition.etagMatches, row.etag)) return false;
  } else if (condition.uploadedBefore !== undefined && row && !(uploaded < condition.uploadedBefore)) {
    return false;
  }
  if (condition.etagDoesNotMatch?.length) {
    if (row && etagMatches(condition.etagDoesNotMatch, row.etag)) return false;
  } else if (condition.uploadedAfter !== undefined && row && !(uploaded > condition.uploadedAfter)) {
    return false;
  }
  return true;
}

export class R2Store {
  readonly #db: Database.Database;
  readonly #root: string;
  readonly #maxBucketBytes: number;
  readonly #maxPutBytes: number;

  constructor(options: R2StoreOptions) {
    this.#root = options.root;
    this.#maxBucketBytes = options.maxBucketBytes ?? 10 * 1024 ** 3;
    this.#maxPutBytes = options.maxPutBytes ?? 5 * 1024 ** 3 - 5 * 1024 ** 2;
    mkdirSync(join(this.#root, 'blobs'), { recursive: true });
    rmSync(join(this.#root, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(this.#root, 'tmp'), { recursive: true });
    this.#db = openSqlite(join(this.#root, 'r2.sqlite'), 'FULL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS objects (account TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL,
        size INTEGER NOT NULL, etag TEXT NOT NULL, uploaded INTEGER NOT NULL, http TEXT NOT NULL, custom TEXT NOT NULL,
        checksums TEXT NOT NULL, storage_class TEXT NOT NULL, blobs TEXT NOT NULL, PRIMARY KEY (account, bucket, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS blob_refs (sha256 TEXT PRIMARY KEY, refs INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS uploads (upload_id TEXT PRIMARY KEY, account TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
        http TEXT NOT NULL, custom TEXT NOT NULL, storage_class TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS parts (upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS bucket_usage (account TEXT NOT NULL, bucket TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (account, bucket)) WITHOUT ROWID;
    `);
    this.#sweepUnreferencedBlobs();
  }

  // --- reads -------------------------------------------------------------------------------------

  head(ref: BucketRef, key: string): WireR2Object | null {
    const row = this.#row(ref, key);
    return row ? toObject(row) : null;
  }

  /** The object and, when the condition holds, a reader of its bytes in `range`. */
  get(ref: BucketRef, key: string, options: { onlyIf?: WireConditional; range?: WireRange } = {}): { object: WireR2Object; body?: AsyncIterable<Uint8Array> } | null {
    const row = this.#row(ref, key);
    if (!row) return null;
    if (!conditionHolds(options.onlyIf, row)) return { object: toObject(row) };
    const range = options.range ? resolveRange(options.range, row.size) : undefined;
    const offset = range?.offset ?? 0;
    const length = range?.length ?? row.size;
    return { object: toObject(row, range), body: this.#reader(JSON.parse(row.blobs) as [string, number][], offset, length) };
  }

  list(ref: BucketRef, options: WireListOptions): WireListResult {
    const limit = Math.min(Math.max(1, options.limit ?? R2_LIMITS.maxListLimit), R2_LIMITS.maxListLimit);
    const prefix = options.prefix ?? '';
    let after = options.startAfter ?? '';
    if (options.cursor) after = decodeCursor(options.cursor);
    const include = new Set(options.include ?? []);
    const objects: WireR2Object[] = [];
    const delimited: string[] = [];
    const statement = this.#db.prepare('SELECT * FROM objects WHERE account = ? AND bucket = ? AND key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?');
    let last = after;
    let truncated = false;
    // Keys rolled up under a delimiter count once: page through rows until the page is full.
    outer: for (;;) {
      const rows = statement.all(ref.account, ref.bucket, last, prefix.length, prefix, limit + 1) as ObjectRow[];
      if (!rows.length) break;
      for (const row of rows) {
        if (objects.length + delimited.length >= limit) {
          truncated = true;
          break outer;
        }
        last = row.key;
        if (options.delimiter) {
          const at = row.key.indexOf(options.delimiter, prefix.length);
          if (at !== -1) {
            const rolled = row.key.slice(0, at + options.delimiter.length);
            if (delimited[delimited.length - 1] !== rolled) delimited.push(rolled);
            // skip every key under this prefix at once
            last = rolled + '\u{10FFFF}';
            continue outer;
          }
        }
        const object = toObject(row);
        if (!include.has('httpMetadata')) object.httpMetadata = {};
        if (!include.has('customMetadata')) object.customMetadata = {};
        objects.push(object);
      }
      if (rows.length <= limit) break;
    }
    const result: WireListResult = { objects, truncated, delimitedPrefixes: delimited };
    if (truncated) result.cursor = encodeCursor(last);
    return result;
  }

  // --- writes ------------------------------------------------------------------------------------

  /** Store a body under `key` if `onlyIf` holds (null when it does not). */
  async put(
    ref: BucketRef,
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options: { httpMetadata?: WireHttpMetadata; customMetadata?: Record<string, string>; onlyIf?: WireConditional; checksums?: WireChecksums; storageClass?: string } = {},
  ): Promise<WireR2Object | null> {
    if (options.onlyIf && !conditionHolds(options.onlyIf, this.#row(ref, key))) {
      // R2 reads the body anyway; nothing is stored.
      if (!(body instanceof Uint8Array)) for await (const _ of body) void _;
      return null;
    }
    const wanted = Object.keys(options.checksums ?? {}) as (keyof WireChecksums)[];
    const blob = await this.#writeBlob(ref, body, Math.min(this.#maxPutBytes, this.#room(ref)), wanted);
    for (const [algorithm, expected] of Object.entries(options.checksums ?? {})) {
      if (blob.digests[algorithm as keyof WireChecksums] !== expected) {
        this.#dropIfUnreferenced(blob.sha256);
        if (algorithm === 'md5') throw new R2Error('put', 'The Content-MD5 you specified did not match what we received.', 10037);
        throw new R2Error('put', `The ${algorithm.toUpperCase()} checksum you specified did not match what we received.`, 10037);
      }
    }
    const checksums: WireChecksums = { md5: blob.digests.md5 };
    for (const algorithm of wanted) checksums[algorithm] = blob.digests[algorithm];
    const row: ObjectRow = {
      key,
      version: randomBytes(16).toString('hex'),
      size: blob.size,
      etag: blob.digests.md5!,
      uploaded: Date.now(),
      http: JSON.stringify(options.httpMetadata ?? {}),
      custom: JSON.stringify(options.customMetadata ?? {}),
      checksums: JSON.stringify(checksums),
      storage_class: options.storageClass ?? 'Standard',
      blobs: JSON.stringify([[blob.sha256, blob.size]]),
    };
    try {
      this.#commitObject(ref, row, options.onlyIf, [blob.sha256]);
    } catch (error) {
      this.#dropIfUnreferenced(blob.sha256);
      throw error;
    }
    return toObject(row);
  }

  delete(ref: BucketRef, keys: string[]): void {
    const freed: string[] = [];
    this.#db.transaction(() => {
      for (const key of keys) {
        const row = this.#row(ref, key);
        if (!row) continue;
        this.#db.prepare('DELETE FROM objects WHERE account = ? AND bucket = ? AND key = ?').run(ref.account, ref.bucket, key);
        this.#addUsage(ref, -row.size);
        for (const [sha] of JSON.parse(row.blobs) as [string, number][]) if (this.#unref(sha)) freed.push(sha);
      }
    })();
    this.#unlinkBlobs(freed);
  }

  // --- multipart ---------------------------------------------------------------------------------

  createMultipartUpload(ref: BucketRef, key: string, options: { httpMetadata?: WireHttpMetadata; customMetadata?: Record<string, string>; storageClass?: string }): string {
    const uploadId = randomUUID();
    this.#db
      .prepare('INSERT INTO uploads (upload_id, account, bucket, key, http, custom, storage_class, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(uploadId, ref.account, ref.bucket, key, JSON.stringify(options.httpMetadata ?? {}), JSON.stringify(options.customMetadata ?? {}), options.storageClass ?? 'Standard', Date.now());
    return uploadId;
  }

  async uploadPart(ref: BucketRef, key: string, uploadId: string, partNumber: number, body: AsyncIterable<Uint8Array> | Uint8Array): Promise<{ partNumber: number; etag: string }> {
    this.#upload(ref, key, uploadId, 'uploadPart');
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > R2_LIMITS.maxParts) throw new R2Error('uploadPart', `Part number must be between 1 and ${R2_LIMITS.maxParts} (inclusive).`, 10039);
    const blob = await this.#writeBlob(ref, body, Math.min(this.#maxPutBytes, this.#room(ref)), []);
    const etag = blob.digests.md5!;
    const freed: string[] = [];
    try {
      this.#db.transaction(() => {
        this.#upload(ref, key, uploadId, 'uploadPart');
        const previous = this.#db.prepare('SELECT sha256, size FROM parts WHERE upload_id = ? AND part_number = ?').get(uploadId, partNumber) as { sha256: string; size: number } | undefined;
        if (previous) {
          this.#addUsage(ref, -previous.size);
          if (this.#unref(previous.sha256)) freed.push(previous.sha256);
        }
        this.#checkRoom(ref, blob.size, 'uploadPart');
        this.#db.prepare('INSERT OR REPLACE INTO parts (upload_id, part_number, sha256, size, etag) VALUES (?, ?, ?, ?, ?)').run(uploadId, partNumber, blob.sha256, blob.size, etag);
        this.#ref(blob.sha256);
        this.#addUsage(ref, blob.size);
      })();
    } catch (error) {
      this.#dropIfUnreferenced(blob.sha256);
      throw error;
    }
    this.#unlinkBlobs(freed.filter((sha) => sha !== blob.sha256));
    return { partNumber, etag };
  }

  completeMultipartUpload(ref: BucketRef, key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): WireR2Object {
    const upload = this.#upload(ref, key, uploadId, 'completeMultipartUpload');
    if (!parts.length) throw new R2Error('completeMultipartUpload', 'There were no parts to complete the multipart upload.', 10011);
    const stored = new Map((this.#db.prepare('SELECT part_number, sha256, size, etag FROM parts WHERE upload_id = ?').all(uploadId) as { part_number: number; sha256: string; size: number; etag: string }[]).map((p) => [p.part_number, p]));
    const chosen = parts.map((part, i) => {
      const found = stored.get(part.partNumber);
      if (!found || found.etag !== part.etag.replace(/"/g, '')) throw new R2Error('completeMultipartUpload', 'One or more of the specified parts could not be found.', 10025);
      if (i > 0 && parts[i - 1].partNumber >= part.partNumber) throw new R2Error('completeMultipartUpload', 'The list of parts was not in ascending order. Parts must be ordered by part number.', 10025);
      return found;
    });
    chosen.forEach((part, i) => {
      if (i < chosen.length - 1 && part.size < R2_LIMITS.minPartBytes) throw new R2Error('completeMultipartUpload', `Your proposed upload is smaller than the minimum allowed object size (every part but the last must be at least ${R2_LIMITS.minPartBytes} bytes).`, 10011);
    });
    const size = chosen.reduce((sum, p) => sum + p.size, 0);
    const partDigests = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex')));
    const row: ObjectRow = {
      key,
      version: randomBytes(16).toString('hex'),
      size,
      etag: `${createHash('md5').update(partDigests).digest('hex')}-${chosen.length}`,
      uploaded: Date.now(),
      http: upload.http,
      custom: upload.custom,
      checksums: '{}',
      storage_class: upload.storage_class,
      blobs: JSON.stringify(chosen.map((p) => [p.sha256, p.size])),
    };
    const freed: string[] = [];
    this.#db.transaction(() => {
      // The object takes its own references first, so no blob it uses drops to zero below.
      this.#commitObject(ref, row, undefined, chosen.map((p) => p.sha256), true);
      freed.push(...this.#dropUpload(ref, uploadId));
    })();
    this.#unlinkBlobs(freed);
    return toObject(row);
  }

  abortMultipartUpload(ref: BucketRef, key: string, uploadId: string): void {
    this.#upload(ref, key, uploadId, 'abortMultipartUpload');
    let freed: string[] = [];
    this.#db.transaction(() => {
      freed = this.#dropUpload(ref, uploadId);
    })();
    this.#unlinkBlobs(freed);
  }

  usage(ref: BucketRef): number {
    return (this.#db.prepare('SELECT bytes FROM bucket_usage WHERE account = ? AND bucket = ?').get(ref.account, ref.bucket) as { bytes: number } | undefined)?.bytes ?? 0;
  }

  close(): void {
    this.#db.close();
  }

  // --- internals ---------------------------------------------------------------------------------

  #row(ref: BucketRef, key: string): ObjectRow | null {
    return (this.#db.prepare('SELECT * FROM objects WHERE account = ? AND bucket = ? AND key = ?').get(ref.account, ref.bucket, key) as ObjectRow | undefined) ?? null;
  }

  #upload(ref: BucketRef, key: string, uploadId: string, operation: string): { http: string; custom: string; storage_class: string } {
    const upload = this.#db.prepare('SELECT * FROM uploads WHERE upload_id = ? AND account = ? AND bucket = ? AND key = ?').get(String(uploadId), ref.account, ref.bucket, key);
    if (!upload) throw new R2Error(operation, 'The specified multipart upload does not exist.', 10024);
    return upload as { http: string; custom: string; storage_class: string };
  }

  #dropUpload(ref: BucketRef, uploadId: string): string[] {
    const freed: string[] = [];
    for (const part of this.#db.prepare('SELECT sha256, size FROM parts WHERE upload_id = ?').all(uploadId) as { sha256: string; size: number }[]) {
      this.#addUsage(ref, -part.size);
      if (this.#unref(part.sha256)) freed.push(part.sha256);
    }
    this.#db.prepare('DELETE FROM parts WHERE upload_id = ?').run(uploadId);
    this.#db.prepare('DELETE FROM uploads WHERE upload_id = ?').run(uploadId);
    return freed;
  }

  /** Write the object row (replacing any), moving references and usage, in one transaction. */
  #commitObject(ref: BucketRef, row: ObjectRow, onlyIf: WireConditional | undefined, shas: string[], nested = false): void {
    const freed: string[] = [];
    const body = () => {
      const previous = this.#row(ref, row.key);
      // Checked again here: another put may have landed while the body streamed.
      if (onlyIf && !conditionHolds(onlyIf, previous)) throw new R2Error('put', 'At least one of the pre-conditions you specified did not hold.', 10031);
      for (const sha of shas) this.#ref(sha);
      if (previous) {
        this.#addUsage(ref, -previous.size);
        for (const [sha] of JSON.parse(previous.blobs) as [string, number][]) if (this.#unref(sha)) freed.push(sha);
      }
      this.#checkRoom(ref, row.size, 'put');
      this.#db
        .prepare('INSERT OR REPLACE INTO objects (account, bucket, key, version, size, etag, uploaded, http, custom, checksums, storage_class, blobs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(ref.account, ref.bucket, row.key, row.version, row.size, row.etag, row.uploaded, row.http, row.custom, row.checksums, row.storage_class, row.blobs);
      this.#addUsage(ref, row.size);
    };
    if (nested) body();
    else this.#db.transaction(body)();
    this.#unlinkBlobs(freed);
  }

  #room(ref: BucketRef): number {
    return Math.max(0, this.#maxBucketBytes - this.usage(ref));
  }

  #checkRoom(ref: BucketRef, adding: number, operation: string): void {
    if (this.usage(ref) + adding > this.#maxBucketBytes) throw new R2Error(operation, `The bucket is full: it may hold at most ${this.#maxBucketBytes} bytes.`, 10020);
  }

  #addUsage(ref: BucketRef, delta: number): void {
    this.#db
      .prepare('INSERT INTO bucket_usage (account, bucket, bytes) VALUES (?, ?, ?) ON CONFLICT (account, bucket) DO UPDATE SET bytes = bytes + excluded.bytes')
      .run(ref.account, ref.bucket, delta);
  }

  #ref(sha: string): void {
    this.#db.prepare('INSERT INTO blob_refs (sha256, refs) VALUES (?, 1) ON CONFLICT (sha256) DO UPDATE SET refs = refs + 1').run(sha);
  }

  /** Drop one reference; true when the blob has none left (its file goes after the commit). */
  #unref(sha: string): boolean {
    this.#db.prepare('UPDATE blob_refs SET refs = refs - 1 WHERE sha256 = ?').run(sha);
    const left = (this.#db.prepare('SELECT refs FROM blob_refs WHERE sha256 = ?').get(sha) as { refs: number } | undefined)?.refs ?? 0;
    if (left > 0) return false;
    this.#db.prepare('DELETE FROM blob_refs WHERE sha256 = ?').run(sha);
    return true;
  }

  #dropIfUnreferenced(sha: string): void {
    if (!this.#db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ?').get(sha)) this.#unlinkBlobs([sha]);
  }

  #blobPath(sha: string): string {
    return join(this.#root, 'blobs', sha.slice(0, 2), sha);
  }

  #unlinkBlobs(shas: string[]): void {
    for (const sha of shas) {
      // A blob taken again by a put since (same bytes) keeps its file.
      if (this.#db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ?').get(sha)) continue;
      rmSync(this.#blobPath(sha), { force: true });
    }
  }

  /** Blobs no row references: left by a crash between a blob's rename and its metadata commit. */
  #sweepUnreferencedBlobs(): void {
    const blobs = join(this.#root, 'blobs');
    const known = this.#db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ?');
    for (const dir of readdirSync(blobs)) {
      for (const sha of readdirSync(join(blobs, dir))) if (!known.get(sha)) rmSync(join(blobs, dir, sha), { force: true });
    }
  }

  /** Stream a body to a temp file (hashing as it goes, at most `limit` bytes), fsync, rename into
   *  its content address, fsync the directory. */
  async #writeBlob(ref: BucketRef, body: AsyncIterable<Uint8Array> | Uint8Array, limit: number, wanted: (keyof WireChecksums)[]): Promise<WrittenBlob> {
    const temp = join(this.#root, 'tmp', randomBytes(12).toString('hex'));
    const hashes: Partial<Record<keyof WireChecksums, Hash>> = { md5: createHash('md5'), sha256: createHash('sha256') };
    for (const algorithm of wanted) hashes[algorithm] ??= createHash(algorithm);
    let size = 0;
    let file: FileHandle | null = await open(temp, 'w', 0o600);
    try {
      const chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = body instanceof Uint8Array ? [body] : body;
      for await (const chunk of chunks) {
        size += chunk.byteLength;
        if (size > limit) {
          void ref;
          throw new R2Error('put', `The object is too large: this bucket has room for ${limit} more bytes (and one put takes at most ${this.#maxPutBytes}).`, 10020);
        }
        for (const hash of Object.values(hashes)) hash!.update(chunk);
        await file.write(chunk);
      }
      await file.sync();
      await file.close();
      file = null;
    } catch (error) {
      await file?.close().catch(() => {});
      await rm(temp, { force: true });
      // An unread rest of the body is the source's to close.
      if (!(body instanceof Uint8Array)) await (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().return?.();
      throw error;
    }
    const digests: WireChecksums = {};
    for (const [algorithm, hash] of Object.entries(hashes)) digests[algorithm as keyof WireChecksums] = hash!.digest('hex');
    const sha256 = digests.sha256!;
    const target = this.#blobPath(sha256);
    mkdirSync(join(this.#root, 'blobs', sha256.slice(0, 2)), { recursive: true });
    if (existsSync(target)) {
      await rm(temp, { force: true });
    } else {
      await rename(temp, target);
      const dir = await open(join(this.#root, 'blobs', sha256.slice(0, 2)), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
    return { sha256, size, digests };
  }

  /** The bytes [offset, offset + length) of an object made of `blobs`. Files are opened at once
   *  (a blob deleted meanwhile stays readable through its descriptor) and closed at the end, on
   *  return() (the invocation ended, the client went away) or on error. */
  #reader(blobs: [string, number][], offset: number, length: number): AsyncIterable<Uint8Array> {
    const spans: { fd: Promise<FileHandle>; start: number; end: number }[] = [];
    let position = 0;
    for (const [sha, size] of blobs) {
      const start = Math.max(offset, position) - position;
      const end = Math.min(offset + length, position + size) - position;
      if (end > start) spans.push({ fd: open(this.#blobPath(sha), 'r'), start, end });
      position += size;
    }
    for (const span of spans) span.fd.catch(() => {});
    let index = 0;
    let cursor = spans[0]?.start ?? 0;
    let finished = false;
    const closeAll = async () => {
      finished = true;
      await Promise.all(spans.map((span) => span.fd.then((fd) => fd.close()).catch(() => {})));
    };
    const CHUNK = 64 * 1024;
    const iterator: AsyncIterator<Uint8Array> = {
      async next() {
        while (!finished && index < spans.length) {
          const span = spans[index];
          if (cursor >= span.end) {
            index++;
            cursor = spans[index]?.start ?? 0;
            continue;
          }
          const want = Math.min(CHUNK, span.end - cursor);
          const buffer = Buffer.allocUnsafe(want);
          try {
            const { bytesRead } = await (await span.fd).read(buffer, 0, want, cursor);
            if (bytesRead === 0) throw new Error('R2: a stored blob is shorter than its record');
            cursor += bytesRead;
            return { value: buffer.subarray(0, bytesRead), done: false };
          } catch (error) {
            await closeAll();
            throw error;
          }
        }
        if (!finished) await closeAll();
        return { value: undefined, done: true };
      },
      async return() {
        await closeAll();
        return { value: undefined, done: true };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }
}

function resolveRange(range: WireRange, size: number): { offset: number; length: number } {
  if (range.suffix !== undefined) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  const offset = range.offset ?? 0;
  if (offset > size) throw new R2Error('get', 'The requested range is not satisfiable.', 10039);
  const length = Math.min(range.length ?? size - offset, size - offset);
  return { offset, length };
}

function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (encodeCursor(key) !== cursor) throw new R2Error('list', 'The cursor is not valid.', 10022);
  return key;
}
