// Diagnosis only (issue 24, round 8): loaded with `--import` into Cinder's serving processes by
// bench/tail-probe.mjs. Records the serving thread's GC pauses and every event-loop stall of more
// than 2 ms (a 1 ms interval timer that fired late), with their times, and writes them to
// $LOOP_PROBE_DIR/probe-<pid>.json when the process is told to stop.
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const dir = process.env.LOOP_PROBE_DIR;
if (dir && cluster.isWorker) {
  const gcs = [];
  const stalls = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([Math.round(e.startTime * 1000) / 1000, Math.round(e.duration * 1000) / 1000, e.detail?.kind ?? e.kind]);
  }).observe({ entryTypes: ['gc'] });
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 3) stalls.push([Math.round(last * 1000) / 1000, Math.round((now - last) * 1000) / 1000]);
    last = now;
  }, 1).unref();
  // LOOP_PROBE_HEAP=1: where the serving thread's heap allocations come from (V8's sampling heap
  // profiler, counting what scavenges and mark-compacts collected too), from the start
  let session = null;
  if (process.env.LOOP_PROBE_HEAP) {
    const { Session } = await import('node:inspector');
    session = new Session();
    session.connect();
    session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.LOOP_PROBE_HEAP !== 'promoted' });
  }
  const dump = () => {
    const write = (heap) => writeFileSync(`${dir}/probe-${process.pid}.json`, JSON.stringify({ timeOrigin: performance.timeOrigin, gcs, stalls, heap }));
    if (!session) return write(null);
    session.post('HeapProfiler.stopSampling', (error, result) => {
      const bySite = new Map();
      const walk = (node, stack) => {
        const here = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/^.*\/(node_modules|dist|lib)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
        const path = [...stack, here].slice(-4);
        if (node.selfSize) bySite.set(path.join(' < '), (bySite.get(path.join(' < ')) ?? 0) + node.selfSize);
        for (const child of node.children) walk(child, path);
      };
      if (!error) walk(result.profile.head, []);
      write([...bySite].sort((a, b) => b[1] - a[1]).slice(0, 60));
    });
  };
  process.on('SIGUSR2', dump);
  // SIGURG (with --expose-gc): one full collection now, as the first one under load would be
  process.on('SIGURG', () => globalThis.gc?.());
  // SIGWINCH: a heap snapshot of the serving thread (what is alive under load, and who holds it)
  process.on('SIGWINCH', async () => {
    const v8 = await import('node:v8');
    v8.writeHeapSnapshot(`${dir}/heap-${process.pid}.heapsnapshot`);
  });
}
