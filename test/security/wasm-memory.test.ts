// WebAssembly memory under the worker's memory limit (sandbox/wasm.ts). Before: wasm pages lived
// outside the isolate's heap limit and isolated-vm's heap statistics, so a worker held 400 MB of
// wasm memory at the 128 MB default and one 256 MB memory was allowed. Now every memory a guest can
// make is known: constructed and exported memories are tracked and clamped to the limit, a module's
// unexported memory is charged at its declared maximum (refused without one), and the host adds
// the JS heap after each event (503 naming the memory limit, isolate recycled). The modules below
// are written by hand, byte by byte. A neighbour answers throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const TYPE_I32_TO_I32 = [0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f];
const ONE_FUNCTION = [0x03, 0x02, 0x01, 0x00];
// (func (param i32) (result i32) local.get 0 memory.grow 0)
const GROW_BODY = [0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b];
const EXPORT_GROW = [0x07, 0x08, 0x01, 0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x00];
// exports "mem" (memory 0) and "grow" (func 0)
const EXPORT_MEM_AND_GROW = [0x07, 0x0e, 0x02, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x00];
const MEMORY_1_PAGE_NO_MAX = [0x05, 0x03, 0x01, 0x00, 0x01];
const MEMORY_1_PAGE_MAX_16 = [0x05, 0x04, 0x01, 0x01, 0x01, 0x10];
// import "env" "mem" (memory 1)
const IMPORT_MEMORY = [0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01];

const modules = {
  /** defines a growable memory (no maximum) and exports it, with grow(pages) */
  exported: [...HEADER, ...TYPE_I32_TO_I32, ...ONE_FUNCTION, ...MEMORY_1_PAGE_NO_MAX, ...EXPORT_MEM_AND_GROW, ...GROW_BODY],
  /** defines a memory without a maximum and keeps it to itself (exports only grow) */
  hidden: [...HEADER, ...TYPE_I32_TO_I32, ...ONE_FUNCTION, ...MEMORY_1_PAGE_NO_MAX, ...EXPORT_GROW, ...GROW_BODY],
  /** the same with a maximum of 16 pages (1 MB) */
  hiddenBounded: [...HEADER, ...TYPE_I32_TO_I32, ...ONE_FUNCTION, ...MEMORY_1_PAGE_MAX_16, ...EXPORT_GROW, ...GROW_BODY],
  /** imports env.mem and exports grow */
  imported: [...HEADER, ...TYPE_I32_TO_I32, ...IMPORT_MEMORY, ...ONE_FUNCTION, ...EXPORT_GROW, ...GROW_BODY],
};

const prelude = `const M = ${JSON.stringify(modules)}; const bytes = (name) => new Uint8Array(M[name]);
const attempt = (fn) => { try { return String(fn()); } catch (e) { return e.name + ': ' + e.message; } };
const attemptAsync = async (fn) => { try { return String(await fn()); } catch (e) { return e.name + ': ' + e.message; } };
// Compiled at startup: in a handler, compiling bytes is refused (as on workerd).
const compiled = Object.fromEntries(Object.keys(M).map((name) => [name, new WebAssembly.Module(bytes(name))]));
const mod = (name) => compiled[name];`;

const worker = (body: string) => `${prelude}\nexport default { async fetch(request) { ${body} } };`;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    // issue 22: four 100 MB memories held at the 128 MB default
    hoard: worker(`const held = globalThis.held ??= []; const out = [];
      for (let i = 0; i < 4; i++) out.push(attempt(() => { held.push(new WebAssembly.Memory({ initial: 1600 })); return held.length; }));
      return Response.json(out);`),
    // issue 22: one 256 MB memory
    big: worker(`return new Response(attempt(() => new WebAssembly.Memory({ initial: 4096 }).buffer.byteLength));`),
    // grow(), past the limit and within it
    grows: worker(`const m = new WebAssembly.Memory({ initial: 1 });
      const past = attempt(() => m.grow(4000));
      const within = attempt(() => m.grow(15));
      return Response.json({ past, within, bytes: m.buffer.byteLength, maximum: attempt(() => m.type ? m.type().maximum : 'n/a') });`),
    // the memory.grow instruction on an exported memory without a maximum: clamped at the limit
    instruction: worker(`const { exports } = new WebAssembly.Instance(mod('exported'));
      return Response.json({ past: exports.grow(4000), within: exports.grow(100), bytes: exports.mem.buffer.byteLength });`),
    // three exported memories grown by the instruction to ~63 MB each: over the limit after the event
    over: worker(`const keep = globalThis.keep ??= [];
      for (let i = 0; i < 3; i++) { const { exports } = new WebAssembly.Instance(mod('exported')); exports.grow(1000); keep.push(exports); }
      return new Response('held ' + keep.length);`),
    hidden: worker(`const sync = attempt(() => new WebAssembly.Instance(mod('hidden')));
      const asyncBytes = await attemptAsync(() => WebAssembly.instantiate(mod('hidden')));
      const bounded = attempt(() => { const i = new WebAssembly.Instance(mod('hiddenBounded')); return [i.exports.grow(15), i.exports.grow(1)].join(','); });
      return Response.json({ sync, asyncBytes, bounded });`),
    imported: worker(`const mem = new WebAssembly.Memory({ initial: 1 });
      const instance = await WebAssembly.instantiate(mod('imported'), { env: { mem } });
      const past = instance.exports.grow(4000);
      const within = instance.exports.grow(100);
      return Response.json({ past, within, bytes: mem.buffer.byteLength });`),
    tamper: worker(`const proto = WebAssembly.Memory.prototype;
      const tries = [
        attempt(() => { proto.grow = function () { return 'original?'; }; return proto.grow === WebAssembly.Memory.prototype.grow; }),
        attempt(() => delete WebAssembly.Module),
        attempt(() => Object.getOwnPropertyDescriptor(WebAssembly, 'Memory').writable),
        attempt(() => typeof WebAssembly.instantiateStreaming),
      ];
      // a valueOf that answers 1 the first time and 4096 after
      let n = 0; const sly = { valueOf() { return n++ ? 4096 : 1; } };
      tries.push(attempt(() => new WebAssembly.Memory({ initial: sly }).buffer.byteLength));
      return Response.json(tries);`),
    // compiling bytes in a handler: refused at once (it used to hang 30 s, then 503)
    'compile-in-handler': worker(`return Response.json({
      module: attempt(() => new WebAssembly.Module(bytes('hiddenBounded'))),
      compile: await attemptAsync(() => WebAssembly.compile(bytes('hiddenBounded'))),
      instantiate: await attemptAsync(() => WebAssembly.instantiate(bytes('hiddenBounded'))),
      startupModule: attempt(() => new WebAssembly.Instance(mod('hiddenBounded')).exports.grow(1)),
    });`),
    neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
  });
});
afterAll(() => server.close());

async function withNeighbour<T>(attack: () => Promise<T>): Promise<T> {
  const neighbour = Promise.all(Array.from({ length: 20 }, () => server.request('neighbour')));
  const result = await attack();
  const answers = await neighbour;
  expect(answers.filter((r) => r.status !== 200 || r.text !== 'neighbour ok')).toHaveLength(0);
  return result;
}

describe('WebAssembly memory counts against the memory limit', () => {
  it('refuses the memories past the limit (four 100 MB memories: the second and later refused)', async () => {
    const res = await withNeighbour(() => server.request('hoard'));
    expect(res.status).toBe(200);
    const out = JSON.parse(res.text) as string[];
    expect(out[0]).toBe('1');
    for (const refused of out.slice(1)) expect(refused).toMatch(/^RangeError: exceeded memory limit: new WebAssembly\.Memory\(\).*memory limit is 128 MB/);
  });

  it('refuses one 256 MB memory at the 128 MB default', async () => {
    const res = await withNeighbour(() => server.request('big'));
    expect(res.text).toMatch(/^RangeError: exceeded memory limit/);
  });

  it('grow() past the limit is a RangeError; within it grows', async () => {
    const out = JSON.parse((await server.request('grows')).text);
    expect(out.past).toMatch(/^RangeError: exceeded memory limit: WebAssembly\.Memory\.prototype\.grow\(\)/);
    expect(out.within).toBe('1');
    expect(out.bytes).toBe(16 * 65536);
  });

  it("clamps a module's own exported memory: the memory.grow instruction stops at the limit", async () => {
    const out = JSON.parse((await withNeighbour(() => server.request('instruction'))).text);
    expect(out).toEqual({ past: -1, within: 1, bytes: 101 * 65536 });
  });

  it('ends the invocation with the 503 naming the memory limit when wasm plus heap is over after the event, and recycles the isolate', async () => {
    const res = await withNeighbour(() => server.request('over'));
    expect(res.status).toBe(503);
    expect(res.text).toMatch(/memory limit/);
    expect(server.logs.some((l) => l.worker === 'over' && l.limit === 'memory' && /isolate recycled/.test(String(l.msg)))).toBe(true);
    // a fresh isolate: the memories are gone, the next request is the same attack from zero
    const again = await server.request('over');
    expect(again.status).toBe(503);
  });

  it('refuses a module whose unexported memory has no maximum, and charges a bounded one', async () => {
    const out = JSON.parse((await server.request('hidden')).text);
    expect(out.sync).toMatch(/^RangeError: exceeded memory limit: a module whose unexported memory has no maximum within the limit/);
    expect(out.asyncBytes).toMatch(/^RangeError: exceeded memory limit/);
    expect(out.bounded).toBe('1,-1');
  });

  it('clamps an imported memory made by new WebAssembly.Memory', async () => {
    const out = JSON.parse((await server.request('imported')).text);
    expect(out).toEqual({ past: -1, within: 1, bytes: 101 * 65536 });
  });

  it('refuses compiling bytes in a handler at once, as workerd does; modules compiled at startup still instantiate', async () => {
    const res = await server.request('compile-in-handler');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      module: 'CompileError: WebAssembly.Module(): Wasm code generation disallowed by embedder',
      compile: 'CompileError: WebAssembly.compile(): Wasm code generation disallowed by embedder',
      instantiate: 'CompileError: WebAssembly.instantiate(): Wasm code generation disallowed by embedder',
      startupModule: '1',
    });
  });

  it('cannot be undone by user code', async () => {
    const out = JSON.parse((await server.request('tamper')).text) as string[];
    expect(out[0]).toMatch(/^TypeError: Cannot assign to read only property 'grow'/); // modules are strict
    expect(out[1]).toMatch(/^(false|TypeError)/);
    expect(out[2]).toBe('false');
    expect(out[3]).toBe('undefined');
    expect(out[4]).toBe(String(65536));
  });
});
