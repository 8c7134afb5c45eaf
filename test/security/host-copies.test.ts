// Bytes the host hands an isolate (op answers, decompressed output) must never take the process
// down: an isolate too full to take them ends its invocation at the memory limit (503), a
// decompression bomb fails in the guest as a RangeError, and the neighbour keeps answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { NeighbourLoad } from '../helpers/neighbour-load.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const MB = 1024 * 1024;
// The finding of issue 22: a 61 KB gzip of 60 MB of zeros, inflated after the guest took 90 MB.
const bomb = zlib.gzipSync(Buffer.alloc(60 * MB));
// 8 MB of zeros: under the per-chunk bound, too much for an isolate that is nearly full.
const eightMb = zlib.gzipSync(Buffer.alloc(8 * MB));
// 300 MB of zeros: past the bound per stream even when fed in small pieces.
const huge = zlib.gzipSync(Buffer.alloc(300 * MB));

// hold: MB the guest keeps before it inflates; 'full' fills the isolate to its limit, then frees 4.
const inflate = (hold: number | 'full', opts: { catchErrors?: boolean; pieces?: number } = {}) => `export default { async fetch(request) {
  const hold = [];
  if (${hold === 'full'}) { try { for (;;) hold.push(new Uint8Array(MB).fill(1)); } catch {} hold.length -= 4; }
  else for (let i = 0; i < ${hold === 'full' ? 0 : hold}; i++) hold.push(new Uint8Array(MB).fill(1));
  const input = new Uint8Array(await request.arrayBuffer());
  const ds = new DecompressionStream('gzip');
  const writer = ds.writable.getWriter();
  const piece = ${opts.pieces ?? 0} || input.byteLength;
  (async () => { for (let at = 0; at < input.byteLength; at += piece) await writer.write(input.subarray(at, at + piece)); await writer.close(); })().catch(() => {});
  let n = 0;
  try {
    const reader = ds.readable.getReader();
    for (;;) { const { value, done } = await reader.read(); if (done) break; n += value.byteLength; }
  } catch (e) {
    ${opts.catchErrors ? "return new Response('caught ' + e.name);" : 'throw e;'}
  }
  return new Response('inflated ' + n + ' held ' + hold.length);
} }; const MB = 1024 * 1024;`;

let server: TestServer;
let neighbour: NeighbourLoad | null = null;

beforeAll(async () => {
  server = await startTestServer({
    'bomb': { code: inflate(90), limits: { cpuMs: 5000 } },
    'full': { code: inflate('full'), limits: { cpuMs: 5000 } },
    'full-catching': { code: inflate('full', { catchErrors: true }), limits: { cpuMs: 5000 } },
    'streamed-bomb': { code: inflate(0, { pieces: 4096 }), limits: { cpuMs: 30_000 } },
    'fits': { code: inflate(0), limits: { cpuMs: 5000 } },
    'neighbour': `export default { fetch() { return new Response('neighbour ok') } }`,
  });
  // A neighbour under steady load for the whole file: none of its requests may fail.
  neighbour = new NeighbourLoad(server);
});

afterAll(async () => {
  await neighbour?.stop();
  await server?.close();
});

describe('host-to-isolate copies', () => {
  it('a gzip bomb after the guest took 90 MB is a RangeError in the guest naming the bound', async () => {
    const res = await server.request('bomb', '/', { method: 'POST', body: bomb });
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/RangeError: Decompression failed: one chunk produced more than \d+ bytes/);
  });

  it('bytes an isolate cannot hold end the invocation at the memory limit (503)', async () => {
    const res = await server.request('full', '/', { method: 'POST', body: eightMb });
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded memory limit');
  });

  it('a guest that catches the failed copy still ends at the memory limit', async () => {
    const res = await server.request('full-catching', '/', { method: 'POST', body: eightMb });
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded memory limit');
  });

  it('output over the bound per stream fails in the guest, fed in small pieces', async () => {
    const res = await server.request('streamed-bomb', '/', { method: 'POST', body: huge });
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/RangeError: Decompression failed: the stream produced more than \d+ bytes/);
  });

  it('decompression within the bounds works, and the neighbour never failed', async () => {
    const res = await server.request('fits', '/', { method: 'POST', body: eightMb });
    expect(res.text).toBe(`inflated ${8 * MB} held 0`);
    expect(neighbour!.requests).toBeGreaterThan(0);
    expect(neighbour!.failures).toBe(0);
  });
});
