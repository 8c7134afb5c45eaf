// What `cinder --version` prints: Cinder's own version and the platform it runs on, since the
// tenant boundary is V8 and an operator needs to see at a glance which V8 serves their tenants.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../runtime/paths.js';

export function versionLine(): string {
  const cinder = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version as string;
  const ivm = createRequire(import.meta.url)('isolated-vm/package.json').version as string;
  return `cinder ${cinder} (node ${process.versions.node}, v8 ${process.versions.v8}, isolated-vm ${ivm})`;
}
