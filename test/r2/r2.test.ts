// The R2 Worker API in real workers against the filesystem store: objects with metadata and
// checksums, streaming puts and gets, a 20 MB multipart upload sent through HTTP and read back
// whole and by range, conditional reads and writes, list with delimiter and cursor, bounded
// buckets, and buckets kept apart between accounts.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { installR2, R2Store } from '../../bindings/r2/index.js';
import { R2_OPS } from '../../protocol/wall.js';
import type { BindingConfig } from '../../src/model/worker-definition.js';

const bucket = (bucket_name: string, account?: string): BindingConfig => ({ type: 'r2_bucket', bucket_name, ...(account ? { account } : {}) });

const runner = (body: string) => `export default {
  async fetch(request, env) {
    try {
      const ok = await (async () => { ${body} })();
      return ok instanceof Response ? ok : Response.json({ ok });
    } catch (e) {
      return Response.json({ error: { name: e.name, message: e.message } });
    }
  },
};`;

let server: TestServer;
let store: R2Store;
let root: string;
let n = 0;

async function run(body: string, bindings: Record<string, BindingConfig> = { FILES: bucket('files') }, limits?: { cpuMs: number }): Promise<any> {
  const name = `r${n++}`;
  server.deploy(name, { code: runner(body), bindings, limits });
  const response = await server.request(name, '/');
  expect(response.status, response.text).toBe(200);
  return JSON.parse(response.text);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cinder-r2-'));
  server = await startTestServer({});
  store = new R2Store({ root, maxBucketBytes: 64 * 1024 * 1024 });
  installR2(server.runtime, store);
});
afterAll(async () => {
  await server.close();
  store.close();
  rmSync(root, { recursive: true, force: true });
});

describe('R2 objects', () => {
  it('puts with metadata and reads it back through head, get and writeHttpMetadata', async () => {
    const { ok } = await run(`
      const put = await env.FILES.put('docs/a.txt', 'hello r2', { httpMetadata: { contentType: 'text/plain', cacheControl: 'max-age=60' }, customMetadata: { owner: 'ada' } });
      const head = await env.FILES.head('docs/a.txt');
      const got = await env.FILES.get('docs/a.txt');
      const headers = new Headers();
      got.writeHttpMetadata(headers);
      return {
        put: { key: put.key, size: put.size, etag: put.etag, httpEtag: put.httpEtag, md5: put.checksums.toJSON().md5, uploaded: put.uploaded instanceof Date, storageClass: put.storageClass },
        head: [head.size, head.customMetadata, head.httpMetadata],
        text: await got.text(),
        headers: [...headers],
        missing: [await env.FILES.get('nope'), await env.FILES.head('nope')],
      };`);
    const md5 = createHash('md5').update('hello r2').digest('hex');
    expect(ok).toEqual({
      put: { key: 'docs/a.txt', size: 8, etag: md5, httpEtag: `"${md5}"`, md5, uploaded: true, storageClass: 'Standard' },
      head: [8, { owner: 'ada' }, { contentType: 'text/plain', cacheControl: 'max-age=60' }],
      text: 'hello r2',
      headers: [['cache-control', 'max-age=60'], ['content-type', 'text/plain']],
      missing: [null, null],
    });
  });

  it('verifies a given checksum and refuses a wrong one, storing nothing', async () => {
    const good = createHash('sha256').update('checked').digest('hex');
    const { ok } = await run(`
      const stored = await env.FILES.put('checked', 'checked', { sha256: '${good}' });
      let refused;
      try { await env.FILES.put('unchecked', 'other bytes', { md5: '${'0'.repeat(32)}' }); } catch (e) { refused = e.message; }
      return { sha256: stored.checksums.toJSON().sha256, refused, absent: await env.FILES.head('unchecked') };`);
    expect(ok).toEqual({ sha256: good, refused: 'put: The Content-MD5 you specified did not match what we received. (10037)', absent: null });
  });

  it('streams a put from a ReadableStream the worker makes, and a get as a stream', async () => {
    const { ok } = await run(`
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const writing = (async () => { for (let i = 0; i < 64; i++) await writer.write(new Uint8Array(16 * 1024).fill(i)); await writer.close(); })();
      const [put] = await Promise.all([env.FILES.put('streamed', readable), writing]);
      const object = await env.FILES.get('streamed');
      const reader = object.body.getReader();
      let chunks = 0, total = 0, sum = 0;
      for (;;) { const { done, value } = await reader.read(); if (done) break; chunks++; total += value.byteLength; sum += value[0]; }
      return { size: put.size, total, moreThanOneChunk: chunks > 1, sum };`);
    expect(ok).toMatchObject({ size: 1024 * 1024, total: 1024 * 1024, moreThanOneChunk: true });
  });

  it('deletes one key or many', async () => {
    const { ok } = await run(`
      await Promise.all(['d1', 'd2', 'd3'].map((k) => env.FILES.put(k, k)));
      await env.FILES.delete('d1');
      await env.FILES.delete(['d2', 'd3', 'never-there']);
      return (await env.FILES.list({ prefix: 'd' })).objects.map((o) => o.key);`);
    expect(ok).toEqual(['docs/a.txt']);
  });
});

describe('R2 multipart uploads', () => {
  const original = randomBytes(20 * 1024 * 1024);
  const key = 'big/video.bin';
  const api = `
    const url = new URL(request.url);
    const key = ${JSON.stringify(key)};
    if (url.pathname === '/create') return Response.json({ uploadId: (await env.FILES.createMultipartUpload(key, { httpMetadata: { contentType: 'video/mp4' } })).uploadId });
    if (url.pathname === '/part') {
      const upload = env.FILES.resumeMultipartUpload(key, url.searchParams.get('id'));
      return Response.json(await upload.uploadPart(Number(url.searchParams.get('n')), request.body));
    }
    if (url.pathname === '/complete') {
      const upload = env.FILES.resumeMultipartUpload(key, url.searchParams.get('id'));
      const object = await upload.complete(await request.json());
      return Response.json({ size: object.size, etag: object.etag });
    }
    if (url.pathname === '/object') {
      const object = await env.FILES.get(key, { range: request.headers, onlyIf: request.headers });
      if (!object) return new Response('missing', { status: 404 });
      if (!('body' in object)) return new Response(null, { status: 304, headers: { etag: object.httpEtag } });
      const headers = new Headers({ etag: object.httpEtag });
      object.writeHttpMetadata(headers);
      if (object.range) headers.set('content-range', 'bytes ' + object.range.offset + '-' + (object.range.offset + object.range.length - 1) + '/' + object.size);
      return new Response(object.body, { status: object.range && request.headers.has('range') ? 206 : 200, headers });
    }
    return new Response('no route', { status: 404 });`;

  beforeAll(() => {
    server.deploy('uploads', { code: runner(api), bindings: { FILES: bucket('files') } });
  });

  it('uploads 20 MB in three parts through HTTP, completes it, and reads it whole and by range', async () => {
    const { uploadId } = JSON.parse((await server.request('uploads', '/create', { method: 'POST' })).text);
    const cuts = [0, 8 * 1024 * 1024, 16 * 1024 * 1024, original.length];
    const parts = [];
    for (let i = 0; i < 3; i++) {
      const response = await server.request('uploads', `/part?id=${uploadId}&n=${i + 1}`, { method: 'PUT', body: original.subarray(cuts[i], cuts[i + 1]) });
      expect(response.status, response.text).toBe(200);
      parts.push(JSON.parse(response.text));
    }
    expect(parts.map((p) => p.etag)).toEqual([0, 1, 2].map((i) => createHash('md5').update(original.subarray(cuts[i], cuts[i + 1])).digest('hex')));
    const completed = await server.request('uploads', `/complete?id=${uploadId}`, { method: 'POST', body: JSON.stringify(parts) });
    const partDigests = Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex')));
    expect(JSON.parse(completed.text)).toEqual({ size: original.length, etag: `${createHash('md5').update(partDigests).digest('hex')}-3` });

    const whole = await server.request('uploads', '/object');
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('video/mp4');
    expect(whole.body.length).toBe(original.length);
    expect(whole.body.equals(original)).toBe(true);

    // A range across the boundary between parts 1 and 2.
    const start = 8 * 1024 * 1024 - 1000;
    const ranged = await server.request('uploads', '/object', { headers: { range: `bytes=${start}-${start + 2999}` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes ${start}-${start + 2999}/${original.length}`);
    expect(ranged.body.equals(original.subarray(start, start + 3000))).toBe(true);
    const suffix = await server.request('uploads', '/object', { headers: { range: 'bytes=-10' } });
    expect(suffix.body.equals(original.subarray(original.length - 10))).toBe(true);
  });

  it('answers a conditional get without a body when the etag matches If-None-Match', async () => {
    const etag = (await server.request('uploads', '/object', { headers: { range: 'bytes=0-0' } })).headers.etag as string;
    const notModified = await server.request('uploads', '/object', { headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const changed = await server.request('uploads', '/object', { headers: { 'if-none-match': '"something-else"', range: 'bytes=0-3' } });
    expect(changed.status).toBe(206);
    expect(changed.body.equals(original.subarray(0, 4))).toBe(true);
  });

  it('refuses a part list naming a part never uploaded, and aborts cleanly', async () => {
    const { ok } = await run(`
      const upload = await env.FILES.createMultipartUpload('aborted');
      const part = await upload.uploadPart(1, 'tiny');
      let refused;
      try { await upload.complete([part, { partNumber: 2, etag: 'nope' }]); } catch (e) { refused = e.message; }
      await upload.abort();
      let gone;
      try { await upload.uploadPart(2, 'x'); } catch (e) { gone = e.message; }
      return { refused, gone, object: await env.FILES.head('aborted') };`);
    expect(ok).toEqual({
      refused: 'completeMultipartUpload: One or more of the specified parts could not be found. (10025)',
      gone: 'uploadPart: The specified multipart upload does not exist. (10024)',
      object: null,
    });
  });
});

describe('R2 conditions, listing and bounds', () => {
  it('applies onlyIf to get (object without body) and put (null, nothing stored)', async () => {
    const { ok } = await run(`
      const first = await env.FILES.put('cond', 'v1');
      const mismatch = await env.FILES.get('cond', { onlyIf: { etagMatches: 'not-it' } });
      const match = await env.FILES.get('cond', { onlyIf: { etagMatches: first.etag } });
      const later = await env.FILES.get('cond', { onlyIf: { uploadedAfter: new Date(Date.now() + 60_000) } });
      const blocked = await env.FILES.put('cond', 'v2', { onlyIf: { etagDoesNotMatch: first.etag } });
      const allowed = await env.FILES.put('cond', 'v3', { onlyIf: { etagMatches: first.httpEtag } });
      const createOnly = await env.FILES.put('cond', 'v4', { onlyIf: new Headers({ 'if-none-match': '*' }) });
      return {
        mismatch: [mismatch.key, 'body' in mismatch],
        match: await match.text(),
        later: 'body' in later,
        blocked, allowed: allowed.size,
        createOnly,
        now: await (await env.FILES.get('cond')).text(),
      };`);
    expect(ok).toEqual({ mismatch: ['cond', false], match: 'v1', later: false, blocked: null, allowed: 2, createOnly: null, now: 'v3' });
  });

  it('lists by prefix with a delimiter, and pages with a cursor', async () => {
    const { ok } = await run(`
      for (const key of ['photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/top.jpg', 'photos/zz.jpg', 'videos/v.mp4']) await env.FILES.put(key, key, { customMetadata: { k: key } });
      const rolled = await env.FILES.list({ prefix: 'photos/', delimiter: '/' });
      const withMeta = await env.FILES.list({ prefix: 'photos/2024/', include: ['customMetadata'] });
      const keys = [];
      let cursor;
      let pages = 0;
      do {
        const page = await env.FILES.list({ prefix: 'photos/', limit: 2, cursor });
        keys.push(...page.objects.map((o) => o.key));
        cursor = page.truncated ? page.cursor : undefined;
        pages++;
      } while (cursor);
      return {
        rolled: [rolled.objects.map((o) => o.key), rolled.delimitedPrefixes, rolled.truncated],
        meta: withMeta.objects.map((o) => o.customMetadata),
        plain: rolled.objects[0].customMetadata,
        keys, pages,
      };`);
    expect(ok).toEqual({
      rolled: [['photos/top.jpg', 'photos/zz.jpg'], ['photos/2024/', 'photos/2025/'], false],
      meta: [{ k: 'photos/2024/a.jpg' }, { k: 'photos/2024/b.jpg' }],
      plain: {},
      keys: ['photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/top.jpg', 'photos/zz.jpg'],
      pages: 3,
    });
  });

  it('refuses a put past the bucket size, keeping no bytes of it', async () => {
    const blobsBefore = countBlobs();
    const { ok } = await run(`
      let sent = 0;
      const body = new ReadableStream({ pull(c) { if (sent >= 70 * 1024 * 1024) return c.close(); sent += 1024 * 1024; c.enqueue(new Uint8Array(1024 * 1024)); } });
      try { await env.FILES.put('too-big', body); return 'stored'; } catch (e) { return e.message; }`, undefined, { cpuMs: 5000 });
    expect(ok).toMatch(/^put: The object is too large: this bucket has room for \d+ more bytes/);
    expect(countBlobs()).toBe(blobsBefore);
  });

  it('keeps buckets of the same name apart between accounts, and refuses foreign binding names', async () => {
    await run(`await env.FILES.put('secret', 'acct-a'); return 1;`, { FILES: bucket('shared', 'a'.repeat(32)) });
    const { ok } = await run(`return [await env.FILES.get('secret'), (await env.FILES.list()).objects.length];`, { FILES: bucket('shared', 'b'.repeat(32)) });
    expect(ok).toEqual([null, 0]);
    const def = server.deploy('r2-forger', { code: runner('return 1;'), bindings: { FILES: bucket('mine'), TEXT: { type: 'plain_text', text: 'x' } } });
    const asForger = { worker: def, invocation: undefined, binding: (name: string) => def.bindings[name] };
    for (const op of Object.values(R2_OPS)) {
      for (const name of ['TEXT', 'OTHER', '__proto__', 7]) await expect(server.runtime.ops.get(op)!(asForger as never, [name, 'k', {}])).rejects.toThrow(TypeError);
    }
  });
});

function countBlobs(): number {
  return readdirSync(join(root, 'blobs')).reduce((sum, dir) => sum + readdirSync(join(root, 'blobs', dir)).length, 0);
}
