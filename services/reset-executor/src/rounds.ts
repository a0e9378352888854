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

/**
 * Requests asked at about the same time, served together: one round runs at a time and whatever
 * is asked meanwhile waits for the next (the shape of a group commit, used for the executor's
 * reads, write claims, write-budget slots and outcome commits). A lone request is not delayed;
 * a busy executor pays one round trip per group instead of one per request.
 *
 * `serve` answers a round in order; an `Error` in its answer rejects that request alone, a thrown
 * error rejects the whole round, unless `retryAlone` says to serve each of its requests on its
 * own first (so one bad request cannot fail the others).
 */
export class GroupedRequests<Request, Answer> {
  private waiting: Array<{ request: Request; resolve(answer: Answer): void; reject(err: unknown): void }> = [];
  private running = false;

  constructor(
    private readonly serve: (round: Request[]) => Promise<Array<Answer | Error>>,
    private readonly options: { kindOf?: (request: Request) => string; keyOf?: (request: Request) => string; retryAlone?: boolean } = {},
  ) {}

  ask(request: Request): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    const sameKind = this.options.kindOf ?? (() => "");
    let unique = 0;
    const keyOf = this.options.keyOf ?? (() => String(unique++));
    try {
      while (this.waiting.length > 0) {
        const { round, rest } = takeRound(
          this.waiting,
          (w) => sameKind(w.request),
          (w) => keyOf(w.request),
        );
        this.waiting = rest;
        try {
          settle(round, await this.serve(round.map((w) => w.request)));
        } catch (err) {
          if (!this.options.retryAlone || round.length === 1) for (const w of round) w.reject(err);
          else for (const w of round) await this.serve([w.request]).then((answers) => settle([w], answers), w.reject);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

function settle<Answer>(round: Array<{ resolve(answer: Answer): void; reject(err: unknown): void }>, answers: Array<Answer | Error>): void {
  round.forEach((w, i) => {
    const answer = answers[i];
    if (answer instanceof Error) w.reject(answer);
    else if (answer === undefined && i >= answers.length) w.reject(new Error(`a grouped request got no answer (round of ${round.length})`));
    else w.resolve(answer as Answer);
  });
}
