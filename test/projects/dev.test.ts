// The project sweep through `cinder dev`: each project under test/fixtures/projects served by the
// real CLI started in the project's folder (no path, as a wrangler user types it), on a real port,
// the user's checks run against it (projects.ts), a few projects at a time.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOut, fetchFrom, jsonLines, limit, startCinder, startFakeUpstream, streamFrom, type FakeUpstream, type LongRunning } from './harness.js';
import { PROJECTS, type SweptProject } from './projects.js';

let fake: FakeUpstream;
let work: string;
const running = new Set<LongRunning>();

beforeAll(async () => {
  fake = await startFakeUpstream();
  work = checkOut(fake);
});

afterAll(async () => {
  await Promise.all([...running].map((d) => d.stop()));
  await fake?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `cinder dev` in the project's folder; with projects alongside, one dev serving all their configs. */
function args(project: SweptProject): string[] {
  const base = ['dev', '--port', '0', '--no-persist', '--log-format', 'json'];
  if (!project.alongside) return base;
  return [...base, '-c', 'wrangler.toml', ...project.alongside.flatMap((other) => ['-c', join('..', other, 'wrangler.toml')])];
}

// Two dev servers at a time: each is a supervisor plus a serving process, on a small CI box.
const slot = limit(2);

describe.concurrent('the project sweep on cinder dev', { timeout: 90_000 }, () => {
  for (const project of PROJECTS) {
    it(project.refused ? `${project.name}: refused, naming what is unsupported` : project.name, () =>
      slot(async () => {
        const cwd = join(work, project.name);
        if (project.refused) {
          const failed = await startCinder(args(project), { cwd, ready: /cinder dev: .+ on http/ }).then(
            async (d) => {
              await d.stop();
              return undefined;
            },
            (error: Error & { stderr?: string }) => error.stderr ?? error.message,
          );
          expect(failed, 'cinder dev served a project it should refuse').toBeDefined();
          expect(failed).toMatch(project.refused);
          return;
        }
        const d = await startCinder(args(project), { cwd, ready: /cinder dev: (.+) on (http:\/\/\S+)/ });
        running.add(d);
        try {
          expect(d.match[1].split(', ')).toEqual([project.name, ...(project.alongside ?? [])]);
          await project.check!({
            mode: 'dev',
            fake,
            fetch: (worker, path, init) => fetchFrom(d.match[2], worker, path, init),
            stream: (worker, path) => streamFrom(d.match[2], worker, path),
            logs: (worker) => jsonLines(d.stdout()).filter((l) => l.worker === worker),
          });
        } finally {
          running.delete(d);
          await d.stop();
        }
      }),
    );
  }
});
