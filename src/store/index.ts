// Opening the deployment store a server was asked for. Only the embedded store exists today; a
// Redis store (for several nodes) implements the same DeploymentStore interface.
import { join, resolve } from 'node:path';
import { SqliteDeploymentStore } from './sqlite.js';
import { DEFAULT_DATA_DIR, type DeploymentStore } from './types.js';

export * from './types.js';
export { SqliteDeploymentStore } from './sqlite.js';

/** The SQLite store in `<dataDir>/deployments.sqlite`. */
export function openDeploymentStore(dataDir: string = DEFAULT_DATA_DIR): DeploymentStore {
  return new SqliteDeploymentStore(join(resolve(dataDir), 'deployments.sqlite'));
}
