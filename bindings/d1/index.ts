// The host's entry to D1: the service (databases under <data>/d1, run by executor processes),
// the op handlers for workers, and migrations as wrangler lays them out.
export { D1Service, D1Error, databaseIdError, type D1ServiceOptions, type D1DatabaseRef, type D1DatabaseInfo } from './service.js';
export { installD1, type D1HostOptions } from './host.js';
export { D1_QUERY_MS_MAX, queryMsError } from './executor.js';
export { splitStatements } from './sql-split.js';
export { applyMigrations, pendingMigrations, readMigrations, type Migration, type MigrationRunner } from './migrations.js';
