import { fileURLToPath } from 'node:url';
import { type Tools, toolsIn } from '../../examples/refunds-pipeline/harness/tools.js';

/** The built binaries: `npm test` builds before it runs vitest. */
export function builtTools(): Tools {
  return toolsIn(fileURLToPath(new URL('../../dist-dev/', import.meta.url)));
}
