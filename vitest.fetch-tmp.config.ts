import { defineConfig } from 'vitest/config';
export default defineConfig({
  test: {
    include: ['test/unit/*.test.ts'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    globalSetup: ['/tmp/fetch-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
