// Migrations apply each file atomically with its d1_migrations row: a failing file leaves nothing
// of itself behind, the ones before it stay applied, and a fixed file applies on the next run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations, D1Service, type MigrationRunner } from '../../bindings/d1/index.js';

const root = mkdtempSync(join(tmpdir(), 'cinder-d1-migrations-'));
const service = new D1Service({ dataDir: join(root, 'data'), processes: 1 });
afterAll(() => {
  service.close();
  rmSync(root, { recursive: true, force: true });
});

const ref = { account: 'default', id: 'app' };
const run: MigrationRunner = async (statements) => (await service.query(ref, statements)).results.map((r) => r.rows.map((row) => Object.fromEntries(row.map((cell, i) => [r.columns[i], cell]))));

describe('D1 migrations', () => {
  it('applies each file whole or not at all', async () => {
    const dir = join(root, 'migrations');
    mkdirSync(dir);
    writeFileSync(join(dir, '0001_a.sql'), 'CREATE TABLE a (x INTEGER);');
    writeFileSync(join(dir, '0002_b.sql'), 'CREATE TABLE b (y INTEGER);\nINSERT INTO nowhere VALUES (1);');
    await expect(applyMigrations(run, dir)).rejects.toThrow('migration 0002_b.sql failed and was not applied: no such table: nowhere: SQLITE_ERROR');
    const tables = await run([{ sql: "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('a', 'b') ORDER BY name", params: [] }, { sql: 'SELECT name FROM d1_migrations', params: [] }]);
    expect(tables).toEqual([[{ name: 'a' }], [{ name: '0001_a.sql' }]]);

    writeFileSync(join(dir, '0002_b.sql'), 'CREATE TABLE b (y INTEGER);\nINSERT INTO b VALUES (1);');
    expect(await applyMigrations(run, dir)).toEqual(['0002_b.sql']);
    expect(await applyMigrations(run, dir)).toEqual([]);
  });
});
