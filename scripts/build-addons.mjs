// Builds the add-ons (protocol/addons.ts): each sandbox/addons/<name>.ts becomes
// dist/addons/<name>.js, a script whose completion value is a wrapper `(base) => install`.
// Imports of base sandbox modules are rewritten to `base[key]` (sandbox/addon-base.ts), so the
// add-on shares the base bundle's module instances (one bridge, one Response class) instead of
// carrying copies of them; everything else (npm code, protocol constants) is bundled into it.
// dist/addons/manifest.json lists each add-on's bytes and hash.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vendorShims } from './sandbox-vendor-shims.mjs';
import { nodeCompatAliases } from './node-compat-aliases.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function sharedBaseKeys() {
  const source = readFileSync(join(root, 'sandbox', 'addon-base.ts'), 'utf8');
  return new Set([...source.matchAll(/^\s*'([^']+)':/gm)].map((m) => m[1]));
}

/** The base module an import resolves to ("sandbox/bridge"), or null for add-on-local code. */
function baseModuleKey(absolute) {
  const key = relative(root, absolute).replace(/\\/g, '/').replace(/\.(js|ts)$/, '');
  if (key.startsWith('sandbox/addons/') || key.startsWith('..')) return null;
  if (key.startsWith('sandbox/') || /^bindings\/[^/]+\/guest$/.test(key)) return key;
  return null;
}

function shareBaseModules(baseKeys) {
  return {
    name: 'cinder-addon-base',
    setup(b) {
      b.onResolve({ filter: /^\.{1,2}\// }, (args) => {
        if (args.namespace !== 'file') return undefined;
        const key = baseModuleKey(resolve(args.resolveDir, args.path));
        if (key === null) return undefined;
        if (!baseKeys.has(key)) {
          return { errors: [{ text: `${relative(root, args.importer)} imports ${key}, which sandbox/addon-base.ts does not share with add-ons: add it to BASE_MODULES there` }] };
        }
        return { path: key, namespace: 'cinder-base' };
      });
      b.onLoad({ filter: /.*/, namespace: 'cinder-base' }, (args) => ({
        contents: `module.exports = __cinderBase[${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
    },
  };
}

/** Build one add-on entry to outFile; answers its size and hash. */
export async function buildAddon(entry, outFile) {
  const result = await build({
    entryPoints: [entry],
    write: false,
    bundle: true,
    format: 'iife',
    globalName: '__cinderAddon',
    platform: 'neutral',
    target: 'es2022',
    // As the base bundle: names stay (class names are observable), strict mode throughout.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    mainFields: ['module', 'main'],
    conditions: ['worker', 'browser'],
    logLevel: 'warning',
    plugins: [shareBaseModules(sharedBaseKeys()), nodeCompatAliases, vendorShims],
  });
  const wrapped = `(function (__cinderBase) {"use strict";\n${result.outputFiles[0].text}\nreturn __cinderAddon.default;\n})`;
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, wrapped);
  return { bytes: Buffer.byteLength(wrapped), hash: createHash('sha256').update(wrapped).digest('hex') };
}

export async function buildAllAddons() {
  const dir = join(root, 'sandbox', 'addons');
  const out = join(root, 'dist', 'addons');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')) : [];
  const manifest = {};
  for (const file of files) {
    const name = file.replace(/\.ts$/, '');
    manifest[name] = await buildAddon(join(dir, file), join(out, `${name}.js`));
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  if (files.length) console.log(`[cinder] add-ons: ${Object.entries(manifest).map(([n, a]) => `${n} ${(a.bytes / 1024).toFixed(1)} KiB`).join(', ')}`);
}
