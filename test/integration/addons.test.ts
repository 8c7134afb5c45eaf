// Add-ons (protocol/addons.ts): guest APIs outside the base snapshot, installed into a worker's
// isolate only when it calls for them. A fixture add-on (test/fixtures/addons/probe.ts) is built
// the way `npm run build` builds the real ones, and given to the runtime in its own catalog.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AddonCatalog } from '../../src/runtime/addons.js';
// @ts-expect-error plain JS build script
import { buildAddon } from '../../scripts/build-addons.mjs';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'addons');

const workers = {
  // mentions the add-on's global: it is installed, and shares the base's Response class
  global: `export default { fetch() {
    return Response.json({ type: typeof Probe, shared: Probe.isBaseResponse(new Response('x')) });
  } }`,
  // imports the add-on's built-in module
  imports: `import probe, { answer, Probe as P } from 'cinder:probe';
    export default { fetch() {
      return Response.json({ answer, kind: probe.kind, cls: typeof P, hook: typeof globalThis.__cinder_builtin });
    } }`,
  // needs it through a binding type only
  binding: { code: `export default { fetch(req, env) { return new Response(env.PROBE.hello()) } }`, bindings: { PROBE: { type: 'probe_binding' } as never } },
  // asks for none of it (the global is looked up by a computed name, so the code does not mention it)
  plain: `export default { fetch() { return Response.json({ type: typeof globalThis['Pro' + 'be'] }) } }`,
  // a service-worker script mentioning the global
  script: `addEventListener('fetch', (e) => e.respondWith(new Response(typeof Probe)))`,
  missing: `import x from 'cinder:nope'; export default { fetch() { return new Response(String(x)) } }`,
};

describe('add-ons', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-addons-'));
    await buildAddon(join(fixtures, 'probe.ts'), join(dir, 'probe.js'));
    const addons = new AddonCatalog([{ name: 'probe', globals: ['Probe'], modules: ['cinder:probe'], bindings: ['probe_binding'] }], dir);
    server = await startTestServer(workers, { runtime: { addons } });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs an add-on whose global the worker mentions, sharing the base modules', async () => {
    const res = await server.request('global');
    expect(JSON.parse(res.text)).toEqual({ type: 'function', shared: true });
  });

  it('resolves a built-in module to the add-on that provides it, and removes the lookup hook after load', async () => {
    const res = await server.request('imports');
    expect(JSON.parse(res.text)).toEqual({ answer: 42, kind: 'probe', cls: 'function', hook: 'undefined' });
  });

  it('installs the add-on for a binding type it registers', async () => {
    const res = await server.request('binding');
    expect(res.text).toBe('binding PROBE');
  });

  it('installs nothing for a worker that does not call for it', async () => {
    const res = await server.request('plain');
    expect(JSON.parse(res.text)).toEqual({ type: 'undefined' });
  });

  it('installs add-ons for service-worker scripts too', async () => {
    const res = await server.request('script');
    expect(res.text).toBe('function');
  });

  it('fails the load naming a built-in module nobody provides', async () => {
    const res = await server.request('missing');
    expect(res.status).toBe(500);
    expect(server.logs.some((l) => String(l.err ?? l.msg ?? '').includes('cinder:nope'))).toBe(true);
  });

  it('refuses to build an add-on that imports a base module not shared with add-ons', async () => {
    await expect(buildAddon(join(fixtures, 'reaches-dispatch.ts'), join(dir, 'bad.js'))).rejects.toThrow(/sandbox\/dispatch.*addon-base\.ts/);
  });
});
