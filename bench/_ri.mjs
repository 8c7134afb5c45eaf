import ivm from 'isolated-vm';
import { readFileSync, readdirSync, statSync } from 'node:fs';
const dir = 'node_modules/.cache/cinder/';
const file = readdirSync(dir).filter(f => f.endsWith('.bin')).map(f => dir + f).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
const bytes = readFileSync(file);
console.log(file, bytes.length);
const snapshot = new ivm.ExternalCopy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const code = readFileSync('dist/sandbox.js', 'utf8');
for (let i = 0; i < 8; i++) {
  const t0 = performance.now();
  const iso = new ivm.Isolate({ memoryLimit: 128, snapshot });
  const t1 = performance.now();
  const ctx = iso.createContextSync();
  const t2 = performance.now();
  const boot = ctx.global.getSync('__cinder_boot', { reference: true });
  const t3 = performance.now();
  const hs = iso.getHeapStatisticsSync();
  const t4 = performance.now();
  iso.dispose();
  const t5 = performance.now();
  const iso2 = new ivm.Isolate({ memoryLimit: 128 });
  const ctx2 = iso2.createContextSync();
  const t6 = performance.now();
  iso2.compileScriptSync(code).runSync(ctx2);
  const t7 = performance.now();
  iso2.dispose();
  const t8 = performance.now();
  console.log(`snap: isolate ${(t1-t0).toFixed(2)} ctx ${(t2-t1).toFixed(2)} getboot ${(t3-t2).toFixed(2)} heapstats ${(t4-t3).toFixed(2)} dispose ${(t5-t4).toFixed(2)} heap ${(hs.total_heap_size/1e6).toFixed(1)}MB | plain isolate+ctx ${(t6-t5).toFixed(2)} run sandbox ${(t7-t6).toFixed(2)} dispose ${(t8-t7).toFixed(2)}`);
}
