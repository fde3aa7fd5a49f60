// The JSON of a diagnosis: a crash loop left alone has 100,000 orphans and as
// many failed attempts; the JSON lists the first JSON_LISTED of each and says
// how many there are, never a shorter list that passes for the whole.
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/core/classify.js';
import { JSON_LISTED } from '../../src/render/format.js';
import { renderDiagnosisJson } from '../../src/render/json.js';
import { evidence, GONE, HOUR, recovery, runningSince, NOW, staged } from '../support/run-evidence.js';

function diagnosisOf(dead: number, alive = 0) {
  const staging = [
    ...Array.from({ length: dead }, (_, i) => staged(100_000 + i, 3 * HOUR, GONE, { bytes: 10 })),
    ...Array.from({ length: alive }, (_, i) => staged(900_000 + i, HOUR, runningSince(NOW - 2 * HOUR), { bytes: 7 })),
  ];
  return classifyRun({ ...evidence({ staging }), recovery: recovery() });
}

const parse = (text: string) => JSON.parse(text) as Record<string, unknown> & {
  orphans: Array<{ path: string }>;
  attempts: { count: number; listed: number; list: unknown[] };
};

describe('renderDiagnosisJson: long lists', () => {
  it('lists every orphan and attempt up to the bound, with totals that say so', () => {
    const json = parse(renderDiagnosisJson(diagnosisOf(JSON_LISTED)));
    expect(json.orphans).toHaveLength(JSON_LISTED);
    const all = JSON_LISTED;
    expect(json.orphanTotals).toEqual({ count: all, listed: all, bytes: 10 * all, dead: all, alive: 0, unknown: 0 });
    // The documented order, as the README shows it.
    expect(Object.keys(json.orphanTotals as object)).toEqual(['count', 'listed', 'bytes', 'dead', 'alive', 'unknown']);
    expect(json.attempts).toMatchObject({ count: JSON_LISTED, listed: JSON_LISTED });
    expect(json.attempts.list).toHaveLength(JSON_LISTED);
  });

  it('past the bound lists the first orphans by path and the first attempts, and counts all of them', () => {
    const diagnosis = diagnosisOf(JSON_LISTED + 500, 2);
    const json = parse(renderDiagnosisJson(diagnosis));
    expect(json.state).toBe('RUNNING');
    expect(json.orphans.map((o) => o.path)).toEqual(diagnosis.orphans.slice(0, JSON_LISTED).map((o) => o.path));
    expect(json.orphanTotals).toEqual({
      count: JSON_LISTED + 502,
      listed: JSON_LISTED,
      bytes: 10 * (JSON_LISTED + 500) + 14,
      dead: JSON_LISTED + 500,
      alive: 2,
      unknown: 0,
    });
  });

  it('a crash loop of 100,000 attempts: the first of them listed, all counted, in the documented field order', () => {
    const json = parse(renderDiagnosisJson(diagnosisOf(100_000)));
    expect(json.state).toBe('CRASH-LOOP');
    expect(json.attempts).toMatchObject({ count: 100_000, max: 3, listed: JSON_LISTED });
    expect(json.attempts.list).toHaveLength(JSON_LISTED);
    expect(Object.keys(json.attempts)).toEqual(['count', 'max', 'list', 'listed']);
    expect(Object.keys(json).slice(0, 12)).toEqual([
      'schemaVersion', 'run', 'state', 'action', 'exitCode', 'summary', 'final',
      'orphans', 'orphanTotals', 'anomalies', 'anomalyTotals', 'runbook',
    ]);
    // The summary names the first attempts, not 100,000 of them.
    expect(json.summary).toMatch(/; and 99980 more\. /);
    expect(String(json.summary).length).toBeLessThan(3000);
  });
});

describe('renderDiagnosisJson: findings and causes, bounded like the orphans', () => {
  const base = diagnosisOf(2);
  const anomalies = Array.from({ length: 1500 }, (_, i) => ({ path: `/s/${String(i).padStart(5, '0')}`, reason: 'odd' }));
  const causes = Array.from({ length: 1200 }, (_, i) => ({ kind: 'partial-write' as const, pid: i, detail: 'wrote some' }));

  it('a model holding every one: the first 1,000 listed, all counted', () => {
    const text = renderDiagnosisJson({ ...base, anomalies, causes, causeNotes: [] });
    const json = JSON.parse(text) as Record<string, unknown[]>;
    expect(json.anomalies).toEqual(anomalies.slice(0, JSON_LISTED));
    expect(json.anomalyTotals).toEqual({ count: 1500, listed: JSON_LISTED });
    expect(json.causes).toEqual(causes.slice(0, JSON_LISTED));
    expect(json.causeTotals).toEqual({ count: 1200, listed: JSON_LISTED });
  });

  it('a model holding only the first ones (a read-only look): the rest counted from what it says is unlisted', () => {
    const json = JSON.parse(renderDiagnosisJson({
      ...base,
      anomalies: anomalies.slice(0, 3),
      unlistedAnomalies: 97,
      causes: causes.slice(0, 5),
      unlistedCauses: 95,
      causeNotes: [],
    })) as Record<string, unknown>;
    expect(json.anomalyTotals).toEqual({ count: 100, listed: 3 });
    expect(json.causeTotals).toEqual({ count: 100, listed: 5 });
    expect(json).not.toHaveProperty('unlistedAnomalies');
    expect(json).not.toHaveProperty('unlistedCauses');
  });
});

describe('renderDiagnosisJson: S3\'s incomplete multipart uploads, bounded the same way', () => {
  it('an S3 crash loop\'s 1,500 uploads: the first 1,000 listed, all counted; none and a few as they are', () => {
    const base = diagnosisOf(1);
    const upload = (i: number) => ({
      path: `s3://b/s/2026-04-24.${i}.csv`, uploadId: `u${i}`, initiated: '2026-04-24T06:00:00Z', ageSeconds: 60, stale: false,
    });
    const uploads = Array.from({ length: 1500 }, (_, i) => upload(i));
    const many = JSON.parse(renderDiagnosisJson({ ...base, uploads, uploadNotes: [] })) as Record<string, unknown[]>;
    expect(many.uploads).toEqual(uploads.slice(0, JSON_LISTED));
    expect(many.uploadTotals).toEqual({ count: 1500, listed: JSON_LISTED });
    const fewText = renderDiagnosisJson({ ...base, uploads: uploads.slice(0, 2), uploadNotes: [] });
    const few = JSON.parse(fewText) as Record<string, unknown[]>;
    expect(few.uploadTotals).toEqual({ count: 2, listed: 2 });
    // Local: no uploads at all, and no totals for them.
    expect(JSON.parse(renderDiagnosisJson(base))).not.toHaveProperty('uploadTotals');
  });
});
