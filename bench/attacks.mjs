// The hostile-tenant figures (issue 22): `npm run bench:attacks` (add --quick for a smoke run).
//
// `cinder serve` on its defaults, in its own process (bench/lib/procs.mjs), serves a neighbour
// hello worker and one worker per attack from test/security/. The neighbour is requested without
// pause from --clients raw keep-alive connections (bench/lib/client.mjs), first calm, then while
// each attack runs from its own --attackers connections in a loop (the attacker's answers are
// 503s and 500s; they are counted, not judged). Per phase: the neighbour's requests, failures
// (anything but a 200 with its body, or no answer within 10 s), p50/p99 and p99 against calm.
// Targets (DESIGN, "Under attack"): zero failures, p99 under attack < 2x calm.
//
// Output: a table on stdout, bench/results/attacks-<timestamp>.json, latest-attacks.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LeanClient } from './lib/client.mjs';
import { benchDir, environment, startCinderServe } from './lib/procs.mjs';
import { fmtMs, sleep, summarize, table } from './lib/stats.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name, fallback) => {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const SECONDS = flag('seconds', quick ? 2 : 6);
const CLIENTS = flag('clients', 2);
const ATTACKERS = flag('attackers', 3);
const only = args.find((a) => a.startsWith('--only='))?.split('=')[1]?.split(',');

// a 60 MB run of zeros, gzipped (~60 KB): the decompression bomb of issue 22
const bomb = gzipSync(Buffer.alloc(60 * 1024 * 1024)).toString('base64');
const wasmExportedGrowable = [0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 14, 2, 3, 109, 101, 109, 2, 0, 4, 103, 114, 111, 119, 0, 0, 10, 8, 1, 6, 0, 32, 0, 64, 0, 11];

/** name -> [worker code, service bindings?, what it does] */
const ATTACKS = {
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
  'ssrf attempts': [
    `export default { async fetch() {
      const targets = ['http://127.0.0.1:1/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data/', 'http://localhost/', 'http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/', 'http://10.0.0.1/'];
      const out = await Promise.all(targets.map((t) => fetch(t).then((r) => 'REACHED ' + r.status, (e) => 'refused')));
      return new Response(out.join(','));
    } };`,
    null,
    'fetch() of loopback, metadata, private and encoded-IP URLs',
  ],
  'wasm memory': [
    `const bytes = new Uint8Array(${JSON.stringify(wasmExportedGrowable)});
    export default { fetch() {
      const held = [];
      for (let i = 0; i < 4; i++) { try { held.push(new WebAssembly.Memory({ initial: 1600 })); } catch {} }
      for (let i = 0; i < 3; i++) { const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes)); exports.grow(1000); new Uint8Array(exports.mem.buffer).fill(1); held.push(exports); }
      return new Response('held ' + held.length);
    } };`,
    null,
    '100 MB WebAssembly memories, and exported memories grown by the memory.grow instruction and touched',
  ],
};

const NEIGHBOUR = `export default { fetch() { return new Response('Hello World!\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }); } };`;
const NEIGHBOUR_BODY = 'Hello World!\n';

async function deploy(server, name, code, bindings) {
  const form = new FormData();
  form.append('metadata', new Blob([JSON.stringify({ main_module: 'index.js', bindings: bindings ?? [] })], { type: 'application/json' }));
  form.append('index.js', new Blob([code], { type: 'application/javascript+module' }), 'index.js');
  const res = await fetch(`http://127.0.0.1:${server.adminPort}/workers/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${server.token}` }, body: form });
  if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
}

/** Load the neighbour from CLIENTS connections until `stop` resolves; latencies and failures. */
async function neighbourLoad(port, until) {
  const latencies = [];
  let failures = 0;
  const reasons = new Map();
  const loop = async () => {
    let client = new LeanClient({ port });
    while (performance.now() < until) {
      try {
        const res = await client.get('/', 'neighbour.bench', { timeoutMs: 10_000 });
        if (res.status === 200 && res.body.toString() === NEIGHBOUR_BODY) latencies.push(res.ms);
        else {
          failures++;
          reasons.set(`status ${res.status}`, (reasons.get(`status ${res.status}`) ?? 0) + 1);
        }
      } catch (error) {
        failures++;
        reasons.set(error.message, (reasons.get(error.message) ?? 0) + 1);
        client.close();
        client = new LeanClient({ port });
      }
    }
    client.close();
  };
  await Promise.all(Array.from({ length: CLIENTS }, loop));
  return { latencies, failures, reasons: Object.fromEntries(reasons) };
}

/** The attacker: ATTACKERS connections requesting its worker in a loop until `until`. */
async function attackLoad(port, name, until) {
  const statuses = new Map();
  const loop = async () => {
    let client = new LeanClient({ port });
    while (performance.now() < until) {
      try {
        const res = await client.get('/', `${name}.bench`, { timeoutMs: 60_000 });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        // an SSRF attempt that got through would say so in its body
        if (res.body.toString().includes('REACHED')) statuses.set('REACHED', (statuses.get('REACHED') ?? 0) + 1);
      } catch {
        statuses.set('error', (statuses.get('error') ?? 0) + 1);
        client.close();
        client = new LeanClient({ port });
        await sleep(10);
      }
    }
    client.close();
  };
  await Promise.all(Array.from({ length: ATTACKERS }, loop));
  return Object.fromEntries(statuses);
}

const workDir = mkdtempSync(join(tmpdir(), 'cinder-attacks-'));
const neighbourFile = join(workDir, 'neighbour.js');
writeFileSync(neighbourFile, NEIGHBOUR);
const server = await startCinderServe({ neighbour: neighbourFile });

const phases = [['calm', null], ...Object.entries(ATTACKS).filter(([name]) => !only || only.includes(name))];
for (const [name, attack] of phases) if (attack) await deploy(server, `attack-${name.replace(/[^a-z0-9]+/g, '-').replace(/-$/, '')}`, attack[0], attack[1]);
// warm the neighbour before measuring
await neighbourLoad(server.port, performance.now() + 500);

const results = [];
try {
  for (const [name, attack] of phases) {
    const worker = `attack-${name.replace(/[^a-z0-9]+/g, '-').replace(/-$/, '')}`;
    const until = performance.now() + SECONDS * 1000;
    const rssBefore = server.rssMb();
    const [neighbour, attacker] = await Promise.all([neighbourLoad(server.port, until), attack ? attackLoad(server.port, worker, until) : Promise.resolve(null)]);
    const s = summarize(neighbour.latencies);
    results.push({ phase: name, what: attack?.[2] ?? 'no attack', requests: neighbour.latencies.length + neighbour.failures, failures: neighbour.failures, reasons: neighbour.reasons, p50: s?.p50, p99: s?.p99, max: s?.max, attacker, rssMbBefore: rssBefore, rssMbAfter: server.rssMb() });
    process.stderr.write(`${name}: ${neighbour.failures} failures, p99 ${fmtMs(s?.p99)} ms, attacker ${JSON.stringify(attacker)}\n`);
    if (attack) await sleep(500); // let the attack's last requests drain
  }
} finally {
  await server.stop();
  rmSync(workDir, { recursive: true, force: true });
}

const calm = results[0];
const rows = [['phase', 'neighbour req', 'failed', 'p50 ms', 'p99 ms', 'p99 / calm', 'attacker answers']];
for (const r of results) rows.push([r.phase, String(r.requests), String(r.failures), fmtMs(r.p50), fmtMs(r.p99), r === calm ? '1.00x' : `${(r.p99 / calm.p99).toFixed(2)}x`, r.attacker ? Object.entries(r.attacker).map(([k, v]) => `${k}:${v}`).join(' ') : '-']);
console.log(table(rows));
const failed = results.filter((r) => r.failures > 0).map((r) => r.phase);
const slow = results.filter((r) => r !== calm && r.p99 >= 2 * calm.p99).map((r) => r.phase);
console.log(`\ntargets: zero neighbour failures ${failed.length ? `MISSED (${failed.join(', ')})` : 'met'}; p99 under attack < 2x calm ${slow.length ? `MISSED (${slow.join(', ')})` : 'met'}`);
console.log(`${SECONDS} s per phase, ${CLIENTS} neighbour connections, ${ATTACKERS} attacker connections${quick ? ' (--quick)' : ''}`);

const resultsDir = join(benchDir, 'results');
mkdirSync(resultsDir, { recursive: true });
const out = { bench: 'attacks', at: new Date().toISOString(), seconds: SECONDS, clients: CLIENTS, attackers: ATTACKERS, quick, environment: await environment(), results };
const stamp = out.at.replace(/[:.]/g, '-');
writeFileSync(join(resultsDir, `attacks-${stamp}.json`), JSON.stringify(out, null, 2));
writeFileSync(join(resultsDir, 'latest-attacks.json'), JSON.stringify(out, null, 2));
