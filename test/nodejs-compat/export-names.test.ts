// nodejs-compat's namespaces are getters over modules evaluated on first read; their export names
// are listed ahead (sandbox/addons/node/export-names.ts). They must be each module's real exports.
import { build } from 'esbuild';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { EXPORT_NAMES } from '../../sandbox/addons/node/export-names.js';

it('lists every export of every lazily evaluated node:* module', async () => {
  for (const [file, names] of Object.entries(EXPORT_NAMES)) {
    const result = await build({ entryPoints: [join(import.meta.dirname, '..', '..', 'sandbox', 'addons', 'node', `${file}.ts`)], bundle: false, write: false, metafile: true, format: 'esm', logLevel: 'error' });
    const exported = Object.values(result.metafile.outputs)[0].exports;
    expect([...exported].sort(), file).toEqual([...names].sort());
  }
});
