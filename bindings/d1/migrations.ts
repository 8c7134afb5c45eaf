// D1 migrations as wrangler lays them out: numbered .sql files in the migrations directory,
// applied in name order, each in one transaction together with its row in the migrations table
// (d1_migrations by default), so a migration is applied whole or not at all and never twice.
// The same logic runs against a local database file and against a server's admin API; only the
// runner differs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { splitStatements } from './sql-split.js';
import type { WireD1Value } from './protocol.js';

export interface Migration {
  name: string;
  sql: string;
}

/** Runs statements in one transaction and answers each one's rows as objects. */
export type MigrationRunner = (statements: { sql: string; params: WireD1Value[] }[]) => Promise<Record<string, unknown>[][]>;

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function readMigrations(dir: string): Migration[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`no migrations directory at ${dir} (set migrations_dir in the d1_databases entry)`);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => ({ name: file, sql: readFileSync(join(dir, file), 'utf8') }));
}

function checkTable(table: string): void {
  if (!TABLE_NAME.test(table)) throw new Error(`migrations_table "${table}" is not a plain SQL table name`);
}

async function appliedNames(run: MigrationRunner, table: string): Promise<string[]> {
  checkTable(table);
  const [, rows] = await run([
    { sql: `CREATE TABLE IF NOT EXISTS ${table} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)`, params: [] },
    { sql: `SELECT name FROM ${table} ORDER BY id`, params: [] },
  ]);
  return rows.map((row) => String(row.name));
}

/** Where migrations come from: a directory, or a list already read (the admin API gets them sent). */
export type MigrationSource = string | (() => Migration[]);

/** Migrations not yet recorded in `table`. */
export async function pendingMigrations(run: MigrationRunner, source: MigrationSource, table = 'd1_migrations'): Promise<Migration[]> {
  const all = typeof source === 'string' ? readMigrations(source) : source();
  const applied = new Set(await appliedNames(run, table));
  return all.filter((migration) => !applied.has(migration.name));
}

/** Apply every pending migration, each atomically with its record; answers the names applied. A
 *  failing migration stops the run, naming it (the ones before it stay applied). */
export async function applyMigrations(run: MigrationRunner, source: MigrationSource, table = 'd1_migrations'): Promise<string[]> {
  const done: string[] = [];
  for (const migration of await pendingMigrations(run, source, table)) {
    const statements = splitStatements(migration.sql).map((piece) => ({ sql: piece.sql, params: [] as WireD1Value[] }));
    statements.push({ sql: `INSERT INTO ${table} (name) VALUES (?)`, params: [migration.name] });
    try {
      await run(statements);
    } catch (error) {
      throw new Error(`migration ${migration.name} failed and was not applied: ${(error as Error).message}`);
    }
    done.push(migration.name);
  }
  return done;
}
