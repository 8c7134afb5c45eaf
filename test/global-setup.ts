// Build what the suite runs against: the sandbox bundle (loaded into every isolate) and dist/
// (the `cinder` CLI that some tests spawn as users would).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(process.execPath, ['scripts/build-sandbox.mjs'], { cwd: root, stdio: 'inherit' });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', '.'], { cwd: root, stdio: 'inherit' });
  // The sandbox is bundled by esbuild, which does not type-check: do it here.
  execFileSync(process.execPath, [tsc, '-p', 'sandbox'], { cwd: root, stdio: 'inherit' });
}
