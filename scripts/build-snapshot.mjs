#!/usr/bin/env -S node --no-node-snapshot
// Child process that turns the sandbox bundle into a V8 startup snapshot. isolated-vm's
// createSnapshot runs the bundle without isolation, so it runs here, away from the server: a
// crash or a hang costs this process only. It then self-tests the snapshot before writing it.
//   usage: build-snapshot.mjs <bundle.js> <manifest.json> <out.bin> [--no-warm-up]
import ivm from 'isolated-vm';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';

const [bundlePath, manifestPath, outPath] = process.argv.slice(2);
const { BOOT_GLOBAL } = await import(new URL('../dist/protocol/wall.js', import.meta.url).href);
const code = readFileSync(bundlePath, 'utf8');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));

// A warm-up script (createSnapshot's second argument; `--no-warm-up` leaves it out, for the bench
// A/B). isolated-vm 7 runs the bundle again in a second, throwaway context and the warm-up there:
// the sandbox is booted with inert bridge functions and put through its own warm-up (sandbox/
// dispatch.ts warmUp: no host call), so the functions a first request runs are compiled, and V8
// keeps their bytecode in the snapshot (FunctionCodeHandling::kKeep). None of that context's
// state is serialized: only the snapshotted context, which never ran the warm-up, is. (In
// isolated-vm 5 the warm-up ran in the snapshotted context itself, and lazily built state broke
// URL parsing in every isolate; the self-test below would catch that.) Measured (bench/README.md,
// issue 23 round 5): +32 KiB of snapshot, and a pooled isolate then needs half the warm-up
// rounds and a third of their CPU for the same first-request cost.
const WARM_UP_ROUNDS = 32;
const warmUp = process.argv.includes('--no-warm-up')
  ? undefined
  : `globalThis[${JSON.stringify(BOOT_GLOBAL)}](() => { throw new Error('no host in the snapshot builder'); }, () => { throw new Error('no host in the snapshot builder'); }, () => {}, 128).warmUp(${WARM_UP_ROUNDS});`;
const snapshot = ivm.Isolate.createSnapshot([{ code, filename: 'cinder:sandbox.js' }], warmUp);
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
