// Real PID reuse, in a fresh PID namespace: PIDs there are small and the
// kernel hands out the one asked for (ns_last_pid), so a writer's PID can be
// given to a new process after the writer exited, as a busy host would.
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useBuiltBin } from '../support/built-bin.js';
import { treeOf } from '../support/file-tree.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';

function namespaceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `PID namespaces are Linux only (this is ${process.platform})`;
  const probe = spawnSync(
    'unshare',
    ['--pid', '--fork', '--mount-proc', 'sh', '-c', 'echo 1 > /proc/sys/kernel/ns_last_pid'],
    { encoding: 'utf8' },
  );
  if (probe.error) return `unshare cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare --pid --fork --mount-proc fails here: ${probe.stderr.trim()}`;
  return undefined;
}

const unavailable = namespaceUnavailable();
if (unavailable) console.warn(`skipping the PID-namespace tests: ${unavailable}`);

// Runs inside the namespace, as its init: single-threaded, so no thread takes
// a PID between the write to ns_last_pid and the fork that should get it.
const SCRIPT = String.raw`
set -u
STG=$1; OUT=$2; RES=$3; BIN=$4; NODE=$5
# Two writers, each writes a staging file named with its own PID, and exits.
sh -c 'echo "partial quiet" > "$0/2026-04-24.$$.csv"' "$STG"
sh -c 'echo "partial busy" > "$0/2026-04-25.$$.csv"' "$STG"
A=$(ls "$STG" | sed -n 's/^2026-04-24\.\([0-9]*\)\.csv$/\1/p')
B=$(ls "$STG" | sed -n 's/^2026-04-25\.\([0-9]*\)\.csv$/\1/p')
# Wait until both files are provably older than any process started from now
# on: 2s past their last change (1s of slack in the judgement, up to 1s of
# rounding in /proc's start times).
LAST=$(stat -c %Z "$STG/2026-04-25.$B.csv")
while [ "$(date +%s)" -lt $((LAST + 3)) ]; do sleep 0.1; done
# The writers' PIDs, handed to new, live processes.
echo $((A - 1)) > /proc/sys/kernel/ns_last_pid; sleep 300 & GOT_A=$!
echo $((B - 1)) > /proc/sys/kernel/ns_last_pid; sleep 300 & GOT_B=$!
echo "$A $GOT_A $B $GOT_B" > "$RES/pids"
L="--out-dir $OUT --staging-dir $STG --final r_{date}.csv"
"$NODE" "$BIN" diagnose 2026-04-24 $L --stale-after 1s --json > "$RES/quiet.json"; echo $? > "$RES/quiet.code"
"$NODE" "$BIN" diagnose 2026-04-25 $L --json > "$RES/busy.json"; echo $? > "$RES/busy.code"
"$NODE" "$BIN" diagnose 2026-04-25 $L --fix --json > "$RES/busy-fix.json"; echo $? > "$RES/busy-fix.code"
ls "$STG" > "$RES/after-busy-fix"
"$NODE" "$BIN" diagnose 2026-04-24 $L --stale-after 1s --fix --json > "$RES/quiet-fix.json"; echo $? > "$RES/quiet-fix.code"
ls "$STG" > "$RES/after-quiet-fix"
`;

interface Orphan {
  readonly path: string;
  readonly pid: number;
  readonly writer: string;
  readonly writerReason: string;
}

describe.skipIf(unavailable !== undefined)('real PID reuse in a fresh PID namespace', () => {
  const built = useBuiltBin();
  let root: string;
  let stagingDir: string;
  let outDir: string;
  beforeEach(async () => {
    ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-pidns-'));
  });
  afterEach(() => removeTempDir(root));

  it('a reused PID on a file quiet past --stale-after is dead; on a file changed within it, alive', async () => {
    const results = join(root, 'results');
    await fsp.mkdir(results);
    const script = join(root, 'in-namespace.sh');
    await fsp.writeFile(script, SCRIPT);
    const ran = spawnSync(
      'unshare',
      ['--pid', '--fork', '--mount-proc', 'sh', script, stagingDir, outDir, results, built.bin, process.execPath],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 25_000 },
    );
    expect(ran.status, ran.stderr).toBe(0);
    const read = (name: string) => fsp.readFile(join(results, name), 'utf8');
    const [a, gotA, b, gotB] = (await read('pids')).trim().split(' ').map(Number);
    // The kernel really handed the writers' PIDs to the new processes.
    expect([gotA, gotB]).toEqual([a, b]);

    const quiet = JSON.parse(await read('quiet.json')) as { state: string; orphans: Orphan[] };
    expect(Number(await read('quiet.code'))).toBe(11);
    expect(quiet.state).toBe('D');
    expect(quiet.orphans).toEqual([
      expect.objectContaining({
        pid: a,
        writer: 'dead',
        writerReason: expect.stringMatching(
          new RegExp(
            `^PID ${a} is running but started \\d+s after the file's last change \\(\\d+s ago\\), `
            + 'and the file has been quiet for \\d+s, over 1s: a reused PID$',
          ),
        ),
      }),
    ]);

    const busy = JSON.parse(await read('busy.json')) as { state: string; orphans: Orphan[] };
    expect(Number(await read('busy.code'))).toBe(20);
    expect(busy.state).toBe('RUNNING');
    expect(busy.orphans).toEqual([
      expect.objectContaining({
        pid: b,
        writer: 'alive',
        writerReason: expect.stringMatching(
          /started \d+s after the file's last change .*but the file changed within 15m, so it may still be its writer/,
        ),
      }),
    ]);
    // --fix on the recently changed file touches nothing; on the quiet one it removes the orphan.
    expect(Number(await read('busy-fix.code'))).toBe(20);
    expect((await read('after-busy-fix')).trim().split('\n')).toEqual([`2026-04-24.${a}.csv`, `2026-04-25.${b}.csv`]);
    expect(Number(await read('quiet-fix.code'))).toBe(10);
    expect((await read('after-quiet-fix')).trim().split('\n')).toEqual([`2026-04-25.${b}.csv`]);
    expect(Object.keys(await treeOf(stagingDir))).toEqual([`2026-04-25.${b}.csv`]);
  });
});
