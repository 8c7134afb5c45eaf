// The JSON the admin API answers with. snake_case, as Cloudflare's API and wrangler configs are,
// and bindings in the same array form uploads use, with secret values never shown.
import type { BindingConfig } from '../model/worker-definition.js';
import type { Limits } from '../model/limits.js';
import type { VersionInfo } from '../store/types.js';
import type { WorkerState } from './deployments.js';

export function bindingsView(bindings: Record<string, BindingConfig>): Record<string, unknown>[] {
  return Object.entries(bindings).map(([name, binding]) => {
    if (binding.type === 'secret_text') return { name, type: binding.type };
    return { name, ...binding };
  });
}

export function limitsView(limits: Partial<Limits>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(limits)) {
    if (value !== undefined) out[key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = value;
  }
  return out;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A version in brief: what identifies it. */
export function versionSummary(version: VersionInfo) {
  return { id: version.id, number: version.number, hash: version.hash, size: version.size, created_at: iso(version.createdAt) };
}

/** A version in full (code excepted). */
export function versionView(version: VersionInfo, currentId?: string) {
  return {
    ...versionSummary(version),
    ...(currentId !== undefined ? { current: version.id === currentId } : {}),
    main_module: version.main,
    modules: version.modules,
    bindings: bindingsView(version.bindings),
    routes: version.routes,
    crons: version.crons,
    limits: limitsView(version.limits),
    compatibility_date: version.compatibilityDate,
    compatibility_flags: version.compatibilityFlags ?? [],
  };
}

export function workerSummary(state: WorkerState) {
  return {
    name: state.info.name,
    version: versionSummary(state.version),
    routes: state.routes,
    created_at: iso(state.info.createdAt),
    updated_at: iso(state.info.updatedAt),
  };
}

export function workerView(state: WorkerState) {
  const { version } = state;
  return {
    ...workerSummary(state),
    main_module: version.main,
    modules: version.modules,
    bindings: bindingsView(version.bindings),
    crons: version.crons,
    limits: limitsView(version.limits),
    compatibility_date: version.compatibilityDate,
    compatibility_flags: version.compatibilityFlags ?? [],
  };
}
