/*
 * The S3 side of a run, in one module the bundle keeps apart
 * (dist/crashdiag-s3.cjs, with the AWS SDK inside): the CLI imports it only
 * when a directory is an s3:// URL, so a local run never reads it.
 */
import type { FileSystem } from './fs.js';
import { LocalStore } from './local-store.js';
import { S3Session } from './s3-store.js';
import { isS3Url } from './s3-url.js';
import type { PipelineSettings } from './settings.js';
import type { FixStores } from './store-fix.js';
import type { ObjectStore } from './store.js';

export { diagnoseStoreRun, fixStoreRun, type FixStores, type StoreDiagnosis, type StoreFixOptions } from './store-fix.js';
export { checkStoreQuarantine, guardStoreRemoval } from './store-guards.js';
export { cleanStorePipeline, type StoreCleanOptions } from './store-clean.js';
export { scanStorePipeline } from './store-scan.js';
export { isStaleUpload, listStoreStaging, probeStoreRun, storeFacts, storePidCheck, uploadReports } from './store-probe.js';

export interface OpenStoresOptions {
  readonly fs: FileSystem;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** --timeout, per attempt of each request. */
  readonly timeoutMs: number;
  /** This host's real clock: the server's times are put on it (never --now: that is a judged time, not a clock). */
  readonly wallClock: () => number;
  /** Checked already (checkStoreQuarantine): an s3:// directory. */
  readonly quarantine?: string | undefined;
}

/** The stores of one run and the one S3 session behind them; `close` lets go of its sockets. */
export interface OpenedStores {
  readonly stores: FixStores;
  close(): Promise<void>;
}

/** Opens each of the run's directories behind the store seam: one S3 session for every s3:// one. */
export function openRunStores(settings: PipelineSettings, options: OpenStoresOptions): OpenedStores {
  const { env } = options;
  // Keys in the environment are read through the io, as everything else is
  // (the bin passes process.env): the SDK's own chain (profiles, roles) otherwise.
  const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? {
        credentials: {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        },
      }
    : {};
  const region = settings.s3?.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const session = new S3Session({
    settings: { ...settings.s3, ...(region === undefined ? {} : { region }) },
    env,
    timeoutMs: options.timeoutMs,
    wallClock: options.wallClock,
    ...keys,
  });
  const storeOf = (dir: string, role: string): ObjectStore =>
    isS3Url(dir) ? session.store(dir, role) : new LocalStore(options.fs, dir);
  const stores: FixStores = {
    out: storeOf(settings.outDir, 'output directory'),
    staging: storeOf(settings.stagingDir, 'staging directory'),
    ...(options.quarantine === undefined ? {} : { quarantine: storeOf(options.quarantine, 'quarantine') }),
  };
  return { stores, close: () => session.close() };
}
