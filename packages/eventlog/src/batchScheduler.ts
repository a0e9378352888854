/** A handler's answer when it did not run or gave up because its worker is stopping. */
export const STOPPED = Symbol("stopped");

export interface BatchPlan<E, R> {
  events: readonly E[];
  keyOf(event: E): string;
  /** Handlers running at once. */
  concurrency: number;
  /** Runs one event's handler (with its own retries); STOPPED when it gave up for a stop. */
  run(event: E): Promise<R | typeof STOPPED>;
  /** Commits a run of consecutive finished events, in log order. Throwing ends the batch. */
  commit(done: ReadonlyArray<{ event: E; result: R }>): Promise<void>;
  /** True once the worker is stopping: nothing after the furthest event already started begins. */
  stopping(): boolean;
  /** Most events committed together. */
  maxGroup?: number;
}

/**
 * Schedules one batch of a partition. Up to `concurrency` handlers run at once, but events with
 * the same key wait until the previous one is committed (so a handler always sees its
 * predecessor's effects), and commits happen strictly in log order, several ready events per
 * commit. On a graceful stop every event up to the furthest one already started is still
 * finished and committed, so its side effects are not repeated by the next owner.
 * Resolves with the number of events committed.
 */
export async function runBatch<E, R>(plan: BatchPlan<E, R>): Promise<number> {
  const { events } = plan;
  const maxGroup = plan.maxGroup ?? 64;
  let aborted = false;
  const committed = events.map(() => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  });
  const lastCommitOfKey = new Map<string, Promise<void>>();
  const settled = events.map(() => false);
  let running = 0;
  let furthestStarted = -1;
  const queue: Array<() => void> = [];
  const slot = async () => {
    while (running >= plan.concurrency) await new Promise<void>((r) => queue.push(r));
    running++;
  };
  const results = events.map((event, i) => {
    const key = plan.keyOf(event);
    const prior = lastCommitOfKey.get(key) ?? Promise.resolve();
    lastCommitOfKey.set(key, committed[i]!.promise);
    return (async (): Promise<R | typeof STOPPED> => {
      await prior;
      if (aborted) return STOPPED;
      await slot();
      try {
        if (aborted || (plan.stopping() && i > furthestStarted)) return STOPPED;
        furthestStarted = Math.max(furthestStarted, i);
        return await plan.run(event);
      } finally {
        running--;
        queue.shift()?.();
        settled[i] = true;
      }
    })();
  });
  let done = 0;
  try {
    while (done < events.length) {
      const group: Array<{ event: E; result: R }> = [];
      const first = await results[done]!;
      if (first === STOPPED) break;
      group.push({ event: events[done]!, result: first });
      while (group.length < maxGroup && done + group.length < events.length && settled[done + group.length]) {
        const next = await results[done + group.length]!;
        if (next === STOPPED) break;
        group.push({ event: events[done + group.length]!, result: next });
      }
      await plan.commit(group);
      for (let k = 0; k < group.length; k++) committed[done + k]!.resolve();
      done += group.length;
    }
  } finally {
    aborted = true;
    for (const c of committed) c.resolve();
    await Promise.allSettled(results);
  }
  return done;
}
