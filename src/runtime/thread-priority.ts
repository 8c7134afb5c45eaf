// Host threads that do a guest's work run below the serving thread, as isolated-vm's threads do
// (patch 12, CINDER_GUEST_THREAD_NICE): libuv's threadpool generates the RSA keys and runs the
// PBKDF2 derivations a worker asks for (src/bindings/crypto: gated and charged, but CPU all the
// same), and the DNS lookups and file reads its fetches and assets cause. A thread may always
// lower its own priority, and this one lowers the pool's threads from outside by thread id
// (setpriority on a thread id, Linux). Once per process, and only threads still at the process's
// own priority, so a second runtime in one process changes nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { getPriority, setPriority, tmpdir } from 'node:os';

let lowered: Promise<number> | null = null;

/** How far below the serving thread guest code runs: the nice value isolated-vm's threads add to
 *  their own when they start (patch 12; ivm.ts sets it as the addon's default) and libuv's
 *  threadpool gets here. The operator may set CINDER_GUEST_THREAD_NICE (0 turns it off). */
export const DEFAULT_GUEST_THREAD_NICE = 5;

/** How far below the other isolate threads the background class runs (patch 14): pool builds,
 *  and workers that have breached a limit or are over their share of isolate CPU. The operator
 *  may set CINDER_BACKGROUND_THREAD_NICE (0: the class runs as the others do). */
export const DEFAULT_BACKGROUND_THREAD_NICE = 10;

/** How far below the other isolate threads the background class runs (0: not at all). */
export function backgroundThreadNice(): number {
  const value = Number(process.env.CINDER_BACKGROUND_THREAD_NICE ?? DEFAULT_BACKGROUND_THREAD_NICE);
  return Number.isInteger(value) ? Math.min(19, Math.max(0, value)) : 0;
}

/** How far below the serving thread guest-caused work runs (0: not at all). */
export function guestThreadNice(): number {
  const value = Number(process.env.CINDER_GUEST_THREAD_NICE ?? DEFAULT_GUEST_THREAD_NICE);
  return Number.isInteger(value) ? Math.min(19, Math.max(0, value)) : 0;
}

/** Lower libuv's threadpool threads by `guestThreadNice()`; resolves to how many were lowered. */
export function lowerThreadpoolPriority(): Promise<number> {
  lowered ??= (async () => {
    const nice = guestThreadNice();
    if (nice === 0 || process.platform !== 'linux') return 0;
    await stat(tmpdir()); // the pool starts its threads (all of them) on its first job
    const base = getPriority(process.pid);
    let count = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        if (readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim() !== 'libuv-worker') continue;
        if (getPriority(Number(tid)) !== base) continue;
        setPriority(Number(tid), Math.min(19, base + nice));
        count++;
      } catch {
        // the thread ended, or the kernel refused: it keeps its priority
      }
    }
    return count;
  })();
  return lowered;
}
