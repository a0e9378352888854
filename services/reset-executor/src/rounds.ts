/**
 * The next group of waiting requests that one statement can serve: those of the first one's
 * kind (`kindOf`, e.g. its consumer group), at most one per `keyOf` (e.g. per user: one
 * statement cannot both claim and see a claim for one user, nor upsert one row twice), and at
 * most `max`. The rest keep their order for the next round.
 */
export function takeRound<T>(waiting: readonly T[], kindOf: (item: T) => string, keyOf: (item: T) => string, max = 256): { round: T[]; rest: T[] } {
  const round: T[] = [];
  const rest: T[] = [];
  const keys = new Set<string>();
  const kind = waiting.length > 0 ? kindOf(waiting[0]!) : "";
  for (const item of waiting) {
    const key = keyOf(item);
    if (round.length < max && kindOf(item) === kind && !keys.has(key)) {
      keys.add(key);
      round.push(item);
    } else {
      rest.push(item);
    }
  }
  return { round, rest };
}
