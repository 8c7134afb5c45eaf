// The esbuild plugin that swaps some of the sandbox's vendored dependencies for small shims.
// Used by build-sandbox.mjs, and by tests that bundle single sandbox modules.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// whatwg-url's parser is used as is, but four of its imports are swapped for small shims
// (see sandbox/api/idna.ts and sandbox/api/url-encoding-shim.ts for what each one trades away):
//   tr46                     -> sandbox/api/idna.ts: the full UTS #46 table is ~236 KB
//   @exodus/bytes/whatwg.js  -> url-encoding-shim.ts: UTF-8 only (legacy encodings are ~150 KB)
//   @exodus/bytes/encoding.js -> nothing: imported only to register those legacy encodings
//   whatwg-url's ./encoding  -> url-encoding-shim.ts: it builds a TextEncoder at load time, before
//                               any global exists
// A plugin rather than esbuild's `alias`, because `alias` cannot redirect a relative import.
export const vendorShims = {
  name: 'cinder-vendor-shims',
  setup(b) {
    const api = join(root, 'sandbox', 'api');
    b.onResolve({ filter: /^tr46$/ }, () => ({ path: join(api, 'idna.ts') }));
    b.onResolve({ filter: /^@exodus\/bytes\/whatwg\.js$/ }, () => ({ path: join(api, 'url-encoding-shim.ts') }));
    b.onResolve({ filter: /^@exodus\/bytes\/encoding\.js$/ }, () => ({ path: 'empty', namespace: 'cinder-empty' }));
    b.onResolve({ filter: /^\.\/encoding$/ }, (args) =>
      /[\\/]whatwg-url[\\/]lib[\\/]/.test(args.importer) ? { path: join(api, 'url-encoding-shim.ts') } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'cinder-empty' }, () => ({ contents: '', loader: 'js' }));
  },
};
