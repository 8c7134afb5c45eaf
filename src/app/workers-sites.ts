// Workers Sites, refused by name at build: a worker importing `__STATIC_CONTENT_MANIFEST` (what
// wrangler's `[site]` and kv-asset-handler use) hears what to use instead, rather than esbuild's
// "Could not resolve". Cloudflare deprecated Workers Sites for Workers Static Assets.
import type { Plugin } from 'esbuild';

export const WORKERS_SITES_MESSAGE =
  '__STATIC_CONTENT_MANIFEST is Workers Sites (wrangler [site], kv-asset-handler), which Cloudflare deprecated and Cinder does not support: serve the directory with [assets] instead (directory = "./public"; binding = "ASSETS" for env.ASSETS.fetch). See docs/compat.md';

export const refuseWorkersSites: Plugin = {
  name: 'cinder-refuse-workers-sites',
  setup(build) {
    build.onResolve({ filter: /^__STATIC_CONTENT_MANIFEST$/ }, () => ({ errors: [{ text: WORKERS_SITES_MESSAGE }] }));
  },
};
