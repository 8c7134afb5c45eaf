// `cinder serve` without `--processes`: one serving process per 1.5 cores, rounded, at least one
// (a serving process keeps more than one core busy: guest code runs on isolated-vm's threads).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultServingProcesses } from '../../src/app/cli/serving-processes.js';
import { admin, childPids, deploy, get, metricValue, startNode, stopNode, versionWorker, type Node } from './helpers.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
let node: Node;

beforeAll(async () => {
  node = await startNode({ processes: 'default', nodeId: 'node-d' });
}, 120_000);

afterAll(async () => {
  if (node) await stopNode(node);
});

describe('the default number of serving processes', () => {
  it('is one per 1.5 cores, rounded, never less than one', () => {
    expect([1, 2, 3, 4, 6, 8, 16, 64].map(defaultServingProcesses)).toEqual([1, 1, 2, 3, 4, 5, 11, 43]);
  });

  it('is what a node started without --processes runs, and what --help says', async () => {
    const expected = defaultServingProcesses(availableParallelism());
    expect((await deploy(node, 'hello', versionWorker('v1'))).status).toBe(201);
    expect((await get(node, 'hello', '/', false)).text).toBe('v1');
    const metrics = (await admin(node, 'GET', '/metrics')).text;
    expect(metricValue(metrics, 'cinder_serving_processes')).toBe(expected);
    expect((await admin(node, 'GET', '/healthz')).json()).toMatchObject({ ok: true, processes: expected });

    // (the serving processes start with the serving heap's shape, and are told to put the guest
    // isolates' back: src/app/serving-flags.ts)
    const pids = childPids(node);
    expect(pids.length).toBeGreaterThanOrEqual(expected);
    for (const pid of pids.slice(-expected)) {
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['--max-semi-space-size=8', '--initial-old-space-size=256']));
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('CINDER_SERVING_HEAP_FLAGS=semi,old');
    }

    const help = spawnSync(process.execPath, ['--no-node-snapshot', bin, 'serve', '--help'], { encoding: 'utf8' });
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(`(default: one per 1.5 cores, rounded, at least 1: ${expected} here)`);
  }, 60_000);
});
