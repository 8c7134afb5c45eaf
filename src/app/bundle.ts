// Turns a worker entry on disk (JS or TS, one file or many, with npm dependencies) into the
// modules the runtime loads, the way wrangler does: esbuild bundles the JavaScript into one ES
// module (or one classic script for service-worker syntax); files matched by a module rule (by
// default .txt/.html/.sql as Text, .bin as Data, .wasm as CompiledWasm) become modules of their
// own beside it, imported by name; `cloudflare:*` imports, and `node:*` ones under nodejs_compat,
// are left to the runtime's built-in modules.
import { build, type Message, type Metafile, type Plugin } from 'esbuild';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { binaryModule, detectModuleType, type ModuleType, type WorkerModuleSource } from '../model/worker-definition.js';
import { BARE_NODE_MODULE_NAMES, effectiveFlags, nodeModuleRefusal, nodeModulesOffered } from '../../protocol/node-modules.js';
import { effectiveRules, globToRegExp, type BuildStep, type ModuleRule } from './module-rules.js';
import { refuseWorkersSites } from './workers-sites.js';

export type { BuildStep, ModuleRule } from './module-rules.js';

export interface BundleResult {
  main: string;
  modules: WorkerModuleSource[];
  /** files esbuild read: what `cinder dev` watches */
  inputs: string[];
  /** the bundle's source map (JSON), with sourcemap: true; its sources are absolute paths */
  sourceMap?: string;
}

export interface BundleOptions {
  /** the config's `rules`, before wrangler's defaults */
  rules?: ModuleRule[];
  compatibilityFlags?: string[];
  /** with the flags, what the worker gets: from 2026-08-04 nodejs_compat is on by default, as the
   *  runtime's add-ons have it (protocol/node-modules.ts effectiveFlags) */
  compatibilityDate?: string;
  /** what `process.env.NODE_ENV` is replaced with, as wrangler does: "production" for deploys
   *  (libraries such as React then ship their production builds), "development" in dev */
  mode?: 'production' | 'development';
  /** also make a source map of the bundle (dev maps worker stacks back to the sources with it) */
  sourcemap?: boolean;
}

/** esbuild namespace of the modules that stand for an import() of a built-in module. */
const DYNAMIC_BUILTIN = 'cinder-dynamic-builtin';

/** esbuild namespace of the placeholders for Node.js modules Cinder does not offer. */
const REFUSED_BUILTIN = 'cinder-refused-builtin';

const RULE_MODULE_TYPES: Record<'Text' | 'Data' | 'CompiledWasm', ModuleType> = { Text: 'text', Data: 'data', CompiledWasm: 'wasm' };

export class BundleError extends Error {
  /** esbuild's messages, when esbuild failed: build-errors.ts prints them with code frames */
  constructor(
    message: string,
    readonly errors?: Message[],
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

/**
 * Built-in modules: `cloudflare:*` always, `node:*` (and bare Node.js module names) under
 * nodejs_compat, are left as imports for the runtime; a Node.js module the flags do not offer is
 * a build error naming it. A `require()` of one (CommonJS code in node_modules) becomes an import,
 * as esbuild's ES module output cannot require an external.
 *
 * A module Workers offers but Cinder does not (node:net, node:diagnostics_channel...) is refused
 * only if the bundle keeps it: libraries such as @sentry/cloudflare import them from integrations
 * a worker never uses, which esbuild drops, and wrangler builds those. Such an import resolves to
 * a placeholder, and bundleWorker refuses the build when a placeholder is in the output.
 */
function builtinsPlugin(flags: readonly string[], refusals: Map<string, Refusal>): Plugin {
  const nodeAllowed = nodeModulesOffered(flags) !== 'none';
  return {
    name: 'cinder-builtins',
    setup(b) {
      // isolated-vm has no dynamic import() ("Not supported" at run time): an import() of a
      // built-in becomes a static import of it, handed back as a resolved promise of its namespace.
      const external = (path: string, kind: string) =>
        kind === 'require-call' ? { path, namespace: 'cinder-require-builtin' } : kind === 'dynamic-import' ? { path, namespace: DYNAMIC_BUILTIN } : { path, external: true };
      b.onResolve({ filter: /^cloudflare:/ }, (args) => external(args.path, args.kind));
      const refusedIfKept = (name: string, error: string, importer: string, specifier: string) => {
        const refusal = refusals.get(`node:${name}`) ?? { error, imports: new Map<string, string>() };
        refusal.imports.set(importer, specifier);
        refusals.set(`node:${name}`, refusal);
        return { path: `node:${name}`, namespace: REFUSED_BUILTIN };
      };
      b.onResolve({ filter: /^node:/ }, (args) => {
        const error = nodeModuleRefusal(args.path.slice('node:'.length), flags);
        if (error && nodeAllowed) return refusedIfKept(args.path.slice('node:'.length), error, args.importer, args.path);
        if (error) return { errors: [{ text: error }] };
        return external(args.path, args.kind);
      });
      // Bare `buffer`, `events`...: the Node.js module under nodejs_compat (as wrangler maps them);
      // without it, whatever npm package of that name the project has, else a clear error.
      const bare = new RegExp(`^(${BARE_NODE_MODULE_NAMES.map((n) => n.replace(/[/]/g, '\\/')).join('|')})$`);
      b.onResolve({ filter: bare }, async (args) => {
        if (args.pluginData?.cinderBare) return undefined;
        const error = nodeModuleRefusal(args.path, flags);
        if (nodeAllowed && !error) return external(`node:${args.path}`, args.kind);
        // A Node.js module the flags do not offer may still be an npm package of that name
        // (punycode, events without nodejs_compat...): the project's own copy, if it has one.
        const found = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: { cinderBare: true } });
        if (found.errors.length && nodeAllowed && error) return refusedIfKept(args.path, error, args.importer, args.path);
        if (found.errors.length) return { errors: [{ text: `"${args.path}" is a Node.js built-in module: ${error}` }] };
        return { path: found.path, namespace: found.namespace, external: found.external, sideEffects: found.sideEffects };
      });
      b.onLoad({ filter: /.*/, namespace: 'cinder-require-builtin' }, (args) => ({
        contents: `import * as m from ${JSON.stringify(args.path)};\nmodule.exports = "default" in m ? m.default : m;\n`,
        loader: 'js',
      }));
      b.onResolve({ filter: /.*/, namespace: 'cinder-require-builtin' }, (args) => ({ path: args.path, external: true }));
      // `default` read off the namespace: a built-in without one gives undefined, as import() does.
      b.onLoad({ filter: /.*/, namespace: DYNAMIC_BUILTIN }, (args) => ({
        contents: `import * as m from ${JSON.stringify(args.path)};\nexport * from ${JSON.stringify(args.path)};\nexport default m.default;\n`,
        loader: 'js',
      }));
      b.onResolve({ filter: /.*/, namespace: DYNAMIC_BUILTIN }, (args) => ({ path: args.path, external: true }));
      // CommonJS, so that any named import of it links (to undefined); never run: see refusedInOutput.
      b.onLoad({ filter: /.*/, namespace: REFUSED_BUILTIN }, () => ({ contents: 'module.exports = {};\n', loader: 'js' }));
    },
  };
}

/**
 * Module rules: an import matched by a Text, Data or CompiledWasm rule becomes a module of its
 * own (named by a hash of its bytes and its file name, as wrangler names them) that the bundle
 * imports by that name. JavaScript rules (ESModule, CommonJS) change nothing when bundling, as in
 * wrangler: esbuild bundles JavaScript whatever its rule.
 */
function moduleRulesPlugin(rules: ModuleRule[], collected: Map<string, WorkerModuleSource>, inputs: Set<string>): Plugin {
  const matchers = rules
    .filter((rule): rule is ModuleRule & { type: 'Text' | 'Data' | 'CompiledWasm' } => rule.type in RULE_MODULE_TYPES)
    .map((rule) => ({ type: RULE_MODULE_TYPES[rule.type], patterns: rule.globs.map(globToRegExp) }));
  return {
    name: 'cinder-module-rules',
    setup(b) {
      if (!matchers.length) return;
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.cinderRules || args.kind === 'entry-point') return undefined;
        const rule = matchers.find((m) => m.patterns.some((p) => p.test(args.path)));
        if (!rule) return undefined;
        const file = args.path.replace(/\?module$/, '');
        const found = await b.resolve(file, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: { cinderRules: true } });
        if (found.errors.length) return { errors: found.errors };
        const bytes = readFileSync(found.path);
        inputs.add(found.path);
        const name = `${createHash('sha1').update(bytes).digest('hex')}-${basename(found.path)}`;
        if (!collected.has(name)) {
          if (rule.type === 'text') {
            let text: string;
            try {
              text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
            } catch {
              return { errors: [{ text: `${found.path} is imported as a Text module but is not UTF-8 text (use a Data rule for bytes)` }] };
            }
            collected.set(name, { name, type: 'text', code: text });
          } else {
            collected.set(name, binaryModule(name, rule.type as 'data' | 'wasm', bytes));
          }
        }
        return { path: `./${name}`, external: true };
      });
    },
  };
}

export async function bundleWorker(entry: string, options: BundleOptions = {}): Promise<BundleResult> {
  const source = readFileSync(entry, 'utf8');
  const format = detectModuleType(source) === 'esm' || /\.(ts|mts|tsx)$/.test(entry) ? 'esm' : 'iife';
  const collected = new Map<string, WorkerModuleSource>();
  const refusals = new Map<string, Refusal>();
  const ruleInputs = new Set<string>();
  const name = basename(entry).replace(/\.(ts|mts|tsx|mjs|cjs)$/, '.js');
  const nodeEnv = JSON.stringify(options.mode ?? 'production');
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format,
      platform: 'browser',
      target: 'es2022',
      conditions: ['workerd', 'worker', 'browser'],
      metafile: true,
      logLevel: 'silent',
      // Nothing is written: the output path only anchors the map's relative source paths.
      outfile: join(dirname(entry), name),
      sourcemap: options.sourcemap ? 'external' : false,
      define: { 'process.env.NODE_ENV': nodeEnv, 'globalThis.process.env.NODE_ENV': nodeEnv, 'global.process.env.NODE_ENV': nodeEnv },
      plugins: [refuseWorkersSites, builtinsPlugin(effectiveFlags(options.compatibilityDate, options.compatibilityFlags), refusals), moduleRulesPlugin(effectiveRules(options.rules), collected, ruleInputs)],
    });
  } catch (error) {
    const errors = (error as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors;
    if (!errors?.length) throw error;
    throw new BundleError(errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text)).join('\n'), errors as Message[]);
  }
  const kept = refusedInOutput(result.metafile!, refusals);
  if (kept.length) throw new BundleError(kept.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text)).join('\n'), kept);
  const code = result.outputFiles.find((f) => !f.path.endsWith('.map'))!.text;
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
  if (format !== 'esm' && collected.size) throw new BundleError(`${entry} is a service-worker script; importing ${[...collected.keys()].join(', ')} needs the modules format (export default { fetch })`);
  return {
    main: name,
    modules: [{ name, code, type: format === 'esm' ? detectModuleType(code) : 'script' }, ...collected.values()],
    inputs: [...Object.keys(result.metafile?.inputs ?? {}).filter((input) => !input.includes(':')), ...ruleInputs],
    sourceMap: map ? absoluteSources(map.text, dirname(entry)) : undefined,
  };
}

interface Refusal {
  error: string;
  /** importing file -> the specifier it wrote ("node:net", or bare "net") */
  imports: Map<string, string>;
}

/** The refused Node.js modules the bundle kept (code the worker can reach imports them), one
 *  esbuild-shaped error per importing file the bundle kept, at the import's line. */
function refusedInOutput(metafile: Metafile, refusals: Map<string, Refusal>): Message[] {
  const inputs = new Set(Object.values(metafile.outputs).flatMap((output) => Object.keys(output.inputs)));
  const messages: Message[] = [];
  for (const input of inputs) {
    if (!input.startsWith(`${REFUSED_BUILTIN}:`)) continue;
    const { error, imports } = refusals.get(input.slice(REFUSED_BUILTIN.length + 1))!;
    // esbuild names inputs relative to the working directory; only the importers it kept matter
    const kept = [...imports].filter(([file]) => inputs.has(relative(process.cwd(), file)));
    for (const [file, specifier] of kept.length ? kept : [...imports]) {
      const text = specifier.startsWith('node:') ? error : `"${specifier}" is a Node.js built-in module: ${error}`;
      messages.push({ id: '', pluginName: 'cinder-builtins', text, location: importLocation(file, specifier), notes: [], detail: undefined });
    }
  }
  return messages;
}

/** Where `file` first names `specifier` in quotes (esbuild's onResolve does not say). */
function importLocation(file: string, specifier: string): Message['location'] {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const at = [`"${specifier}"`, `'${specifier}'`].map((quoted) => source.indexOf(quoted)).filter((i) => i >= 0).sort((a, b) => a - b)[0];
  if (at === undefined) return null;
  const before = source.slice(0, at).split('\n');
  const line = before.length;
  const lineText = source.split('\n')[line - 1];
  return { file: relative(process.cwd(), file), namespace: 'file', line, column: before[line - 1].length, length: specifier.length + 2, lineText, suggestion: '' };
}

/** The map with its sources made absolute (esbuild writes them relative to the output file). */
function absoluteSources(mapText: string, outDir: string): string {
  const map = JSON.parse(mapText) as { sources: string[]; sourceRoot?: string };
  map.sources = map.sources.map((s) => (s.startsWith('/') || /^[a-z]+:/i.test(s) ? s : join(outDir, s)));
  delete map.sourceRoot;
  return JSON.stringify(map);
}

/** Output kept to show when the command fails. */
const MAX_BUILD_OUTPUT = 64 * 1024;

/** Run the build command; a failure is an error that carries its exit status and output. */
export async function runBuildStep(step: BuildStep): Promise<void> {
  const output: Buffer[] = [];
  let kept = 0;
  const keep = (chunk: Buffer) => {
    if (kept >= MAX_BUILD_OUTPUT) return;
    output.push(chunk.subarray(0, MAX_BUILD_OUTPUT - kept));
    kept += chunk.length;
  };
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    const child = spawn(step.command, { cwd: step.cwd, shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  if (outcome.code === 0) return;
  const text = Buffer.concat(output).toString('utf8').trimEnd();
  const how = outcome.error ? `could not start (${outcome.error.message})` : outcome.signal ? `was killed by ${outcome.signal}` : `exited with status ${outcome.code}`;
  throw new BundleError(`build.command "${step.command}" ${how} (in ${step.cwd})${text ? `:\n${text}` : ''}`);
}
