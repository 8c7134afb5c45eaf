// Turns a worker entry on disk (JS or TS, one file or many, with npm dependencies) into the
// modules the runtime loads, the way wrangler does: esbuild bundles it into one ES module
// (or one classic script for service-worker syntax).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { detectModuleType, type WorkerModuleSource } from '../model/worker-definition.js';

export interface BundleOptions {
  /** what `process.env.NODE_ENV` is replaced with, as wrangler does: "production" for deploys
   *  (libraries such as React then ship their production builds), "development" in dev */
  mode?: 'production' | 'development';
  /** also make a source map of the bundle (dev maps worker stacks back to the sources with it) */
  sourcemap?: boolean;
}

export interface BundleResult {
  main: string;
  modules: WorkerModuleSource[];
  /** files esbuild read: what `cinder dev` watches */
  inputs: string[];
  /** the bundle's source map (JSON), with sourcemap: true; its sources are absolute paths */
  sourceMap?: string;
}

export async function bundleWorker(entry: string, options: BundleOptions = {}): Promise<BundleResult> {
  const source = readFileSync(entry, 'utf8');
  const format = detectModuleType(source) === 'esm' || /\.(ts|mts|tsx)$/.test(entry) ? 'esm' : 'iife';
  const name = basename(entry).replace(/\.(ts|mts|tsx|mjs|cjs)$/, '.js');
  const nodeEnv = JSON.stringify(options.mode ?? 'production');
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
    // Nothing is written: the output path only anchors the map's relative source paths.
    outfile: join(dirname(entry), name),
    sourcemap: options.sourcemap ? 'external' : false,
    define: { 'process.env.NODE_ENV': nodeEnv, 'globalThis.process.env.NODE_ENV': nodeEnv, 'global.process.env.NODE_ENV': nodeEnv },
  });
  const code = result.outputFiles.find((f) => !f.path.endsWith('.map'))!.text;
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
  return {
    main: name,
    modules: [{ name, code, type: format === 'esm' ? detectModuleType(code) : 'script' }],
    inputs: Object.keys(result.metafile?.inputs ?? {}),
    sourceMap: map ? absoluteSources(map.text, dirname(entry)) : undefined,
  };
}

/** The map with its sources made absolute (esbuild writes them relative to the output file). */
function absoluteSources(mapText: string, outDir: string): string {
  const map = JSON.parse(mapText) as { sources: string[]; sourceRoot?: string };
  map.sources = map.sources.map((s) => (s.startsWith('/') || /^[a-z]+:/i.test(s) ? s : join(outDir, s)));
  delete map.sourceRoot;
  return JSON.stringify(map);
}
