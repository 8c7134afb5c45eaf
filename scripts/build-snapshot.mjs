#!/usr/bin/env -S node --no-node-snapshot
// Child process that turns the sandbox bundle into a V8 startup snapshot. isolated-vm's
// createSnapshot runs the bundle without isolation, so it runs here, away from the server: a
// crash or a hang costs this process only. It then self-tests the snapshot (every global the
// manifest lists must be present in a fresh context) before writing it.
//   usage: build-snapshot.mjs <bundle.js> <manifest.json> <out.bin>
import ivm from 'isolated-vm';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';

const [bundlePath, manifestPath, outPath] = process.argv.slice(2);
const code = readFileSync(bundlePath, 'utf8');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));

// Run the hot paths once so the snapshot carries compiled code for them. Pure APIs only: the
// host bridge does not exist at snapshot time.
const warmup = `
  try {
    const h = new Headers([['content-type', 'text/plain'], ['x-a', '1']]);
    h.get('content-type'); [...h];
    const req = new Request('http://warm.example/path?q=1', { method: 'POST', headers: h, body: 'x' });
    req.url; req.method; req.headers.get('x-a');
    const res = new Response('hello', { status: 200, headers: { 'content-type': 'text/plain' } });
    res.status; [...res.headers];
    new URL('https://a.example/b?c=d#e').searchParams.get('c');
    new TextEncoder().encode('warm'); new TextDecoder().decode(new Uint8Array([104, 105]));
  } catch {}
`;

const snapshot = ivm.Isolate.createSnapshot([{ code, filename: 'cinder:sandbox.js' }], warmup);
const bytes = Buffer.from(snapshot.copy());

// Self-test: a snapshot whose globals went missing (isolated-vm drops a lone one-letter global,
// and the feature is marked fragile) must never reach the pool.
const isolate = new ivm.Isolate({ snapshot: new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), memoryLimit: 64 });
const context = isolate.createContextSync();
const missing = context.evalSync(
  `JSON.stringify(${JSON.stringify(manifest.globals)}.filter((n) => typeof globalThis[n] === 'undefined'))`,
);
isolate.dispose();
if (missing !== '[]') {
  console.error(`snapshot self-test failed: missing globals ${missing}`);
  process.exit(2);
}
writeFileSync(outPath + '.tmp', bytes);
renameSync(outPath + '.tmp', outPath);
// The sidecar says "this exact file passed the self-test"; the server checks it before trusting
// the file, so a truncated or altered snapshot is rebuilt instead of loaded.
writeFileSync(outPath + '.sha256', createHash('sha256').update(bytes).digest('hex'));
console.log(JSON.stringify({ ok: true, bytes: bytes.length }));
