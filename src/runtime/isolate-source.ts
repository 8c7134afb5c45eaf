// How a blank isolate gets the Web platform: from a V8 snapshot (the fast path) or, if the
// snapshot cannot be built or fails its self-test, by running the bundle with V8 code cache.
// Snapshots are built in a child process and cached on disk, keyed by the bundle's hash and the
// Node / isolated-vm / V8 versions, so a server start normally just reads a file.
import ivm, { expectedPatchLevel } from './ivm.js';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { referenceAnswers, snapshotProblems } from './snapshot-check.js';
import { defaultCacheDir, sandboxBundlePath, sandboxManifestPath, snapshotBuilderPath } from './paths.js';
import type { Logger } from 'pino';

const execFileAsync = promisify(execFile);
const requireHere = createRequire(import.meta.url);
const ivmVersion: string = requireHere('isolated-vm/package.json').version;

export interface SandboxManifest {
  hash: string;
  bytes: number;
  globals: string[];
}

export type IsolateSource =
  | { kind: 'snapshot'; snapshot: ivm.ExternalCopy<ArrayBuffer>; bytes: number; manifest: SandboxManifest }
  | { kind: 'code-cache'; code: string; cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined; manifest: SandboxManifest };

export interface IsolateSourceOptions {
  /** false: never use a snapshot (ablation, or an operator's choice) */
  snapshot?: boolean;
  /** false: no code cache in the fallback path (ablation) */
  codeCache?: boolean;
  cacheDir?: string;
  logger?: Logger;
}

export function readManifest(): SandboxManifest {
  if (!existsSync(sandboxManifestPath)) {
    throw new Error(`sandbox bundle missing (${sandboxManifestPath}); run "npm run build"`);
  }
  return JSON.parse(readFileSync(sandboxManifestPath, 'utf8')) as SandboxManifest;
}

/** Bump when scripts/build-snapshot.mjs makes a different snapshot of the same bundle (2: with
 *  the warm-up script), so cached files are rebuilt. */
const SNAPSHOT_FORMAT = '2';

/** The platform a snapshot belongs to: the sandbox bundle, how it is snapshotted, Node, V8,
 *  isolated-vm and its patches. */
export function snapshotKey(manifest: SandboxManifest): string {
  return createHash('sha256')
    .update([manifest.hash, SNAPSHOT_FORMAT, process.version, process.versions.v8, ivmVersion, expectedPatchLevel].join('\0'))
    .digest('hex')
    .slice(0, 24);
}

/** Bytes held by Node as an ExternalCopy an isolate can take (a copy of just the view's range). */
export function toExternal(bytes: Buffer): ivm.ExternalCopy<ArrayBuffer> {
  return new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The snapshot for the current bundle, built (in a child process) if the cache has no good one.
 *  Loading a damaged snapshot could crash V8, so a cached file is used only if its bytes match
 *  the hash the builder wrote after the file passed its self-test. */
export async function ensureSnapshot(manifest: SandboxManifest, cacheDir = defaultCacheDir): Promise<Buffer> {
  mkdirSync(cacheDir, { recursive: true });
  const file = join(cacheDir, `snapshot-${snapshotKey(manifest)}.bin`);
  const cached = readVerified(file);
  if (cached) return cached;
  await execFileAsync(process.execPath, ['--no-node-snapshot', snapshotBuilderPath, sandboxBundlePath, sandboxManifestPath, file], {
    timeout: 60_000,
    maxBuffer: 1 << 20,
  });
  const built = readVerified(file);
  if (!built) throw new Error('snapshot builder finished but its output does not verify');
  return built;
}

function readVerified(file: string): Buffer | null {
  if (!existsSync(file) || !existsSync(`${file}.sha256`)) return null;
  const bytes = readFileSync(file);
  return sha256(bytes) === readFileSync(`${file}.sha256`, 'utf8').trim() ? bytes : null;
}

/** The self-test again, in this process (see snapshot-check.ts: what breaks can differ from one
 *  process to the next): the problems found, none if the snapshot is fit to use. */
export async function verifySnapshot(snapshot: ivm.ExternalCopy<ArrayBuffer>, manifest: SandboxManifest): Promise<string[]> {
  return snapshotProblems(snapshot, manifest, await referenceAnswers(readFileSync(sandboxBundlePath, 'utf8')));
}

function codeCacheSource(manifest: SandboxManifest, useCache: boolean): IsolateSource {
  const code = readFileSync(sandboxBundlePath, 'utf8');
  let cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined;
  if (useCache) {
    const isolate = new ivm.Isolate({ memoryLimit: 64 });
    try {
      const script = isolate.compileScriptSync(code, { filename: 'cinder:sandbox.js', produceCachedData: true });
      cachedData = (script as unknown as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
    } finally {
      isolate.dispose();
    }
  }
  return { kind: 'code-cache', code, cachedData, manifest };
}

export async function loadIsolateSource(options: IsolateSourceOptions = {}): Promise<IsolateSource> {
  const manifest = readManifest();
  if (options.snapshot !== false) {
    try {
      const bytes = await ensureSnapshot(manifest, options.cacheDir);
      const snapshot = toExternal(bytes);
      const problems = await verifySnapshot(snapshot, manifest);
      if (problems.length) throw new Error(`snapshot failed its self-test: ${problems.join('; ')}`);
      return { kind: 'snapshot', snapshot, bytes: bytes.length, manifest };
    } catch (error) {
      options.logger?.warn({ err: String((error as Error).message ?? error) }, 'V8 snapshot unusable; falling back to code cache (slower cold starts)');
    }
  }
  return codeCacheSource(manifest, options.codeCache !== false);
}

/** For tests of the fallback path: an IsolateSource from an arbitrary snapshot blob. */
export async function isolateSourceFromSnapshotBytes(bytes: Buffer, manifest: SandboxManifest, logger?: Logger): Promise<IsolateSource> {
  const snapshot = toExternal(bytes);
  const problems = await verifySnapshot(snapshot, manifest);
  if (problems.length === 0) return { kind: 'snapshot', snapshot, bytes: bytes.length, manifest };
  logger?.warn({ problems }, 'V8 snapshot failed its self-test; falling back to code cache');
  return codeCacheSource(manifest, true);
}
