import { spawn, spawnSync } from 'node:child_process';
import { collectOutput, type Finished } from './built-bin.js';

/**
 * Why this machine cannot bind-mount in a private mount namespace (root,
 * unshare), or undefined when it can. The tests that need one skip with it.
 */
export function bindMountProblem(): string | undefined {
  const script
    = 'd=$(mktemp -d) && mkdir "$d/a" "$d/b" && unshare --mount --propagation private mount --bind "$d/a" "$d/b";'
      + ' r=$?; rm -rf "$d"; exit $r';
  const probe = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  if (probe.error) return `unshare cannot run: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `mount --bind fails here: ${probe.stderr.trim()}`;
}

/**
 * Runs the built bin in a private mount namespace with `from` bind-mounted on
 * `onto`: the mount lives only as long as the run, so a failed test never
 * leaves one behind.
 */
export function runBinWithBindMount(
  bin: string,
  from: string,
  onto: string,
  args: readonly string[],
  cwd: string,
): Promise<Finished> {
  return collectOutput(
    spawn(
      'unshare',
      ['--mount', '--propagation', 'private', '/bin/sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"']
        .concat('sh', from, onto, process.execPath, bin, ...args),
      { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
}
