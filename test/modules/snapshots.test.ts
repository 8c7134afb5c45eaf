// Per-deployment snapshots and the module types: Text, JSON and CommonJS modules are snapshotted
// (the builder gets the ES modules the loader would compile); a version with a Data or
// CompiledWasm module, or one importing cloudflare:workers, is refused with a log line naming why
// and served by a plain load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Deployments } from '../../src/control/deployments.js';
import { Router } from '../../src/data-plane/router.js';
import { SqliteDeploymentStore } from '../../src/store/index.js';
import { binaryModule, type WorkerModuleSource } from '../../src/model/worker-definition.js';
import { ADD_WASM } from './fixtures.js';

describe('deployment snapshots of non-JS modules', () => {
  let dir: string;
  let runtime: Runtime;
  let store: SqliteDeploymentStore;
  let deployments: Deployments;
  let logs: Record<string, unknown>[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-modsnap-'));
    const captured = captureLogger();
    logs = captured.logs;
    runtime = await Runtime.create({ logger: captured.logger, pool: { min: 1, max: 2 }, deploymentSnapshots: { minCodeBytes: 0, breakEvenMs: 0 } });
    store = new SqliteDeploymentStore(join(dir, 'deployments.sqlite'));
    deployments = new Deployments({ runtime, router: new Router((n) => runtime.has(n)), store, logger: captured.logger, snapshots: true });
  });
  afterAll(async () => {
    runtime.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const upload = (modules: WorkerModuleSource[]) => ({ main: 'index.js', modules, bindings: {}, keepBindings: [], crons: [], limits: {}, compatibilityDate: null, compatibilityFlags: [] });
  const body = async (name: string) => {
    const res = await runtime.fetch(name, { method: 'GET', url: `http://${name}.test/`, headers: [], body: null });
    return res.body == null ? '' : Buffer.from(res.body as Uint8Array).toString();
  };

  it('snapshots Text, JSON and CommonJS modules; refuses Data, CompiledWasm and cloudflare:workers with a log line, and serves them plainly', async () => {
    await deployments.upload('textual', upload([
      { name: 'index.js', type: 'esm', code: 'import t from "./a.txt"; import j from "./b.json"; import c from "./c.cjs"; export default { fetch() { return new Response(t + j.n + c.x); } };' },
      { name: 'a.txt', type: 'text', code: 'text-' },
      { name: 'b.json', type: 'json', code: '{"n": 1}' },
      { name: 'c.cjs', type: 'commonjs', code: 'module.exports = { x: "-cjs" };' },
    ]));
    await deployments.upload('wasmy', upload([
      { name: 'index.js', type: 'esm', code: 'import m from "./add.wasm"; const { add } = new WebAssembly.Instance(m).exports; export default { fetch() { return new Response(String(add(1, 2))); } };' },
      binaryModule('add.wasm', 'wasm', ADD_WASM),
    ]));
    await deployments.upload('bytes', upload([
      { name: 'index.js', type: 'esm', code: 'import b from "./b.bin"; export default { fetch() { return new Response(String(b.byteLength)); } };' },
      binaryModule('b.bin', 'data', Uint8Array.from([1, 2, 3])),
    ]));
    await deployments.upload('entry', upload([
      { name: 'index.js', type: 'esm', code: 'import { WorkerEntrypoint } from "cloudflare:workers"; export default class extends WorkerEntrypoint { fetch() { return new Response("entry"); } };' },
    ]));
    await deployments.snapshots!.settled();
    expect(runtime.definition('textual')!.snapshot).toBeDefined();
    for (const name of ['wasmy', 'bytes', 'entry']) expect(runtime.definition(name)!.snapshot, name).toBeUndefined();
    const refusals = Object.fromEntries(logs.filter((l) => /no deployment snapshot for/.test(String(l.msg))).map((l) => [l.worker, String(l.msg)]));
    expect(Object.keys(refusals).sort()).toEqual(['bytes', 'entry', 'wasmy']);
    expect(refusals.wasmy).toMatch(/module "add\.wasm" is a CompiledWasm module, which is not snapshotted; it is loaded plainly/);
    expect(refusals.bytes).toMatch(/module "b\.bin" is a Data module/);
    expect(refusals.entry).toMatch(/imports cloudflare:workers/);
    expect(await body('textual')).toBe('text-1-cjs');
    expect(runtime.snapshots!.stats.taken).toBe(1);
    expect(await body('wasmy')).toBe('3');
    expect(await body('bytes')).toBe('3');
    expect(await body('entry')).toBe('entry');
  });
});
