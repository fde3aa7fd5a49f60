/**
 * Maps over items with at most `limit` calls in flight, results in input
 * order. Bounded so that a directory of 100k orphans never means 100k open
 * requests; 16 keeps the libuv thread pool busy without queueing behind it.
 */
export async function mapPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export const IO_CONCURRENCY = 16;
