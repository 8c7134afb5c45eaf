// Per-deployment snapshots, from the control plane's side: after a version goes live (upload,
// rollback, restore at start) its stored snapshot is handed to the runtime, or, when none is
// stored for this platform (a new version; Node, V8, isolated-vm, its patches or the sandbox
// changed), one is built in the background, one build at a time, and stored beside the version.
// A deploy never waits for it. Whenever no snapshot can be made the version is loaded plainly, and
// a log line says why (a limit of the worker's its code breached in the builder is named there,
// as a request would name it) and what the builder cost (builder_cpu_ms).
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import { buildDeploymentSnapshot, buildWaitMs, type SnapshotBuildOptions } from '../runtime/deployment-snapshot.js';
import type { DeploymentSnapshot, WorkerDefinition } from '../model/worker-definition.js';
import type { DeploymentStore, VersionInfo } from '../store/types.js';

export class SnapshotBuilds {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly runtime: Runtime,
    private readonly store: DeploymentStore,
    private readonly logger: Logger,
    private readonly options: SnapshotBuildOptions = {},
  ) {
    // (read at start, so a bad value stops the server with its name instead of refusing snapshots)
    this.options = { ...options, warmUpWaitMs: options.warmUpWaitMs ?? buildWaitMs() };
  }

  /** Whether this runtime uses deployment snapshots at all. */
  get enabled(): boolean {
    return this.runtime.snapshots !== null;
  }

  /** The stored snapshot of a version, if it is for this platform: set on `def` before it is
   *  deployed, so a restart's first cold start already uses it. */
  async attachStored(version: VersionInfo, def: WorkerDefinition): Promise<boolean> {
    if (!this.runtime.snapshots) return false;
    const stored = await this.store.getDeploymentSnapshot(version.id).catch(() => null);
    if (!stored || stored.platform !== this.runtime.snapshots.platformKey) return false;
    if ('refused' in stored) return true; // refused on this platform: a plain load, nothing to build
    def.snapshot = stored;
    return true;
  }

  /** Build `def`'s snapshot in the background, unless one (or a refusal) is stored already. */
  schedule(version: VersionInfo, def: WorkerDefinition): void {
    if (!this.runtime.snapshots || def.snapshot) return;
    this.pending++;
    this.queue = this.queue
      .then(() => this.build(version, def))
      .catch((error) => this.logger.warn({ worker: version.worker, version: version.id, err: (error as Error).message }, 'deployment snapshot build failed'))
      .finally(() => this.pending--);
  }

  /** Resolves when every build scheduled so far has finished (tests, benches). */
  async settled(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }

  private async build(version: VersionInfo, def: WorkerDefinition): Promise<void> {
    const live = () => this.runtime.definition(version.worker)?.version === version.id;
    if (!live() || (await this.attachStored(version, def))) {
      if (def.snapshot && live()) this.runtime.attachSnapshot(version.worker, version.id, def.snapshot);
      return;
    }
    const outcome = await buildDeploymentSnapshot(def, this.options);
    const where = `${version.worker} version ${version.number}`;
    if (!outcome.ok) {
      this.logger.warn(
        { worker: version.worker, version: version.id, reason: outcome.reason, build_ms: Math.round(outcome.ms), builder_cpu_ms: outcome.builderCpuMs },
        `no deployment snapshot for ${where}: ${outcome.reason}; it is loaded plainly`,
      );
      // A refusal by the builder holds on this platform: store it so restarts do not build again.
      // A kill or crash may not (a busy machine): the next start tries again.
      if (!/^the builder (killed|exited)/.test(outcome.reason)) {
        await this.store.putDeploymentSnapshot(version.id, { platform: this.runtime.snapshots!.platformKey, refused: outcome.reason }).catch(() => {});
      }
      return;
    }
    const snapshot: DeploymentSnapshot = outcome.snapshot;
    await this.store.putDeploymentSnapshot(version.id, snapshot).catch((error) => {
      this.logger.warn({ worker: version.worker, version: version.id, err: (error as Error).message }, 'could not store the deployment snapshot');
    });
    if (this.runtime.attachSnapshot(version.worker, version.id, snapshot)) {
      this.logger.info(
        { worker: version.worker, version: version.id, bytes: snapshot.data.byteLength, build_ms: Math.round(outcome.ms), builder_cpu_ms: outcome.builderCpuMs },
        `deployment snapshot of ${where} ready: cold starts deserialize it`,
      );
    }
  }
}
