// How an import specifier names a module of the upload.

/** Resolve an import specifier against the importing module's name ("./a.js" from "lib/b.js"). */
export function resolveSpecifier(specifier: string, referrer: string): string {
  if (!specifier.startsWith('./') && !specifier.startsWith('../') && !specifier.startsWith('/')) return specifier;
  const base = referrer.split('/').slice(0, -1);
  const parts = specifier.startsWith('/') ? [] : base;
  for (const part of specifier.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}
