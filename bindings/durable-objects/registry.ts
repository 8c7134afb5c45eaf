// What Durable Objects exist on this server, in <data>/durable-objects/index.sqlite: each
// namespace (account, script, class) with its storage directory and kind, the migration tags each
// worker has applied, and every object's pending alarm (so alarms survive a restart). Namespaces
// are keyed by account first: a binding resolves only within its own worker's account, so no
// tenant can name another's objects. Object files live at <data>/durable-objects/<dir>/<id>.sqlite.
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/open-sqlite.js';
import type { DurableObjectMigration } from '../../src/model/worker-definition.js';

export interface NamespaceRecord {
  account: string;
  script: string;
  className: string;
  /** storage directory name (stays with the class through a rename) */
  dir: string;
  sqlite: boolean;
}

export interface AlarmRecord extends NamespaceRecord {
  id: string;
  name: string | null;
  /** epoch ms */
  at: number;
  /** failed runs so far */
  retries: number;
}

export class MigrationError extends Error {}

export class DurableObjectRegistry {
  readonly root: string;
  private readonly db: Database.Database;
  readonly secret: Buffer;

  /** `secret`: the id secret shared by every node (with --redis); default, this data directory's */
  constructor(dataDir: string, secret?: Buffer) {
    this.root = join(dataDir, 'durable-objects');
    mkdirSync(this.root, { recursive: true });
    this.secret = secret ?? loadSecret(join(this.root, 'id-secret'));
    this.db = openSqlite(join(this.root, 'index.sqlite'), 'FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS namespaces (account TEXT NOT NULL, script TEXT NOT NULL, class TEXT NOT NULL, dir TEXT NOT NULL UNIQUE, sqlite INTEGER NOT NULL, PRIMARY KEY (account, script, class));
      CREATE TABLE IF NOT EXISTS migration_tags (account TEXT NOT NULL, script TEXT NOT NULL, tag TEXT NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (account, script, tag));
      CREATE TABLE IF NOT EXISTS alarms (dir TEXT NOT NULL, id TEXT NOT NULL, name TEXT, at INTEGER NOT NULL, retries INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dir, id));
    `);
  }

  namespace(account: string, script: string, className: string): NamespaceRecord | undefined {
    const row = this.db.prepare('SELECT account, script, class AS className, dir, sqlite FROM namespaces WHERE account = ? AND script = ? AND class = ?').get(account, script, className) as (Omit<NamespaceRecord, 'sqlite'> & { sqlite: number }) | undefined;
    return row ? { ...row, sqlite: row.sqlite === 1 } : undefined;
  }

  classesOf(account: string, script: string): NamespaceRecord[] {
    const rows = this.db.prepare('SELECT account, script, class AS className, dir, sqlite FROM namespaces WHERE account = ? AND script = ? ORDER BY class').all(account, script) as (Omit<NamespaceRecord, 'sqlite'> & { sqlite: number })[];
    return rows.map((row) => ({ ...row, sqlite: row.sqlite === 1 }));
  }

  objectFile(dir: string, id: string): string {
    return join(this.root, dir, `${id}.sqlite`);
  }

  // --- migrations ---------------------------------------------------------------------------------

  /**
   * What the migrations would change, checked against what exists, without changing anything:
   * steps whose tag this worker already applied are skipped. Throws MigrationError naming the
   * problem. `apply` then makes the plan real.
   */
  plan(account: string, script: string, migrations: DurableObjectMigration[]): MigrationPlan {
    const applied = new Set((this.db.prepare('SELECT tag FROM migration_tags WHERE account = ? AND script = ?').pluck().all(account, script) as string[]));
    const classes = new Map(this.classesOf(account, script).map((r) => [r.className, r]));
    const steps: DurableObjectMigration[] = [];
    for (const [i, step] of migrations.entries()) {
      if (step.tag !== undefined && applied.has(step.tag)) continue;
      const where = `migrations[${i}]${step.tag ? ` (tag "${step.tag}")` : ''}`;
      for (const name of [...step.newClasses, ...step.newSqliteClasses]) {
        if (classes.has(name)) throw new MigrationError(`${where}: class ${name} already has Durable Objects in worker ${script}; a class is created once (give the step a tag so it is not applied again)`);
        classes.set(name, { account, script, className: name, dir: '', sqlite: step.newSqliteClasses.includes(name) });
      }
      for (const { from, to } of step.renamedClasses) {
        const record = classes.get(from);
        if (!record) throw new MigrationError(`${where}: cannot rename class ${from}: worker ${script} has no Durable Object class of that name`);
        if (classes.has(to)) throw new MigrationError(`${where}: cannot rename class ${from} to ${to}: ${to} already exists`);
        classes.delete(from);
        classes.set(to, { ...record, className: to });
      }
      for (const name of step.deletedClasses) {
        if (!classes.delete(name)) throw new MigrationError(`${where}: cannot delete class ${name}: worker ${script} has no Durable Object class of that name`);
      }
      steps.push(step);
    }
    return { account, script, steps, classes: [...classes.values()] };
  }

  /** Apply a plan made by `plan` (one transaction); deleted classes lose their storage. */
  apply(plan: MigrationPlan): void {
    const { account, script } = plan;
    const doomed: string[] = [];
    this.db.transaction(() => {
      for (const step of plan.steps) {
        for (const name of [...step.newClasses, ...step.newSqliteClasses]) {
          this.db.prepare('INSERT INTO namespaces (account, script, class, dir, sqlite) VALUES (?, ?, ?, ?, ?)').run(account, script, name, randomBytes(16).toString('hex'), step.newSqliteClasses.includes(name) ? 1 : 0);
        }
        for (const { from, to } of step.renamedClasses) {
          this.db.prepare('UPDATE namespaces SET class = ? WHERE account = ? AND script = ? AND class = ?').run(to, account, script, from);
        }
        for (const name of step.deletedClasses) {
          const record = this.namespace(account, script, name);
          if (!record) continue;
          this.db.prepare('DELETE FROM namespaces WHERE dir = ?').run(record.dir);
          this.db.prepare('DELETE FROM alarms WHERE dir = ?').run(record.dir);
          doomed.push(record.dir);
        }
        if (step.tag !== undefined) this.db.prepare('INSERT OR IGNORE INTO migration_tags (account, script, tag, applied_at) VALUES (?, ?, ?, ?)').run(account, script, step.tag, Date.now());
      }
    })();
    for (const dir of doomed) rmSync(join(this.root, dir), { recursive: true, force: true });
  }

  // --- one worker's classes, as nodes share them (with --redis, Redis holds them: the registry
  // mirrors what Redis says, so ids and storage directories are the same on every node) ---------

  scriptState(account: string, script: string): ScriptClasses {
    const tags = this.db.prepare('SELECT tag FROM migration_tags WHERE account = ? AND script = ? ORDER BY tag').pluck().all(account, script) as string[];
    return { classes: this.classesOf(account, script), tags };
  }

  /** Make this worker's classes what another node made them; a class gone loses its local data. */
  replaceScript(account: string, script: string, state: ScriptClasses): void {
    const keep = new Set(state.classes.map((c) => c.dir));
    const doomed = this.classesOf(account, script).filter((c) => !keep.has(c.dir)).map((c) => c.dir);
    this.db.transaction(() => {
      for (const dir of doomed) {
        this.db.prepare('DELETE FROM namespaces WHERE dir = ?').run(dir);
        this.db.prepare('DELETE FROM alarms WHERE dir = ?').run(dir);
      }
      for (const c of state.classes) {
        this.db.prepare('DELETE FROM namespaces WHERE account = ? AND script = ? AND class = ? AND dir <> ?').run(account, script, c.className, c.dir);
        this.db
          .prepare('INSERT INTO namespaces (account, script, class, dir, sqlite) VALUES (?, ?, ?, ?, ?) ON CONFLICT(dir) DO UPDATE SET class = excluded.class, sqlite = excluded.sqlite')
          .run(account, script, c.className, c.dir, c.sqlite ? 1 : 0);
      }
      this.db.prepare('DELETE FROM migration_tags WHERE account = ? AND script = ?').run(account, script);
      for (const tag of state.tags) this.db.prepare('INSERT INTO migration_tags (account, script, tag, applied_at) VALUES (?, ?, ?, ?)').run(account, script, tag, Date.now());
    })();
    for (const dir of doomed) rmSync(join(this.root, dir), { recursive: true, force: true });
  }

  // --- alarms -------------------------------------------------------------------------------------

  getAlarm(dir: string, id: string): number | null {
    const at = this.db.prepare('SELECT at FROM alarms WHERE dir = ? AND id = ?').pluck().get(dir, id) as number | undefined;
    return at ?? null;
  }

  setAlarm(dir: string, id: string, name: string | null, at: number): void {
    this.db.prepare('INSERT INTO alarms (dir, id, name, at, retries) VALUES (?, ?, ?, ?, 0) ON CONFLICT(dir, id) DO UPDATE SET at = excluded.at, name = excluded.name, retries = 0').run(dir, id, name, at);
  }

  deleteAlarm(dir: string, id: string): void {
    this.db.prepare('DELETE FROM alarms WHERE dir = ? AND id = ?').run(dir, id);
  }

  /** After a failed run: try again at `at` (the alarm's own time stays what getAlarm reports). */
  retryAlarm(dir: string, id: string, expectedAt: number, retries: number, at: number): void {
    this.db.prepare('UPDATE alarms SET retries = ?, at = ? WHERE dir = ? AND id = ? AND at = ?').run(retries, at, dir, id, expectedAt);
  }

  /** Remove the alarm if it is still the one that ran (the handler may have set a new one). */
  finishAlarm(dir: string, id: string, at: number): void {
    this.db.prepare('DELETE FROM alarms WHERE dir = ? AND id = ? AND at = ?').run(dir, id, at);
  }

  /** Alarms due by `now`, and the time of the next one after that (null: none). */
  dueAlarms(now: number): { due: AlarmRecord[]; next: number | null } {
    const due = this.db
      .prepare('SELECT n.account, n.script, n.class AS className, n.dir, n.sqlite, a.id, a.name, a.at, a.retries FROM alarms a JOIN namespaces n ON n.dir = a.dir WHERE a.at <= ? ORDER BY a.at LIMIT 1000')
      .all(now) as (Omit<AlarmRecord, 'sqlite'> & { sqlite: number })[];
    const next = this.db.prepare('SELECT min(at) FROM alarms WHERE at > ?').pluck().get(now) as number | null;
    return { due: due.map((r) => ({ ...r, sqlite: r.sqlite === 1 })), next };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** A worker's Durable Object classes and the migration tags it applied. */
export interface ScriptClasses {
  classes: NamespaceRecord[];
  tags: string[];
}

export interface MigrationPlan {
  account: string;
  script: string;
  steps: DurableObjectMigration[];
  /** the worker's classes once the plan is applied (dir empty for new ones) */
  classes: NamespaceRecord[];
}

/** The data directory's id secret, made once: written whole to a temporary file, then linked into
 *  place (link fails if another process got there first, and then both read that one). */
function loadSecret(file: string): Buffer {
  if (!existsSync(file)) {
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(temp, randomBytes(32), { mode: 0o600, flush: true });
    try {
      linkSync(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temp);
    }
  }
  const secret = readFileSync(file);
  if (secret.length !== 32) throw new Error(`${file} is not a Durable Object id secret (expected 32 bytes, found ${secret.length})`);
  return secret;
}
