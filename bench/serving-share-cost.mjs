// What the serving thread's share (src/runtime/serving-share.ts) costs a request that is never
// deferred: account() + admit() + finished() per entry, charge() per op call, in-process (issue
// 22, round 8). `npm run build` first; `npx node bench/serving-share-cost.mjs [--n=5000000]`.
// `--a=<another built tree>`: the same loops on that tree's share too, A and B alternating round
// by round (issue 22, round 9: the account level's cost against main's).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const n = Number(arg('n') ?? 5_000_000);
const rounds = Number(arg('rounds') ?? 3);
const trees = [['B', '.']];
if (arg('a')) trees.unshift(['A', arg('a')]);
const sides = [];
for (const [name, tree] of trees) {
  const { ServingShare } = await import(pathToFileURL(resolve(tree, 'dist/src/runtime/serving-share.js')).href);
  sides.push({ name, ServingShare, entry: [], charge: [] });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 ? [...sides].reverse() : sides) {
    const share = new side.ServingShare();
    // (as Runtime.fetch asks: the worker's name and its account; an older share ignores the account)
    const account = share.account('hello', '');
    let t = performance.now();
    for (let i = 0; i < n; i++) {
      if (share.admit(share.account('hello', ''), 2)) throw new Error('a lone worker was deferred');
      share.finished(account);
    }
    const entryNs = ((performance.now() - t) * 1e6) / n;
    t = performance.now();
    for (let i = 0; i < n; i++) share.charge(account);
    const chargeNs = ((performance.now() - t) * 1e6) / n;
    side.entry.push(entryNs);
    side.charge.push(chargeNs);
    console.log(`round ${round + 1} ${side.name}: an entry (account + admit + finished) ${entryNs.toFixed(1)} ns, an op call's charge ${chargeNs.toFixed(1)} ns`);
  }
}
for (const side of sides) console.log(`${side.name} median: entry ${median(side.entry).toFixed(1)} ns, charge ${median(side.charge).toFixed(1)} ns`);
