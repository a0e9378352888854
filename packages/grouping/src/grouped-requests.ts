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

export interface GroupedRequestsOptions<Request> {
  /** Requests of one kind only share a round (the first waiting request's kind). */
  kindOf?: (request: Request) => string;
  /** At most one request per key in a round. */
  keyOf?: (request: Request) => string;
  /** On a thrown round, serve each of its requests alone so one bad request cannot fail the others. */
  retryAlone?: boolean;
  /** Largest round (e.g. Graph's 20 requests per `$batch`). */
  maxPerRound?: number;
  /**
   * Rounds served at once. 1 (the default) is a group commit; more lets a round leave while
   * another waits on a slow peer (Graph's latency), so a new request waits less.
   */
  maxRoundsInFlight?: number;
  /**
   * Let a round start only after the current turn of the event loop, so requests asked in the
   * same turn (handlers released together by one read or one grouped statement) share it. Costs
   * a lone request one turn (microseconds), not a wait for another request.
   */
  gatherOneTurn?: boolean;
}

/**
 * Requests asked at about the same time, served together: a round is served as soon as one may
 * start (one at a time by default) and whatever is asked meanwhile waits for the next (the shape
 * of a group commit, used for the executor's reads, write claims, write-budget slots and outcome
 * commits, and for Graph `$batch` requests). A lone request is not delayed; a busy process pays
 * one round trip per group instead of one per request.
 *
 * `serve` answers a round in order; an `Error` in its answer rejects that request alone, a thrown
 * error rejects the whole round, unless `retryAlone` says to serve each of its requests on its
 * own first (so one bad request cannot fail the others).
 */
export class GroupedRequests<Request, Answer> {
  private waiting: Array<Waiting<Request, Answer>> = [];
  private inFlight = 0;
  private unique = 0;
  private turnScheduled = false;

  constructor(
    private readonly serve: (round: Request[]) => Promise<Array<Answer | Error>>,
    private readonly options: GroupedRequestsOptions<Request> = {},
  ) {}

  ask(request: Request): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (!this.options.gatherOneTurn) this.startRounds();
      else if (!this.turnScheduled) {
        this.turnScheduled = true;
        setImmediate(() => {
          this.turnScheduled = false;
          this.startRounds();
        });
      }
    });
  }

  private startRounds(): void {
    const kindOf = this.options.kindOf ?? (() => "");
    const keyOf = this.options.keyOf ?? (() => String(this.unique++));
    while (this.waiting.length > 0 && this.inFlight < (this.options.maxRoundsInFlight ?? 1)) {
      const { round, rest } = takeRound(
        this.waiting,
        (w) => kindOf(w.request),
        (w) => keyOf(w.request),
        this.options.maxPerRound,
      );
      this.waiting = rest;
      this.inFlight++;
      void this.serveRound(round).finally(() => {
        this.inFlight--;
        this.startRounds();
      });
    }
  }

  private async serveRound(round: Array<Waiting<Request, Answer>>): Promise<void> {
    try {
      settle(round, await this.serve(round.map((w) => w.request)));
    } catch (err) {
      if (!this.options.retryAlone || round.length === 1) for (const w of round) w.reject(err);
      else for (const w of round) await this.serve([w.request]).then((answers) => settle([w], answers), w.reject);
    }
  }
}

interface Waiting<Request, Answer> {
  request: Request;
  resolve(answer: Answer): void;
  reject(err: unknown): void;
}

function settle<Answer>(round: Array<{ resolve(answer: Answer): void; reject(err: unknown): void }>, answers: Array<Answer | Error>): void {
  round.forEach((w, i) => {
    const answer = answers[i];
    if (answer instanceof Error) w.reject(answer);
    else if (answer === undefined && i >= answers.length) w.reject(new Error(`a grouped request got no answer (round of ${round.length})`));
    else w.resolve(answer as Answer);
  });
}
