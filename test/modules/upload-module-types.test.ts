// Every module type Cloudflare's upload (and wrangler) sends, through the admin API, then read by
// a request: Text, Data, CompiledWasm, JSON and CommonJS modules beside the ES entry; kept across
// a restart (the store round-trips the bytes); refused clearly when malformed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCinder, type TestCinder } from '../control/helpers.js';
import { ADD_WASM, partsForm } from './fixtures.js';

let cinder: TestCinder;
beforeAll(async () => {
  cinder = await startCinder();
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

const BYTES = Uint8Array.from([0, 1, 2, 250, 255, 128, 7]);

const ENTRY = `
import page from "./assets/page.html";
import bytes from "./blob.bin";
import addModule from "./add.wasm";
import config from "./config.json";
import greet from "./lib/greet.cjs";
export default {
  fetch() {
    const { add } = new WebAssembly.Instance(addModule).exports;
    const view = new Uint8Array(bytes);
    return Response.json({
      page,
      bytes: Array.from(view),
      isArrayBuffer: bytes instanceof ArrayBuffer,
      isModule: addModule instanceof WebAssembly.Module,
      sum: add(40, 2),
      config,
      greeting: greet("cjs"),
    });
  },
};`;

function upload(name: string, extra: Record<string, { body: BlobPart; type: string }> = {}) {
  return cinder.admin('PUT', `/workers/${name}`, {
    body: partsForm({ main_module: 'index.js' }, {
      'index.js': { body: ENTRY, type: 'application/javascript+module' },
      'assets/page.html': { body: '<h1>héllo</h1>\n', type: 'text/plain' },
      'blob.bin': { body: BYTES, type: 'application/octet-stream' },
      'add.wasm': { body: ADD_WASM, type: 'application/wasm' },
      'config.json': { body: '{"__proto__": {"x": 1}, "mode": "prod"}', type: 'application/json' },
      'lib/greet.cjs': { body: 'const { suffix } = require("./suffix.cjs");\nmodule.exports = (who) => "hello " + who + suffix;', type: 'application/javascript' },
      'lib/suffix.cjs': { body: 'exports.suffix = "!";', type: 'application/javascript' },
      ...extra,
    }),
  });
}

describe('module types through the upload', () => {
  it('serves Text, Data, CompiledWasm, JSON and CommonJS modules as Workers does', async () => {
    const res = await upload('kinds');
    expect(res.status, res.text).toBe(201);
    expect(res.body.modules.map((m: { name: string; type: string }) => `${m.name}:${m.type}`)).toEqual([
      'index.js:esm',
      'assets/page.html:text',
      'blob.bin:data',
      'add.wasm:wasm',
      'config.json:json',
      'lib/greet.cjs:commonjs',
      'lib/suffix.cjs:commonjs',
    ]);
    // sizes are the uploaded bytes, not their stored form
    expect(res.body.modules.find((m: { name: string }) => m.name === 'blob.bin').size).toBe(BYTES.length);
    const served = await cinder.get('kinds.example.com');
    expect(served.status, served.text).toBe(200);
    expect(JSON.parse(served.text)).toEqual({
      page: '<h1>héllo</h1>\n',
      bytes: Array.from(BYTES),
      isArrayBuffer: true,
      isModule: true,
      sum: 42,
      config: { ['__proto__']: { x: 1 }, mode: 'prod' },
      greeting: 'hello cjs!',
    });
  });

  it('keeps binary modules byte for byte across a restart', async () => {
    const dataDir = cinder.dataDir;
    await cinder.close();
    cinder = await startCinder({ dataDir });
    const served = await cinder.get('kinds.example.com');
    expect(served.status, served.text).toBe(200);
    expect(JSON.parse(served.text)).toMatchObject({ bytes: Array.from(BYTES), sum: 42 });
  });

  it('refuses node:* imports of an uploaded (unbundled) module by the same rule as the bundler: flags and date', async () => {
    const put = (name: string, metadata: Record<string, unknown>, code: string) =>
      cinder.admin('PUT', `/workers/${name}`, { body: partsForm({ main_module: 'index.js', ...metadata }, { 'index.js': { body: code, type: 'application/javascript+module' } }) });
    const buffer = 'import { Buffer } from "node:buffer"; export default { fetch() { return new Response(Buffer.from("hi").toString("base64")); } };';
    const none = await put('nodeless', { compatibility_date: '2025-06-01' }, buffer);
    expect(none.status).toBe(400);
    expect(none.text).toMatch(/node:buffer needs the nodejs_compat compatibility flag/);
    const bare = await put('nodeless-bare', { compatibility_date: '2025-06-01' }, 'import { EventEmitter } from "events"; export default { fetch() { return new Response(typeof EventEmitter); } };');
    expect(bare.status).toBe(400);
    expect(bare.text).toMatch(/node:events needs the nodejs_compat compatibility flag/);
    const fs = await put('nodefs', { compatibility_date: '2025-06-01', compatibility_flags: ['nodejs_compat'] }, 'import { readFileSync } from "node:fs"; export default { fetch() { return new Response(readFileSync("/etc/hostname")); } };');
    expect(fs.status).toBe(400);
    expect(fs.text).toMatch(/node:fs is not available on Cinder: there is no file system/);
    // from 2026-08-04 the date alone offers them, as on Workers
    const dated = await put('nodedated', { compatibility_date: '2026-08-04' }, buffer);
    expect(dated.status, dated.text).toBe(201);
    expect((await cinder.get('nodedated.example.com')).text).toBe('aGk=');
  });

  it('does not let the worker take the values of its modules twice or reach the loader internals', async () => {
    const res = await cinder.admin('PUT', '/workers/internal', {
      body: partsForm({ main_module: 'index.js' }, {
        'index.js': { body: 'import "cinder-internal:module-values"; export default {};', type: 'application/javascript+module' },
        'x.bin': { body: BYTES, type: 'application/octet-stream' },
      }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/No such module "cinder-internal:module-values"/);
    const globals = await cinder.admin('PUT', '/workers/globals', {
      body: partsForm({ main_module: 'index.js' }, {
        'index.js': { body: 'import b from "./x.bin"; const seen = Object.getOwnPropertyNames(globalThis).filter((n) => n.includes("cinder")); export default { fetch() { return Response.json({ seen, n: b.byteLength }); } };', type: 'application/javascript+module' },
        'x.bin': { body: BYTES, type: 'application/octet-stream' },
      }),
    });
    expect(globals.status, globals.text).toBe(201);
    expect(JSON.parse((await cinder.get('globals.example.com')).text)).toEqual({ seen: [], n: BYTES.length });
  });

  it('refuses a wasm part that is not WebAssembly, and one that does not compile, naming the module', async () => {
    const notWasm = await upload('badwasm', { 'add.wasm': { body: 'hello', type: 'application/wasm' } });
    expect(notWasm.status).toBe(400);
    expect(notWasm.body.error).toMatch(/module "add\.wasm" is declared application\/wasm but is not a WebAssembly binary/);
    const broken = await upload('badwasm', { 'add.wasm': { body: Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 99, 1, 2]), type: 'application/wasm' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatch(/failed to load: .*(CompileError|WebAssembly)/);
  });

  it('holds a CompiledWasm module\'s memory to the worker\'s memory limit', async () => {
    // (module (memory (export "mem") N)), N pages of 64 KiB
    const memoryModule = (lebPages: number[]) => Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x05, 2 + lebPages.length, 0x01, 0x00, ...lebPages, 0x07, 0x07, 0x01, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00]);
    const upload = (name: string, wasm: Uint8Array) =>
      cinder.admin('PUT', `/workers/${name}`, {
        body: partsForm({ main_module: 'index.js' }, {
          'index.js': { body: 'import m from "./mem.wasm"; const kept = []; export default { fetch() { try { kept.push(new WebAssembly.Instance(m)); return new Response("instances: " + kept.length); } catch (e) { return new Response(e.name + ": " + e.message); } } };', type: 'application/javascript+module' },
          'mem.wasm': { body: wasm, type: 'application/wasm' },
        }),
      });
    // 3000 pages (~188 MB) can never fit the 128 MB default: refused at deploy, naming why.
    const tooBig = await upload('bigmem', memoryModule([0xb8, 0x17]));
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error).toMatch(/failed to load: CompileError: WebAssembly\.Module\(\): maximum memory size \(2048 pages\) is less than initial \(3000 pages\)/);
    // 1200 pages (75 MB) fit once; a second instance is over the limit.
    const fits = await upload('mem75', memoryModule([0xb0, 0x09]));
    expect(fits.status, fits.text).toBe(201);
    expect((await cinder.get('mem75.example.com')).text).toBe('instances: 1');
    expect((await cinder.get('mem75.example.com')).text).toMatch(/^RangeError: exceeded memory limit: WebAssembly\.Instance\(\) needs 75 MB of WebAssembly memory with 75 MB already in use/);
  });

  it('refuses a non-JavaScript entry and unknown part types by name', async () => {
    const entry = await cinder.admin('PUT', '/workers/badentry', { body: partsForm({ main_module: 'a.wasm' }, { 'a.wasm': { body: ADD_WASM, type: 'application/wasm' } }) });
    expect(entry.status).toBe(400);
    expect(entry.body.error).toMatch(/the entry module "a\.wasm" has content type "application\/wasm"; the entry must be JavaScript/);
    const python = await upload('py', { 'x.py': { body: 'print(1)', type: 'text/x-python' } });
    expect(python.status).toBe(400);
    expect(python.body.error).toMatch(/module "x\.py" has content type "text\/x-python", which Cinder cannot load/);
  });

  it('stores compatibility flags with the version and refuses unknown ones by name', async () => {
    const ok = await cinder.admin('PUT', '/workers/flags', {
      body: partsForm({ main_module: 'index.js', compatibility_date: '2025-01-01', compatibility_flags: ['nodejs_compat'] }, { 'index.js': { body: 'export default { fetch() { return new Response("ok"); } };', type: 'application/javascript+module' } }),
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.compatibility_flags).toEqual(['nodejs_compat']);
    const versions = await cinder.admin('GET', '/workers/flags/versions');
    expect(versions.body.versions[0].compatibility_flags).toEqual(['nodejs_compat']);
    const refused = await cinder.admin('PUT', '/workers/flags', {
      body: partsForm({ main_module: 'index.js', compatibility_flags: ['nodejs_compat', 'streams_enable_constructors'] }, { 'index.js': { body: 'export default {};', type: 'application/javascript+module' } }),
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/metadata\.compatibility_flags: "streams_enable_constructors" not supported by Cinder/);
  });
});
