// Opening the deployment store a server was asked for: the embedded SQLite file under --data, or
// Redis (--redis) shared by every node; both implement DeploymentStore.
import { join, resolve } from 'node:path';
import { SqliteDeploymentStore } from './sqlite.js';
import { DEFAULT_DATA_DIR, type DeploymentStore } from './types.js';

export * from './types.js';
export { SqliteDeploymentStore } from './sqlite.js';
export { RedisDeploymentStore, redisLabel } from './redis.js';

/** The SQLite store in `<dataDir>/deployments.sqlite`. */
export function openDeploymentStore(dataDir: string = DEFAULT_DATA_DIR): DeploymentStore {
  return new SqliteDeploymentStore(join(resolve(dataDir), 'deployments.sqlite'));
}
