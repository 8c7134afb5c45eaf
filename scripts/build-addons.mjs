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

/** What an import from an add-on is: a module of the base bundle it shares ("sandbox/bridge"),
 *  a sandbox module the base does not share (an error), or its own code to bundle (null). A
 *  binding's guest half (bindings/<name>/guest.ts) the base does not hold is the add-on's own. */
function importKind(absolute, baseKeys) {
  const key = relative(root, absolute).replace(/\\/g, '/').replace(/\.(js|ts)$/, '');
  if (baseKeys.has(key)) return { base: key };
  if (key.startsWith('sandbox/') && !key.startsWith('sandbox/addons/')) return { unshared: key };
  return null;
}

function shareBaseModules(baseKeys) {
  return {
    name: 'cinder-addon-base',
    setup(b) {
      b.onResolve({ filter: /^\.{1,2}\// }, (args) => {
        if (args.namespace !== 'file') return undefined;
        const kind = importKind(resolve(args.resolveDir, args.path), baseKeys);
        if (kind === null) return undefined;
        if (kind.unshared) {
          return { errors: [{ text: `${relative(root, args.importer)} imports ${kind.unshared}, which sandbox/addon-base.ts does not share with add-ons: add it to BASE_MODULES there` }] };
        }
        return { path: kind.base, namespace: 'cinder-base' };
      });
      b.onLoad({ filter: /.*/, namespace: 'cinder-base' }, (args) => ({
        contents: `module.exports = __cinderBase[${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
    },
  };
}

// html-rewriter-wasm (lol-html compiled to WebAssembly, for the HTMLRewriter add-on) is written
// for Node: it reads its .wasm with fs at load time, requires `util` for TextEncoder/TextDecoder,
// `assert` for its asyncify bookkeeping, and its own helper through a String.raw path esbuild
// cannot follow. Here the wasm comes from the add-on's install(files) (see
// sandbox/addons/html-rewriter/wasm-source.ts), the encoders are the isolate's own, and assert is
// the few lines it uses.
const htmlRewriterWasm = {
  name: 'cinder-html-rewriter-wasm',
  setup(b) {
    b.onLoad({ filter: /html-rewriter-wasm[\\/]dist[\\/]html_rewriter\.js$/ }, (args) => {
      let code = readFileSync(args.path, 'utf8');
      const edits = [
        ['require(String.raw`./asyncify.js`)', "require('./asyncify.js')"],
        ['require(String.raw`util`)', '{ TextDecoder: globalThis.TextDecoder, TextEncoder: globalThis.TextEncoder }'],
        ["const path = require('path').join(__dirname, 'html_rewriter_bg.wasm');\nconst bytes = require('fs').readFileSync(path);", "const bytes = require('cinder:html-rewriter-wasm-bytes').wasmBytes();"],
      ];
      for (const [from, to] of edits) {
        if (!code.includes(from)) throw new Error(`html-rewriter-wasm changed: "${from}" not found in ${args.path}; update scripts/build-addons.mjs`);
        code = code.replace(from, to);
      }
      return { contents: code, loader: 'js', resolveDir: dirname(args.path) };
    });
    b.onResolve({ filter: /^cinder:html-rewriter-wasm-bytes$/ }, () => ({ path: join(root, 'sandbox', 'addons', 'html-rewriter', 'wasm-source.ts') }));
    b.onResolve({ filter: /^assert$/ }, (args) => (/html-rewriter-wasm/.test(args.importer) ? { path: 'assert', namespace: 'cinder-assert' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'cinder-assert' }, () => ({
      contents: `function assert(value, message) { if (!value) throw new Error(message || 'HTMLRewriter: internal assertion failed'); }
        assert.strictEqual = (a, b, message) => assert(a === b, message);
        module.exports = assert;`,
      loader: 'js',
    }));
  },
};

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
    plugins: [shareBaseModules(sharedBaseKeys()), htmlRewriterWasm, nodeCompatAliases, vendorShims],
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
