import { readdirSync, readFileSync } from 'node:fs';

/** The pids of this process's children now (Linux /proc). */
export function children(): Set<number> {
  const pids = new Set<number>();
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    for (const pid of readFileSync(`/proc/${process.pid}/task/${task}/children`, 'latin1').trim().split(/\s+/)) if (pid) pids.add(Number(pid));
  }
  return pids;
}
