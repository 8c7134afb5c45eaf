// The project sweep through `cinder deploy`: one real `cinder serve` (a child process, as an
// operator runs it), each project under test/fixtures/projects deployed from its folder by the real
// CLI with `cinder secret put` where it has secrets, then the user's checks (projects.ts) against
// the data plane, with the server's own log.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOut, cinder, fetchFrom, jsonLines, limit, startFakeUpstream, streamFrom, type FakeUpstream, type Run } from './harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/serve-process.js';
import { DEPLOYED_JWT_SECRET, PROJECTS } from './projects.js';

const TOKEN = 'sweep-admin-token-5e0c9a7d1b3f2468';
let fake: FakeUpstream;
let work: string;
const children: ChildProcess[] = [];
let serve: ServeProcess;
let dataUrl = '';
let adminUrl = '';
/** every CLI run's output, to look for secrets in */
let cliOutput = '';

beforeAll(async () => {
  fake = await startFakeUpstream();
  work = checkOut(fake);
  serve = await startServeProcess(join(work, '.data'), TOKEN, children, {
    logs: 'info',
    args: ['--colo', 'SWEEP', '--allow-private-fetch', new URL(fake.url).host, '--origin', `passthrough.localhost/*=${fake.url}`],
  });
  [dataUrl, adminUrl] = [`http://127.0.0.1:${serve.port}`, `http://127.0.0.1:${serve.adminPort}`];
});

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await serve?.exited;
  await fake?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function cli(args: string[], cwd: string, input?: string): Promise<Run> {
  const run = await cinder(args, { cwd, input, env: { CINDER_ADMIN_TOKEN: '', CINDER_URL: adminUrl, CINDER_TOKEN: TOKEN } });
  cliOutput += run.stdout + run.stderr;
  return run;
}

// Three projects at a time (each deploy bundles with esbuild in a CLI process of its own).
const slot = limit(3);

describe.concurrent('the project sweep on cinder deploy', { timeout: 90_000 }, () => {
  for (const project of PROJECTS) {
    it(project.refused ? `${project.name}: refused, naming what is unsupported` : project.name, () => slot(async () => {
      const cwd = join(work, project.name);
      if (project.refused) {
        const refused = await cli(['deploy'], cwd);
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toMatch(project.refused);
        const listed = await cli(['workers', 'list', '--json'], cwd);
        expect(listed.stdout).not.toContain(`"${project.name}"`);
        return;
      }
      for (const other of project.alongside ?? []) {
        const deployed = await cli(['deploy'], join(work, other));
        expect(deployed.status, deployed.stderr).toBe(0);
      }
      const deployed = await cli(['deploy'], cwd);
      expect(deployed.status, deployed.stderr).toBe(0);
      expect(deployed.stdout).toMatch(new RegExp(`Deployed ${project.name}: version 1 `));
      if (project.secrets) {
        for (const [name, value] of Object.entries(project.secrets)) {
          const put = await cli(['secret', 'put', name], cwd, value);
          expect(put.status, put.stderr).toBe(0);
        }
        const listed = await cli(['secret', 'list'], cwd);
        for (const name of Object.keys(project.secrets)) expect(listed.stdout).toContain(name);
        // the next deploy keeps them (the checks run on it)
        const again = await cli(['deploy'], cwd);
        expect(again.status, again.stderr).toBe(0);
      }
      await project.check!({
        mode: 'deploy',
        fake,
        fetch: (worker, path, init) => fetchFrom(dataUrl, worker, path, init),
        stream: (worker, path) => streamFrom(dataUrl, worker, path),
        logs: (worker) => jsonLines(serve.stdout()).filter((l) => l.worker === worker),
      });
    }));
  }
});

describe('after the sweep', () => {
  it('no CLI output and no server log line carried a secret value', () => {
    expect(cliOutput.length).toBeGreaterThan(0);
    for (const text of [cliOutput, serve.stdout(), serve.stderr()]) expect(text).not.toContain(DEPLOYED_JWT_SECRET);
  });
});
