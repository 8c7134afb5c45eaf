// `cinder d1 execute` and `cinder d1 migrations` as a user runs them (real subprocesses), on a
// wrangler project with d1_databases and a migrations directory: --local against the files
// `cinder dev` serves from, and against a running server through its admin API.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { request } from 'undici';
import { startCinder, TOKEN, type TestCinder } from '../control/helpers.js';
import { d1ServeExtension } from '../../src/app/d1.js';
import { startDev, type DevServer } from '../../src/app/dev.js';
import { projectWorker } from '../../src/app/cli/dev-project.js';
import { configMetadata, readConfig } from '../../src/app/cli/wrangler.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));

function cinder(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let project: string;
beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'cinder-d1-project-'));
  writeFileSync(
    join(project, 'wrangler.toml'),
    `name = "notes"\nmain = "src/index.js"\ncompatibility_date = "2025-01-01"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "notes-db"\ndatabase_id = "5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00"\nmigrations_dir = "db/migrations"\n`,
  );
  mkdirSync(join(project, 'src'));
  writeFileSync(join(project, 'src', 'index.js'), `export default { async fetch(request, env) { return Response.json((await env.DB.prepare('SELECT body FROM notes ORDER BY id').all()).results); } };`);
  mkdirSync(join(project, 'db', 'migrations'), { recursive: true });
  writeFileSync(join(project, 'db', 'migrations', '0001_notes.sql'), `-- Migration number: 0001\nCREATE TABLE notes (\n  id INTEGER PRIMARY KEY,\n  body TEXT NOT NULL -- the text; semicolons ; in comments are fine\n);\nINSERT INTO notes (body) VALUES ('first; with a semicolon');\n`);
  writeFileSync(join(project, 'db', 'migrations', '0002_trigger.sql'), `ALTER TABLE notes ADD COLUMN updated INTEGER;\nCREATE TRIGGER touch AFTER UPDATE OF body ON notes BEGIN\n  UPDATE notes SET updated = 1 WHERE id = NEW.id;\nEND;\n`);
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('wrangler d1_databases', () => {
  it('is read into bindings and upload metadata', () => {
    const config = readConfig(join(project, 'wrangler.toml'));
    expect(config.d1Databases).toEqual([{ binding: 'DB', databaseName: 'notes-db', databaseId: '5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00', migrationsDir: join(project, 'db', 'migrations'), migrationsTable: 'd1_migrations' }]);
    expect(configMetadata(config).bindings).toEqual([{ type: 'd1', name: 'DB', id: '5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00', database_name: 'notes-db' }]);
  });
});

describe('cinder d1 --local, and cinder dev on the same database', () => {
  let dev: DevServer | undefined;
  afterAll(async () => dev?.close());

  it('lists, applies (atomically, once) and then has nothing to apply', async () => {
    const listed = await cinder(['d1', 'migrations', 'list', 'DB', '--local'], project);
    expect(listed.stdout.trim().split('\n'), listed.stderr).toEqual(['pending  0001_notes.sql', 'pending  0002_trigger.sql']);
    const applied = await cinder(['d1', 'migrations', 'apply', 'notes-db', '--local'], project);
    expect(applied.stdout.trim().split('\n'), applied.stderr).toEqual(['applied  0001_notes.sql', 'applied  0002_trigger.sql']);
    const again = await cinder(['d1', 'migrations', 'apply', 'DB', '--local'], project);
    expect(again.stdout.trim()).toBe('no migrations to apply on 5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00; it is up to date');
  });

  it('executes --command and --file, printing rows, and reports SQL errors with exit code 1', async () => {
    writeFileSync(join(project, 'seed.sql'), `INSERT INTO notes (body) VALUES ('second');\nUPDATE notes SET body = 'first, edited' WHERE id = 1;\n`);
    const file = await cinder(['d1', 'execute', 'DB', '--local', '--file', 'seed.sql'], project);
    expect(file.code, file.stderr).toBe(0);
    const rows = await cinder(['d1', 'execute', 'DB', '--local', '--command', 'SELECT id, body, updated FROM notes ORDER BY id', '--json'], project);
    expect(JSON.parse(rows.stdout)).toEqual([{ results: [{ id: 1, body: 'first, edited', updated: 1 }, { id: 2, body: 'second', updated: null }], success: true }]);
    const table = await cinder(['d1', 'execute', 'DB', '--local', '--command', 'SELECT name FROM d1_migrations ORDER BY id'], project);
    expect(table.stdout.trim().split('\n')).toEqual(['name', '0001_notes.sql', '0002_trigger.sql']);
    const bad = await cinder(['d1', 'execute', 'DB', '--local', '--command', 'SELECT * FROM missing'], project);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('cinder d1: D1_ERROR: no such table: missing: SQLITE_ERROR\n');
  });

  it('serves the same database to the project under cinder dev', async () => {
    const { logger } = { logger: pino({ level: 'silent' }) };
    // the state `cinder dev` keeps beside the project, which `--local` reads
    dev = await startDev({ workers: [projectWorker(join(project, 'wrangler.toml'), undefined)], persistTo: join(project, '.cinder', 'state'), port: 0, logger });
    const response = await request(`${dev.url}/`);
    expect(await response.body.json()).toEqual([{ body: 'first, edited' }, { body: 'second' }]);
  });
});

describe('cinder d1 against a server', () => {
  let server: TestCinder;
  beforeAll(async () => {
    server = await startCinder({ extensions: [d1ServeExtension()] });
  });
  afterAll(() => server?.close({ cleanup: true }));

  it('applies migrations and runs SQL through the admin API', async () => {
    const env = { CINDER_URL: server.server.adminUrl, CINDER_TOKEN: TOKEN };
    const applied = await cinder(['d1', 'migrations', 'apply', 'DB'], project, env);
    expect(applied.stdout.trim().split('\n'), applied.stderr).toEqual(['applied  0001_notes.sql', 'applied  0002_trigger.sql']);
    expect((await cinder(['d1', 'migrations', 'list', 'DB'], project, env)).stdout.trim()).toBe('no migrations to apply on 5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00');
    const rows = await cinder(['d1', 'execute', 'DB', '--command', "INSERT INTO notes (body) VALUES ('remote'); SELECT body FROM notes ORDER BY id", '--json'], project, env);
    expect(JSON.parse(rows.stdout)).toEqual([
      { results: [], success: true },
      { results: [{ body: 'first; with a semicolon' }, { body: 'remote' }], success: true },
    ]);
    const listed = await cinder(['d1', 'list', '--json'], project, env);
    expect(JSON.parse(listed.stdout).databases.map((d: { id: string }) => d.id)).toEqual(['5b1b5a3c-0c1e-4c57-9d7c-2f0a4a9c1f00']);
    // The server's database is not the local one.
    const local = await cinder(['d1', 'execute', 'DB', '--local', '--command', "SELECT count(*) AS n FROM notes WHERE body = 'remote'", '--json'], project);
    expect(JSON.parse(local.stdout)[0].results).toEqual([{ n: 0 }]);
  });
});
