// The workers of the hostile-tenant benches (bench/attacks.mjs, bench/attack-cost.mjs): one per
// attack of test/security/, and the neighbour they must not disturb.
import { gzipSync } from 'node:zlib';

// a 60 MB run of zeros, gzipped (~60 KB): the decompression bomb of issue 22
const bomb = gzipSync(Buffer.alloc(60 * 1024 * 1024)).toString('base64');
const wasmExportedGrowable = [0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 14, 2, 3, 109, 101, 109, 2, 0, 4, 103, 114, 111, 119, 0, 0, 10, 8, 1, 6, 0, 32, 0, 64, 0, 11];

/** name -> [worker code, service bindings?, what it does, wasm modules it imports ({file: bytes})?] */
/** The account every attack is deployed in (the neighbour is in the operator's default account). */
const ATTACKER_ACCOUNT = 'bench-attacker';
/** The workers of the one account a spread attack is made of. */
const RING = 8;

export const ATTACKS = {
  spin: [`export default { fetch() { for (;;) {} } };`, null, 'handler spins to the CPU limit (each request recycles the isolate: the next one is a cold start)'],
  'cold start per request': [`let x = 0; for (let i = 0; i < 3e7; i++) x = (x + i) | 0; export default { fetch() { for (;;) {} } };`, null, 'a top level burning a few hundred ms, a handler breaching the CPU limit: every request a cold start'],
  'log flood': [`export default { fetch() { const line = 'x'.repeat(64 * 1024); for (let i = 0; i < 200; i++) console.log(line); return new Response('logged'); } };`, null, '200 console lines of 64 KB per request'],
  'fan-out': [
    `export default { async fetch(request, env) {
      const level = Number(new URL(request.url).searchParams.get('level') || '0');
      if (level >= 3) return new Response('leaf');
      const calls = [];
      for (let i = 0; i < 30; i++) calls.push(env.SELF.fetch('https://fan/?level=' + (level + 1)).then((r) => r.text(), (e) => e.message));
      return new Response((await Promise.all(calls)).length + ' calls');
    } };`,
    [{ type: 'service', name: 'SELF', service: 'attack-fan-out' }],
    'binds itself, 30 calls per level, 3 levels',
  ],
  // The same fan-out spread over a ring of RING workers of one account (not the operator's default
  // account the neighbour is in): each call goes to the next workers round the ring, so no one
  // worker carries the attack (issue 22, round 9: the serving-thread share per account).
  'fan-out spread': [
    `export default { async fetch(request, env) {
      const url = new URL(request.url);
      const level = Number(url.searchParams.get('level') || '0');
      const self = Number(url.searchParams.get('self') || '0');
      if (level >= 3) return new Response('leaf');
      const calls = [];
      for (let i = 0; i < 30; i++) {
        const next = (self + 1 + i) % ${RING};
        calls.push(env['W' + next].fetch('https://fan/?level=' + (level + 1) + '&self=' + next).then((r) => r.text(), (e) => e.message));
      }
      return new Response((await Promise.all(calls)).length + ' calls');
    } };`,
    null,
    `fan-out as above, over a ring of ${RING} workers of one account`,
    null,
    { ring: RING },
  ],
  'decompression bomb': [
    `const b64 = ${JSON.stringify(bomb)};
    export default { async fetch() {
      const hold = new Array(90).fill(0).map(() => new Uint8Array(1024 * 1024).fill(1));
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const out = new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip')));
      const buf = await out.arrayBuffer();
      return new Response(String(buf.byteLength + hold.length));
    } };`,
    null,
    '90 MB held, then a 60 KB gzip of 60 MB zeros through DecompressionStream',
  ],
  'memory bomb (Map)': [`export default { fetch() { const m = new Map(); for (let i = 0; ; i++) m.set(i, { i }); } };`, null, 'a Map grown until the memory limit'],
  'memory bomb (arrays)': [`export default { fetch() { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)); } };`, null, 'arrays of doubles until the memory limit'],
  'long builtin': [`export default { fetch() { return new Response(String('x'.repeat(2 ** 27).indexOf('y'))); } };`, null, 'one V8 builtin call running far past the CPU limit without an interrupt check'],
  'key generation': [
    `export default { async fetch() {
      const key = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign']);
      return new Response(key.privateKey.algorithm.name);
    } };`,
    null,
    '4,096-bit RSA keys (host threadpool work) generated per request',
  ],
  'bad statusText': [`export default { fetch() { const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: '\\n' }); return r; } };`, null, 'a Response whose statusText was replaced with a newline (once killed the process)'],
  // The control for the SSRF phase: the same attacker connections asking a worker that does
  // nothing (what plain load alone does to the neighbour on this machine).
  'plain load': [`export default { fetch() { return new Response('hello'); } };`, null, 'a hello worker: plain load from the attacker connections (control)'],
  'ssrf attempts': [
    `export default { async fetch() {
      const targets = ['http://127.0.0.1:1/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data/', 'http://localhost/', 'http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/', 'http://10.0.0.1/'];
      const out = await Promise.all(targets.map((t) => fetch(t).then((r) => 'REACHED ' + r.status, (e) => 'refused')));
      return new Response(out.join(','));
    } };`,
    null,
    'fetch() of loopback, metadata, private and encoded-IP URLs',
  ],
  // The module is uploaded as a wasm module part and imported, as on Workers (compiling wasm from
  // bytes at run time is refused there and here).
  'wasm memory': [
    `import growable from './growable.wasm';
    export default { fetch() {
      const held = [];
      for (let i = 0; i < 4; i++) { try { held.push(new WebAssembly.Memory({ initial: 1600 })); } catch {} }
      for (let i = 0; i < 3; i++) { const { exports } = new WebAssembly.Instance(growable); exports.grow(1000); new Uint8Array(exports.mem.buffer).fill(1); held.push(exports); }
      return new Response('held ' + held.length);
    } };`,
    null,
    '100 MB WebAssembly memories, and exported memories grown by the memory.grow instruction and touched',
    { 'growable.wasm': new Uint8Array(wasmExportedGrowable) },
  ],
};

export const NEIGHBOUR = `export default { fetch() { return new Response('Hello World!\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }); } };`;
export const NEIGHBOUR_BODY = 'Hello World!\n';

/** The worker an attack phase deploys and requests. */
export function workerName(phase) {
  return `attack-${phase.replace(/[^a-z0-9]+/g, '-').replace(/-$/, '')}`;
}

/** Upload a worker to a `cinder serve` started by bench/lib/procs.mjs, as `cinder deploy` does:
 *  one ES module, its service bindings, and the wasm modules it imports. */
export async function deployWorker(server, name, code, bindings, wasmModules, token = server.token) {
  const form = new FormData();
  form.append('metadata', new Blob([JSON.stringify({ main_module: 'index.js', bindings: bindings ?? [] })], { type: 'application/json' }));
  form.append('index.js', new Blob([code], { type: 'application/javascript+module' }), 'index.js');
  for (const [file, bytes] of Object.entries(wasmModules ?? {})) form.append(file, new Blob([bytes], { type: 'application/wasm' }), file);
  const res = await fetch(`http://127.0.0.1:${server.adminPort}/workers/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: form });
  if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
}

/** The workers an attack phase requests: `name`, or `name-0`..`name-(ring-1)` for a spread one. */
export function attackWorkers(name, attack) {
  const ring = attack?.[4]?.ring;
  return ring ? Array.from({ length: ring }, (_, i) => `${name}-${i}`) : [name];
}

/** The attackers' account on `server` (another tenant than the neighbour, which is in the
 *  operator's default account): made once with the operator's token; answers its token. */
const attackerTokens = new WeakMap();
function attackerToken(server) {
  if (!attackerTokens.has(server)) {
    const admin = (path, body) =>
      fetch(`http://127.0.0.1:${server.adminPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (res) => {
        if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
        return res.json();
      });
    attackerTokens.set(server, admin('/accounts', { name: ATTACKER_ACCOUNT }).then(() => admin(`/accounts/${ATTACKER_ACCOUNT}/tokens`, { label: 'bench' })).then(({ token }) => token));
  }
  return attackerTokens.get(server);
}

/** One of ATTACKS, uploaded under `name` (a spread one: its ring of workers) by the attackers'
 *  account: an attacker is another tenant than its neighbour. */
export async function deployAttack(server, name, attack) {
  const spread = attack[4];
  const token = await attackerToken(server);
  if (!spread) return deployWorker(server, name, attack[0], attack[1], attack[3], token);
  const workers = attackWorkers(name, attack);
  const bindings = workers.map((service, i) => ({ type: 'service', name: `W${i}`, service }));
  for (const worker of workers) await deployWorker(server, worker, attack[0], bindings, attack[3], token);
}
