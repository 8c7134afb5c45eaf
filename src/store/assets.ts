// Static asset storage under the data directory, content-addressed:
//   assets/<account>/blobs/<aa>/<sha256>          a file's bytes, named by their hash
//   assets/<account>/manifests/<sha256>.json      a manifest (path -> hash, size, content type)
//   assets/versions/<version id>.json             which manifest and config a version serves
// Blobs are kept per account, so whether a file exists (what an upload session answers) tells a
// tenant nothing about another's files. Every file is written to a temporary name, fsynced, and
// renamed into place, then the directory is fsynced: a file under its final name is complete,
// whatever kill -9 interrupts. A version's link is written before the version is published, so a
// published version never lacks its manifest, nor a manifest its blobs. What no version serves
// any more (its worker deleted) is collected (collect), once older than a grace period that covers
// uploads and deploys in progress.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, utimesSync } from 'node:fs';
import { lstat, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assetPathError, isSha256, type AssetBlobSource, type AssetEntry, type AssetsConfig } from '../model/assets.js';

/** What a version serves: the manifest it references and how. */
export interface VersionAssetsRecord {
  account: string;
  manifest: string;
  config: AssetsConfig;
}

export type ManifestRecord = Record<string, AssetEntry>;

/** A blob whose bytes did not hash to the name it was sent under (nothing was kept). */
export class BlobMismatchError extends Error {}

const ACCOUNT = /^[A-Za-z0-9_.-]{1,128}$/;
const VERSION = /^[A-Za-z0-9-]{1,64}$/;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Write `data` to `file` so that `file` is either absent or complete. */
async function writeDurably(file: string, data: Uint8Array | string): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, file);
  await fsyncDir(dirname(file));
}

export class AssetStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'assets');
    mkdirSync(this.root, { recursive: true });
  }

  private accountDir(account: string): string {
    if (!ACCOUNT.test(account)) throw new Error(`asset store: invalid account id "${account}"`);
    return join(this.root, account);
  }

  blobPath(account: string, hash: string): string {
    if (!isSha256(hash)) throw new Error(`asset store: invalid blob hash "${hash}"`);
    return join(this.accountDir(account), 'blobs', hash.slice(0, 2), hash);
  }

  /** Whether the blob is here; if so its age starts again (collect keeps what an upload relies on). */
  hasBlob(account: string, hash: string): boolean {
    return touch(this.blobPath(account, hash));
  }

  /** Store a blob streamed in, checking it hashes to `hash` and is `size` bytes; BlobMismatchError
   *  (and nothing kept) when not. `maxBytes` cuts a body that runs past it. */
  async putBlob(account: string, hash: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    const file = this.blobPath(account, hash);
    if (touch(file)) {
      // Already here (another upload of the same file): drain, and keep the one we have.
      for await (const _chunk of body);
      return;
    }
    mkdirSync(dirname(file), { recursive: true });
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    const digest = createHash('sha256');
    let written = 0;
    try {
      for await (const chunk of body) {
        written += chunk.byteLength;
        if (written > size) throw new BlobMismatchError(`the blob is larger than the ${size} bytes its manifest entry declares`);
        digest.update(chunk);
        await handle.write(chunk);
      }
      if (written !== size) throw new BlobMismatchError(`the blob is ${written} bytes, but its manifest entry declares ${size}`);
      const actual = digest.digest('hex');
      if (actual !== hash) throw new BlobMismatchError(`the blob's sha256 is ${actual}, not ${hash}`);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    await rename(temp, file);
    await fsyncDir(dirname(file));
  }

  /** Store a manifest (content-addressed); answers its hash. */
  async putManifest(account: string, manifest: ManifestRecord): Promise<string> {
    const sorted: ManifestRecord = {};
    for (const path of Object.keys(manifest).sort()) {
      const { hash, size, contentType } = manifest[path];
      sorted[path] = { hash, size, contentType };
    }
    const text = JSON.stringify(sorted);
    const hash = createHash('sha256').update(text).digest('hex');
    const file = join(this.accountDir(account), 'manifests', `${hash}.json`);
    if (!touch(file)) await writeDurably(file, text);
    return hash;
  }

  async getManifest(account: string, hash: string): Promise<ManifestRecord> {
    if (!isSha256(hash)) throw new Error(`asset store: invalid manifest hash "${hash}"`);
    const text = await readFile(join(this.accountDir(account), 'manifests', `${hash}.json`), 'utf8');
    const parsed = JSON.parse(text) as ManifestRecord;
    for (const path of Object.keys(parsed)) {
      if (assetPathError(path)) throw new Error(`asset manifest ${hash}: bad path ${JSON.stringify(path)}`);
    }
    return parsed;
  }

  private versionFile(versionId: string): string {
    if (!VERSION.test(versionId)) throw new Error(`asset store: invalid version id "${versionId}"`);
    return join(this.root, 'versions', `${versionId}.json`);
  }

  async linkVersion(versionId: string, record: VersionAssetsRecord): Promise<void> {
    await writeDurably(this.versionFile(versionId), JSON.stringify(record));
  }

  /** The version's assets, or null when it has none. */
  async versionAssets(versionId: string): Promise<VersionAssetsRecord | null> {
    try {
      return JSON.parse(await readFile(this.versionFile(versionId), 'utf8')) as VersionAssetsRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** Reads an account's blobs by hash (the data plane and the ASSETS binding use it). */
  blobSource(account: string): AssetBlobSource {
    return {
      read: (entry, range) => createReadStream(this.blobPath(account, entry.hash), range ? { start: range.start, end: range.end } : {}),
    };
  }

  /** Bytes of a stored blob (for checks), or null when absent. */
  async blobSize(account: string, hash: string): Promise<number | null> {
    try {
      return (await stat(this.blobPath(account, hash))).size;
    } catch {
      return null;
    }
  }

  /**
   * Delete what none of `liveVersions` serves: their version links, then the manifests no kept
   * link names, then the blobs no kept manifest names (and temporary files a crash left). Each is
   * deleted only once older than `graceMs`: a deploy links its version before it publishes it, and
   * an upload session stores blobs before its manifest. Answers what was deleted.
   */
  async collect(liveVersions: ReadonlySet<string>, graceMs: number): Promise<AssetsCollected> {
    const out: AssetsCollected = { versions: 0, manifests: 0, blobs: 0, bytes: 0 };
    const cutoff = Date.now() - graceMs;
    // Only regular files of the names this store writes (never through a symlink) are deleted.
    const old = async (file: string) => {
      try {
        const info = await lstat(file);
        return info.isFile() && info.mtimeMs < cutoff ? info.size : null;
      } catch {
        return null;
      }
    };
    const keptManifests = new Map<string, Set<string>>(); // account -> manifest hashes
    const keep = (map: Map<string, Set<string>>, account: string, hash: string) => {
      let set = map.get(account);
      if (!set) map.set(account, (set = new Set()));
      set.add(hash);
    };
    const versionsDir = join(this.root, 'versions');
    for (const name of await entries(versionsDir)) {
      if (!VERSION_FILE.test(name) && !TEMP_FILE.test(name)) continue;
      const file = join(versionsDir, name);
      const id = name.endsWith('.json') ? name.slice(0, -5) : null;
      if (id === null || !liveVersions.has(id)) {
        if ((await old(file)) !== null) {
          await rm(file, { force: true });
          if (id !== null) out.versions++;
          continue;
        }
        if (id === null) continue;
      }
      const record = await readJson<VersionAssetsRecord>(file);
      if (record && ACCOUNT.test(record.account) && isSha256(record.manifest)) keep(keptManifests, record.account, record.manifest);
    }
    for (const account of await entries(this.root)) {
      if (account === 'versions' || !ACCOUNT.test(account) || !(await isDirectory(join(this.root, account)))) continue;
      const keptBlobs = new Set<string>();
      const manifestsDir = join(this.root, account, 'manifests');
      for (const name of await entries(manifestsDir)) {
        if (!MANIFEST_FILE.test(name) && !TEMP_FILE.test(name)) continue;
        const file = join(manifestsDir, name);
        const hash = name.endsWith('.json') ? name.slice(0, -5) : '';
        if (!keptManifests.get(account)?.has(hash) && (await old(file)) !== null) {
          await rm(file, { force: true });
          if (isSha256(hash)) out.manifests++;
          continue;
        }
        const manifest = isSha256(hash) ? await readJson<ManifestRecord>(file) : null;
        for (const entry of Object.values(manifest ?? {})) keptBlobs.add(entry.hash);
      }
      const blobsDir = join(this.root, account, 'blobs');
      for (const shard of await entries(blobsDir)) {
        if (!/^[0-9a-f]{2}$/.test(shard) || !(await isDirectory(join(blobsDir, shard)))) continue;
        for (const name of await entries(join(blobsDir, shard))) {
          if (keptBlobs.has(name) || !(isSha256(name) || TEMP_FILE.test(name))) continue;
          const file = join(blobsDir, shard, name);
          const size = await old(file);
          if (size === null) continue;
          await rm(file, { force: true });
          if (isSha256(name)) {
            out.blobs++;
            out.bytes += size;
          }
        }
      }
    }
    return out;
  }
}

/** What AssetStore.collect deleted. */
export interface AssetsCollected {
  versions: number;
  manifests: number;
  blobs: number;
  bytes: number;
}

/** The names this store writes, and its temporary files (writeDurably, putBlob). */
const VERSION_FILE = /^[A-Za-z0-9-]{1,64}\.json$/;
const MANIFEST_FILE = /^[0-9a-f]{64}\.json$/;
const TEMP_FILE = /^[A-Za-z0-9.-]+\.[0-9a-f]{12}\.tmp$/;

/** Start a file's age again; false when there is no such file. */
function touch(file: string): boolean {
  const now = new Date();
  try {
    utimesSync(file, now, now);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}
