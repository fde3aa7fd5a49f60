// The S3 part of the bundle is a lazy part of its own (dist/crashdiag-s3.cjs,
// the AWS SDK inside): a local run must neither read it nor carry the SDK in
// the main bundle, and an S3 run must load it from beside the bin.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useS3Scene } from '../support/s3-scene.js';
import { runBin, useBuiltBin } from '../support/built-bin.js';

const BUCKET = 'bundle-data';
const scene = useS3Scene(BUCKET);
const { server } = scene;
const built = useBuiltBin();

const LAYOUT = ['--final', 'refunds_settled_{date}.csv', '--json'];

describe('the S3 part is lazy', () => {
  it('the main bundle does not hold the AWS SDK, and requires the S3 part only by name', async () => {
    // The bin only starts the main bundle beside it (src/bin/start.ts).
    const main = await fsp.readFile(join(built.bin, '..', 'crashdiag-main.cjs'), 'utf8');
    expect(main).not.toMatch(/@aws-sdk|S3Client|ListObjectsV2Command/);
    expect(main).toMatch(/require\("\.\/crashdiag-s3\.cjs"\)/);
    const part = await fsp.readFile(join(built.bin, '..', 'crashdiag-s3.cjs'), 'utf8');
    expect(part).toMatch(/ListObjectsV2Command/);
  });

  it('a local diagnose runs with the S3 part gone: it never reads it', async () => {
    const part = join(built.bin, '..', 'crashdiag-s3.cjs');
    const aside = `${part}.aside`;
    await fsp.rename(part, aside);
    try {
      const out = join(scene.scratch(), 'out');
      const staging = join(scene.scratch(), 'staging');
      await fsp.mkdir(out, { recursive: true });
      await fsp.mkdir(staging, { recursive: true });
      const { code, stdout, stderr } = await runBin(built.bin, ['diagnose', '2026-04-24', '--out-dir', out,
        '--staging-dir', staging, ...LAYOUT]);
      expect(stderr).toBe('');
      expect(JSON.parse(stdout).state).toBe('A/B/C');
      expect(code).toBe(JSON.parse(stdout).exitCode);
    } finally {
      await fsp.rename(aside, part);
    }
  });

  it('an S3 diagnose through the built bin loads the part, without the SDK\'s Node-version notice', async () => {
    await scene.put('out/refunds_settled_2026-04-24.csv', 'a,b\n');
    await scene.put('out/refunds_settled_2026-04-24.csv.success', '');
    const { code, stdout, stderr } = await runBin(built.bin, [
      'diagnose', '2026-04-24', '--out-dir', `s3://${BUCKET}/out/`, '--staging-dir', `s3://${BUCKET}/_staging/`, ...LAYOUT,
    ], {
      cwd: scene.scratch(),
      env: {
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined,
        AWS_ENDPOINT_URL_S3: server().endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_EC2_METADATA_DISABLED: 'true',
        HOME: scene.scratch(),
        XDG_STATE_HOME: join(scene.scratch(), 'state'),
      },
    });
    expect(stderr).toBe('');
    expect(JSON.parse(stdout).state).toBe('DONE');
    expect(code).toBe(0);
  });

  it('no credentials anywhere: one sentence naming the bucket and what to set, exit 2, no stack', async () => {
    const { code, stdout, stderr } = await runBin(built.bin, [
      'diagnose', '2026-04-24', '--out-dir', `s3://${BUCKET}/out/`, '--staging-dir', `s3://${BUCKET}/_staging/`,
      '--final', 'refunds_settled_{date}.csv', '--timeout', '2s',
    ], {
      cwd: scene.scratch(),
      env: {
        AWS_ENDPOINT_URL_S3: server().endpoint,
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
        AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
        // No instance metadata service to wait for on a test machine.
        AWS_EC2_METADATA_DISABLED: 'true',
        HOME: scene.scratch(),
        XDG_STATE_HOME: join(scene.scratch(), 'state'),
      },
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/No AWS credentials were found to .* bucket bundle-data/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
