// `cinder dev` with [assets]: the directory served as it is on disk, with the same routing as a
// deployed version (model/assets.ts), read again whenever a file under it changes.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { DEFAULT_ASSETS_CONFIG, type AssetsConfig, type WorkerAssets } from '../model/assets.js';
import { directoryBlobSource, readAssetDirectory } from './assets-dir.js';
import { createHash } from 'node:crypto';

export interface DevAssetsOptions {
  directory: string;
  config?: Partial<AssetsConfig>;
  /** env binding name for env.ASSETS.fetch, if the project declares one */
  binding?: string;
}

export class DevAssets {
  private assets!: WorkerAssets;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly options: DevAssetsOptions,
    private readonly logger: Logger,
  ) {}

  static async open(options: DevAssetsOptions, logger: Logger): Promise<DevAssets> {
    const dev = new DevAssets(options, logger);
    await dev.read();
    return dev;
  }

  get current(): WorkerAssets {
    return this.assets;
  }

  private async read(): Promise<void> {
    const files = await readAssetDirectory(this.options.directory);
    const manifest = new Map([...files].map(([path, { hash, size, contentType }]) => [path, { hash, size, contentType }]));
    const manifestHash = createHash('sha256').update(JSON.stringify([...manifest])).digest('hex');
    this.assets = { config: { ...DEFAULT_ASSETS_CONFIG, ...this.options.config }, manifest, blobs: directoryBlobSource(files), manifestHash };
  }

  /** Call `changed` after the directory's files change (debounced), with the assets read again. */
  watch(changed: () => void): void {
    this.watcher = watch(this.options.directory, { recursive: true }, () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.read().then(changed, (error) => this.logger.error({ err: (error as Error).message }, `assets in ${this.options.directory} could not be read; still serving the previous ones`));
      }, 50);
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
  }
}
