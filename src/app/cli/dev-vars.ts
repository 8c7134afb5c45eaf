// `.dev.vars`: a project's local secrets for `cinder dev`, in dotenv syntax, as wrangler reads
// them (`.dev.vars.<env>` instead, with --env, when it exists). Each becomes a secret_text
// binding. Syntax, as the dotenv package wrangler uses:
//   NAME=value            unquoted: up to a `#`, trimmed
//   export NAME=value     `export ` is ignored
//   NAME="a\nb"           double quotes: \n and \r expand, may span lines
//   NAME='literal'        single quotes (or backticks): taken as written, may span lines
//   # comment, blank lines
// A line that is none of these is an error naming the file and line, never skipped.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './wrangler.js';

const NAME = /^[A-Za-z_$][\w$]*$/;

/** The .dev.vars file a project in `dir` uses with `env` (which may not exist), and the other candidates. */
export function devVarsFiles(dir: string, env?: string): { file: string; candidates: string[] } {
  const base = join(dir, '.dev.vars');
  if (!env) return { file: base, candidates: [base] };
  const forEnv = `${base}.${env}`;
  return { file: existsSync(forEnv) ? forEnv : base, candidates: [forEnv, base] };
}

export function parseDevVars(text: string, file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([^=:\s]+)\s*(?:=|:\s)\s*(.*)$/.exec(line);
    if (!match) throw new ConfigError(`${file}:${lineNo}: expected NAME=value`);
    const [, name, rest] = match;
    if (!NAME.test(name)) throw new ConfigError(`${file}:${lineNo}: "${name}" cannot be a binding name (it becomes env.${name}, so it must be a JavaScript identifier)`);
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      // The value runs to the matching quote, on this line or a later one.
      let value = rest.slice(1);
      let j = i;
      let end = closingQuote(value, quote);
      while (end === -1 && j + 1 < lines.length) {
        j++;
        value += '\n' + lines[j];
        end = closingQuote(value, quote);
      }
      if (end === -1) throw new ConfigError(`${file}:${lineNo}: the ${quote}-quoted value of ${name} is never closed`);
      const after = value.slice(end + 1).trim();
      if (after && !after.startsWith('#')) throw new ConfigError(`${file}:${j + 1}: unexpected text after the quoted value of ${name}`);
      value = value.slice(0, end);
      vars[name] = quote === '"' ? value.replace(/\\n/g, '\n').replace(/\\r/g, '\r').replace(/\\"/g, '"') : value;
      i = j;
    } else {
      const hash = rest.indexOf('#');
      vars[name] = (hash === -1 ? rest : rest.slice(0, hash)).trim();
    }
  }
  return vars;
}

function closingQuote(value: string, quote: string): number {
  for (let k = 0; k < value.length; k++) {
    if (value[k] === '\\' && quote === '"') k++;
    else if (value[k] === quote) return k;
  }
  return -1;
}

/** The project's dev vars, or {} when it has no such file. */
export function readDevVars(dir: string, env?: string): { file: string | null; vars: Record<string, string> } {
  const { file } = devVarsFiles(dir, env);
  if (!existsSync(file)) return { file: null, vars: {} };
  return { file, vars: parseDevVars(readFileSync(file, 'utf8'), file) };
}
