import { directoryOverlaps } from '../../core/directory-rules.js';
import { UsageError } from '../../core/errors.js';
import { SCHEMA_VERSION } from '../../core/states.js';
import type { CliIo } from '../io.js';
import { readConfigFor } from '../pipeline-options.js';

interface PipelinesFlags {
  config?: string;
  json?: boolean;
}

const ROLE_WORDS = { outDir: 'out-dir', stagingDir: 'staging-dir' } as const;

/**
 * Lists the config in use and its pipelines, and warns where pipelines share
 * a directory: there, --fix and clean consult every pipeline concerned, and a
 * person should know the layout is shared. Reads only; exit 0.
 */
export async function pipelinesCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as PipelinesFlags;
  const { path, config } = await readConfigFor(flags, io, true);
  if (!config) {
    throw new UsageError(
      `There is no config file: ${path} does not exist.`,
      'Create crashdiag.config.json in this directory, or pass --config FILE.',
    );
  }
  const pipelines = [...config.pipelines].map(([name, p]) => ({
    pipeline: name,
    outDir: p.outDir,
    stagingDir: p.stagingDir,
    final: p.final,
    staging: p.staging,
  }));
  const overlaps = await directoryOverlaps(io.fs, pipelines);
  if (flags.json) {
    const json = {
      schemaVersion: SCHEMA_VERSION,
      config: path,
      pipelines: pipelines.map((p) => ({
        name: p.pipeline,
        outDir: p.outDir ?? null,
        stagingDir: p.stagingDir ?? null,
        final: p.final ?? null,
        staging: p.staging ?? null,
      })),
      overlaps,
    };
    io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  const lines = [`config: ${path}`];
  if (pipelines.length === 0) lines.push('  (no pipelines)');
  for (const p of pipelines) {
    lines.push(
      `${p.pipeline}`,
      `  out-dir      ${p.outDir ?? '(from flags)'}`,
      `  staging-dir  ${p.stagingDir ?? '(from flags)'}`,
      `  final        ${p.final ?? '(from flags)'}`,
    );
  }
  for (const { first, second } of overlaps) {
    lines.push(
      `warning: pipelines ${first.pipeline} and ${second.pipeline} share a directory: ${first.pipeline}'s ${ROLE_WORDS[first.role]} ${first.dir} is ${second.pipeline}'s ${ROLE_WORDS[second.role]} ${second.dir}; --fix and clean respect both pipelines' files there, but each pipeline's names may be read as the other's.`,
    );
  }
  for (const p of pipelines) {
    // Other pipelines keep what this one publishes only where the config says it does.
    if (p.outDir === undefined && pipelines.length > 1) {
      lines.push(
        `warning: pipeline ${p.pipeline} leaves its out-dir to flags: the other pipelines' --fix and clean cannot know where it publishes, and would not keep its outputs in their staging directories; set outDir in the config.`,
      );
    }
  }
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
