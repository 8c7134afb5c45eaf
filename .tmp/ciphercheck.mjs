import { build } from 'esbuild';
import * as nc from 'node:crypto';
const r = await build({ entryPoints: ['sandbox/addons/node/crypto.ts'], bundle: true, write: false, format: 'esm', platform: 'neutral', mainFields: ['module', 'main'], logLevel: 'error' });
const m = await import('data:text/javascript;base64,' + Buffer.from(r.outputFiles[0].text).toString('base64'));
const eq = (a, b, what) => { if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) { console.log('MISMATCH', what, Buffer.from(a).toString('hex').slice(0,80), Buffer.from(b).toString('hex').slice(0,80)); process.exitCode = 1; } };
for (const bits of [128, 192, 256]) for (const mode of ['cbc', 'ctr', 'gcm', 'ecb']) for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000]) {
  const alg = `aes-${bits}-${mode}`;
  const key = nc.randomBytes(bits / 8);
  const iv = mode === 'ecb' ? null : nc.randomBytes(mode === 'gcm' ? (len % 2 ? 12 : 16) : 16);
  const data = nc.randomBytes(len);
  const aad = nc.randomBytes(len % 20);
  const n = nc.createCipheriv(alg, key, iv);
  if (mode === 'gcm') n.setAAD(aad);
  const want = Buffer.concat([n.update(data.subarray(0, len >> 1)), n.update(data.subarray(len >> 1)), n.final()]);
  const c = m.createCipheriv(alg, key, iv);
  if (mode === 'gcm') c.setAAD(aad);
  const got = Buffer.concat([c.update(data.subarray(0, 7)), c.update(data.subarray(7)), c.final()]);
  eq(got, want, alg + ' enc ' + len);
  if (mode === 'gcm') eq(c.getAuthTag(), n.getAuthTag(), alg + ' tag ' + len);
  const d = m.createDecipheriv(alg, key, iv);
  if (mode === 'gcm') { d.setAAD(aad); d.setAuthTag(n.getAuthTag()); }
  const back = Buffer.concat([d.update(want.subarray(0, 5)), d.update(want.subarray(5)), d.final()]);
  eq(back, data, alg + ' dec ' + len);
}
// wrong tag
try { const d = m.createDecipheriv('aes-128-gcm', Buffer.alloc(16), Buffer.alloc(12)); d.setAuthTag(Buffer.alloc(16)); d.update(Buffer.from('abc')); d.final(); console.log('NO THROW'); } catch (e) { console.log('gcm bad tag:', e.message); }
try { const d = m.createDecipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16)); d.update(Buffer.alloc(16)); d.final(); console.log('NO THROW'); } catch (e) { console.log('cbc bad pad:', e.message); }
eq(m.pbkdf2Sync('pw', 'salt', 1000, 64, 'sha512'), nc.pbkdf2Sync('pw', 'salt', 1000, 64, 'sha512'), 'pbkdf2');
eq(m.pbkdf2Sync('pw', 'salt', 1, 20, 'sha1'), nc.pbkdf2Sync('pw', 'salt', 1, 20, 'sha1'), 'pbkdf2 sha1');
eq(new Uint8Array(m.hkdfSync('sha256', 'key', 'salt', 'info', 100)), new Uint8Array(nc.hkdfSync('sha256', 'key', 'salt', 'info', 100)), 'hkdf');
eq(m.createHmac('sha256', 'k'.repeat(100)).update('data').digest(), nc.createHmac('sha256', 'k'.repeat(100)).update('data').digest(), 'hmac long key');
console.log(m.createHash('sha256').update('a').digest('base64url'), nc.createHash('sha256').update('a').digest('base64url'));
let t = performance.now(); m.pbkdf2Sync('pw', 'salt', 100000, 32, 'sha256'); console.log('pbkdf2 100k ms', (performance.now() - t).toFixed(0));
const big = nc.randomBytes(1 << 20);
t = performance.now(); m.createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12)).update(big); console.log('gcm 1MiB ms', (performance.now() - t).toFixed(0));
t = performance.now(); m.createCipheriv('aes-256-cbc', Buffer.alloc(32), Buffer.alloc(16)).update(big); console.log('cbc 1MiB ms', (performance.now() - t).toFixed(0));
console.log('done');
