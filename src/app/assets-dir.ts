// A project's [assets] directory as wrangler reads it: every file under it, minus what
// `.assetsignore` (gitignore syntax) excludes, each with its request path ("/assets/app.js"), sha256
// and size. `cinder deploy` uploads from this; `cinder dev` serves straight from it. Files over
// 25 MiB, too many files, and Cloudflare's `_headers` / `_redirects` files (which Cinder does not
// apply) are refused by name rather than served differently from Cloudflare.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { DEFAULT_MAX_ASSET_COUNT, MAX_ASSET_FILE_BYTES, assetPathError, type AssetBlobSource, type AssetEntry } from '../model/assets.js';
import { contentTypeOf } from '../control/assets.js';

export interface DirectoryAsset extends AssetEntry {
  file: string;
}

export class AssetDirectoryError extends Error {}

/** Always left out, as wrangler does. */
const ALWAYS_IGNORED = ['.assetsignore', '.DS_Store', '.git/', 'node_modules/', '.wrangler/'];
/** Cloudflare applies these files as rules; Cinder does not, so it will not serve them as files. */
const UNSUPPORTED_RULE_FILES = ['/_headers', '/_redirects'];

interface IgnoreRule {
  regex: RegExp;
  negate: boolean;
  dirOnly: boolean;
}

/** A .gitignore-style pattern as a RegExp over "/"-separated paths relative to the root. */
function compileIgnore(line: string): IgnoreRule | null {
  let pattern = line.replace(/\s+$/, '');
  if (!pattern || pattern.startsWith('#')) return null;
  let negate = false;
  if (pattern.startsWith('!')) {
    negate = true;
    pattern = pattern.slice(1);
  } else if (pattern.startsWith('\\')) pattern = pattern.slice(1);
  const dirOnly = pattern.endsWith('/');
  if (dirOnly) pattern = pattern.slice(0, -1);
  const anchored = pattern.includes('/');
  if (pattern.startsWith('/')) pattern = pattern.slice(1);
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return { regex: new RegExp(`^${anchored ? '' : '(?:.*/)?'}${source}$`), negate, dirOnly };
}

function ignoredBy(rules: IgnoreRule[], path: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.dirOnly && !isDir) continue;
    if (rule.regex.test(path)) ignored = !rule.negate;
  }
  return ignored;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every asset under `dir`, by request path. */
export async function readAssetDirectory(dir: string, options: { maxFiles?: number } = {}): Promise<Map<string, DirectoryAsset>> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AssetDirectoryError(`the assets directory ${dir} does not exist (assets.directory)`);
  const ignoreFile = join(dir, '.assetsignore');
  const rules = [...ALWAYS_IGNORED, ...(existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8').split(/\r?\n/) : [])].map(compileIgnore).filter((r): r is IgnoreRule => r !== null);
  const maxFiles = options.maxFiles ?? DEFAULT_MAX_ASSET_COUNT;
  const found: { path: string; file: string; size: number }[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const file = join(current, entry.name);
      const rel = relative(dir, file).split(sep).join('/');
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statSync(file).isDirectory());
      if (ignoredBy(rules, rel, isDir)) continue;
      if (isDir) {
        walk(file);
        continue;
      }
      if (!entry.isFile() && !(entry.isSymbolicLink() && statSync(file).isFile())) continue;
      const path = `/${rel}`;
      if (UNSUPPORTED_RULE_FILES.includes(path)) {
        throw new AssetDirectoryError(`${file}: Cloudflare's ${path.slice(1)} rules file is not supported by Cinder (its rules would not be applied); remove it or list it in ${ignoreFile}`);
      }
      const pathError = assetPathError(path);
      if (pathError) throw new AssetDirectoryError(`${file}: its request path ${path} ${pathError}`);
      const size = statSync(file).size;
      if (size > MAX_ASSET_FILE_BYTES) throw new AssetDirectoryError(`${file} is ${size} bytes, over the limit of ${MAX_ASSET_FILE_BYTES} bytes (25 MiB) per asset file; list it in ${ignoreFile} or make it smaller`);
      found.push({ path, file, size });
      if (found.length > maxFiles) throw new AssetDirectoryError(`${dir} holds more than ${maxFiles} asset files (the limit per version); list some in ${ignoreFile}`);
    }
  };
  walk(dir);
  const assets = new Map<string, DirectoryAsset>();
  for (const { path, file, size } of found.sort((a, b) => (a.path < b.path ? -1 : 1))) {
    assets.set(path, { file, size, hash: await sha256(file), contentType: contentTypeOf(path) });
  }
  return assets;
}

/** Read assets straight from their files (cinder dev). */
export function directoryBlobSource(assets: Map<string, DirectoryAsset>): AssetBlobSource {
  const byHash = new Map<string, string>();
  for (const asset of assets.values()) byHash.set(asset.hash, asset.file);
  return {
    read(entry, range) {
      const file = byHash.get(entry.hash);
      if (!file) throw new Error(`asset ${entry.hash} is no longer in the directory`);
      return createReadStream(file, range ? { start: range.start, end: range.end } : {});
    },
  };
}
