// The bundler and built-in modules, with real files: cloudflare:* left to the runtime (also when a
// CommonJS file require()s it), node:* and bare Node.js names left to the runtime as node:* under
// nodejs_compat, refused without it; and the bundle then running in an isolate.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorker } from '../../src/app/bundle.js';
import { startTestServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'cinder-builtins-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function project(name: string, files: Record<string, string>): string {
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, file, '..'), { recursive: true });
    writeFileSync(join(dir, name, file), content);
  }
  return join(dir, name, 'index.js');
}

describe('built-in modules in the bundle', () => {
  it('turns a CommonJS require() of cloudflare:workers into an import that runs', async () => {
    const entry = project('cjs', {
      'lib.cjs': 'const { waitUntil, WorkerEntrypoint } = require("cloudflare:workers");\nmodule.exports = { kinds: [typeof waitUntil, typeof WorkerEntrypoint] };',
      'index.js': 'import lib from "./lib.cjs";\nexport default { fetch() { return Response.json(lib.kinds); } };',
    });
    const bundle = await bundleWorker(entry);
    expect(bundle.modules).toHaveLength(1);
    expect(bundle.modules[0].code).toMatch(/from "cloudflare:workers"/);
    const server = await startTestServer({ cjs: bundle.modules[0].code });
    try {
      const res = await server.request('cjs');
      expect(res.status, res.text).toBe(200);
      expect(JSON.parse(res.text)).toEqual(['function', 'function']);
    } finally {
      await server.close();
    }
  });

  it('leaves node:* and bare Node.js names as node:* imports under nodejs_compat', async () => {
    const entry = project('node', {
      'index.js': 'import { Buffer } from "node:buffer";\nimport { EventEmitter } from "events";\nimport { AsyncLocalStorage } from "async_hooks";\nexport default { fetch() { return new Response(String([Buffer, EventEmitter, AsyncLocalStorage].length)); } };',
    });
    const code = (await bundleWorker(entry, { compatibilityFlags: ['nodejs_compat'] })).modules[0].code;
    expect(code).toMatch(/from "node:buffer"/);
    expect(code).toMatch(/from "node:events"/);
    expect(code).toMatch(/from "node:async_hooks"/);
    // nodejs_als offers node:async_hooks alone
    await expect(bundleWorker(entry, { compatibilityFlags: ['nodejs_als'] })).rejects.toThrow(/node:buffer needs the nodejs_compat compatibility flag \(nodejs_als offers node:async_hooks only\)/);
    await expect(bundleWorker(entry, {})).rejects.toThrow(/index\.js:1:\d+: node:buffer needs the nodejs_compat compatibility flag/);
  });

  it('honours the compatibility date as the runtime does: nodejs_compat on by default from 2026-08-04, each half turned off by its no_ flag', async () => {
    const entry = project('dated', { 'index.js': 'import { Buffer } from "node:buffer";\nimport { EventEmitter } from "events";\nexport default { fetch() { return new Response(String([Buffer, EventEmitter].length)); } };' });
    const code = (await bundleWorker(entry, { compatibilityDate: '2026-08-04' })).modules[0].code;
    expect(code).toMatch(/from "node:buffer"/);
    expect(code).toMatch(/from "node:events"/);
    // no_nodejs_compat alone leaves nodejs_compat_v2 on by its own default, and v2 is nodejs_compat
    expect((await bundleWorker(entry, { compatibilityDate: '2026-09-01', compatibilityFlags: ['no_nodejs_compat'] })).modules[0].code).toMatch(/from "node:buffer"/);
    await expect(bundleWorker(entry, { compatibilityDate: '2026-09-01', compatibilityFlags: ['no_nodejs_compat', 'no_nodejs_compat_v2'] })).rejects.toThrow(/node:buffer is not available: no_nodejs_compat \(with no_nodejs_compat_v2\) turns Node\.js compatibility off/);
    await expect(bundleWorker(entry, { compatibilityDate: '2026-08-03' })).rejects.toThrow(/node:buffer needs the nodejs_compat compatibility flag/);
  });

  it('leaves a bare import of a prefix-only Node.js module (test, sqlite) to npm', async () => {
    const entry = project('prefix-only', {
      'index.js': 'import t from "test";\nexport default { fetch() { return new Response(t); } };',
      'node_modules/test/package.json': '{"name":"test","main":"index.js"}',
      'node_modules/test/index.js': 'module.exports = "the npm package called test";',
    });
    const code = (await bundleWorker(entry, { compatibilityFlags: ['nodejs_compat'] })).modules[0].code;
    expect(code).toContain('the npm package called test');
    await expect(bundleWorker(project('prefixed', { 'index.js': 'import "node:sqlite";\nexport default {};' }), { compatibilityFlags: ['nodejs_compat'] })).rejects.toThrow(/node:sqlite is not available on Cinder: absent from workerd; use D1/);
  });

  it('names every refused import with its file and line', async () => {
    const entry = project('refused', {
      'index.js': 'import "./lib.js";\nexport default {};',
      'lib.js': 'import { spawn } from "node:child_process";\nimport net from "net";\nexport { spawn, net };',
    });
    let message = '';
    try {
      await bundleWorker(entry, { compatibilityFlags: ['nodejs_compat'] });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/lib\.js:1:\d+: node:child_process is not available on Cinder/);
    expect(message).toMatch(/lib\.js:2:\d+: "net" is a Node\.js built-in module: node:net is not available on Cinder/);
  });

  it('builds a library whose unused parts import modules Cinder lacks (as @sentry/cloudflare does), and refuses them once used', async () => {
    const lib = {
      'node_modules/monitor/package.json': '{ "name": "monitor", "type": "module", "main": "index.js", "sideEffects": false }',
      'node_modules/monitor/index.js': 'export { capture } from "./capture.js";\nexport { tcpIntegration } from "./tcp.js";',
      'node_modules/monitor/capture.js': 'export function capture(e) { return "captured " + e.message; }',
      'node_modules/monitor/tcp.js': 'import * as net from "node:net";\nimport dc from "diagnostics_channel";\nexport function tcpIntegration() { return [net.connect, dc.channel]; }',
    };
    const unused = project('unused-builtins', { ...lib, 'index.js': 'import { capture } from "monitor";\nexport default { fetch() { return new Response(capture(new Error("boom"))); } };' });
    const bundle = await bundleWorker(unused, { compatibilityFlags: ['nodejs_compat'] });
    expect(bundle.modules[0].code).not.toMatch(/node:net|diagnostics_channel/);
    const server = await startTestServer({ unused: bundle.modules[0].code });
    try {
      expect((await server.request('unused')).text).toBe('captured boom');
    } finally {
      await server.close();
    }
    const used = project('used-builtins', { ...lib, 'index.js': 'import { tcpIntegration } from "monitor";\nexport default { fetch() { return new Response(String(tcpIntegration().length)); } };' });
    const refused = await bundleWorker(used, { compatibilityFlags: ['nodejs_compat'] }).then(() => '', (error: Error) => error.message);
    expect(refused).toMatch(/monitor\/tcp\.js:1:\d+: node:net is not available on Cinder/);
    expect(refused).toMatch(/monitor\/tcp\.js:2:\d+: "diagnostics_channel" is a Node\.js built-in module: node:diagnostics_channel is not available on Cinder/);
  });

  it('runs an import() of a built-in module (isolated-vm has no dynamic import: it becomes a static one)', async () => {
    const entry = project('dynamic', {
      'index.js': 'export default { async fetch() { const cf = await import("cloudflare:workers"); const again = await import("cloudflare:workers"); return Response.json([typeof cf.WorkerEntrypoint, typeof cf.env, cf === again]); } };',
    });
    const bundle = await bundleWorker(entry);
    expect(bundle.modules[0].code).not.toMatch(/import\(/);
    const server = await startTestServer({ dynamic: bundle.modules[0].code });
    try {
      const res = await server.request('dynamic');
      expect(res.status, res.text).toBe(200);
      expect(JSON.parse(res.text)).toEqual(['function', 'object', true]);
    } finally {
      await server.close();
    }
  });
});
