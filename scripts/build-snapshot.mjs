#!/usr/bin/env -S node --no-node-snapshot
// Child process that turns the sandbox bundle into a V8 startup snapshot. isolated-vm's
// createSnapshot runs the bundle without isolation, so it runs here, away from the server: a
// crash or a hang costs this process only. It then self-tests the snapshot before writing it.
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

// Self-test (src/runtime/snapshot-check.ts): every global the manifest lists is present, and the
// Web platform answers a probe exactly as an isolate that ran the bundle itself does. A snapshot
// that fails either must never reach the pool (snapshot-check.ts says what it has caught).
const { referenceAnswers, snapshotProblems } = await import(new URL('../dist/src/runtime/snapshot-check.js', import.meta.url).href);
const snapshotCopy = new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const problems = await snapshotProblems(snapshotCopy, manifest, await referenceAnswers(code));
if (problems.length) {
  console.error(`snapshot self-test failed: ${problems.join('; ')}`);
  process.exit(2);
}
writeFileSync(outPath + '.tmp', bytes);
renameSync(outPath + '.tmp', outPath);
// The sidecar says "this exact file passed the self-test"; the server checks it before trusting
// the file, so a truncated or altered snapshot is rebuilt instead of loaded.
writeFileSync(outPath + '.sha256', createHash('sha256').update(bytes).digest('hex'));
console.log(JSON.stringify({ ok: true, bytes: bytes.length }));
