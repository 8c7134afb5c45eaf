// The esbuild plugin that swaps some of the sandbox's vendored dependencies for small shims.
// Used by build-sandbox.mjs, and by tests that bundle single sandbox modules.
import { readFile } from 'node:fs/promises';
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
//
// web-streams-polyfill is patched in one place: how it "transfers" the ArrayBuffer of every chunk
// a byte stream enqueues. V8 11.3 has no ArrayBuffer.prototype.transfer, so the polyfill falls
// back to the global structuredClone, which here can only copy (no detaching from JavaScript) and
// costs about a millisecond per 64 KB chunk: a 3 MB upload ran out of CPU time. Without that
// fallback it hands the buffer on as is (and still uses transfer() on a V8 that has it).
//
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
    b.onLoad({ filter: /[\\/]web-streams-polyfill[\\/]dist[\\/]ponyfill\.mjs$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const fallback = '"function"==typeof structuredClone?e=>structuredClone(e,{transfer:[e]}):';
      if (!source.includes(fallback)) {
        throw new Error('web-streams-polyfill changed: its structuredClone transfer fallback was not found (see sandbox-vendor-shims.mjs)');
      }
      return { contents: source.replace(fallback, ''), loader: 'js' };
    });
  },
};
