// Reading wrangler configs: TOML, JSON with comments, [env.*] sections, and the errors users see.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configMetadata, findConfig, readConfig, stripJsonComments } from '../../src/app/cli/wrangler.js';
import { devPlan, projectWorker } from '../../src/app/cli/dev-project.js';
import { parseDevVars } from '../../src/app/cli/dev-vars.js';
import { parseMetadata } from '../../src/control/metadata.js';
import { tempDataDir } from './helpers.js';

const dir = tempDataDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

describe('wrangler config', () => {
  it('reads every key Cinder uses from wrangler.toml, and makes upload metadata of it', () => {
    const path = file(
      'a/wrangler.toml',
      `name = "shop"
main = "src/index.ts"
compatibility_date = "2025-02-03"
route = { pattern = "shop.example.com/*", zone_name = "example.com" }
routes = ["example.com/shop/*"]
kv_namespaces = [{ binding = "CART", id = "cart-ns" }]
services = [{ binding = "AUTH", service = "auth" }]

[vars]
TITLE = "Shop"
FLAGS = { beta = true }

[triggers]
crons = ["0 * * * *"]

[limits]
cpu_ms = 200
`,
    );
    const config = readConfig(path);
    expect(config).toMatchObject({
      name: 'shop',
      main: join(dir, 'a', 'src', 'index.ts'),
      compatibilityDate: '2025-02-03',
      vars: { TITLE: 'Shop', FLAGS: { beta: true } },
      kvNamespaces: [{ binding: 'CART', id: 'cart-ns' }],
      services: [{ binding: 'AUTH', service: 'auth' }],
      crons: ['0 * * * *'],
      routes: ['example.com/shop/*', 'shop.example.com/*'],
      limits: { cpu_ms: 200 },
    });
    const metadata = configMetadata(config);
    // what the CLI sends is what the server accepts
    expect(parseMetadata({ main_module: 'index.js', ...metadata })).toMatchObject({
      bindings: {
        TITLE: { type: 'plain_text', text: 'Shop' },
        FLAGS: { type: 'json', json: { beta: true } },
        CART: { type: 'kv_namespace', namespace_id: 'cart-ns' },
        AUTH: { type: 'service', service: 'auth' },
      },
      crons: ['0 * * * *'],
      routes: ['example.com/shop/*', 'shop.example.com/*'],
      limits: { cpuMs: 200 },
      compatibilityDate: '2025-02-03',
    });
  });

  it('leaves routes out of the metadata when the config has none', () => {
    const config = readConfig(file('b/wrangler.toml', 'name = "x"\nmain = "i.js"\n'));
    expect(config.routes).toBeUndefined();
    expect(configMetadata(config)).toEqual({ bindings: [] });
  });

  it('reads wrangler.jsonc with comments and trailing commas, and keeps "//" inside strings', () => {
    expect(JSON.parse(stripJsonComments('{ "a": "http://x//y", /* c */ "b": [1, 2,], // d\n }'))).toEqual({ a: 'http://x//y', b: [1, 2] });
    const path = file('c/wrangler.jsonc', '{\n  // comment\n  "name": "j", "main": "w.js",\n  "vars": { "URL": "https://a.b/c" },\n}\n');
    expect(findConfig(join(dir, 'c'))).toBe(path);
    expect(readConfig(path)).toMatchObject({ name: 'j', vars: { URL: 'https://a.b/c' } });
  });

  it('applies an [env.<name>] section the way wrangler does', () => {
    const path = file(
      'd/wrangler.toml',
      `name = "app"
main = "index.js"
routes = ["app.com/*"]
vars = { MODE = "prod", ONLY_TOP = "x" }
[limits]
cpu_ms = 10
[env.staging]
vars = { MODE = "staging" }
[env.named]
name = "custom"
`,
    );
    const staging = readConfig(path, 'staging');
    expect(staging).toMatchObject({ name: 'app-staging', routes: ['app.com/*'], vars: { MODE: 'staging' }, limits: { cpu_ms: 10 } });
    expect(readConfig(path, 'named')).toMatchObject({ name: 'custom', vars: {} });
    expect(() => readConfig(path, 'nope')).toThrow(/has no \[env\.nope\] section/);
  });

  it('says which file and key is wrong', () => {
    expect(() => readConfig(file('e/wrangler.toml', 'name = \n'))).toThrow(/e\/wrangler\.toml is not valid TOML/);
    expect(() => readConfig(file('f/wrangler.json', '{"name": 1}'))).toThrow(/f\/wrangler\.json: name must be a non-empty string/);
    expect(() => readConfig(file('g/wrangler.toml', 'kv_namespaces = [{ binding = "X" }]'))).toThrow(/kv_namespaces\[0\] must be \{ binding = "NAME", id = "namespace id" \}/);
    expect(() => readConfig(file('h/wrangler.toml', 'triggers = { crons = "* * * * *" }'))).toThrow(/triggers\.crons must be an array of cron strings/);
    expect(() => readConfig(file('i/wrangler.json', '[1]'))).toThrow(/not valid JSON: expected a table\/object/);
  });

  it('refuses, by name, every key Cinder does not implement, and suggests the key a typo meant', () => {
    // Workers Sites: refused by name, pointing at [assets], which replaced it
    expect(() => readConfig(file('k/wrangler.toml', 'name = "x"\nmain = "i.js"\n[site]\nbucket = "./public"\n'))).toThrow(/k\/wrangler\.toml: site: Workers Sites .*deprecated by Cloudflare.*\[assets\] instead.*docs\/compat\.md/);
    expect(() => readConfig(file('k2/wrangler.toml', 'name = "x"\nmain = "i.js"\n[assets]\ndirectory = "./public"\nhtml_handling = "trailing"\n'))).toThrow(/assets\.html_handling must be one of "auto-trailing-slash"/);
    expect(() => readConfig(file('k3/wrangler.toml', 'name = "x"\n[assets]\ndirectory = "./public"\nserve_directly = true\n'))).toThrow(/assets\.serve_directly is not an \[assets\] key Cinder knows/);
    expect(readConfig(file('k4/wrangler.toml', 'name = "x"\n[assets]\ndirectory = "./dist"\nbinding = "ASSETS"\nnot_found_handling = "single-page-application"\nrun_worker_first = ["/api/*"]\n')).assets).toMatchObject({ binding: 'ASSETS', notFoundHandling: 'single-page-application', runWorkerFirst: ['/api/*'] });
    expect(() => readConfig(file('l/wrangler.toml', 'name = "x"\n[[analytics_engine_datasets]]\nbinding = "AE"\n'))).toThrow(/analytics_engine_datasets is not supported by Cinder/);
    expect(() => readConfig(file('m/wrangler.toml', 'name = "x"\n[var]\nA = "1"\n'))).toThrow(/var is not a wrangler key Cinder knows \(did you mean "vars"\?\)/);
    expect(() => readConfig(file('n/wrangler.toml', 'name = "x"\n[[kv_namespace]]\nbinding = "K"\nid = "1"\n'))).toThrow(/did you mean "kv_namespaces"\?/);
    // several at once: each named, on a line of its own, so one edit fixes them all
    expect(() => readConfig(file('n2/wrangler.toml', 'name = "x"\n[var]\nA = "1"\n[[kv_namespace]]\nbinding = "K"\nid = "1"\n'))).toThrow(/n2\/wrangler\.toml: var is not a wrangler key Cinder knows \(did you mean "vars"\?\); see docs\/compat\.md[^\n]*\n[^\n]*n2\/wrangler\.toml: kv_namespace is not a wrangler key Cinder knows \(did you mean "kv_namespaces"\?\)/);
    expect(() => readConfig(file('o/wrangler.toml', 'name = "x"\ncompatibility_flags = ["nodejs_compat", "streams_enable_constructors"]\n'))).toThrow(/compatibility_flags: "streams_enable_constructors" not supported by Cinder/);
    expect(() => readConfig(file('p/wrangler.toml', 'name = "x"\n[env.prod]\nvectorize = []\n'), 'prod')).toThrow(/\[env\.prod\] vectorize is not supported by Cinder/);
    expect(() => readConfig(file('q/wrangler.toml', 'name = "x"\n[triggers]\ncrons = []\nqueues = []\n'))).toThrow(/triggers\.queues is not supported/);
    // keys about Cloudflare's account and dashboard change nothing here, and an empty flag list is fine
    expect(readConfig(file('r/wrangler.toml', 'name = "x"\naccount_id = "abc"\nworkers_dev = true\ncompatibility_flags = []\n'))).toMatchObject({ name: 'x' });
  });

  it('reads Durable Object bindings and migrations, and sends them as upload metadata', () => {
    const path = file(
      'do/wrangler.toml',
      `name = "chat"
main = "src/index.ts"
[[durable_objects.bindings]]
name = "ROOM"
class_name = "Room"
[[durable_objects.bindings]]
name = "OTHER"
class_name = "Lobby"
script_name = "lobby-worker"
[[migrations]]
tag = "v1"
new_classes = ["Room"]
[[migrations]]
tag = "v2"
new_sqlite_classes = ["Index"]
renamed_classes = [{ from = "Room", to = "Hall" }]
deleted_classes = ["Old"]
`,
    );
    const config = readConfig(path);
    expect(config.durableObjects).toEqual([{ binding: 'ROOM', className: 'Room' }, { binding: 'OTHER', className: 'Lobby', scriptName: 'lobby-worker' }]);
    expect(config.migrations).toEqual([
      { tag: 'v1', newClasses: ['Room'], newSqliteClasses: [], renamedClasses: [], deletedClasses: [] },
      { tag: 'v2', newClasses: [], newSqliteClasses: ['Index'], renamedClasses: [{ from: 'Room', to: 'Hall' }], deletedClasses: ['Old'] },
    ]);
    const metadata = parseMetadata({ main_module: 'index.js', ...configMetadata(config) });
    expect(metadata.bindings).toEqual({ ROOM: { type: 'durable_object_namespace', class_name: 'Room' }, OTHER: { type: 'durable_object_namespace', class_name: 'Lobby', script_name: 'lobby-worker' } });
    expect(metadata.migrations).toEqual(config.migrations);
    // Cloudflare's own upload shapes: one step under new_tag, or steps.
    expect(parseMetadata({ migrations: { new_tag: 'v1', new_sqlite_classes: ['A'] } }).migrations).toEqual([{ tag: 'v1', newClasses: [], newSqliteClasses: ['A'], renamedClasses: [], deletedClasses: [] }]);
    expect(parseMetadata({ migrations: { old_tag: 'v1', new_tag: 'v3', steps: [{ new_classes: ['B'] }, { deleted_classes: ['A'] }] } }).migrations.map((m) => m.tag)).toEqual([undefined, 'v3']);
    // Bindings are per environment, as in wrangler.
    const envPath = file('do-env/wrangler.toml', 'name = "e"\n[[durable_objects.bindings]]\nname = "ROOM"\nclass_name = "Room"\n[env.prod]\nname = "p"\n');
    expect(readConfig(envPath, 'prod').durableObjects).toEqual([]);
  });

  it('says what is wrong with a Durable Object binding or migration', () => {
    expect(() => readConfig(file('d1/wrangler.toml', '[[durable_objects.bindings]]\nname = "ROOM"\n'))).toThrow(/durable_objects\.bindings\[0\] must be \{ name = "COUNTER", class_name = "Counter" \}/);
    expect(() => readConfig(file('d2/wrangler.toml', '[[migrations]]\nnew_classes = ["A"]\n'))).toThrow(/migrations\[0\]\.tag is missing/);
    expect(() => readConfig(file('d3/wrangler.toml', '[[migrations]]\ntag = "v1"\ntransferred_classes = [{ from = "A", from_script = "x", to = "B" }]\n'))).toThrow(/transferred_classes: moving Durable Object classes between workers is not supported/);
    expect(() => readConfig(file('d4/wrangler.toml', '[[durable_objects.bindings]]\nname = "R"\nclass_name = "R"\nenvironment = "prod"\n'))).toThrow(/environment: bindings to a class in another environment are not supported/);
    expect(() => parseMetadata({ bindings: [{ type: 'durable_object_namespace', name: 'R', class_name: 'not a class' }] })).toThrow(/class_name: "not a class" is not a class name/);
  });

  it('turns a project into what `cinder dev` serves, and leaves plain paths alone', () => {
    const path = file('k/wrangler.toml', 'name = "k"\nmain = "src/worker.ts"\nvars = { A = "1" }\nkv_namespaces = [{ binding = "KV", id = "k-ns" }]\nservices = [{ binding = "AUTH", service = "auth" }]\nlimits = { cpu_ms = 20 }\n');
    const plan = devPlan({ paths: [join(dir, 'k')], configs: [], vars: ['B:x:y'], cwd: dir });
    expect(plan.workers).toHaveLength(1);
    expect(plan.workers[0]).toMatchObject({
      name: 'k',
      entry: join(dir, 'k', 'src', 'worker.ts'),
      bindings: { A: { type: 'plain_text', text: '1' }, B: { type: 'plain_text', text: 'x:y' }, KV: { type: 'kv_namespace', namespace_id: 'k-ns' }, AUTH: { type: 'service', service: 'auth' } },
      limits: { cpuMs: 20 },
    });
    expect(plan).toMatchObject({ defaultWorker: 'k', projectDir: join(dir, 'k'), paths: [] });
    expect(devPlan({ paths: [], configs: [path], vars: [], cwd: '/' }).workers[0].name).toBe('k');
    expect(devPlan({ paths: ['examples', 'x.js'], configs: [], vars: [], cwd: dir })).toMatchObject({ workers: [], paths: ['examples', 'x.js'], bindings: {} });
    // no path: the project in the working directory
    expect(devPlan({ paths: [], configs: [], vars: [], cwd: join(dir, 'k') }).workers[0].name).toBe('k');
    expect(() => devPlan({ paths: [], configs: [], vars: [], cwd: join(dir, 'k', 'src') })).toThrow(/no wrangler\.toml, wrangler\.jsonc, wrangler\.json in .*: run cinder dev in a project directory/);
    expect(() => devPlan({ paths: [join(dir, 'k')], configs: [], vars: ['nocolon'], cwd: dir })).toThrow(/--var nocolon: expected KEY:VALUE/);
    expect(() => devPlan({ paths: ['x.js'], configs: [], env: 'prod', vars: [], cwd: dir })).toThrow(/--env selects a section of a wrangler config/);
  });

  it('reads .dev.vars (and .dev.vars.<env> with --env) as secrets over [vars]', () => {
    file('dv/wrangler.toml', 'name = "dv"\nmain = "w.js"\nvars = { TOKEN = "from-vars", MODE = "dev" }\n[env.staging]\nvars = { MODE = "staging" }\n');
    file('dv/.dev.vars', '# local secrets\nTOKEN=abc # comment\nexport QUOTED="a\\nb"\nSINGLE=\'x # y\'\nMULTI="line1\nline2"\n');
    const worker = projectWorker(join(dir, 'dv', 'wrangler.toml'), undefined);
    expect(worker.bindings).toMatchObject({
      TOKEN: { type: 'secret_text', text: 'abc' },
      MODE: { type: 'plain_text', text: 'dev' },
      QUOTED: { type: 'secret_text', text: 'a\nb' },
      SINGLE: { type: 'secret_text', text: 'x # y' },
      MULTI: { type: 'secret_text', text: 'line1\nline2' },
    });
    // without .dev.vars.staging, .dev.vars; with it, only it
    expect(projectWorker(join(dir, 'dv', 'wrangler.toml'), 'staging')).toMatchObject({ name: 'dv-staging', bindings: { TOKEN: { type: 'secret_text', text: 'abc' }, MODE: { type: 'plain_text', text: 'staging' } } });
    file('dv/.dev.vars.staging', 'STAGING_ONLY=1\n');
    const staging = projectWorker(join(dir, 'dv', 'wrangler.toml'), 'staging');
    expect(staging.bindings.STAGING_ONLY).toEqual({ type: 'secret_text', text: '1' });
    expect(staging.bindings.TOKEN).toBeUndefined();
    expect(() => parseDevVars('OK=1\nthis line is wrong\n', '.dev.vars')).toThrow(/\.dev\.vars:2: expected NAME=value/);
    expect(() => parseDevVars('A="never closed\n', '.dev.vars')).toThrow(/\.dev\.vars:1: the "-quoted value of A is never closed/);
    expect(() => parseDevVars('my-key=1\n', '.dev.vars')).toThrow(/"my-key" cannot be a binding name/);
  });
});
