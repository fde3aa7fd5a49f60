import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** A pipeline's directories on disk: the output directory and the staging directory beside it. */
export interface Layout {
  readonly root: string;
  readonly outDir: string;
  readonly stagingDir: string;
}

/** Creates `out/` and `_staging/` under `root`. */
export async function makeLayout(root: string): Promise<Layout> {
  const layout = { root, outDir: join(root, 'out'), stagingDir: join(root, '_staging') };
  await fsp.mkdir(layout.outDir, { recursive: true });
  await fsp.mkdir(layout.stagingDir, { recursive: true });
  return layout;
}

/** A fresh temporary directory holding an empty `out/` and `_staging/`. */
export async function makeTempLayout(prefix: string): Promise<Layout> {
  return makeLayout(await makeTempDir(prefix));
}

/** A fresh temp layout before each test, handed to `use`; removed after each test. */
export function useTempLayout(prefix: string, use: (layout: Layout) => void): void {
  let made: Layout | undefined;
  beforeEach(async () => {
    made = await makeTempLayout(prefix);
    use(made);
  });
  afterEach(() => removeTempDir(made?.root));
}
