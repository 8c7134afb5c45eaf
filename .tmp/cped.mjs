import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const ivm = require('/work/ivm-als');
console.log(require('/work/ivm-als/build/Release/isolated_vm.node').cinderPatchLevel.slice(-30));
const iso = new ivm.Isolate({ memoryLimit: 64 });
const ctx = iso.createContextSync();
await ctx.exposeContinuationData('__c');
const r = await ctx.eval(`
  const { get, set } = globalThis.__c; delete globalThis.__c;
  const log = [];
  async function f(tag) { set(tag); await null; log.push(tag + ':' + get()); await new Promise(r => Promise.resolve().then(r)); log.push(tag + '2:' + get()); }
  const p = Promise.all([f('a'), f('b')]);
  set(undefined);
  p.then(() => { log.push('after:' + get()); globalThis.result = log.join(','); });
  Object.keys(globalThis).join()
`, { promise: false });
console.log('keys', r);
await new Promise(r => setTimeout(r, 50));
console.log(ctx.evalSync('result'));
