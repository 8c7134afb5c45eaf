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

// No warm-up script: isolated-vm runs it in the snapshotted context itself, so lazily built state
// (typed-array lookup tables, caches) would be serialized into the snapshot, which V8 cannot do
// safely (measured: URL parsing broke in every isolate). Compiled code is cheap to regain.
const snapshot = ivm.Isolate.createSnapshot([{ code, filename: 'cinder:sandbox.js' }]);
const bytes = Buffer.from(snapshot.copy());

// Self-test: a snapshot whose globals went missing (isolated-vm drops a lone one-letter global,
// and the feature is marked fragile) must never reach the pool.
const isolate = new ivm.Isolate({ snapshot: new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), memoryLimit: 64 });
const context = isolate.createContextSync();
const missing = context.evalSync(
  `JSON.stringify(${JSON.stringify(manifest.globals)}.filter((n) => typeof globalThis[n] === 'undefined'))`,
);
// Globals present is not enough: state captured wrongly (a typed array in a closure) shows only
// when used. Exercise the core APIs once and compare with known answers.
const smoke = context.evalSync(`(() => {
  try {
    const url = new URL('https://user@Example.COM:443/a/../b?x=1#f');
    const headers = new Headers([['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'], ['X-A', '1']]);
    return JSON.stringify([
      url.href, url.searchParams.get('x'),
      [...headers].length, headers.get('x-a'),
      new Response('ok', { status: 201 }).status,
      new TextDecoder().decode(new TextEncoder().encode('hé')),
      btoa('hi'), Request.name, typeof ReadableStream,
    ]);
  } catch (error) { return 'threw ' + error.stack; }
})()`);
const expected = JSON.stringify(['https://user@example.com/b?x=1#f', '1', 3, '1', 201, 'hé', 'aGk=', 'Request', 'function']);
isolate.dispose();
if (missing !== '[]') {
  console.error(`snapshot self-test failed: missing globals ${missing}`);
  process.exit(2);
}
if (smoke !== expected) {
  console.error(`snapshot self-test failed: got ${smoke}, expected ${expected}`);
  process.exit(3);
}
writeFileSync(outPath + '.tmp', bytes);
renameSync(outPath + '.tmp', outPath);
// The sidecar says "this exact file passed the self-test"; the server checks it before trusting
// the file, so a truncated or altered snapshot is rebuilt instead of loaded.
writeFileSync(outPath + '.sha256', createHash('sha256').update(bytes).digest('hex'));
console.log(JSON.stringify({ ok: true, bytes: bytes.length }));
