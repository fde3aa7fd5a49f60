import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  // What scripts/build.mjs puts into the bundle, so the source runs the same under test.
  define: { CRASHDIAG_VERSION: JSON.stringify(version) },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The pinned AWS SDK warns on every client under node 20 (it will need 22 from 2027): known,
    // and noise in a test log.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // `npm run coverage`: the core, where the guarantees live, as the in-process tests exercise it
    // (the spawned bundle is not measured). coverage/coverage-summary.json is for tools to read.
    coverage: {
      provider: 'v8',
      include: ['src/core/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: { lines: 90, branches: 85 },
    },
  },
});
