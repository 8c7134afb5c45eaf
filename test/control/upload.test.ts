// Uploads: multi-module workers, and every kind of bad upload refused with a clear error while the
// version that was live keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, textWorker, type TestCinder } from './helpers.js';

let cinder: TestCinder;
beforeAll(async () => {
  // a small script limit, so the 413 test needs no 10 MB body
  cinder = await startCinder({ maxScriptBytes: 64 * 1024 });
  const res = await cinder.admin('PUT', '/workers/stable', { body: textWorker('stable v1') });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

async function expectStillServing(): Promise<void> {
  const res = await cinder.get('stable.example.com');
  expect(res.status).toBe(200);
  expect(res.text).toBe('stable v1');
  const versions = await cinder.admin('GET', '/workers/stable/versions');
  expect(versions.body.versions).toHaveLength(1);
}

describe('multi-module upload', () => {
  it('loads ES modules that import each other, across directories', async () => {
    const modules = {
      'src/index.js': `import { greet } from "./lib/greet.js"; import { VERSION } from "../shared/version.js"; import data from "./data.json"; import banner from "./banner.txt";
        export default { fetch(req) { return new Response(greet("edge") + " " + VERSION + " " + data.answer + " " + banner.trim()); } };`,
      'src/lib/greet.js': `import { punctuate } from "./punctuate.js"; export function greet(who) { return punctuate("hello " + who); }`,
      'src/lib/punctuate.js': `export const punctuate = (s) => s + "!";`,
      'shared/version.js': `export const VERSION = "v7";`,
      'src/data.json': { code: '{"answer": 42}', type: 'application/json' },
      'src/banner.txt': { code: 'text module\n', type: 'text/plain' },
      'src/index.js.map': { code: '{"version":3}', type: 'application/source-map' },
    };
    const res = await cinder.admin('PUT', '/workers/multi', { body: multipart({ main_module: 'src/index.js' }, modules) });
    expect(res.status, res.text).toBe(201);
    expect(res.body.main_module).toBe('src/index.js');
    expect(res.body.modules.map((m: { name: string }) => m.name)).toEqual(['src/index.js', 'src/lib/greet.js', 'src/lib/punctuate.js', 'shared/version.js', 'src/data.json', 'src/banner.txt']);
    const served = await cinder.get('multi.example.com');
    expect(served.text).toBe('hello edge! v7 42 text module');
  });

  it('picks the only module when there is no metadata part', async () => {
    const form = new FormData();
    form.append('solo.js', new Blob([textWorker('solo')], { type: 'application/javascript+module' }), 'solo.js');
    const res = await cinder.admin('PUT', '/workers/solo', { body: form });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('solo.example.com')).text).toBe('solo');
  });
});

describe('bad uploads', () => {
  const cases: { name: string; status: number; error: RegExp; send: () => Promise<{ status: number; body: any }> }[] = [
    {
      name: 'a syntax error (message and line)',
      status: 400,
      error: /failed to load: SyntaxError: Unexpected token.*worker\.js:3/s,
      send: () => cinder.admin('PUT', '/workers/stable', { body: 'export default {\n  fetch() {\n    return (;\n  }\n};' }),
    },
    {
      name: 'a top-level throw',
      status: 400,
      error: /failed to load: Error: config missing/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: 'const ok = 1;\nthrow new Error("config missing");\nexport default {};' }),
    },
    {
      name: 'an import of a module that was not uploaded',
      status: 400,
      error: /No such module "\.\/missing\.js"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js' }, { 'index.js': 'import "./missing.js"; export default {};' }) }),
    },
    {
      name: 'an invalid worker name',
      status: 400,
      error: /invalid worker name "Bad_Name"/,
      send: () => cinder.admin('PUT', '/workers/Bad_Name', { body: textWorker('x') }),
    },
    {
      name: 'a name with a leading dash',
      status: 400,
      error: /invalid worker name "-dash"/,
      send: () => cinder.admin('PUT', '/workers/-dash', { body: textWorker('x') }),
    },
    {
      name: 'an empty script',
      status: 400,
      error: /the script is empty/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: '   ' }),
    },
    {
      name: 'metadata that is not JSON',
      status: 400,
      error: /metadata part is not valid JSON/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart('{"main_module": ', { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'metadata that is not an object',
      status: 400,
      error: /metadata must be a JSON object/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart('[1]', { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a main_module no part carries',
      status: 400,
      error: /main_module is "main\.js" but no part of the upload has that name \(parts: index\.js\)/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'main.js' }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a misspelt metadata field',
      status: 400,
      error: /unknown field "route"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', route: 'x.com/*' }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'bindings that are not an array',
      status: 400,
      error: /metadata\.bindings must be an array/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', bindings: { A: 'b' } }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a binding of an unknown type',
      status: 400,
      error: /metadata\.bindings\[1\]\.type: unsupported binding type "r2_bucket"/,
      send: () =>
        cinder.admin('PUT', '/workers/stable', {
          body: multipart({ main_module: 'index.js', bindings: [{ type: 'plain_text', name: 'A', text: 'a' }, { type: 'r2_bucket', name: 'B' }] }, { 'index.js': textWorker('x') }),
        }),
    },
    {
      name: 'a plain_text binding without text',
      status: 400,
      error: /metadata\.bindings\[0\]\.text must be a string \(binding A\)/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', bindings: [{ type: 'plain_text', name: 'A' }] }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a binding name that is not an identifier',
      status: 400,
      error: /invalid binding name "my-var"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', vars: { 'my-var': 'x' } }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a binding declared twice',
      status: 400,
      error: /binding name "A" is declared twice/,
      send: () =>
        cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', bindings: [{ type: 'plain_text', name: 'A', text: '1' }], vars: { A: '2' } }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a bad cron (named in the error)',
      status: 400,
      error: /invalid cron "61 \* \* \* \*"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', crons: ['*/5 * * * *', '61 * * * *'] }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a cron that never fires',
      status: 400,
      error: /cron "0 0 31 2 \*" never fires/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', crons: ['0 0 31 2 *'] }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'an unknown limit',
      status: 400,
      error: /metadata\.limits: unknown limit "cpu"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', limits: { cpu: 5 } }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a negative limit',
      status: 400,
      error: /limit "cpuMs" must be a positive number/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', limits: { cpu_ms: -1 } }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'an invalid route pattern',
      status: 400,
      error: /metadata\.routes\[0\]: invalid route pattern "exa mple\.com\/\*"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', routes: ['exa mple.com/*'] }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a bad compatibility_date',
      status: 400,
      error: /compatibility_date "yesterday" is not a date/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', compatibility_date: 'yesterday' }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a module name that escapes',
      status: 400,
      error: /invalid module name "\.\.\/etc\/passwd"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js' }, { 'index.js': textWorker('x'), '../etc/passwd': 'export {}' }) }),
    },
    {
      name: 'a module of an unsupported type',
      status: 400,
      error: /module "m\.py" has content type "text\/x-python"/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js' }, { 'index.js': textWorker('x'), 'm.py': { code: 'x', type: 'text/x-python' } }) }),
    },
    {
      name: 'a service binding to an invalid worker name',
      status: 400,
      error: /service "Not Valid" cannot be a worker/,
      send: () =>
        cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', bindings: [{ type: 'service', name: 'S', service: 'Not Valid' }] }, { 'index.js': textWorker('x') }) }),
    },
    {
      name: 'a JSON body',
      status: 415,
      error: /unsupported content type "application\/json"/,
      send: () => cinder.admin('PUT', '/workers/stable', { json: { script: 'x' } }),
    },
    {
      name: 'a script over the size limit (streamed)',
      status: 413,
      error: /larger than the script limit of 65536 bytes/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: `export default {}; // ${'x'.repeat(2 * 1024 * 1024)}` }),
    },
    {
      name: 'modules over the size limit (exact check)',
      status: 413,
      error: /the script is \d+ bytes, over the limit of 65536 bytes/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: `export default {}; // ${'x'.repeat(70 * 1024)}` }),
    },
    {
      name: 'a script over its own (lower) scriptBytes limit',
      status: 413,
      error: /over the limit of 100 bytes/,
      send: () => cinder.admin('PUT', '/workers/stable', { body: multipart({ main_module: 'index.js', limits: { script_bytes: 100 } }, { 'index.js': `${textWorker('x')} // ${'y'.repeat(200)}` }) }),
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name}; the old version keeps serving`, async () => {
      const res = await c.send();
      expect(res.status, JSON.stringify(res.body)).toBe(c.status);
      expect(res.body.error).toMatch(c.error);
      await expectStillServing();
    });
  }

  it('refuses a bad upload to a new name without creating the worker', async () => {
    const res = await cinder.admin('PUT', '/workers/never', { body: 'export default {' });
    expect(res.status).toBe(400);
    expect((await cinder.admin('GET', '/workers/never')).status).toBe(404);
    expect((await cinder.get('never.example.com')).status).toBe(404);
  });

  it('refuses a service-worker script whose top level throws', async () => {
    const res = await cinder.admin('PUT', '/workers/stable', { body: 'addEventListener("fetch", () => {}); null.boom;' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/TypeError/);
    await expectStillServing();
  });
});
