// Which wrangler config keys Cinder reads, which it accepts because they change nothing a worker
// can observe here, and how every other key is refused: by name, with a pointer to
// docs/compat.md, and a suggestion when it looks like a typo of a known key. A project whose
// config asks for something Cinder does not do must hear so at build, not at request time.

import { SUPPORTED_COMPATIBILITY_FLAGS } from '../../model/compatibility.js';

/** Keys readConfig acts on. */
export const READ_KEYS = ['name', 'main', 'compatibility_date', 'compatibility_flags', 'vars', 'kv_namespaces', 'services', 'durable_objects', 'migrations', 'd1_databases', 'r2_buckets', 'queues', 'triggers', 'routes', 'route', 'limits', 'env', 'rules', 'build', 'assets'];

/** Keys about Cloudflare's own dashboard, account or upload: nothing a worker sees depends on them. */
export const NO_EFFECT_KEYS = ['$schema', 'account_id', 'workers_dev', 'preview_urls', 'send_metrics', 'minify', 'upload_source_maps'];

/** wrangler keys Cinder does not implement (yet); refused by name. */
export const UNSUPPORTED_KEYS = [
  'site', 'alias', 'define', 'no_bundle', 'find_additional_modules', 'base_dir', 'preserve_file_names',
  'node_compat', 'analytics_engine_datasets', 'ai',
  'browser', 'hyperdrive', 'vectorize', 'dispatch_namespaces', 'mtls_certificates', 'tail_consumers', 'unsafe', 'wasm_modules',
  'text_blobs', 'data_blobs', 'workflows', 'pipelines', 'version_metadata', 'secrets_store_secrets', 'containers', 'send_email',
  'images', 'logpush', 'observability', 'placement', 'usage_model', 'dev', 'keep_vars', 'legacy_env', 'jsx_factory',
  'jsx_fragment', 'tsconfig', 'first_party_worker', 'zone_id', 'kv-namespaces', 'compliance_region', 'secrets',
];

/** compatibility_flags Cinder honours (model/compatibility.ts); every other flag is refused by name. */
const SUPPORTED_FLAGS = SUPPORTED_COMPATIBILITY_FLAGS;

const COMPAT = 'see docs/compat.md for what Cinder supports';

/** What to use instead, for unsupported keys that have a supported replacement. */
const INSTEAD: Record<string, string> = {
  site: 'Workers Sites (site, __STATIC_CONTENT_MANIFEST) is deprecated by Cloudflare and not supported by Cinder: serve the directory with [assets] instead (directory = "./public", and binding = "ASSETS" for env.ASSETS.fetch)',
};

/** Why `table` (the top level, or one [env.NAME] section: `where` names it) cannot be used, or null.
 *  Every refused key is named at once (one per line): a config with two typos is fixed in one go. */
export function unsupportedKeys(table: Record<string, unknown>, where: (key: string) => string): string | null {
  const refused: string[] = [];
  for (const key of Object.keys(table)) {
    if (READ_KEYS.includes(key) || NO_EFFECT_KEYS.includes(key)) continue;
    if (INSTEAD[key]) refused.push(`${where(key)}: ${INSTEAD[key]} (${COMPAT})`);
    else if (UNSUPPORTED_KEYS.includes(key)) refused.push(`${where(key)} is not supported by Cinder; remove it or deploy elsewhere (${COMPAT})`);
    else {
      const near = closest(key, [...READ_KEYS, ...NO_EFFECT_KEYS, ...UNSUPPORTED_KEYS]);
      refused.push(`${where(key)} is not a wrangler key Cinder knows${near ? ` (did you mean "${near}"?)` : ''}; ${COMPAT}`);
    }
  }
  if (refused.length) return refused.join('\n');
  const flags = table.compatibility_flags;
  if (flags !== undefined) {
    if (!Array.isArray(flags) || flags.some((f) => typeof f !== 'string')) return `${where('compatibility_flags')} must be an array of flag names`;
    const unsupported = (flags as string[]).filter((f) => !SUPPORTED_FLAGS.includes(f));
    if (unsupported.length) return `${where('compatibility_flags')}: ${unsupported.map((f) => `"${f}"`).join(', ')} not supported by Cinder (${COMPAT})`;
  }
  if (table.triggers !== null && typeof table.triggers === 'object' && !Array.isArray(table.triggers)) {
    for (const key of Object.keys(table.triggers)) {
      if (key !== 'crons') return `${where(`triggers.${key}`)} is not supported by Cinder; only triggers.crons is (${COMPAT})`;
    }
  }
  return null;
}

/** The known key within edit distance 2 of `key` (typos such as [var] or [[kv_namespace]]). */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}
