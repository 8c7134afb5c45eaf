// The one place the runtime loads isolated-vm. Cinder depends on its own patches to the addon
// (scripts/patch-isolated-vm.mjs: a thread CPU clock for the CPU limit, snapshot contexts,
// spawnIsolate, module code caches, eval policy), so it refuses to run on a build without them:
// an unpatched addon would load and serve, with CPU limits measuring wall time.
import ivm from 'isolated-vm';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packageRoot } from './paths.js';
import { DEFAULT_BACKGROUND_THREAD_NICE, DEFAULT_GUEST_THREAD_NICE } from './thread-priority.js';

const requireHere = createRequire(import.meta.url);

/** The patch level this checkout expects (package.json's cinder.isolatedVmPatchLevel). */
export const expectedPatchLevel: string = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).cinder.isolatedVmPatchLevel;

/** The patch level the loaded addon was built at, or undefined for an unpatched or missing build.
 *  isolated-vm's loader (node-gyp-build) prefers build/Release, and the install removes the
 *  prebuilt binaries, so this is the file it loaded. */
export function builtPatchLevel(): string | undefined {
  try {
    const addon = join(dirname(requireHere.resolve('isolated-vm/package.json')), 'build', 'Release', 'isolated_vm.node');
    return (requireHere(addon) as { cinderPatchLevel?: string }).cinderPatchLevel;
  } catch {
    return undefined;
  }
}

/** Why the addon cannot be used, or null when it can. */
export function patchLevelProblem(found: string | undefined, expected = expectedPatchLevel): string | null {
  if (found === expected) return null;
  return `isolated-vm is ${found ? `built at patch level "${found}"` : 'not built with Cinder\'s patches'}, and this Cinder needs "${expected}". ` +
    `Run "npm install" in ${packageRoot} (its prepare step patches and builds the addon), or "node scripts/patch-isolated-vm.mjs" there.`;
}

const problem = patchLevelProblem(builtPatchLevel());
if (problem) throw new Error(problem);

// Guest code runs below the serving thread (patch 12): the addon reads CINDER_GUEST_THREAD_NICE
// when its first thread starts, after this module has loaded (thread-priority.ts).
process.env.CINDER_GUEST_THREAD_NICE ??= String(DEFAULT_GUEST_THREAD_NICE);
// and the background class below them (patch 14)
process.env.CINDER_BACKGROUND_THREAD_NICE ??= String(DEFAULT_BACKGROUND_THREAD_NICE);

export default ivm;
