import { accessSync, constants, readFileSync, statfsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The files that take longest, each mostly waiting on real processes (the kill
 * campaign's paced jobs, racing fixers, the example job's paced runs on S3),
 * start first, while the type check and lint (npm test runs them beside
 * vitest) use the CPU they leave. Without a cache of past durations (a fresh
 * clone), vitest would start the largest files first, and these, small
 * files, late: the S3 example job's alone at the end.
 */
const FIRST = [
  'test/examples/crash-campaign.test.ts',
  'test/core/lock.test.ts',
  'test/cli/fix.test.ts',
  'test/examples/s3-pipeline.test.ts',
];
/**
 * The S3 kill campaign runs last, on a machine the other files no longer
 * load: its kill moments are drawn from clean runs it times first, and when
 * the load changes between the timing and the kills (racing fixers, the
 * other campaign), too many kills miss (at least 20 of 25 must land mid-run).
 * It needs both cores itself, so at the end it costs little wall time.
 */
const LAST = ['test/examples/s3-crash-campaign.test.ts'];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const first = FIRST.findIndex((name) => spec.moduleId.endsWith(name));
      if (first !== -1) return first;
      return LAST.some((name) => spec.moduleId.endsWith(name)) ? FIRST.length + 1 : FIRST.length;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

const TMPFS_MAGIC = 0x01021994;

/**
 * Where the tests' scratch goes (os.tmpdir(): every temp layout, pipeline
 * workspace and s3rver store): TMPDIR if it is set, else /dev/shm where it is
 * a writable tmpfs. The suite creates and removes tens of thousands of small
 * files and fsyncs as crashdiag does; on this 2-core VM's ext4 creating a file
 * cost ~100 us of CPU against ~9 us on tmpfs, and moving the scratch cut the
 * kernel time of a vitest run from 32 to 18 CPU-s (of ~120). What is tested
 * does not change: crashdiag never asks what file system it is on (only, for
 * a cause, how full it is), and the test that needs a second file system
 * (--quarantine onto another device) mounts a tmpfs of its own.
 * `TMPDIR=/tmp npm test` runs it all on disk.
 */
function scratchDir(): string | undefined {
  if (process.env.TMPDIR) return undefined;
  try {
    accessSync('/dev/shm', constants.W_OK | constants.X_OK);
    return statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : undefined;
  } catch {
    return undefined;
  }
}
const scratch = scratchDir();

export default defineConfig({
  // What scripts/build.mjs puts into the bundle, so the source runs the same under test.
  define: { CRASHDIAG_VERSION: JSON.stringify(version) },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Twice as many test files at once as there are cores: most of the suite's time is spent
    // waiting on child processes, fsyncs and paced jobs, not computing.
    maxWorkers: Math.max(2, 2 * availableParallelism()),
    // One worker runs many files: a fork and a module graph per file cost more CPU than most
    // files' tests. Safe here: no test mocks modules or changes process-wide state it does not restore.
    isolate: false,
    sequence: { sequencer: LongestFirst },
    // The pinned AWS SDK warns on every client under node 20 (it will need 22 from 2027): known,
    // and noise in a test log.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...(scratch ? { TMPDIR: scratch } : {}) },
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
