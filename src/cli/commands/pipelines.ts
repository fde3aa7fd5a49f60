import { UsageError } from '../../core/errors.js';
import type { PipelineSettings } from '../../core/settings.js';
import type { CliIo } from '../io.js';
import {
  neighboursIn,
  type PipelineFlags,
  readConfigFor,
  resolveSettings,
  settingsFromFlags,
} from '../pipeline-options.js';

export interface MultiPipelineFlags extends PipelineFlags {
  all?: boolean;
}

/** One pipeline from the flags (and --pipeline), or with --all every pipeline in the config. */
export async function selectPipelines(flags: MultiPipelineFlags, io: CliIo): Promise<PipelineSettings[]> {
  if (!flags.all) return [await settingsFromFlags(flags, io)];
  checkAllFlags(flags);
  const { path, config } = await readConfigFor(flags, io, true);
  if (!config) throw new UsageError(`--all needs a config file, and ${path} does not exist.`);
  if (config.pipelines.size === 0) throw new UsageError(`The config file ${path} defines no pipelines.`);
  return [...config.pipelines].map(([name, pipeline]) => ({
    ...resolveSettings(flags, name, pipeline, io.cwd),
    neighbours: neighboursIn(config, name),
  }));
}

/** --all takes every pipeline's layout from the config: a layout flag beside it is a mistake. */
export function checkAllFlags(flags: MultiPipelineFlags): void {
  for (const [value, flag] of [
    [flags.pipeline, '--pipeline'],
    [flags.outDir, '--out-dir'],
    [flags.stagingDir, '--staging-dir'],
    [flags.final, '--final'],
    [flags.staging, '--staging'],
    [flags.marker, '--marker'],
  ] as const) {
    if (value !== undefined)
      throw new UsageError(`--all takes every pipeline from the config; it does not go with ${flag}.`);
  }
}
