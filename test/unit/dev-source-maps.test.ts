// Stacks of bundled workers mapped back to their sources, as `cinder dev` shows them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleWorker } from '../../src/app/bundle.js';
import { SourceMaps } from '../../src/app/dev-source-maps.js';

describe('SourceMaps', () => {
  it('maps bundle positions to source files and lines, once, leaving other frames alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-maps-'));
    writeFileSync(join(dir, 'helper.ts'), 'export function bad(): never {\n  throw new Error("x");\n}\n');
    // the entry's own name is the bundle's module name: a mapped frame must not be mapped again
    writeFileSync(join(dir, 'sw.js'), 'import { bad } from "./helper.ts";\naddEventListener("fetch", (e) => e.respondWith(bad()));\n');
    const bundle = await bundleWorker(join(dir, 'sw.js'), { mode: 'development', sourcemap: true });
    expect(bundle.main).toBe('sw.js');
    const lines = bundle.modules[0].code.split('\n');
    const throwLine = lines.findIndex((l) => l.includes('throw new Error')) + 1;
    const throwColumn = lines[throwLine - 1].indexOf('throw') + 1;
    const maps = new SourceMaps(dir);
    maps.set('sw', bundle.main, bundle.sourceMap);
    const stack = `Error: x\n    at bad (file:///sw.js:${throwLine}:${throwColumn})\n    at dispatchFetch (cinder:sandbox.js:23:100)`;
    const mapped = maps.map('sw', stack);
    expect(mapped).toBe('Error: x\n    at bad (helper.ts:2:3)\n    at dispatchFetch (cinder:sandbox.js:23:100)');
    expect(maps.map('sw', mapped)).toBe(mapped);
    // another worker's frames, and a worker without a map, are left as they are
    expect(maps.map('other', stack)).toBe(stack);
    expect(new SourceMaps('/elsewhere').map('sw', stack)).toBe(stack);
    // sources outside the working directory are shown by absolute path
    const outside = new SourceMaps(join(dir, 'sub'));
    outside.set('sw', bundle.main, bundle.sourceMap);
    expect(outside.map('sw', stack)).toContain(`at bad (${join(dir, 'helper.ts')}:2:3)`);
  });

  it('replaces process.env.NODE_ENV at build: production by default, development when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-define-'));
    writeFileSync(join(dir, 'w.js'), 'export default { fetch() { return new Response(String(process.env.NODE_ENV) + globalThis.process.env.NODE_ENV) } };\n');
    const prod = (await bundleWorker(join(dir, 'w.js'))).modules[0].code;
    expect(prod).toContain('String("production") + "production"');
    expect(prod).not.toContain('process.env');
    expect((await bundleWorker(join(dir, 'w.js'), { mode: 'development' })).modules[0].code).toContain('String("development")');
  });
});
