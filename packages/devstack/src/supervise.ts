/**
 * How long the supervisor waits before the n-th restart in a row of a service that keeps
 * exiting: 1 s, 2 s, 4 s … capped at 30 s, so a crash loop neither spins the CPU nor leaves a
 * service down for long once its cause is gone.
 */
export function restartDelayMs(restartsInARow: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, restartsInARow - 1));
}
