// Where deployments live. The control plane talks to this interface only, so the embedded SQLite
// store (one node) and a Redis store (several nodes) are interchangeable: every method is async,
// and every write that must be all-or-nothing (a new version plus its route claims) is one call,
// so an implementation can make it one transaction (SQLite) or one MULTI/Lua script (Redis).
import type { BindingConfig, DeploymentSnapshot, ModuleType, WorkerModuleSource } from '../model/worker-definition.js';
import type { Limits } from '../model/limits.js';
import type { AccountInfo, TokenInfo } from '../model/accounts.js';

export type { AccountInfo, TokenInfo } from '../model/accounts.js';
export { DEFAULT_ACCOUNT } from '../model/accounts.js';

/** Where `cinder serve` keeps its state unless given --data. */
export const DEFAULT_DATA_DIR = '.cinder';

/** One module of a version, without its code (what listings show). */
export interface ModuleSummary {
  name: string;
  type: ModuleType;
  /** bytes of source */
  size: number;
}

/** An immutable version of a worker, as uploaded. */
export interface VersionInfo {
  /** globally unique id (a UUID) */
  id: string;
  worker: string;
  /** 1, 2, 3... per worker, in upload order: what people type for "roll back to 3" */
  number: number;
  /** sha256 of the modules (names, types, code): equal code, equal hash */
  hash: string;
  /** ms since the epoch */
  createdAt: number;
  /** total bytes of module source */
  size: number;
  main: string;
  modules: ModuleSummary[];
  bindings: Record<string, BindingConfig>;
  /** route patterns sent with this upload; null when the upload left the worker's routes alone */
  routes: string[] | null;
  crons: string[];
  limits: Partial<Limits>;
  compatibilityDate: string | null;
  /** compatibility flags (only supported ones are accepted at upload) */
  compatibilityFlags: string[];
}

/** What the control plane hands the store to create a version. */
export interface NewVersion extends Omit<VersionInfo, 'number' | 'modules'> {
  modules: WorkerModuleSource[];
}

export interface WorkerInfo {
  name: string;
  /** the account that owns the worker (and its name, and the hosts <name>.<anything>) */
  account: string;
  /** id of the version that serves requests */
  currentVersion: string;
  createdAt: number;
  updatedAt: number;
}

export interface RouteRecord {
  pattern: string;
  worker: string;
  /** the worker's account (listRoutes fills it in; writers need not) */
  account?: string;
}

/**
 * A route pattern cannot be claimed: nothing was written. Either another worker of the same
 * account has exactly this pattern (`owner` names it), or the pattern could match a host another
 * account claimed (`owner` is null: another tenant's worker names are not told).
 */
export class RouteConflictError extends Error {
  constructor(
    readonly pattern: string,
    readonly owner: string | null,
    /** for another account's claim: what it is, in words (`route "x/*"`, `worker name "good"`) */
    readonly claim?: string,
  ) {
    super(owner !== null ? `route "${pattern}" is already owned by worker "${owner}"` : `route "${pattern}" could match hosts of ${claim}, which another account has claimed`);
    this.name = 'RouteConflictError';
  }
}

/** The worker name belongs to another account: nothing was written. */
export class WorkerOwnedError extends Error {
  constructor(readonly worker: string) {
    super(`the worker name "${worker}" belongs to another account`);
    this.name = 'WorkerOwnedError';
  }
}

/** An account of that name exists already. */
export class AccountExistsError extends Error {
  constructor(readonly account: string) {
    super(`an account named "${account}" exists already`);
    this.name = 'AccountExistsError';
  }
}

/** A version's V8 code cache, as the deployment store keeps it. */
export interface StoredCodeCache {
  /** module name -> V8 code cache */
  modules: Map<string, Buffer>;
  /**
   * Made after the worker's top level and a first request ran (so it holds the functions they
   * compiled), not at compile time: a restarted server need not make it again. False when any
   * stored entry was made at compile time.
   */
  afterRun: boolean;
}

/** A version's per-deployment snapshot as the store keeps it, or why its builder refused one (so
 *  a restart on the same platform does not try again). One per version: the platform's. */
export type StoredDeploymentSnapshot = DeploymentSnapshot | { platform: string; refused: string };

export interface DeploymentStore {
  listWorkers(): Promise<WorkerInfo[]>;
  getWorker(name: string): Promise<WorkerInfo | null>;
  /** newest first */
  listVersions(worker: string): Promise<VersionInfo[]>;
  getVersion(worker: string, id: string): Promise<VersionInfo | null>;
  /** the code of a version, for loading it into the runtime */
  getModules(versionId: string): Promise<WorkerModuleSource[]>;

  /**
   * Store a new version and make it the worker's current one, creating the worker if needed.
   * When `routes` is given the worker's routes become exactly those patterns. Atomic: if a pattern
   * belongs to another worker this throws RouteConflictError and stores nothing. `account`
   * (default: DEFAULT_ACCOUNT) owns a new worker; for an existing worker it must be its owner, or
   * this throws WorkerOwnedError. Route patterns of other accounts are compared by what they
   * match (model/route-pattern.ts), not by spelling.
   */
  publish(version: NewVersion, routes?: string[], account?: string): Promise<VersionInfo>;
  /** Make an existing version of the worker current (rollback). */
  activate(worker: string, versionId: string): Promise<void>;
  /** Replace the worker's routes; RouteConflictError (and no change) on a pattern owned elsewhere. */
  setRoutes(worker: string, patterns: string[]): Promise<void>;
  listRoutes(): Promise<RouteRecord[]>;
  /** Forget the worker, its versions, routes and caches. False when there was no such worker. */
  deleteWorker(name: string): Promise<boolean>;

  // Accounts and scoped tokens (the operator's token is not stored here: see control/auth.ts).
  /** AccountExistsError when the name is taken. */
  createAccount(account: AccountInfo): Promise<void>;
  /** by id or by name */
  getAccount(idOrName: string): Promise<AccountInfo | null>;
  listAccounts(): Promise<AccountInfo[]>;
  createToken(token: TokenInfo): Promise<void>;
  /** the token whose secret hashes to `hash`, if any */
  findToken(hash: string): Promise<TokenInfo | null>;
  /** every token, or one account's */
  listTokens(account?: string): Promise<TokenInfo[]>;
  /** revoke; false when there was no such token */
  deleteToken(id: string): Promise<boolean>;

  /**
   * V8 code cache of a version's modules. An optimisation only: implementations may drop it at
   * any time, and return nothing for a cache made by a different V8 (it would be rejected).
   */
  getCodeCache(versionId: string): Promise<StoredCodeCache>;
  /** Store (insert or replace) the entries given; entries of other modules stay as they were. */
  putCodeCache(versionId: string, cache: StoredCodeCache): Promise<void>;

  /**
   * The version's deployment snapshot (runtime/deployment-snapshot.ts), or its builder's refusal;
   * null when none is stored. An optimisation like the code cache: implementations may drop it.
   * The caller checks the platform and the bytes' hash before use.
   */
  getDeploymentSnapshot(versionId: string): Promise<StoredDeploymentSnapshot | null>;
  /** Store (replace) it; a deleted version's is not stored. */
  putDeploymentSnapshot(versionId: string, snapshot: StoredDeploymentSnapshot): Promise<void>;

  close(): Promise<void>;
}
