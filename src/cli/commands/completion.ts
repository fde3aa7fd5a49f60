import { UsageError } from '../../core/errors.js';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import type { CliIo } from '../io.js';
import { readConfigFor } from '../pipeline-options.js';

export async function completionCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  if (argv.listPipelines === true) {
    // Called by the scripts at every <TAB>: no config is no names, not an error.
    const { config } = await readConfigFor({ config: argv.config as string | undefined }, io, false);
    io.stdout.write([...(config?.pipelines.keys() ?? [])].map((name) => `${name}\n`).join(''));
    return 0;
  }
  const fromEnv = io.env.SHELL?.split('/').pop();
  const shell = (argv.shell as string | undefined) ?? (SHELLS.includes(fromEnv as Shell) ? fromEnv : 'bash');
  if (!SHELLS.includes(shell as Shell)) {
    throw new UsageError(`There is no completion for ${JSON.stringify(shell)}.`, `Name one of: ${SHELLS.join(', ')}.`);
  }
  io.stdout.write(completionScript(shell as Shell));
  return 0;
}
