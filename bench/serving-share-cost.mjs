// What the serving thread's share (src/runtime/serving-share.ts) costs a request that is never
// deferred: account() + admit() + finished() per entry, charge() per op call, in-process (issue
// 22, round 8). `npm run build` first; `npx node bench/serving-share-cost.mjs [--n=5000000]`.
import { ServingShare } from '../dist/src/runtime/serving-share.js';

const n = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 5_000_000);
const share = new ServingShare();
const account = share.account('hello');
for (let round = 0; round < 3; round++) {
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    if (share.admit(share.account('hello'), 2)) throw new Error('a lone worker was deferred');
    share.finished(account);
  }
  const entryNs = ((performance.now() - t) * 1e6) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) share.charge(account);
  const chargeNs = ((performance.now() - t) * 1e6) / n;
  console.log(`round ${round + 1}: an entry (account + admit + finished) ${entryNs.toFixed(1)} ns, an op call's charge ${chargeNs.toFixed(1)} ns`);
}
