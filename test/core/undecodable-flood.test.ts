// Attack: a key's staging directory flooded with names that are not UTF-8
// (a writer with a broken locale, a copy from another file system). Each is a
// finding, and a read-only diagnose keeps the first 1,000 findings by path:
// it must not hold the rest while it lists them either. The heap is measured
// after a full collection when the listing starts and when the second
// listing, by bytes, ends: a record kept per name grows it by their count.
import { closeSync, openSync, promises as fsp } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifyFolded } from '../../src/core/classify.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { probeRunFolded } from '../../src/core/probe.js';
import { heapAfterCollection } from '../support/heap.js';
import { KEY, settingsFor } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

let layout: Layout;
useTempLayout('crashdiag-undecodable-flood-', (made) => {
  layout = made;
});

// Enough that a record per name (an entry, its escaped name and path: some
// 400 bytes) shows well above FLAT_BYTES; few enough to plant in a second.
const NAMES = 40_000;
const FLAT_BYTES = 6 * 1024 * 1024;
const LISTED = 1000;

/** The file system, with the heap measured as the first listing opens and as the listing by bytes closes. */
function measuring(heapAt: number[]): FileSystem {
  const opendir = (async (dir: string, options?: { encoding?: string }) => {
    const byBytes = options?.encoding === 'buffer';
    if (!byBytes && heapAt.length === 0) heapAt.push(heapAfterCollection());
    const handle = await fsp.opendir(dir, options as Parameters<typeof fsp.opendir>[1]);
    if (!byBytes) return handle;
    const close = handle.closeSync.bind(handle);
    return Object.assign(handle, {
      closeSync: () => {
        heapAt.push(heapAfterCollection());
        close();
      },
    });
  }) as FileSystem['opendir'];
  return { ...fsp, opendir };
}

describe(`attack: ${NAMES.toLocaleString('en')} staging names that are not UTF-8`, () => {
  it('a read-only diagnose holds the first 1,000 findings, not a record per name; all are counted', async () => {
    const prefix = Buffer.concat([Buffer.from(`${layout.stagingDir}/${KEY}.`), Buffer.from([0xff])]);
    for (let i = 0; i < NAMES; i++) closeSync(openSync(Buffer.concat([prefix, Buffer.from(`${i}.csv`)]), 'w'));
    const heapAt: number[] = [];
    const nowMs = Date.now();
    const ctx = { fs: measuring(heapAt), processes: createProcessTable(), nowMs };
    const { evidence, fold } = await probeRunFolded(ctx, settingsFor(layout), KEY, LISTED);
    const diagnosis = classifyFolded(evidence, fold);
    expect(diagnosis.state).toBe('UNKNOWN');
    expect(diagnosis.anomalies).toHaveLength(LISTED);
    expect(diagnosis.anomalies.length + (diagnosis.unlistedAnomalies ?? 0)).toBe(NAMES);
    expect(diagnosis.anomalies[0]?.path).toBe(`${layout.stagingDir}/${KEY}.\\xff0.csv`);
    expect(heapAt).toHaveLength(2);
    const [first = 0, last = 0] = heapAt;
    expect(last - first).toBeLessThan(FLAT_BYTES);
  }, 60_000);
});
