// wrangler's module rules and build step as the config describes them (no esbuild here: the CLI
// reads configs without loading the bundler).

export type ModuleRuleType = 'ESModule' | 'CommonJS' | 'CompiledWasm' | 'Text' | 'Data';
export const MODULE_RULE_TYPES: readonly ModuleRuleType[] = ['ESModule', 'CommonJS', 'CompiledWasm', 'Text', 'Data'];

/** A wrangler module rule: imports whose path matches one of `globs` are modules of `type`. */
export interface ModuleRule {
  type: ModuleRuleType;
  globs: string[];
  /** true: later rules of the same type still apply (wrangler's meaning) */
  fallthrough?: boolean;
}

/** wrangler's default rules (after the config's own). */
export const DEFAULT_MODULE_RULES: readonly ModuleRule[] = [
  { type: 'Text', globs: ['**/*.txt', '**/*.html', '**/*.sql'] },
  { type: 'Data', globs: ['**/*.bin'] },
  { type: 'CompiledWasm', globs: ['**/*.wasm', '**/*.wasm?module'] },
];

/**
 * The rules in force, as wrangler reads them: the config's, then the defaults; once a type has a
 * rule without `fallthrough = true`, later rules of that type are dropped (a config rule for Text
 * replaces the default Text rule).
 */
export function effectiveRules(userRules: ModuleRule[] = []): ModuleRule[] {
  const done = new Set<ModuleRuleType>();
  const rules: ModuleRule[] = [];
  for (const rule of [...userRules, ...DEFAULT_MODULE_RULES]) {
    if (done.has(rule.type)) continue;
    rules.push(rule);
    if (rule.fallthrough !== true) done.add(rule.type);
  }
  return rules;
}

/** A glob as wrangler matches it against an import path: `**` any directories, `*` any name. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        out += '(?:.*/)?';
      } else {
        out += '.*';
      }
    } else if (c === '*') {
      out += '[^/]*';
    } else {
      out += c.replace(/[.+^${}()|[\]\\?]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

/** wrangler's `[build]`: a command run (in a shell, in `cwd`) before bundling. */
export interface BuildStep {
  command: string;
  cwd: string;
  /** directories `cinder dev` watches to run the command again (wrangler's watch_dir) */
  watchDirs: string[];
}

