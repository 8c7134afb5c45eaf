#!/usr/bin/env node
// Bundles sandbox/ (the code that runs inside every isolate) into one classic script,
// dist/sandbox.js, and writes dist/sandbox.manifest.json: the bundle's hash and the globals it
// defines. The manifest is what the snapshot self-test checks a fresh isolate against.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { vendorShims } from './sandbox-vendor-shims.mjs';
import { buildAllAddons } from './build-addons.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const outFile = join(root, 'dist', 'sandbox.js');
mkdirSync(dirname(outFile), { recursive: true });

await build({
  entryPoints: [join(root, 'sandbox', 'index.ts')],
  outfile: outFile,
  bundle: true,
  format: 'iife',
  platform: 'neutral',
  target: 'es2022',
  // Identifiers stay unminified: class names are observable (`Headers.name`, error messages).
  minifyWhitespace: true,
  minifySyntax: true,
  // esbuild renames colliding bindings (Request -> _Request); keep the names user code can see.
  keepNames: true,
  legalComments: 'none',
  // Strict mode for the whole bundle: no sloppy-mode `fn.caller` / `arguments.callee` paths from
  // guest code into the sandbox's own functions.
  banner: { js: '"use strict";' },
  mainFields: ['module', 'main'],
  conditions: ['worker', 'browser'],
  logLevel: 'warning',
  plugins: [vendorShims],
});

const code = readFileSync(outFile, 'utf8');
// Evaluate once in a bare V8 context (no Node globals, no host bridge): the bundle must be able to
// run there, because that is exactly what a snapshot build does. The globals it adds are the
// manifest the snapshot self-test checks.
const context = vm.createContext({});
const before = new Set(vm.runInContext('Object.getOwnPropertyNames(globalThis)', context));
vm.runInContext(code, context, { filename: 'cinder:sandbox.js' });
const globals = vm
  .runInContext('Object.getOwnPropertyNames(globalThis)', context)
  .filter((name) => !before.has(name));
const manifest = {
  hash: createHash('sha256').update(code).digest('hex'),
  bytes: Buffer.byteLength(code),
  globals: globals.sort(),
};
writeFileSync(join(root, 'dist', 'sandbox.manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(`[cinder] sandbox bundle: ${(manifest.bytes / 1024).toFixed(1)} KiB, ${globals.length} globals`);

// The add-ons (protocol/addons.ts), each built on its own: scripts/build-addons.mjs.
await buildAllAddons();
