/**
 * A write budget for audit records that an unauthenticated caller can trigger (refused calls):
 * at most `perMinute` records a minute are written one by one; the rest are counted, and the
 * count rides on the next record written (`suppressedBefore`), so a scanner cannot grow the log
 * without bound and the log still says how many were refused. A record whose write failed is
 * counted the same way.
 */
export function auditBudget<T>(options: {
  perMinute: number;
  write: (record: T, suppressedBefore: number) => Promise<void>;
  onWriteError: (err: Error) => void;
  now?: () => number;
}): { record(record: T): Promise<void> } {
  const now = options.now ?? Date.now;
  let windowStart = now();
  let inWindow = 0;
  let suppressed = 0;
  return {
    async record(record) {
      if (now() - windowStart >= 60_000) {
        windowStart = now();
        inWindow = 0;
      }
      if (inWindow >= options.perMinute) {
        suppressed++;
        return;
      }
      inWindow++;
      const suppressedBefore = suppressed;
      suppressed = 0;
      try {
        await options.write(record, suppressedBefore);
      } catch (err) {
        suppressed += suppressedBefore + 1;
        options.onWriteError(err as Error);
      }
    },
  };
}
