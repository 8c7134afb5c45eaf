// The embedded deployment store: one SQLite file (better-sqlite3) under the server's --data
// directory. WAL so readers never wait on the one writer; synchronous=FULL because deploys are rare
// and a deploy the API acknowledged must survive a power cut, not just a crash.
//
// better-sqlite3 is synchronous; the methods are async only to satisfy DeploymentStore, which a
// networked store (Redis) must be able to implement.
import type Database from 'better-sqlite3';
import { moduleSize, type WorkerModuleSource } from '../model/worker-definition.js';
import {
  AccountExistsError,
  DEFAULT_ACCOUNT,
  RouteConflictError,
  WorkerOwnedError,
  type AccountInfo,
  type DeploymentStore,
  type NewVersion,
  type RouteRecord,
  type StoredCodeCache,
  type StoredDeploymentSnapshot,
  type TokenInfo,
  type VersionInfo,
  type WorkerInfo,
} from './types.js';
import { openSqlite } from './open-sqlite.js';
import { findRouteClaimConflict } from './route-claims.js';

// Bump when the schema changes, and add a migration step to migrate().
const SCHEMA_VERSION = 5;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS workers (
  name            TEXT PRIMARY KEY,
  current_version TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  account         TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS workers_by_account ON workers (account);
CREATE TABLE IF NOT EXISTS accounts (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
  id         TEXT PRIMARY KEY,
  account    TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the token; the token itself is never stored
  label      TEXT,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  id                 TEXT PRIMARY KEY,
  worker             TEXT NOT NULL,
  number             INTEGER NOT NULL,
  hash               TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  size               INTEGER NOT NULL,
  main               TEXT NOT NULL,
  modules            TEXT NOT NULL,  -- JSON ModuleSummary[] (code lives in version_modules)
  bindings           TEXT NOT NULL,  -- JSON
  routes             TEXT,           -- JSON string[] or NULL
  crons              TEXT NOT NULL,  -- JSON string[]
  limits             TEXT NOT NULL,  -- JSON
  compatibility_date TEXT,
  compatibility_flags TEXT,         -- JSON string[]; NULL in versions stored before schema 5
  UNIQUE (worker, number)
);
CREATE TABLE IF NOT EXISTS version_modules (
  version_id TEXT NOT NULL,
  position   INTEGER NOT NULL,
  name       TEXT NOT NULL,
  type       TEXT NOT NULL,
  code       TEXT NOT NULL,  -- source text; base64 of the bytes for data and wasm modules
  PRIMARY KEY (version_id, position)
);
CREATE TABLE IF NOT EXISTS routes (
  pattern TEXT PRIMARY KEY,
  worker  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS routes_by_worker ON routes (worker);
CREATE TABLE IF NOT EXISTS code_cache (
  version_id TEXT NOT NULL,
  module     TEXT NOT NULL,
  v8         TEXT NOT NULL,
  data       BLOB NOT NULL,
  after_run  INTEGER NOT NULL DEFAULT 0,  -- 1: made after a first request (see StoredCodeCache)
  PRIMARY KEY (version_id, module)
);
CREATE TABLE IF NOT EXISTS deployment_snapshots (
  version_id TEXT PRIMARY KEY,
  platform   TEXT NOT NULL,
  data       BLOB,           -- NULL when refused
  sha256     TEXT,
  handlers   TEXT,
  refused    TEXT            -- why the builder refused one on this platform
);
`;

interface VersionRow {
  id: string;
  worker: string;
  number: number;
  hash: string;
  created_at: number;
  size: number;
  main: string;
  modules: string;
  bindings: string;
  routes: string | null;
  crons: string;
  limits: string;
  compatibility_date: string | null;
  compatibility_flags: string | null;
}

interface WorkerRow {
  name: string;
  current_version: string;
  created_at: number;
  updated_at: number;
  account: string;
}

function toVersion(row: VersionRow): VersionInfo {
  return {
    id: row.id,
    worker: row.worker,
    number: row.number,
    hash: row.hash,
    createdAt: row.created_at,
    size: row.size,
    main: row.main,
    modules: JSON.parse(row.modules),
    bindings: JSON.parse(row.bindings),
    routes: row.routes === null ? null : JSON.parse(row.routes),
    crons: JSON.parse(row.crons),
    limits: JSON.parse(row.limits),
    compatibilityDate: row.compatibility_date,
    compatibilityFlags: row.compatibility_flags === null ? [] : JSON.parse(row.compatibility_flags),
  };
}

function toWorker(row: WorkerRow): WorkerInfo {
  return { name: row.name, account: row.account, currentVersion: row.current_version, createdAt: row.created_at, updatedAt: row.updated_at };
}

const toAccount = (row: { id: string; name: string; created_at: number }): AccountInfo => ({ id: row.id, name: row.name, createdAt: row.created_at });
const toToken = (row: { id: string; account: string; hash: string; label: string | null; created_at: number }): TokenInfo => ({
  id: row.id,
  account: row.account,
  hash: row.hash,
  label: row.label,
  createdAt: row.created_at,
});

export class SqliteDeploymentStore implements DeploymentStore {
  private readonly db: Database.Database;
  /** the V8 that made a code cache; caches from another V8 are rejected by it, so not returned */
  private readonly v8 = process.versions.v8;

  constructor(readonly file: string) {
    this.db = openSqlite(file, 'FULL');
    this.migrate();
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(`${this.file} was written by a newer Cinder (schema ${current}, this one knows ${SCHEMA_VERSION})`);
    }
    this.db.transaction(() => {
      // Schema 1 -> 2: code cache entries say whether they were made after a first request. The
      // entries a schema-1 server stored count as compile-time ones (made again once, then kept).
      if (current === 1) this.db.exec('ALTER TABLE code_cache ADD COLUMN after_run INTEGER NOT NULL DEFAULT 0');
      // Schema 2 -> 3: accounts. Every worker there was belongs to the default account, which the
      // operator token acts on, so single-tenant use carries on as before.
      // (Checked by column, not only by number: a file may have been taken back by hand.)
      const hasAccount = (this.db.prepare('PRAGMA table_info(workers)').all() as { name: string }[]).some((c) => c.name === 'account');
      if (current >= 1 && current < 3 && !hasAccount) this.db.exec(`ALTER TABLE workers ADD COLUMN account TEXT NOT NULL DEFAULT '${DEFAULT_ACCOUNT}'`);
      // Schema 3 -> 4: per-deployment snapshots, a new table (created by SCHEMA).
      // Schema 4 -> 5: versions keep their compatibility flags (NULL, read as none, before).
      const hasFlags = (this.db.prepare('PRAGMA table_info(versions)').all() as { name: string }[]).some((c) => c.name === 'compatibility_flags');
      if (current >= 1 && !hasFlags) this.db.exec('ALTER TABLE versions ADD COLUMN compatibility_flags TEXT');
      this.db.exec(SCHEMA);
      this.db.prepare('INSERT OR IGNORE INTO accounts (id, name, created_at) VALUES (?, ?, ?)').run(DEFAULT_ACCOUNT, DEFAULT_ACCOUNT, Date.now());
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return (this.db.prepare('SELECT * FROM workers ORDER BY name').all() as WorkerRow[]).map(toWorker);
  }

  async getWorker(name: string): Promise<WorkerInfo | null> {
    const row = this.db.prepare('SELECT * FROM workers WHERE name = ?').get(name) as WorkerRow | undefined;
    return row ? toWorker(row) : null;
  }

  async listVersions(worker: string): Promise<VersionInfo[]> {
    return (this.db.prepare('SELECT * FROM versions WHERE worker = ? ORDER BY number DESC').all(worker) as VersionRow[]).map(toVersion);
  }

  async getVersion(worker: string, id: string): Promise<VersionInfo | null> {
    const row = this.db.prepare('SELECT * FROM versions WHERE worker = ? AND id = ?').get(worker, id) as VersionRow | undefined;
    return row ? toVersion(row) : null;
  }

  async getModules(versionId: string): Promise<WorkerModuleSource[]> {
    return this.db.prepare('SELECT name, type, code FROM version_modules WHERE version_id = ? ORDER BY position').all(versionId) as WorkerModuleSource[];
  }

  async publish(version: NewVersion, routes?: string[], account: string = DEFAULT_ACCOUNT): Promise<VersionInfo> {
    const run = this.db.transaction((): VersionInfo => {
      const owner = this.db.prepare('SELECT account FROM workers WHERE name = ?').get(version.worker) as { account: string } | undefined;
      if (owner && owner.account !== account) throw new WorkerOwnedError(version.worker);
      const { next } = this.db.prepare('SELECT COALESCE(MAX(number), 0) + 1 AS next FROM versions WHERE worker = ?').get(version.worker) as { next: number };
      const summary = version.modules.map((m) => ({ name: m.name, type: m.type, size: moduleSize(m) }));
      this.db
        .prepare(
          `INSERT INTO versions (id, worker, number, hash, created_at, size, main, modules, bindings, routes, crons, limits, compatibility_date, compatibility_flags)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          version.id,
          version.worker,
          next,
          version.hash,
          version.createdAt,
          version.size,
          version.main,
          JSON.stringify(summary),
          JSON.stringify(version.bindings),
          version.routes === null ? null : JSON.stringify(version.routes),
          JSON.stringify(version.crons),
          JSON.stringify(version.limits),
          version.compatibilityDate,
          JSON.stringify(version.compatibilityFlags ?? []),
        );
      const insertModule = this.db.prepare('INSERT INTO version_modules (version_id, position, name, type, code) VALUES (?, ?, ?, ?, ?)');
      version.modules.forEach((m, i) => insertModule.run(version.id, i, m.name, m.type, m.code));
      this.db
        .prepare(
          `INSERT INTO workers (name, current_version, created_at, updated_at, account) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET current_version = excluded.current_version, updated_at = excluded.updated_at`,
        )
        .run(version.worker, version.id, version.createdAt, version.createdAt, account);
      if (routes) this.replaceRoutes(version.worker, account, routes);
      return { ...version, number: next, modules: summary };
    });
    // .immediate: take the write lock up front, so two servers on one file serialize cleanly.
    return run.immediate();
  }

  async activate(worker: string, versionId: string): Promise<void> {
    const result = this.db
      .prepare('UPDATE workers SET current_version = ?, updated_at = ? WHERE name = ? AND EXISTS (SELECT 1 FROM versions WHERE id = ? AND worker = ?)')
      .run(versionId, Date.now(), worker, versionId, worker);
    if (result.changes === 0) throw new Error(`worker "${worker}" has no version "${versionId}"`);
  }

  async setRoutes(worker: string, patterns: string[]): Promise<void> {
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT account FROM workers WHERE name = ?').get(worker) as { account: string } | undefined;
      if (!row) throw new Error(`no worker named "${worker}"`);
      this.replaceRoutes(worker, row.account, patterns);
      this.db.prepare('UPDATE workers SET updated_at = ? WHERE name = ?').run(Date.now(), worker);
    }).immediate();
  }

  /**
   * Inside a transaction: make `patterns` exactly the worker's routes, or throw on a conflict: the
   * same pattern on another worker, or (another account) any route that could match the same
   * host, or a host whose first label is another account's worker name (route-claims.ts).
   */
  private replaceRoutes(worker: string, account: string, patterns: string[]): void {
    const owner = this.db.prepare('SELECT r.worker, w.account FROM routes r LEFT JOIN workers w ON w.name = r.worker WHERE r.pattern = ?');
    for (const pattern of patterns) {
      const row = owner.get(pattern) as { worker: string; account: string | null } | undefined;
      if (row && row.worker !== worker) throw new RouteConflictError(pattern, (row.account ?? DEFAULT_ACCOUNT) === account ? row.worker : null, `the route "${pattern}"`);
    }
    if (patterns.length) {
      const others = this.db.prepare('SELECT r.pattern FROM routes r JOIN workers w ON w.name = r.worker WHERE w.account != ?').all(account) as { pattern: string }[];
      const foreignName = this.db.prepare('SELECT 1 FROM workers WHERE name = ? AND account != ?');
      const conflict = findRouteClaimConflict(
        patterns,
        others.map((r) => r.pattern),
        (name) => foreignName.get(name, account) !== undefined,
      );
      if (conflict) throw new RouteConflictError(conflict.pattern, null, conflict.claim);
    }
    this.db.prepare('DELETE FROM routes WHERE worker = ?').run(worker);
    const insert = this.db.prepare('INSERT INTO routes (pattern, worker) VALUES (?, ?)');
    for (const pattern of new Set(patterns)) insert.run(pattern, worker);
  }

  async listRoutes(): Promise<RouteRecord[]> {
    return this.db.prepare(`SELECT r.pattern, r.worker, COALESCE(w.account, '${DEFAULT_ACCOUNT}') AS account FROM routes r LEFT JOIN workers w ON w.name = r.worker ORDER BY r.pattern`).all() as RouteRecord[];
  }

  async deleteWorker(name: string): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const existed = this.db.prepare('DELETE FROM workers WHERE name = ?').run(name).changes > 0;
      const ids = `SELECT id FROM versions WHERE worker = ?`;
      this.db.prepare(`DELETE FROM code_cache WHERE version_id IN (${ids})`).run(name);
      this.db.prepare(`DELETE FROM deployment_snapshots WHERE version_id IN (${ids})`).run(name);
      this.db.prepare(`DELETE FROM version_modules WHERE version_id IN (${ids})`).run(name);
      this.db.prepare('DELETE FROM versions WHERE worker = ?').run(name);
      this.db.prepare('DELETE FROM routes WHERE worker = ?').run(name);
      return existed;
    }).immediate();
  }

  async createAccount(account: AccountInfo): Promise<void> {
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM accounts WHERE name = ? OR id = ?').get(account.name, account.name)) throw new AccountExistsError(account.name);
      this.db.prepare('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)').run(account.id, account.name, account.createdAt);
    }).immediate();
  }

  async getAccount(idOrName: string): Promise<AccountInfo | null> {
    const row = this.db.prepare('SELECT * FROM accounts WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1').get(idOrName, idOrName, idOrName) as Parameters<typeof toAccount>[0] | undefined;
    return row ? toAccount(row) : null;
  }

  async listAccounts(): Promise<AccountInfo[]> {
    return (this.db.prepare('SELECT * FROM accounts ORDER BY name').all() as Parameters<typeof toAccount>[0][]).map(toAccount);
  }

  async createToken(token: TokenInfo): Promise<void> {
    this.db.prepare('INSERT INTO tokens (id, account, hash, label, created_at) VALUES (?, ?, ?, ?, ?)').run(token.id, token.account, token.hash, token.label, token.createdAt);
  }

  async findToken(hash: string): Promise<TokenInfo | null> {
    const row = this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as Parameters<typeof toToken>[0] | undefined;
    return row ? toToken(row) : null;
  }

  async listTokens(account?: string): Promise<TokenInfo[]> {
    const rows = account === undefined ? this.db.prepare('SELECT * FROM tokens ORDER BY created_at').all() : this.db.prepare('SELECT * FROM tokens WHERE account = ? ORDER BY created_at').all(account);
    return (rows as Parameters<typeof toToken>[0][]).map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0;
  }

  async getCodeCache(versionId: string): Promise<StoredCodeCache> {
    const rows = this.db.prepare('SELECT module, data, after_run FROM code_cache WHERE version_id = ? AND v8 = ?').all(versionId, this.v8) as { module: string; data: Buffer; after_run: number }[];
    return { modules: new Map(rows.map((r) => [r.module, r.data])), afterRun: rows.length > 0 && rows.every((r) => r.after_run === 1) };
  }

  async putCodeCache(versionId: string, cache: StoredCodeCache): Promise<void> {
    const insert = this.db.prepare('INSERT OR REPLACE INTO code_cache (version_id, module, v8, data, after_run) VALUES (?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      // Only for versions that still exist: a delete may have raced the (best-effort) cache write.
      if (!this.db.prepare('SELECT 1 FROM versions WHERE id = ?').get(versionId)) return;
      for (const [module, data] of cache.modules) insert.run(versionId, module, this.v8, data, cache.afterRun ? 1 : 0);
    })();
  }

  async getDeploymentSnapshot(versionId: string): Promise<StoredDeploymentSnapshot | null> {
    const row = this.db.prepare('SELECT platform, data, sha256, handlers, refused FROM deployment_snapshots WHERE version_id = ?').get(versionId) as
      | { platform: string; data: Buffer | null; sha256: string | null; handlers: string | null; refused: string | null }
      | undefined;
    if (!row) return null;
    if (row.refused !== null || !row.data) return { platform: row.platform, refused: row.refused ?? 'no data' };
    return { platform: row.platform, data: row.data, sha256: row.sha256 ?? '', handlers: row.handlers ?? '' };
  }

  async putDeploymentSnapshot(versionId: string, snapshot: StoredDeploymentSnapshot): Promise<void> {
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM versions WHERE id = ?').get(versionId)) return;
      const row = 'refused' in snapshot ? [snapshot.platform, null, null, null, snapshot.refused] : [snapshot.platform, snapshot.data, snapshot.sha256, snapshot.handlers, null];
      this.db.prepare('INSERT OR REPLACE INTO deployment_snapshots (version_id, platform, data, sha256, handlers, refused) VALUES (?, ?, ?, ?, ?, ?)').run(versionId, ...row);
    })();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
