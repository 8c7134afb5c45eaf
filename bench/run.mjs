// Every benchmark in one run: `npm run bench` (add --quick for a smoke run, --skip=warm,density
// to leave some out). Prints the combined table, writes bench/results/latest.json plus each
// bench's own files, and the plot bench/results/cold.svg.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { coldTable, parseArgs as coldArgs, resultsDir, runCold, writeCold } from './cold.mjs';
import { parseArgs as warmArgs, runWarm, warmTable, writeWarm } from './warm.mjs';
import { densityTable, parseArgs as densityArgs, runDensity, writeDensity } from './density.mjs';
import { environment } from './lib/procs.mjs';

const argv = process.argv.slice(2);
const skip = new Set((argv.find((a) => a.startsWith('--skip='))?.split('=')[1] ?? '').split(',').filter(Boolean));
const started = Date.now();
const out = { kind: 'all', env: await environment() };
const files = [];
const sections = [];

// Each bench on its own: one that fails is reported and the others still run and get written.
async function section(name, run) {
  if (skip.has(name)) return;
  try {
    await run();
  } catch (error) {
    out[name] = { error: String(error?.stack ?? error) };
    sections.push([`${name}: FAILED`, String(error?.message ?? error)]);
  }
}
await section('cold', async () => {
  out.cold = await runCold(coldArgs(argv));
  files.push(...writeCold(out.cold));
  sections.push(['Cold starts (ms; client = raw socket on loopback, server = Server-Timing total, bring-up = Server-Timing cold)', coldTable(out.cold)]);
});
await section('warm', async () => {
  out.warm = await runWarm(warmArgs(argv));
  files.push(...writeWarm(out.warm));
  sections.push([`Warm throughput (${out.warm.tool}, ${out.warm.args.connections} connections, medians of ${out.warm.args.rounds} interleaved rounds of ${out.warm.args.seconds} s; ms)`, warmTable(out.warm)]);
});
await section('density', async () => {
  out.density = await runDensity(densityArgs(argv));
  files.push(...writeDensity(out.density));
  sections.push(['Density: warm hello workers per process', densityTable(out.density)]);
});

// Samples make the per-bench files large; the combined file keeps the summaries.
const slim = JSON.parse(JSON.stringify(out, (key, value) => (key === 'samples' ? undefined : value)));
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(slim, null, 1));
files.push('bench/results/latest.json');

console.log(`\nCinder benchmarks — ${out.env.date} — ${out.env.cpus} cores (${out.env.cpuModel}), Node ${out.env.node}, isolated-vm ${out.env.isolatedVm}, workerd ${out.env.workerd}`);
for (const [title, body] of sections) console.log(`\n${title}\n${body}`);
console.log(`\nwrote ${files.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
