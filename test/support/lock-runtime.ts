import { randomBytes } from 'node:crypto';
import type { LockRuntime } from '../../src/core/lock.js';

/** What the bin hands the lock: this process's PID, random tokens, real (unref'd) timers. */
export function realLockRuntime(): LockRuntime {
  return {
    pid: process.pid,
    randomToken: () => randomBytes(8).toString('hex'),
    every: (ms, fn) => {
      const timer = setInterval(fn, ms);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
