// Uploading a version's static assets, in three steps (Cinder's own routes, in the manner of
// Cloudflare's assets upload session):
//   1. POST /workers/:name/assets-upload-session {"manifest": {"/index.html": {"hash", "size"}}}
//      -> {"session", "missing": [hashes the server does not hold]}
//   2. PUT /workers/:name/assets-upload-session/:session/:hash   the file's bytes, for each missing
//      hash (checked against the hash and size while it is written)
//   3. PUT /workers/:name with metadata {"assets": {"session": "...", "config": {...}}}: the version
//      references the manifest, which is stored then (every blob must be present).
// A re-deploy of unchanged files sends the manifest only. Hashes are hex sha256 of the contents.
// Sessions live in memory for an hour; the blobs they bring in are durable as soon as each PUT
// answers (store/assets.ts).
import { randomUUID } from 'node:crypto';
import { lookup as mimeLookup } from 'mrmime';
import {
  DEFAULT_ASSETS_CONFIG,
  DEFAULT_MAX_ASSET_COUNT,
  HTML_HANDLING,
  MAX_ASSET_FILE_BYTES,
  NOT_FOUND_HANDLING,
  assetPathError,
  isSha256,
  runWorkerFirstPatternError,
  withCharset,
  type AssetsConfig,
  type HtmlHandling,
  type NotFoundHandling,
} from '../model/assets.js';
import { AssetStore, BlobMismatchError, type ManifestRecord } from '../store/assets.js';
import { ControlError, badRequest, notFound, tooLarge } from './errors.js';

export const SESSION_TTL_MS = 60 * 60 * 1000;
/** Open sessions at once, server-wide (each holds a manifest in memory). */
const MAX_SESSIONS = 256;

interface Session {
  id: string;
  account: string;
  worker: string;
  manifest: ManifestRecord;
  /** hash -> size, for the blobs not yet stored */
  missing: Map<string, number>;
  expiresAt: number;
}

export interface AssetUploadOptions {
  maxFiles?: number;
  maxFileBytes?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The content type an asset is served with, from its path (as Cloudflare, by extension). */
export function contentTypeOf(path: string): string {
  const type = mimeLookup(path);
  return type ? withCharset(type) : 'application/octet-stream';
}

export class AssetUploads {
  private readonly sessions = new Map<string, Session>();
  readonly maxFiles: number;
  readonly maxFileBytes: number;

  constructor(
    readonly store: AssetStore,
    options: AssetUploadOptions = {},
  ) {
    this.maxFiles = options.maxFiles ?? DEFAULT_MAX_ASSET_COUNT;
    this.maxFileBytes = Math.min(options.maxFileBytes ?? MAX_ASSET_FILE_BYTES, MAX_ASSET_FILE_BYTES);
  }

  private sweep(now = Date.now()): void {
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }

  /** Step 1: check the manifest, answer the session and the hashes to send. */
  open(worker: string, account: string, raw: unknown): { session: string; missing: string[]; expiresAt: number } {
    if (!isObject(raw) || !isObject(raw.manifest)) throw badRequest('the body must be {"manifest": {"/path": {"hash": "<sha256 hex>", "size": <bytes>}, ...}}');
    const paths = Object.keys(raw.manifest);
    if (paths.length > this.maxFiles) throw tooLarge(`the manifest lists ${paths.length} files, over this server's limit of ${this.maxFiles} asset files per version`, { files: paths.length, limit: this.maxFiles });
    const manifest: ManifestRecord = {};
    const missing = new Map<string, number>();
    for (const path of paths) {
      const pathError = assetPathError(path);
      if (pathError) throw badRequest(`manifest path ${JSON.stringify(path.slice(0, 200))} ${pathError}`, { path: path.slice(0, 200) });
      const entry = raw.manifest[path];
      if (!isObject(entry) || !isSha256(entry.hash)) throw badRequest(`manifest["${path}"].hash must be the file's sha256, as 64 lowercase hex digits`, { path });
      const size = entry.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw badRequest(`manifest["${path}"].size must be the file's size in bytes`, { path });
      if (size > this.maxFileBytes) {
        throw tooLarge(`asset "${path}" is ${size} bytes, over the limit of ${this.maxFileBytes} bytes (25 MiB) per file`, { path, size, limit: this.maxFileBytes });
      }
      manifest[path] = { hash: entry.hash, size, contentType: contentTypeOf(path) };
      const known = missing.get(entry.hash);
      if (known !== undefined && known !== size) throw badRequest(`manifest lists hash ${entry.hash} with two sizes (${known} and ${size})`, { path });
      if (known === undefined && !this.store.hasBlob(account, entry.hash)) missing.set(entry.hash, size);
    }
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) throw new ControlError(409, `too many asset upload sessions are open (${MAX_SESSIONS}); finish or wait for others (they expire after an hour)`);
    const session: Session = { id: randomUUID(), account, worker, manifest, missing, expiresAt: Date.now() + SESSION_TTL_MS };
    this.sessions.set(session.id, session);
    return { session: session.id, missing: [...missing.keys()], expiresAt: session.expiresAt };
  }

  private session(id: string, worker: string, account: string): Session {
    this.sweep();
    const session = this.sessions.get(id);
    // Another account's or another worker's session: as unknown as a missing one.
    if (!session || session.worker !== worker || session.account !== account) throw notFound(`no asset upload session "${id}" for worker "${worker}" (sessions expire after an hour; open a new one)`);
    return session;
  }

  /** Step 2: one blob of the session's manifest. */
  async putBlob(id: string, worker: string, account: string, hash: string, declaredLength: number | null, body: AsyncIterable<Uint8Array>): Promise<{ missing: number }> {
    const session = this.session(id, worker, account);
    if (!isSha256(hash)) throw badRequest(`"${hash}" is not a sha256 hash (64 lowercase hex digits)`);
    const size = session.missing.get(hash) ?? Object.values(session.manifest).find((e) => e.hash === hash)?.size;
    if (size === undefined) throw badRequest(`hash ${hash} is not in this session's manifest`);
    if (declaredLength !== null && declaredLength !== size) throw badRequest(`the body is ${declaredLength} bytes, but the manifest says ${size} for hash ${hash}`);
    try {
      await this.store.putBlob(account, hash, size, body);
    } catch (error) {
      if (error instanceof BlobMismatchError) throw badRequest(`blob ${hash}: ${error.message}; nothing was stored`);
      throw error;
    }
    session.missing.delete(hash);
    return { missing: session.missing.size };
  }

  /** Step 3, at deploy: the session's manifest, stored; every blob must be present. */
  async complete(id: string, worker: string, account: string): Promise<{ manifestHash: string; manifest: ManifestRecord }> {
    const session = this.session(id, worker, account);
    const absent = [...new Set(Object.values(session.manifest).map((e) => e.hash))].filter((hash) => !this.store.hasBlob(account, hash));
    if (absent.length) throw badRequest(`the asset upload session still misses ${absent.length} file(s) (e.g. ${absent[0]}): PUT them before deploying`, { missing: absent.slice(0, 20) });
    const manifestHash = await this.store.putManifest(account, session.manifest);
    this.sessions.delete(id);
    return { manifestHash, manifest: session.manifest };
  }
}

/** metadata.assets.config, as Cloudflare's upload names the fields. */
export function parseAssetsConfig(raw: unknown, where: string): AssetsConfig {
  if (raw === undefined || raw === null) return { ...DEFAULT_ASSETS_CONFIG };
  if (!isObject(raw)) throw badRequest(`${where} must be an object`);
  const known = new Set(['html_handling', 'not_found_handling', 'run_worker_first']);
  for (const key of Object.keys(raw)) if (!known.has(key)) throw badRequest(`${where} has an unknown field "${key}" (known: ${[...known].join(', ')})`);
  const config: AssetsConfig = { ...DEFAULT_ASSETS_CONFIG };
  if (raw.html_handling !== undefined) {
    if (!(HTML_HANDLING as readonly unknown[]).includes(raw.html_handling)) throw badRequest(`${where}.html_handling must be one of ${HTML_HANDLING.join(', ')}`);
    config.htmlHandling = raw.html_handling as HtmlHandling;
  }
  if (raw.not_found_handling !== undefined) {
    if (!(NOT_FOUND_HANDLING as readonly unknown[]).includes(raw.not_found_handling)) throw badRequest(`${where}.not_found_handling must be one of ${NOT_FOUND_HANDLING.join(', ')}`);
    config.notFoundHandling = raw.not_found_handling as NotFoundHandling;
  }
  const first = raw.run_worker_first;
  if (first !== undefined) {
    if (typeof first === 'boolean') config.runWorkerFirst = first;
    else if (Array.isArray(first)) {
      if (first.length > 100) throw badRequest(`${where}.run_worker_first lists more than 100 patterns`);
      first.forEach((pattern, i) => {
        const error = runWorkerFirstPatternError(pattern);
        if (error) throw badRequest(`${where}.run_worker_first[${i}] ${error}`);
      });
      config.runWorkerFirst = first as string[];
    } else throw badRequest(`${where}.run_worker_first must be true, false or an array of path patterns such as "/api/*"`);
  }
  return config;
}
