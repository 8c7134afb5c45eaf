import { build } from 'esbuild';
import { createHash, createHmac, pbkdf2Sync, createCipheriv, createDecipheriv, randomBytes, hkdfSync } from 'node:crypto';
const r = await build({ entryPoints: ['sandbox/addons/node/crypto-hash.ts'], bundle: true, write: false, format: 'esm', platform: 'neutral' });
const url = 'data:text/javascript;base64,' + Buffer.from(r.outputFiles[0].text).toString('base64');
const t0 = performance.now();
const m = await import(url);
console.log('load ms', (performance.now() - t0).toFixed(1));
const hex = (u) => Buffer.from(u).toString('hex');
for (const name of m.HASH_NAMES) {
  for (const len of [0, 1, 55, 56, 63, 64, 111, 112, 127, 128, 129, 1000, 100000]) {
    const data = randomBytes(len);
    const h = m.newHash(name);
    // split updates
    h.update(data.subarray(0, len >> 1)); h.update(data.subarray(len >> 1));
    const got = hex(h.digest());
    const want = createHash(name).update(data).digest('hex');
    if (got !== want) { console.log('MISMATCH', name, len, got, want); process.exit(1); }
  }
}
console.log('hashes ok');
const big = randomBytes(1 << 20);
for (const name of ['sha256', 'sha512', 'md5', 'sha1']) { const t = performance.now(); const h = m.newHash(name); h.update(big); h.digest(); console.log(name, '1MiB ms', (performance.now() - t).toFixed(1)); }
