// The heap as a memory test reads it: after two full collections, so only
// what is still held counts.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** The collector, taken once (the function stays). */
function collector(): () => void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    // Restored at once: files after this one share the worker (isolate:
    // false), and a changed V8 flag made V8 reject every code cache they
    // compiled (test/cli/code-cache.test.ts failed after a memory test).
    setFlagsFromString('--no-expose-gc');
  }
  return gc;
}

/** Bytes of heap in use once everything unreachable is collected. */
export function heapAfterCollection(): number {
  const collect = collector();
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}
