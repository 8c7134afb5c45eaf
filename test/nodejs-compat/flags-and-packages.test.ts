// What nodejs_compat installs by compatibility date and flag (the Buffer and process globals,
// process.env), and real npm packages that need Node's Buffer and crypto, bundled unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { bundleWorker } from './helpers.js';
import { effectiveFlags, nodeModuleProblem, isSupportedNodeModule, NODE_MODULES, nodeModuleAddon } from '../../protocol/node-modules.js';

const probe = `export default { fetch(req, env) { return Response.json({ buffer: typeof Buffer, process: typeof process, env: typeof process === 'object' ? { ...process.env } : null }) } }`;
const vars = { GREETING: { type: 'plain_text', text: 'hi' } } as never;

// nanoid's Node build: `import crypto from 'crypto'`, crypto.randomFillSync and the global Buffer.
// deep-extend (CommonJS): clones Buffers with the global Buffer. simple-concat: collects a
// stream's 'data' chunks with Buffer.concat.
const packagesWorker = `import { nanoid, customAlphabet } from 'nanoid';
  import deepExtend from 'deep-extend';
  import concat from 'simple-concat';
  import { Readable } from 'node:stream';
  export default { async fetch() {
    const ids = Array.from({ length: 50 }, () => nanoid());
    const digits = customAlphabet('0123456789', 12)();
    const source = { bytes: Buffer.from('abc'), nested: { a: 1 } };
    const merged = deepExtend({ nested: { b: 2 } }, source);
    const joined = await new Promise((resolve, reject) => concat(Readable.from([Buffer.from('con'), Buffer.from('cat')]), (err, buf) => err ? reject(err) : resolve(buf)));
    return Response.json({
      idShape: ids.every((id) => /^[A-Za-z0-9_-]{21}$/.test(id)), unique: new Set(ids).size, digits: /^[0-9]{12}$/.test(digits),
      cloned: Buffer.isBuffer(merged.bytes) && merged.bytes !== source.bytes && merged.bytes.toString(), nested: merged.nested,
      joined: Buffer.isBuffer(joined) && joined.toString(),
    });
  } }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    // nodejs_compat before 2024-09-23: the modules, no globals (v1)
    v1: { code: probe, compatibilityDate: '2024-06-01', compatibilityFlags: ['nodejs_compat'], bindings: vars },
    // from 2024-09-23 (v2): the globals; process.env still empty before 2025-04-01
    v2: { code: probe, compatibilityDate: '2024-12-01', compatibilityFlags: ['nodejs_compat'], bindings: vars },
    // from 2025-04-01: process.env filled
    populated: { code: probe, compatibilityDate: '2025-04-01', compatibilityFlags: ['nodejs_compat'], bindings: vars },
    // the flag asks for it before that date; the do-not flag refuses it after
    flagged: { code: probe, compatibilityDate: '2024-12-01', compatibilityFlags: ['nodejs_compat', 'nodejs_compat_populate_process_env'], bindings: vars },
    refused: { code: probe, compatibilityDate: '2025-06-01', compatibilityFlags: ['nodejs_compat', 'nodejs_compat_do_not_populate_process_env'], bindings: vars },
    // no flag: nothing of Node's
    none: { code: probe, compatibilityDate: '2025-06-01', bindings: vars },
    packages: { code: await bundleWorker(packagesWorker, import.meta.dirname), compatibilityDate: '2025-06-01', compatibilityFlags: ['nodejs_compat'] },
  } as never);
});
afterAll(() => server.close());

describe('nodejs_compat by compatibility date and flag', () => {
  const cases: [string, object][] = [
    ['v1', { buffer: 'undefined', process: 'undefined', env: null }],
    ['v2', { buffer: 'function', process: 'object', env: {} }],
    ['populated', { buffer: 'function', process: 'object', env: { GREETING: 'hi' } }],
    ['flagged', { buffer: 'function', process: 'object', env: { GREETING: 'hi' } }],
    ['refused', { buffer: 'function', process: 'object', env: {} }],
    ['none', { buffer: 'undefined', process: 'undefined', env: null }],
  ];
  for (const [worker, expected] of cases) {
    it(`${worker}: ${JSON.stringify(expected)}`, async () => {
      const res = await server.request(worker);
      expect(res.status, res.text).toBe(200);
      expect(JSON.parse(res.text)).toEqual(expected);
    });
  }

  it('derives the flags workerd derives from the date', () => {
    expect(effectiveFlags('2024-09-22', ['nodejs_compat']).sort()).toEqual(['nodejs_compat']);
    expect(effectiveFlags('2024-09-23', ['nodejs_compat']).sort()).toEqual(['nodejs_compat', 'nodejs_compat_v2']);
    expect(effectiveFlags('2025-04-01', ['nodejs_compat']).sort()).toEqual(['nodejs_compat', 'nodejs_compat_populate_process_env', 'nodejs_compat_v2']);
    expect(effectiveFlags('2026-08-04', []).sort()).toEqual(['nodejs_compat', 'nodejs_compat_populate_process_env', 'nodejs_compat_v2']);
    expect(effectiveFlags('2026-08-04', ['no_nodejs_compat', 'no_nodejs_compat_v2'])).not.toContain('nodejs_compat');
    expect(effectiveFlags('2020-01-01', ['nodejs_compat_v2']).sort()).toEqual(['nodejs_compat', 'nodejs_compat_v2']);
    expect(effectiveFlags(undefined, ['nodejs_compat_populate_process_env'])).toEqual([]);
  });
});

describe('which modules', () => {
  it('supports the listed modules with and without the node: prefix, and names the add-on serving each', () => {
    for (const name of NODE_MODULES) {
      expect(isSupportedNodeModule(name)).toBe(true);
      expect(isSupportedNodeModule(`node:${name}`)).toBe(true);
      expect(nodeModuleProblem(`node:${name}`)).toBeNull();
    }
    expect(nodeModuleAddon('node:stream', ['nodejs_compat'])).toBe('nodejs-stream');
    expect(nodeModuleAddon('node:async_hooks', ['nodejs_als'])).toBe('nodejs-als');
    expect(nodeModuleAddon('node:buffer', ['nodejs_compat'])).toBe('nodejs-compat');
  });

  it('refuses the others by name, with the reason', () => {
    expect(nodeModuleProblem('node:fs')).toMatch(/"node:fs" is not available under nodejs_compat in Cinder: there is no file system/);
    expect(nodeModuleProblem('child_process')).toMatch(/cannot start processes/);
    expect(nodeModuleProblem('node:nonsense')).toMatch(/not a Node.js built-in module/);
    expect(nodeModuleProblem('lodash')).toBeNull();
  });
});

describe('npm packages that need Node, bundled unchanged', () => {
  it('nanoid (node:crypto, Buffer), deep-extend (Buffer), simple-concat (Buffer.concat over a node:stream)', async () => {
    const res = await server.request('packages');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ idShape: true, unique: 50, digits: true, cloned: 'abc', nested: { a: 1, b: 2 }, joined: 'concat' });
  });
});
