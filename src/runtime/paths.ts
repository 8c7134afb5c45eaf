// Where the package's own files are, whether we run from src/ (tests, via vitest) or dist/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'cinder') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cinder: package root not found');
    dir = parent;
  }
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
export const sandboxBundlePath = join(packageRoot, 'dist', 'sandbox.js');
export const sandboxManifestPath = join(packageRoot, 'dist', 'sandbox.manifest.json');
export const snapshotBuilderPath = join(packageRoot, 'scripts', 'build-snapshot.mjs');
export const deploymentSnapshotBuilderPath = join(packageRoot, 'scripts', 'build-deployment-snapshot.mjs');
export const defaultCacheDir = join(packageRoot, 'node_modules', '.cache', 'cinder');
