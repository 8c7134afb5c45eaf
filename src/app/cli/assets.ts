// A wrangler project's [assets]: reading the table, and uploading the directory with a deploy.
// The upload sends the manifest first and then only the files the server does not hold yet
// (control/assets.ts), so a deploy that changed code alone sends no file again.
import { resolve } from 'node:path';
import { HTML_HANDLING, NOT_FOUND_HANDLING, runWorkerFirstPatternError, type HtmlHandling, type NotFoundHandling } from '../../model/assets.js';
import { readAssetDirectory } from '../assets-dir.js';
import type { AdminClient } from './client.js';

export interface ProjectAssets {
  /** absolute path of assets.directory */
  directory: string;
  binding?: string;
  htmlHandling?: HtmlHandling;
  notFoundHandling?: NotFoundHandling;
  runWorkerFirst?: boolean | string[];
}

const KEYS = ['directory', 'binding', 'html_handling', 'not_found_handling', 'run_worker_first'];

/** The [assets] table, or a message naming what is wrong with it. `baseDir`: the config's directory. */
export function readAssetsTable(value: unknown, where: string, baseDir: string): ProjectAssets | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where} must be a table such as { directory = "./public" }`;
  const table = value as Record<string, unknown>;
  for (const key of Object.keys(table)) {
    if (!KEYS.includes(key)) return `${where}.${key} is not an [assets] key Cinder knows (known: ${KEYS.join(', ')}); see docs/compat.md`;
  }
  if (typeof table.directory !== 'string' || !table.directory) return `${where}.directory must be the path of the directory to serve, such as "./public"`;
  const assets: ProjectAssets = { directory: resolve(baseDir, table.directory) };
  if (table.binding !== undefined) {
    if (typeof table.binding !== 'string' || !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(table.binding)) return `${where}.binding must be a binding name such as "ASSETS"`;
    assets.binding = table.binding;
  }
  if (table.html_handling !== undefined) {
    if (!(HTML_HANDLING as readonly unknown[]).includes(table.html_handling)) return `${where}.html_handling must be one of ${HTML_HANDLING.map((h) => `"${h}"`).join(', ')}`;
    assets.htmlHandling = table.html_handling as HtmlHandling;
  }
  if (table.not_found_handling !== undefined) {
    if (!(NOT_FOUND_HANDLING as readonly unknown[]).includes(table.not_found_handling)) return `${where}.not_found_handling must be one of ${NOT_FOUND_HANDLING.map((h) => `"${h}"`).join(', ')}`;
    assets.notFoundHandling = table.not_found_handling as NotFoundHandling;
  }
  const first = table.run_worker_first;
  if (first !== undefined) {
    if (typeof first !== 'boolean' && !Array.isArray(first)) return `${where}.run_worker_first must be true, false or a list of path patterns such as ["/api/*"]`;
    if (Array.isArray(first)) {
      for (const [i, pattern] of first.entries()) {
        const error = runWorkerFirstPatternError(pattern);
        if (error) return `${where}.run_worker_first[${i}] ${error}`;
      }
    }
    assets.runWorkerFirst = first as boolean | string[];
  }
  return assets;
}

/** The config part of metadata.assets (Cloudflare's field names). */
export function assetsConfigMetadata(assets: ProjectAssets): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  if (assets.htmlHandling) config.html_handling = assets.htmlHandling;
  if (assets.notFoundHandling) config.not_found_handling = assets.notFoundHandling;
  if (assets.runWorkerFirst !== undefined) config.run_worker_first = assets.runWorkerFirst;
  return config;
}

export interface AssetUploadReport {
  session: string;
  files: number;
  uploaded: number;
  uploadedBytes: number;
}

/** Upload the directory's files the server lacks; answers the session to deploy with. */
export async function uploadAssets(client: AdminClient, worker: string, assets: ProjectAssets): Promise<AssetUploadReport> {
  const files = await readAssetDirectory(assets.directory);
  const manifest: Record<string, { hash: string; size: number }> = {};
  for (const [path, entry] of files) manifest[path] = { hash: entry.hash, size: entry.size };
  const opened = await client.request<{ session: string; missing: string[] }>('POST', `/workers/${encodeURIComponent(worker)}/assets-upload-session`, JSON.stringify({ manifest }), { 'content-type': 'application/json' });
  const byHash = new Map([...files.values()].map((entry) => [entry.hash, entry]));
  let uploadedBytes = 0;
  for (const hash of opened.missing) {
    const entry = byHash.get(hash)!;
    const { readFile } = await import('node:fs/promises');
    const body = await readFile(entry.file);
    await client.request('PUT', `/workers/${encodeURIComponent(worker)}/assets-upload-session/${opened.session}/${hash}`, body, { 'content-type': 'application/octet-stream' });
    uploadedBytes += body.byteLength;
  }
  return { session: opened.session, files: files.size, uploaded: opened.missing.length, uploadedBytes };
}
