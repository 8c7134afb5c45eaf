// The ES module source the loader compiles for each module of a version. ES modules are compiled
// as uploaded; every other kind gets a small synthesized module whose default export is what
// Workers gives for that kind: a string (Text), the parsed value (JSON), an ArrayBuffer (Data), a
// WebAssembly.Module (CompiledWasm, compiled by the loader: sandbox/module-values.ts), and
// module.exports for CommonJS, wrapped so that `require` reaches the upload's other modules.
import { resolveSpecifier } from './specifiers.js';
import { MODULE_VALUES_GLOBAL, MODULE_VALUES_SPECIFIER } from '../../protocol/wall.js';
import type { WorkerModuleSource } from '../model/worker-definition.js';

/** The source of the loader's internal module that hands out Data and CompiledWasm values. */
export const MODULE_VALUES_SOURCE = `const take = globalThis[${JSON.stringify(MODULE_VALUES_GLOBAL)}](); export { take };`;

// `require("x")` with a literal specifier: the ones a CommonJS module can reach (resolved at load
// time, as workerd resolves them; a computed specifier cannot be known before it runs).
const REQUIRE_CALL = /(?<![\w$.])require\s*\(\s*(['"])([^'"\n\\]+)\1\s*\)/g;

export interface ModuleSourceContext {
  /** the version's modules by name */
  modules: Map<string, WorkerModuleSource>;
  /** whether a specifier names a built-in module (cloudflare:*, node:*) this worker may import */
  isBuiltin?: (specifier: string) => boolean;
}

/** What the loader compiles for `module` (an ES module source), or null for a service-worker script. */
export function moduleSource(module: WorkerModuleSource, context: ModuleSourceContext): string | null {
  switch (module.type) {
    case 'esm':
      return module.code;
    case 'script':
      return null;
    case 'text':
      return `export default ${JSON.stringify(module.code)};\n`;
    case 'json':
      // Parsed, not inlined as an object literal: a "__proto__" key in JSON is an own property.
      return `export default JSON.parse(${JSON.stringify(module.code)});\n`;
    case 'data':
    case 'wasm':
      return `import { take } from ${JSON.stringify(MODULE_VALUES_SPECIFIER)};\nexport default take(${JSON.stringify(module.name)});\n`;
    case 'commonjs':
      return commonJsSource(module, context);
  }
}

/**
 * A CommonJS module as an ES module: its code runs once, in a function given exports, require,
 * module, __filename and __dirname, and module.exports is the default export. Each literal
 * `require("x")` that names a module of the upload (or an available built-in) becomes a static
 * import, so that it is linked, and evaluated, before this module runs; require of anything else
 * throws when called (an optional dependency in a try block still loads). The prologue is on the
 * module's first line, so line numbers in stacks are the file's own.
 */
function commonJsSource(module: WorkerModuleSource, context: ModuleSourceContext): string {
  const requires = new Map<string, string>();
  const imports: string[] = [];
  for (const match of module.code.matchAll(REQUIRE_CALL)) {
    const specifier = match[2];
    if (requires.has(specifier)) continue;
    const builtin = context.isBuiltin?.(specifier) === true;
    const target = builtin ? undefined : context.modules.get(resolveSpecifier(specifier, module.name));
    if (!builtin && (!target || target.name === module.name || target.type === 'script')) continue;
    const local = `__cinder_required${imports.length}`;
    imports.push(`import * as ${local} from ${JSON.stringify(specifier)};`);
    // ES modules are required as their namespace; every other kind as its default export, and a
    // built-in as its default export when it has one (node: modules' module.exports).
    const value = target?.type === 'esm' ? local : builtin ? `("default" in ${local} ? ${local}.default : ${local})` : `${local}.default`;
    requires.set(specifier, `[${JSON.stringify(specifier)}, () => ${value}]`);
  }
  const slash = module.name.lastIndexOf('/');
  const dirname = slash === -1 ? '' : module.name.slice(0, slash);
  return (
    `${imports.join(' ')}const __cinder_requires = new Map([${[...requires.values()].join(', ')}]); ` +
    `const __cinder_module = { exports: {} }; ` +
    `function __cinder_require(specifier) { const get = __cinder_requires.get(String(specifier)); if (get === undefined) throw new Error('No such module "' + specifier + '" (required from ${module.name.replace(/['\\\n]/g, '')})'); return get(); } ` +
    `(function (exports, require, module, __filename, __dirname) {${module.code}\n}).call(__cinder_module.exports, __cinder_module.exports, __cinder_require, __cinder_module, ${JSON.stringify('/' + module.name)}, ${JSON.stringify('/' + dirname)});\n` +
    `export default __cinder_module.exports;\n`
  );
}
