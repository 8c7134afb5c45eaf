// The background class of isolated-vm's threads (scripts/patch-isolated-vm.mjs, patch 14): an
// isolate made with `background: true`, or switched with `setBackground(true)`, has its next tasks
// run on threads niced CINDER_BACKGROUND_THREAD_NICE below the other isolate threads; switched
// back, its next task runs on a normal one. Read from the kernel's view (/proc/<pid>/task/<tid>/stat)
// of a child process, so the environment the addon reads when its threads start is this test's.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/runtime/paths.js';

/** Run in a fresh Node: each case's busy loop, then the nice value of the thread that ran it (the
 *  one whose CPU ticks grew most over the loop) and the process's own nice value. */
const PROBE = `
import ivm from 'isolated-vm';
import { readdirSync, readFileSync } from 'node:fs';
function threads() {
  const all = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      all.set(tid, { ticks: Number(fields[11]) + Number(fields[12]), nice: Number(fields[16]) });
    } catch {}
  }
  return all;
}
// A fixed amount of work (not a duration): ~0.2 s of CPU here, many ticks on any machine.
const LOOP = 'let x = 0; for (let i = 0; i < 2e8; i++) x = (x + i) | 0; x';
async function ranOn(isolate) {
  const context = await isolate.createContext();
  const before = threads();
  await context.eval(LOOP);
  let busiest = { ticks: -1, nice: NaN };
  for (const [tid, now] of threads()) {
    const ticks = now.ticks - (before.get(tid)?.ticks ?? 0);
    if (ticks > busiest.ticks) busiest = { ticks, nice: now.nice };
  }
  context.release();
  return busiest;
}
const out = { process: threads().get(String(process.pid)).nice };
const background = new ivm.Isolate({ background: true });
out.background = await ranOn(background);
const normal = new ivm.Isolate();
out.normal = await ranOn(normal);
background.setBackground(false);
out.backgroundSwitchedOff = await ranOn(background);
normal.setBackground(true);
out.normalSwitchedOn = await ranOn(normal);
const spawned = await normal.spawnIsolate({ background: false });
out.spawnedNormal = await ranOn(spawned);
const spawnedBackground = await background.spawnIsolate({ background: true });
out.spawnedBackground = await ranOn(spawnedBackground);
try { background.setBackground('yes'); out.badArgument = 'accepted'; } catch (error) { out.badArgument = String(error.message); }
background.dispose();
try { background.setBackground(true); out.disposed = 'accepted'; } catch (error) { out.disposed = String(error.message); }
console.log(JSON.stringify(out));
`;

interface Ran {
  ticks: number;
  nice: number;
}
interface Probe {
  process: number;
  background: Ran;
  normal: Ran;
  backgroundSwitchedOff: Ran;
  normalSwitchedOn: Ran;
  spawnedNormal: Ran;
  spawnedBackground: Ran;
  badArgument: string;
  disposed: string;
}

function probe(env: Record<string, string>): Probe {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
    cwd: packageRoot,
    env: { ...process.env, CINDER_GUEST_THREAD_NICE: '', CINDER_BACKGROUND_THREAD_NICE: '', ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Probe;
}

describe.runIf(process.platform === 'linux')('the background class of isolate threads', () => {
  it('runs a background isolate on a thread niced below a normal one, and setBackground moves the next task', () => {
    const ran = probe({ CINDER_GUEST_THREAD_NICE: '3', CINDER_BACKGROUND_THREAD_NICE: '7' });
    const normal = Math.min(19, ran.process + 3);
    const background = Math.min(19, ran.process + 3 + 7);
    expect(background, 'the process already runs at nice 19: nothing to tell apart').toBeGreaterThan(normal);
    for (const name of ['background', 'normal', 'backgroundSwitchedOff', 'normalSwitchedOn', 'spawnedNormal', 'spawnedBackground'] as const) {
      expect(ran[name].ticks, `${name}: the loop's thread was not found`).toBeGreaterThan(3);
    }
    expect(ran.background.nice).toBe(background);
    expect(ran.normal.nice).toBe(normal);
    // setBackground(false): the next task runs on a normal thread (a thread never raises its nice)
    expect(ran.backgroundSwitchedOff.nice).toBe(normal);
    expect(ran.normalSwitchedOn.nice).toBe(background);
    // spawnIsolate takes the option too, whichever class the isolate that builds it is in
    expect(ran.spawnedNormal.nice).toBe(normal);
    expect(ran.spawnedBackground.nice).toBe(background);
    expect(ran.badArgument).toMatch(/boolean/);
    expect(ran.disposed).toMatch(/disposed/);
  });

  it('changes nothing with CINDER_BACKGROUND_THREAD_NICE=0 (the class off)', () => {
    const ran = probe({ CINDER_GUEST_THREAD_NICE: '3', CINDER_BACKGROUND_THREAD_NICE: '0' });
    const normal = Math.min(19, ran.process + 3);
    expect(ran.background.ticks).toBeGreaterThan(3);
    expect(ran.background.nice).toBe(normal);
    expect(ran.normal.nice).toBe(normal);
  });

  it('caps the background class at nice 19', () => {
    const ran = probe({ CINDER_GUEST_THREAD_NICE: '5', CINDER_BACKGROUND_THREAD_NICE: '19' });
    expect(ran.background.ticks).toBeGreaterThan(3);
    expect(ran.background.nice).toBe(19);
    expect(ran.normal.nice).toBe(Math.min(19, ran.process + 5));
  });
});
