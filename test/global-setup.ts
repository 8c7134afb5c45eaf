// Rebuild the sandbox bundle before the suite so tests always run against the current sources.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../scripts/build-sandbox.mjs', import.meta.url));
  execFileSync(process.execPath, [script], { stdio: 'inherit' });
}
