// Turns a worker entry on disk (JS or TS, one file or many, with npm dependencies) into the
// modules the runtime loads, the way wrangler does: esbuild bundles it into one ES module
// (or one classic script for service-worker syntax).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { detectModuleType, type WorkerModuleSource } from '../model/worker-definition.js';
import { refuseWorkersSites } from './workers-sites.js';

export interface BundleResult {
  main: string;
  modules: WorkerModuleSource[];
  /** files esbuild read: what `cinder dev` watches */
  inputs: string[];
}

export async function bundleWorker(entry: string): Promise<BundleResult> {
  const source = readFileSync(entry, 'utf8');
  const format = detectModuleType(source) === 'esm' || /\.(ts|mts|tsx)$/.test(entry) ? 'esm' : 'iife';
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format,
    platform: 'browser',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    metafile: true,
    logLevel: 'silent',
    sourcemap: false,
    plugins: [refuseWorkersSites],
  });
  const code = result.outputFiles[0].text;
  const name = basename(entry).replace(/\.(ts|mts|tsx|mjs|cjs)$/, '.js');
  return {
    main: name,
    modules: [{ name, code, type: format === 'esm' ? detectModuleType(code) : 'script' }],
    inputs: Object.keys(result.metafile?.inputs ?? {}),
  };
}
