// Admin API for D1, mounted by the control plane at /d1 (behind its bearer auth):
//
//   GET    /d1                         -> {databases: [{id, bytes}]}   the caller's account's databases
//   POST   /d1/:id/query               body {sql, params?} or {statements: [{sql, params?}]}
//                                      -> {results: [{results, success, meta}]}  one transaction
//   POST   /d1/:id/exec                body {sql}: multi-statement text -> {count, duration}
//   POST   /d1/:id/migrations          body {migrations: [{name, sql}], table?, dry_run?}
//                                      -> {applied: [names]} (or {pending} with dry_run): wrangler's
//                                      d1_migrations bookkeeping, each migration atomic
//   GET    /d1/:id/export              -> the database as a SQLite file
//   DELETE /d1/:id                     -> {deleted: true} (404 when there is none)
//
// A database id is the calling account's own name for it (an account token naming another
// tenant's id reaches an empty database of its own). The operator acts on the default account, or
// on another with ?account=ID. Everything goes through the D1Service the workers use, so limits
// and errors are the same.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { D1Error, type D1Service } from '../../bindings/d1/index.js';
import { D1_LIMITS, type WireD1Result, type WireD1Value } from '../../bindings/d1/protocol.js';
import { databaseIdError } from '../../bindings/d1/service.js';
import { applyMigrations, pendingMigrations, type Migration } from '../../bindings/d1/migrations.js';
import { actingAccount, scopeOf } from './principal.js';

const MAX_BODY = 16 * 1024 * 1024;

function account(c: Context): string {
  const asked = c.req.query('account');
  if (asked && scopeOf(c) === undefined) return asked;
  return actingAccount(c);
}

function ref(c: Context): { account: string; id: string } {
  const id = c.req.param('id') ?? '';
  const error = databaseIdError(id);
  if (error) throw new D1Error(`invalid database id "${id.slice(0, 64)}": ${error}`);
  return { account: account(c), id };
}

/** A cell for JSON: BLOBs as arrays of numbers, as D1's API answers them. */
function jsonCell(value: WireD1Value): unknown {
  return value instanceof ArrayBuffer ? Array.from(new Uint8Array(value)) : value;
}

function jsonResult(result: WireD1Result): { results: Record<string, unknown>[]; success: true; meta: WireD1Result['meta'] } {
  const results = result.rows.map((row) => Object.fromEntries(row.map((cell, i) => [result.columns[i], jsonCell(cell)])));
  return { results, success: true, meta: result.meta };
}

/** Bound values from JSON: numbers, strings, null, booleans (1/0), arrays of bytes (BLOBs). */
function param(value: unknown, where: string): WireD1Value {
  if (value === null || typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (Array.isArray(value) && value.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return new Uint8Array(value).buffer;
  throw new D1Error(`${where}: a bound value must be a number, a string, null, a boolean or an array of bytes`);
}

function statementsOf(body: unknown): { sql: string; params: WireD1Value[] }[] {
  const raw = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const list = Array.isArray(raw.statements) ? raw.statements : [raw];
  return list.map((item, i) => {
    const { sql, params } = (item ?? {}) as { sql?: unknown; params?: unknown };
    const where = Array.isArray(raw.statements) ? `statements[${i}]` : 'body';
    if (typeof sql !== 'string' || sql.trim() === '') throw new D1Error(`${where}.sql must be SQL text`);
    if (params !== undefined && !Array.isArray(params)) throw new D1Error(`${where}.params must be an array`);
    if ((params ?? []).length > D1_LIMITS.maxBoundParameters) throw new D1Error(`${where}.params: at most ${D1_LIMITS.maxBoundParameters} bound values`);
    return { sql, params: ((params ?? []) as unknown[]).map((p, j) => param(p, `${where}.params[${j}]`)) };
  });
}

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new D1Error('the body must be JSON such as {"sql": "SELECT 1"}');
  }
}

function guarded(handler: (c: Context) => Promise<Response>) {
  return async (c: Context) => {
    try {
      return await handler(c);
    } catch (error) {
      if (error instanceof D1Error) return c.json({ error: `D1_ERROR: ${error.message}` }, 400);
      throw error;
    }
  };
}

export function d1Routes(service: D1Service): Hono {
  const app = new Hono();
  const limit = bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.json({ error: `request body over ${MAX_BODY} bytes` }, 413) });

  app.get('/', (c) => c.json({ databases: service.list(account(c)) }));

  app.post(
    '/:id/query',
    limit,
    guarded(async (c) => {
      const statements = statementsOf(await jsonBody(c));
      const answer = await service.query(ref(c), statements);
      return c.json({ results: answer.results.map(jsonResult) });
    }),
  );

  app.post(
    '/:id/exec',
    limit,
    guarded(async (c) => {
      const body = (await jsonBody(c)) as { sql?: unknown };
      if (typeof body?.sql !== 'string') throw new D1Error('body.sql must be SQL text');
      return c.json(await service.exec(ref(c), body.sql));
    }),
  );

  app.post(
    '/:id/migrations',
    limit,
    guarded(async (c) => {
      const body = (await jsonBody(c)) as { migrations?: unknown; table?: unknown; dry_run?: unknown };
      if (!Array.isArray(body?.migrations)) throw new D1Error('body.migrations must be an array of {name, sql}');
      const migrations: Migration[] = body.migrations.map((m, i) => {
        const { name, sql } = (m ?? {}) as { name?: unknown; sql?: unknown };
        if (typeof name !== 'string' || !name || typeof sql !== 'string') throw new D1Error(`body.migrations[${i}] must be {name, sql}`);
        return { name, sql };
      });
      const table = body.table === undefined ? 'd1_migrations' : String(body.table);
      const database = ref(c);
      const run = async (statements: { sql: string; params: WireD1Value[] }[]) => (await service.query(database, statements)).results.map((r) => jsonResult(r).results);
      try {
        if (body.dry_run === true) return c.json({ pending: (await pendingMigrations(run, () => migrations, table)).map((m) => m.name) });
        return c.json({ applied: await applyMigrations(run, () => migrations, table) });
      } catch (error) {
        if (error instanceof D1Error) throw error;
        return c.json({ error: (error as Error).message }, 400);
      }
    }),
  );

  app.get(
    '/:id/export',
    guarded(async (c) => {
      const database = ref(c);
      if (!service.exists(database)) return c.json({ error: `no D1 database "${database.id}"` }, 404);
      const bytes = await service.dump(database);
      return new Response(new Uint8Array(bytes) as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/vnd.sqlite3', 'content-disposition': `attachment; filename="${database.id}.sqlite"` } });
    }),
  );

  app.delete(
    '/:id',
    guarded(async (c) => {
      const database = ref(c);
      if (!(await service.delete(database))) return c.json({ error: `no D1 database "${database.id}"` }, 404);
      return c.json({ deleted: true });
    }),
  );

  return app;
}
