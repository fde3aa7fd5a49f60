/**
 * A fixed sequence of numbers (no randomness in tests): `next(n)` is in
 * [0, n). An LCG, read from its high bits: its low bits repeat with a short
 * period, and left cases of a generated log unexercised.
 */
export function seeded(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return Math.floor(state / 65536) % n;
  };
}
