// The one-way import rules between the tree's folders (README "Architecture"). Every relative
// import, static or dynamic, of every source file under src/, bindings/, sandbox/ and protocol/ is
// resolved and checked against the folder it comes from; so are package imports where a folder
// must not reach the host (the guest side, the protocol) or isolated-vm (only src/runtime/ivm.ts
// loads it; `import type` is free).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The job a file belongs to. */
function areaOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'protocol') return 'protocol';
  if (parts[0] === 'sandbox') return 'sandbox';
  if (parts[0] === 'bindings') return parts[2] === 'guest.ts' ? 'binding-guest' : parts[2] === 'protocol.ts' ? 'binding-protocol' : 'binding-host';
  if (parts[0] === 'src') return parts.length > 2 ? parts[1] : 'src';
  return 'other';
}

// What each area may import (besides itself), by area or by exact file.
const ALLOWED: Record<string, string[]> = {
  protocol: [],
  'binding-protocol': ['protocol'],
  sandbox: ['protocol', 'binding-guest', 'binding-protocol'],
  'binding-guest': ['sandbox', 'protocol', 'binding-protocol'],
  model: [],
  store: ['model'],
  runtime: ['model', 'protocol'],
  'data-plane': ['runtime', 'model', 'protocol'],
  observability: ['runtime', 'data-plane', 'store', 'model', 'protocol'],
  control: ['data-plane', 'runtime', 'observability', 'store', 'model', 'protocol', 'binding-host', 'binding-protocol'],
  app: ['control', 'data-plane', 'runtime', 'observability', 'store', 'model', 'protocol', 'binding-host', 'binding-protocol'],
  // A binding's host half builds on the op contract, never on the runtime's core.
  'binding-host': ['binding-protocol', 'protocol', 'model', 'src/runtime/contract.ts', 'src/store/open-sqlite.ts', 'src/store/redis-connect.ts', 'src/observability/counters.ts'],
};

/** Areas that run inside the isolate or are shared with it: no Node, no isolated-vm. */
const GUEST_SIDE = new Set(['protocol', 'binding-protocol', 'sandbox', 'binding-guest']);

interface Import {
  from: string;
  specifier: string;
  typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(from: string, text: string): Import[] {
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const specifier = m[3] ?? m[4];
    out.push({ from, specifier, typeOnly: Boolean(m[2]) });
  }
  return out;
}

/** The rule an import breaks, or null. */
export function violation({ from, specifier, typeOnly }: Import): string | null {
  const area = areaOf(from);
  if (!specifier.startsWith('.')) {
    if (GUEST_SIDE.has(area) && (specifier.startsWith('node:') || specifier === 'isolated-vm')) return `${from}: the guest side imports nothing from the host ("${specifier}")`;
    if (area === 'protocol' || area === 'binding-protocol') return `${from}: a protocol file imports no package ("${specifier}")`;
    if (specifier === 'isolated-vm' && !typeOnly && from !== 'src/runtime/ivm.ts') return `${from}: only src/runtime/ivm.ts loads isolated-vm`;
    return null;
  }
  const target = normalize(join(dirname(from), specifier)).replace(/\.js$/, '.ts');
  const targetArea = areaOf(target);
  if (targetArea === area) {
    // Bindings stay apart: one binding's files import another's only through sandbox or src.
    if (area.startsWith('binding') && target.split('/')[1] !== from.split('/')[1]) return `${from}: imports another binding (${target})`;
    return null;
  }
  if (area.startsWith('binding') && targetArea.startsWith('binding') && target.split('/')[1] === from.split('/')[1]) {
    // Within one binding: the host half and the guest half share only the protocol file.
    if (area === 'binding-host' && targetArea === 'binding-guest') return `${from}: the host half imports the guest half (${target})`;
    if (area === 'binding-guest' && targetArea === 'binding-host') return `${from}: the guest half imports the host half (${target})`;
    return null;
  }
  const allowed = ALLOWED[area];
  if (!allowed) return null;
  if (allowed.includes(targetArea) || allowed.includes(target)) return null;
  return `${from} (${area}) may not import ${target} (${targetArea})`;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('one-way import rules', () => {
  const files = ['src', 'bindings', 'sandbox', 'protocol'].flatMap(sourceFiles);

  it('every import in the tree keeps to them', () => {
    const broken = files.flatMap((file) => importsOf(relative(root, join(root, file)), readFileSync(join(root, file), 'utf8'))).map(violation).filter(Boolean);
    expect(broken).toEqual([]);
  });

  it('sees the imports it checks, and catches a broken rule', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(areaOf('src/data-plane/ingress.ts')).toBe('data-plane');
    expect(violation({ from: 'src/data-plane/ingress.ts', specifier: '../control/app.js', typeOnly: true })).not.toBeNull();
    expect(violation({ from: 'src/runtime/runtime.ts', specifier: '../control/deployments.js', typeOnly: false })).not.toBeNull();
    expect(violation({ from: 'src/store/sqlite.ts', specifier: '../runtime/runtime.js', typeOnly: true })).not.toBeNull();
    expect(violation({ from: 'sandbox/wire.ts', specifier: '../src/runtime/contract.js', typeOnly: true })).not.toBeNull();
    expect(violation({ from: 'sandbox/wire.ts', specifier: 'node:buffer', typeOnly: false })).not.toBeNull();
    expect(violation({ from: 'bindings/kv/host.ts', specifier: '../../src/runtime/worker-instance.js', typeOnly: true })).not.toBeNull();
    expect(violation({ from: 'src/runtime/pool.ts', specifier: 'isolated-vm', typeOnly: false })).not.toBeNull();
    expect(violation({ from: 'protocol/wall.ts', specifier: '../sandbox/wire.js', typeOnly: true })).not.toBeNull();
    expect(importsOf('x.ts', "import type { A } from './a.js';\nconst m = await import('./b.js');\nexport { c } from './c.js';").map((i) => i.specifier)).toEqual(['./a.js', './b.js', './c.js']);
  });
});
