// CompressionStream / DecompressionStream in workers, checked against the host's zlib.
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const workers = {
  compress: `export default { async fetch(request) {
    const format = new URL(request.url).searchParams.get('format');
    return new Response(request.body.pipeThrough(new CompressionStream(format)));
  } }`,
  decompress: `export default { async fetch(request) {
    const format = new URL(request.url).searchParams.get('format');
    try {
      const text = await new Response(request.body.pipeThrough(new DecompressionStream(format))).text();
      return new Response(text);
    } catch (e) { return new Response(e.name + ': ' + e.message, { status: 400 }) }
  } }`,
  roundtrip: `export default { async fetch() {
    const input = 'hello compression '.repeat(1000);
    const compressed = new Blob([input]).stream().pipeThrough(new CompressionStream('gzip'));
    const back = await new Response(compressed.pipeThrough(new DecompressionStream('gzip'))).text();
    let bad = 'none'; try { new CompressionStream('brotli') } catch (e) { bad = e.name }
    return Response.json({ same: back === input, bad });
  } }`,
};

describe('compression streams', () => {
  let server: TestServer;
  beforeAll(async () => {
    // A first (de)compression uses ~6 ms of CPU here (the add-on's code compiled on first use): 1 s
    // keeps a slower, loaded CI machine far from the 50 ms default, which these tests are not about.
    server = await startTestServer(Object.fromEntries(Object.entries(workers).map(([name, code]) => [name, { code, limits: { cpuMs: 1000 } }])));
  });
  afterAll(() => server.close());

  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
  const inflate = { gzip: zlib.gunzipSync, deflate: zlib.inflateSync, 'deflate-raw': zlib.inflateRawSync };
  const deflate = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, 'deflate-raw': zlib.deflateRawSync };

  it.each(['gzip', 'deflate', 'deflate-raw'] as const)('compresses %s that zlib can read', async (format) => {
    const res = await server.request('compress', `/?format=${format}`, { method: 'POST', body: text });
    expect(res.status).toBe(200);
    expect(res.body.length).toBeLessThan(text.length / 4);
    expect(inflate[format](res.body).toString()).toBe(text);
  });

  it.each(['gzip', 'deflate', 'deflate-raw'] as const)('decompresses %s that zlib wrote', async (format) => {
    const res = await server.request('decompress', `/?format=${format}`, { method: 'POST', body: deflate[format](Buffer.from(text)) });
    expect(res.text).toBe(text);
  });

  it('fails corrupt input with a TypeError', async () => {
    const res = await server.request('decompress', '/?format=gzip', { method: 'POST', body: Buffer.from('definitely not gzip') });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^TypeError: Decompression failed/);
  });

  it('round-trips inside the worker and refuses unknown formats', async () => {
    expect(JSON.parse((await server.request('roundtrip')).text)).toEqual({ same: true, bad: 'TypeError' });
  });
});
